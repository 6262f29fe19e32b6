"""Poisson's equation on the L-shaped domain: a re-entrant corner makes the solution singular (u ~ r^(2/3))."""

from __future__ import annotations

import numpy as np
import torch

from kanpde.geometry import Polygon, Rectangle
from kanpde.jet import Jet
from kanpde.problem import Dirichlet, Problem

DOMAIN = Rectangle([-1.0, -1.0], [1.0, 1.0]) - Rectangle([0.0, 0.0], [1.0, 1.0])
POLYGON = Polygon([(-1, -1), (1, -1), (1, 0), (0, 0), (0, 1), (-1, 1)])  # the same set, for the mesher


def fem_reference(h: float = 0.02, levels: int = 3, order: int = 3, resolution: int = 101):
    """P3 FEM at h, h/2, h/4 on uniform meshes (module level, so that it can be cached by its arguments)."""
    from kanpde.reference.fem import converged_poisson, grid_points

    return converged_poisson(POLYGON, 1.0, [(0.0, POLYGON.boundary_parts())], grid_points(DOMAIN, resolution),
                             h, levels, order)


class PoissonLShape(Problem):
    """−Δu = 1 on [-1, 1]² minus [0, 1]², u = 0 on the boundary (built in exactly, u = φ·N)."""

    problem_name = "poisson_lshape"
    description = "−Δu = 1 on the L-shape [-1,1]² minus [0,1]², u=0 (corner singularity; FEM reference)"
    domain = DOMAIN
    derivatives = "trace"
    conditions = [Dirichlet(0.0, hard=True)]

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return u.laplacian + 1.0

    def reference(self) -> tuple[np.ndarray, np.ndarray]:
        """FEM values at the grid points inside the domain (computed once, then cached)."""
        from kanpde.reference.fem import cached_fem

        solution = cached_fem(self.name, fem_reference)
        return solution.points, solution.values
