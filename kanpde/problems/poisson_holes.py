"""Laplace's equation on a square plate with four circular holes (a standard PINN benchmark domain)."""

from __future__ import annotations

import numpy as np
import torch

from kanpde.geometry import Disk, Rectangle
from kanpde.jet import Jet
from kanpde.problem import Dirichlet, Problem

CENTRES = [(0.3, 0.3), (-0.3, 0.3), (0.3, -0.3), (-0.3, -0.3)]
DOMAIN = Rectangle([-0.5, -0.5], [0.5, 0.5], name="outer") - Disk(CENTRES[0], 0.1, name="hole") \
    - Disk(CENTRES[1], 0.1, name="hole") - Disk(CENTRES[2], 0.1, name="hole") - Disk(CENTRES[3], 0.1, name="hole")


def fem_reference(h: float = 0.02, levels: int = 3, order: int = 3, resolution: int = 101):
    """P3 FEM at h, h/2, h/4 (module level, so that it can be cached by its arguments)."""
    from kanpde.reference.fem import converged_poisson, grid_points

    dirichlet = [(1.0, DOMAIN.parts_of("outer")), (0.0, DOMAIN.parts_of("hole"))]
    return converged_poisson(DOMAIN, 0.0, dirichlet, grid_points(DOMAIN, resolution), h, levels, order)


class PoissonHoles(Problem):
    """Δu = 0 on [-0.5, 0.5]² minus four disks of radius 0.1 at (±0.3, ±0.3); u = 1 on the square,
    u = 0 on the circles, both built in exactly (u = g + φ·N by transfinite interpolation)."""

    problem_name = "poisson_holes"
    description = "Laplace on [-0.5,0.5]² minus 4 disks, u=1 outside, u=0 on the holes (FEM reference)"
    domain = DOMAIN
    derivatives = "trace"
    conditions = [Dirichlet(1.0, on="outer", hard=True, name="outer"),
                  Dirichlet(0.0, on="hole", hard=True, name="hole")]

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return u.laplacian

    def reference(self) -> tuple[np.ndarray, np.ndarray]:
        """FEM values at the grid points inside the domain (computed once, then cached: about 2 min)."""
        from kanpde.reference.fem import cached_fem

        solution = cached_fem(self.name, fem_reference)
        return solution.points, solution.values
