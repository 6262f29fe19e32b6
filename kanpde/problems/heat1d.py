"""1-D heat equation with a closed-form solution: the small problem of the inverse examples (find ν)."""

from __future__ import annotations

import math

import torch

from kanpde.conditions import Dirichlet, Initial
from kanpde.geometry import Box
from kanpde.jet import Jet
from kanpde.problem import Problem

PI = math.pi


class Heat1D(Problem):
    """u_t = ν u_xx on x ∈ [0, 1], t ∈ [0, 1], u(0, t) = u(1, t) = 0, u(x, 0) = sin(πx), ν = 0.1.

    Exact: u* = e^{−νπ²t} sin(πx). Both conditions are built in (u = sin πx + x(1 − x)·t·N), so
    with ν unknown (``params: {nu: {unknown: true, init: 0.05}}``) and measurements of u the
    residual and the data alone decide ν.
    """

    problem_name = "heat1d"
    description = "1-D heat u_t = ν u_xx, u* = exp(−νπ²t) sin(πx) (exact; ν can be made unknown)"
    box = Box.space_time([0.0], [1.0], t0=0.0, t1=1.0, names=("x", "t"))
    derivatives = ("t", "xx")  # u_xx, not u_tt: the lean jet "diagonal:0"
    params = {"nu": 0.1}
    conditions = (Dirichlet(0.0, hard=True), Initial(lambda x: torch.sin(PI * x[:, 0]), hard=True))

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return u.d("t") - self.nu * u.d("x", "x")  # u_t − ν u_xx

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.nu * PI**2 * x[:, 1]) * torch.sin(PI * x[:, 0])
