"""A 2-D Poisson problem with a closed-form solution a KAN can represent exactly (for symbolic export)."""

from __future__ import annotations

import math

import torch

from kanpde.geometry import Box
from kanpde.jet import Jet
from kanpde.problem import Dirichlet, Problem

PI = math.pi


class PoissonSin(Problem):
    """u_xx + u_yy = f on [-1, 1]², u = 0 on the boundary, u* = sin(πx)·sin(πy), f = −2π² u*.

    Since sin(πx)·sin(πy) = ½cos(π(x − y)) − ½cos(π(x + y)) = ¼(sin πx + sin πy)² − ¼(sin πx − sin πy)²,
    a [2, 2, 1] KAN with symbolic edges (linear/cos or sin/square) represents it exactly, so a
    compact symbolic export of a trained network can recover the closed form.
    """

    problem_name = "poisson_sin"
    description = "2-D Poisson, u* = sin(πx) sin(πy) on [-1,1]² (exactly KAN-representable; symbolic export)"
    box = Box([-1.0, -1.0], [1.0, 1.0], ("x", "y"))
    derivatives = "trace"
    conditions = [Dirichlet(0.0)]

    def source(self, x: torch.Tensor) -> torch.Tensor:
        """f = −2π²·sin(πx)·sin(πy)."""
        return -2 * PI**2 * torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1])

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return u.laplacian - self.source(x)

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1])
