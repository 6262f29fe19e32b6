"""The KAN paper's 2-D Poisson problem (Liu et al. 2024, §3.4; BENCHMARKS.md "poisson")."""

from __future__ import annotations

import math

import torch

from kanpde.geometry import Box
from kanpde.jet import Jet
from kanpde.problem import Dirichlet, Problem

PI = math.pi


class Poisson(Problem):
    """u_xx + u_yy = f on [-1, 1]², u = 0 on the boundary, u* = sin(πx)·sin(πy²)."""

    problem_name = "poisson"
    description = "2-D Poisson, u* = sin(πx) sin(πy²) on [-1,1]² (KAN paper §3.4)"
    box = Box([-1.0, -1.0], [1.0, 1.0], ("x", "y"))
    derivatives = "trace"
    conditions = [Dirichlet(0.0)]

    def source(self, x: torch.Tensor) -> torch.Tensor:
        """f = −π²(1 + 4y²)·sin(πx)·sin(πy²) + 2π·sin(πx)·cos(πy²)."""
        px, y = PI * x[:, 0], x[:, 1]
        return -(PI**2) * (1 + 4 * y**2) * torch.sin(px) * torch.sin(PI * y**2) \
            + 2 * PI * torch.sin(px) * torch.cos(PI * y**2)

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return u.laplacian - self.source(x)

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1] ** 2)
