"""Kuramoto–Sivashinsky: u_t + u·u_x + u_xx + u_xxxx = 0, periodic in x — a fourth-order, chaotic PDE.

The setup of Kassam & Trefethen (2005, "Fourth-order time-stepping for stiff PDEs", Fig. 4.1):
x ∈ [0, 32π] periodic, u(x, 0) = cos(x/16)·(1 + sin(x/16)); PINNacle's "KS" benchmark is the same
problem rescaled to x' = x/16, t' = t/100. Here t ∈ [0, 10], before the cells that the linear
instability (growth rate q² − q⁴ for wavenumber q < 1) grows out of the initial bump have turned
chaotic. The field is exactly periodic in x (the network sees cos πξ, sin πξ) and the initial
condition is hard, u = g(x) + (t/10)·N. Reference: Fourier pseudo-spectral + ETDRK4
(:mod:`kanpde.reference.kuramoto_sivashinsky`), self-convergence stored with it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from kanpde.geometry import Box
from kanpde.jet import Jet
from kanpde.problem import Initial, Problem

LENGTH = 32 * math.pi


def initial_condition(x: torch.Tensor) -> torch.Tensor:
    """u(x, 0) = cos(x/16)·(1 + sin(x/16)) at space-time points [N, 2]."""
    phase = 2 * math.pi * x[:, 0] / LENGTH
    return torch.cos(phase) * (1 + torch.sin(phase))


class KuramotoSivashinsky(Problem):
    """u_t + u u_x + u_xx + u_xxxx = 0 on [0, 32π] (periodic) × [0, 10], u(x, 0) = cos(x/16)(1 + sin(x/16))."""

    problem_name = "kuramoto_sivashinsky"
    description = "Kuramoto–Sivashinsky u_t + u u_x + u_xx + u_xxxx = 0, periodic on [0, 32π], t ≤ 10 (4th order)"
    box = Box.space_time([0.0], [LENGTH], t0=0.0, t1=10.0, names=("x", "t"))
    derivatives = ("t", "x", "xx", "xxxx")
    reference_name = "kuramoto_sivashinsky"
    periodic = ("x",)
    conditions = (Initial(initial_condition, hard=True),)

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return u.d("t") + u.value * u.d("x") + u.d("x", "x") + u.d("x", "x", "x", "x")

    def reference(self) -> tuple[list[np.ndarray], np.ndarray]:
        """The cached spectral reference (axes [x, t], u[i, j] = u(x_i, t_j))."""
        cached = self.__dict__.get("_reference_cache")
        if cached is None:
            from kanpde.reference import reference

            solution = reference(self.reference_name, length=LENGTH, t1=self.box.t1)
            cached = solution.on_grid("u")
            self.__dict__["_reference_cache"] = cached
        return cached


__all__ = ["KuramotoSivashinsky", "initial_condition"]
