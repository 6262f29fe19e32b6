"""The 1-D wave equation with two standing modes: a value and a velocity initial condition."""

from __future__ import annotations

import math

import torch

from kanpde.conditions import Condition, Dirichlet, Initial
from kanpde.geometry import Box
from kanpde.jet import Jet
from kanpde.problem import Problem

PI = math.pi


def initial_value(x: torch.Tensor) -> torch.Tensor:
    """u(x, 0) = sin(πx) + sin(4πx)/2."""
    return torch.sin(PI * x[:, 0]) + 0.5 * torch.sin(4 * PI * x[:, 0])


class Wave(Problem):
    """u_tt = c² u_xx on x ∈ [0, 1], t ∈ [0, 1], c = 2; u(0, t) = u(1, t) = 0,
    u(x, 0) = sin(πx) + sin(4πx)/2, u_t(x, 0) = 0.

    Exact (d'Alembert, two standing modes): u* = sin(πx)·cos(cπt) + sin(4πx)·cos(4cπt)/2.
    All three conditions are built in exactly by default (``hard: true``):
    u = u(x, 0) + 4x(1 − x)·r(t)²·N(x, t) with r(t) = 1 − exp(−t/ramp) (``ramp: 0``: r = t);
    with ``hard: false`` they are soft loss terms. With r = t and no factor 4, the exact
    N = (u* − u(x, 0))/(x(1 − x)t²) reaches ±1.6e3 (u_tt = −(8π)²/2·sin(4πx) at t = 0) and training
    stalled above 100 % error; the ramp and the factor 4 keep |N| below 8 (docs/systems.md).
    """

    problem_name = "wave"
    description = "1-D wave u_tt = 4 u_xx, two standing modes, u and u_t given at t = 0 (exact solution)"
    box = Box.space_time([0.0], [1.0], t0=0.0, t1=1.0, names=("x", "t"))
    derivatives = "diagonal"
    params = {"c": 2.0, "hard": True, "ramp": 0.1}
    hard_scale = 4.0  # 4x(1 − x) peaks at 1

    @property
    def conditions(self) -> tuple[Condition, ...]:  # instance-level: depends on ``hard``
        hard = self.params["hard"]
        ramp = (self.params["ramp"] or None) if hard else None  # 0: r = t
        return (Dirichlet(0.0, hard=hard), Initial(initial_value, hard=hard, ramp=ramp),
                Initial(0.0, derivative="t", hard=hard, ramp=ramp))

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return u.d("t", "t") - self.c**2 * u.d("x", "x")  # u_tt − c² u_xx

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        s, t = x[:, 0], x[:, 1]
        return torch.sin(PI * s) * torch.cos(self.c * PI * t) + 0.5 * torch.sin(4 * PI * s) * torch.cos(
            4 * self.c * PI * t)
