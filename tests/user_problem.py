"""User-defined problems shared by the tests (also loaded by the CLI as ``path/to/user_problem.py:ClassName``)."""

from __future__ import annotations

import math

import torch

import kanpde


class Heat(kanpde.Problem):
    """u_t = κ u_xx on [0, 1] × [0, 0.5], u = 0 at x = 0, 1, u(x, 0) = sin(πx)."""

    box = kanpde.Box.space_time([0.0], [1.0], t0=0.0, t1=0.5, names=("x", "t"))
    params = {"kappa": 0.1, "label": "heat"}
    derivatives = "diagonal"
    conditions = [kanpde.Dirichlet(0.0), kanpde.Initial(lambda x: torch.sin(torch.pi * x[:, 0]))]

    def residual(self, u, x):
        return u.d("t") - self.kappa * u.d("x", "x")

    def exact(self, x):
        return torch.exp(-self.kappa * math.pi**2 * x[:, 1]) * torch.sin(math.pi * x[:, 0])


class Poisson2D(kanpde.Problem):
    """Δu + a·u = 0 on [0, 2] × [−1, 3]; u* = sin(x)·exp(y/2) solves it for a = 3/4."""

    box = kanpde.Box([0.0, -1.0], [2.0, 3.0], ("x", "y"))
    params = {"a": 0.75}
    derivatives = "trace"
    conditions = [kanpde.Dirichlet(lambda x: Poisson2D.solution(x))]

    @staticmethod
    def solution(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x[:, 0]) * torch.exp(x[:, 1] / 2)

    def residual(self, u, x):
        return u.laplacian + self.a * u.value

    def exact(self, x):
        return self.solution(x)


class PeriodicHeat(kanpde.Problem):
    """u_t = u_xx, periodic in x on [0, 2] (the network sees cos πξ, sin πξ): u* = exp(−π²t)·sin(πx)."""

    box = kanpde.Box.space_time([0.0], [2.0], t0=0.0, t1=1.0, names=("x", "t"))
    derivatives = "diagonal"
    periodic = ("x",)

    def residual(self, u, x):
        return u.d("t") - u.d("x", "x")

    def exact(self, x):
        return torch.exp(-math.pi**2 * x[:, 1]) * torch.sin(math.pi * x[:, 0])
