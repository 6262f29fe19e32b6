"""The heat equation on the unit disk (a time-dependent problem on a curved domain), with an exact solution."""

from __future__ import annotations

import math

import torch

from kanpde.geometry import Disk, SpaceTime
from kanpde.jet import Jet
from kanpde.problem import Dirichlet, Initial, Problem

PI = math.pi


def initial(x: torch.Tensor) -> torch.Tensor:
    """u(x, y, 0) = sin(πx)·sin(πy) (reads the spatial coordinates only)."""
    return torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1])


class HeatDisk(Problem):
    """u_t = κ(u_xx + u_yy) on the unit disk × [0, 1], u* = exp(−2κπ²t)·sin(πx)·sin(πy);
    u = u* on the circle (soft) and at t = 0 (built in)."""

    problem_name = "heat_disk"
    description = "Heat equation on the unit disk, u* = exp(−2κπ²t) sin(πx) sin(πy)"
    domain = SpaceTime(Disk((0.0, 0.0), 1.0, name="circle"), 0.0, 1.0)
    derivatives = ("t", "xx", "yy")  # not u_tt: the lean jet "diagonal:0,1"
    params = {"kappa": 0.05}

    @property
    def conditions(self):
        return [Dirichlet(self.exact, on="circle"), Initial(initial, hard=True)]

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return u.d("t") - self.kappa * (u.d("x", "x") + u.d("y", "y"))

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-2 * self.kappa * PI**2 * x[:, 2]) * initial(x)
