"""Laplace's equation on a square plate with four circular holes (a standard PINN benchmark domain)."""

from __future__ import annotations

import numpy as np
import torch

from kanpde.geometry import domain_from_spec
from kanpde.geometry.meshing import problem_reference, register_fem
from kanpde.jet import Jet
from kanpde.problem import Dirichlet, Problem

SPEC = {"difference": [{"rectangle": [[-0.5, -0.5], [0.5, 0.5]], "name": "outer"},
                       *({"disk": [[x, y], 0.1], "name": "hole"} for x in (0.3, -0.3) for y in (0.3, -0.3))]}
DIRICHLET = [[1.0, "outer"], [0.0, "hole"]]  # (value, part) pairs, as the FEM reference reads them


def fem_reference(domain=None):
    """The FEM reference on ``domain`` (default: the built-in one), cached (first time: minutes)."""
    return problem_reference(PoissonHoles.problem_name, domain or PoissonHoles.domain, 0.0, DIRICHLET)


class PoissonHoles(Problem):
    """Δu = 0 on [-0.5, 0.5]² minus four disks of radius 0.1 at (±0.3, ±0.3); u = 1 on the square,
    u = 0 on the circles, both built in exactly (u = g + φ·N by transfinite interpolation).
    The reference is P3 FEM on the problem's domain (any domain given as a YAML spec)."""

    problem_name = "poisson_holes"
    description = "Laplace on [-0.5,0.5]² minus 4 disks, u=1 outside, u=0 on the holes (FEM reference)"
    domain = domain_from_spec(SPEC)
    derivatives = "trace"
    conditions = [Dirichlet(value, on=part, hard=True, name=part) for value, part in DIRICHLET]

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return u.laplacian

    def reference(self) -> tuple[np.ndarray, np.ndarray] | None:
        solution = fem_reference(self.domain)
        return None if solution is None else (solution.points, solution.fields["u"])


register_fem(PoissonHoles.problem_name, PoissonHoles.domain, 0.0, DIRICHLET)  # kanpde.reference.reference
