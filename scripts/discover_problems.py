"""Small problems with closed-form solutions for the recovery table (scripts/discover_table.py), written as a
user would (``problem: {name: scripts/discover_problems.py:ClassName}``): the network is the solution itself
(soft conditions), so a small KAN can be exactly the solution."""

from __future__ import annotations

import math

import torch

from kanpde.conditions import Dirichlet, Initial
from kanpde.geometry import Box
from kanpde.jet import Jet
from kanpde.problem import Problem
from kanpde.problems.heat1d import Heat1D

PI = math.pi


class HeatSoft(Heat1D):
    """The README's heat equation u_t = 0.1 u_xx, u* = e^{−0.1π²t} sin(πx), with soft conditions."""

    problem_name = "heat_soft"
    conditions = (Dirichlet(0.0), Initial(lambda x: torch.sin(PI * x[:, 0])))


def _wave(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(PI * (x[:, 0] - x[:, 1]))


class Advection(Problem):
    """u_t + u_x = 0 on [0, 1]², u* = sin(π(x − t)) (inflow at x = 0 and x = 1 given, initial value given)."""

    problem_name = "advection"
    box = Box.space_time([0.0], [1.0], t0=0.0, t1=1.0, names=("x", "t"))
    derivatives = "none"
    conditions = (Dirichlet(_wave), Initial(lambda x: torch.sin(PI * x[:, 0])))

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return u.d("t") + u.d("x")

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return _wave(x)


class PoissonAdditive(Problem):
    """−Δu = f on [−1, 1]² with u* = sin(πx) + y³ on the boundary (a sum of one-variable functions)."""

    problem_name = "poisson_additive"
    box = Box([-1.0, -1.0], [1.0, 1.0], ("x", "y"))
    derivatives = "trace"
    conditions = (Dirichlet(lambda x: torch.sin(PI * x[:, 0]) + x[:, 1] ** 3),)

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return -u.laplacian - (PI**2 * torch.sin(PI * x[:, 0]) - 6 * x[:, 1])

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(PI * x[:, 0]) + x[:, 1] ** 3


def _cos_plus_square(x: torch.Tensor) -> torch.Tensor:
    return torch.cos(x[:, 0] + 2 * x[:, 1]) + x[:, 0] ** 2


class CosPlusSquare(Problem):
    """−Δu = 5 cos(x + 2y) − 2 on [0, 1]², u* = cos(x + 2y) + x²: written after the table's settings were chosen,
    to try them on a problem nobody tuned for."""

    problem_name = "cos_plus_square"
    box = Box([0.0, 0.0], [1.0, 1.0], ("x", "y"))
    derivatives = "trace"
    conditions = (Dirichlet(_cos_plus_square),)

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return -u.laplacian - (5 * torch.cos(x[:, 0] + 2 * x[:, 1]) - 2)

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return _cos_plus_square(x)
