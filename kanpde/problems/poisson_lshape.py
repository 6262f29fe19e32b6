"""Poisson's equation on the L-shaped domain: a re-entrant corner makes the solution singular (u ~ r^(2/3))."""

from __future__ import annotations

import numpy as np
import torch

from kanpde.geometry import domain_from_spec
from kanpde.geometry.meshing import problem_reference, register_fem
from kanpde.jet import Jet
from kanpde.problem import Dirichlet, Problem

SPEC = {"difference": [{"rectangle": [[-1.0, -1.0], [1.0, 1.0]]}, {"rectangle": [[0.0, 0.0], [1.0, 1.0]]}]}

FEM = (1.0, [[0.0, "all"]], {"h": 0.04})  # source, Dirichlet data; finest h = 0.01: ~0.5 M P3 unknowns (3.4× the plate)


def fem_reference(domain=None):
    """The FEM reference on ``domain`` (default: the built-in one): P3 at h = 0.04, 0.02, 0.01, cached."""
    return problem_reference(PoissonLShape.problem_name, domain or PoissonLShape.domain, FEM[0], FEM[1], **FEM[2])


class PoissonLShape(Problem):
    """−Δu = 1 on [-1, 1]² minus [0, 1]², u = 0 on the boundary: built in exactly (u = φ·N) with
    ``hard`` (default), else a soft loss term "boundary". Near the re-entrant corner u ~ r^(2/3), so the
    hard form asks the network for u/φ ~ r^(−1/3), which it cannot represent (docs/domains.md)."""

    problem_name = "poisson_lshape"
    description = "−Δu = 1 on the L-shape [-1,1]² minus [0,1]², u=0 (corner singularity; FEM reference)"
    domain = domain_from_spec(SPEC)
    derivatives = "trace"
    params = {"hard": True}

    @property
    def conditions(self):
        return [Dirichlet(0.0, hard=self.hard)]

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return u.laplacian + 1.0

    def reference(self) -> tuple[np.ndarray, np.ndarray] | None:
        solution = fem_reference(self.domain)
        return None if solution is None else (solution.points, solution.fields["u"])


register_fem(PoissonLShape.problem_name, PoissonLShape.domain, FEM[0], FEM[1], **FEM[2])  # kanpde.reference.reference
