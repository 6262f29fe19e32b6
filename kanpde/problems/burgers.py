"""Viscous Burgers equation, the most common PINN benchmark (Raissi et al. 2019).

u_t + u·u_x = ν·u_xx on x ∈ [-1, 1], t ∈ [0, 1], u(x, 0) = −sin(πx), u(±1, t) = 0, ν = 0.01/π: a shock forms
at x = 0 near t ≈ 0.3 and steepens to a width of about 2ν/|u| ≈ 0.006. Errors are measured against the exact
(Cole–Hopf) solution of :mod:`kanpde.reference.burgers`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sympy
import torch

from kanpde.geometry import Box
from kanpde.jet import Jet
from kanpde.problem import Condition, Dirichlet, Initial, Problem
from kanpde.reference.burgers import BURGERS_NU, cole_hopf

PI = math.pi


def initial_condition(x: torch.Tensor) -> torch.Tensor:
    """u(x, 0) = −sin(πx) at space-time points ``x`` [N, 2]."""
    return -torch.sin(PI * x[:, 0])


class Burgers(Problem):
    """u_t + u u_x = ν u_xx, u(x, 0) = −sin πx, u(±1, t) = 0, ν = 0.01/π.

    ``hard`` (default true) builds the initial and boundary conditions into the output,
    u = −sin(πx) + t·(1 − x²)·N (the data are compatible: −sin(±π) = 0); ``hard: false`` makes them
    soft loss terms "initial" and "boundary". ``symmetric: true`` builds in the symmetry of the solution,
    u(−x, t) = −u(x, t) (the equation is invariant under (x, u) → (−x, −u) and the data are odd): the network
    part becomes (N(x, t) − N(−x, t))/2, which pins the shock at x = 0 (twice the cost per step).
    """

    problem_name = "burgers"
    description = "Burgers u_t + u u_x = (0.01/π) u_xx, u(x,0) = −sin πx, u(±1,t) = 0 (shock at x = 0)"
    box = Box.space_time([-1.0], [1.0], t0=0.0, t1=1.0, names=("x", "t"))
    derivatives = ("t", "x", "xx")  # u_xx, not u_tt: the lean jet "diagonal:0"
    params = {"nu": BURGERS_NU, "hard": True, "symmetric": False}

    def __init__(self, **params: Any):
        super().__init__(**params)
        if self.nu <= 0:
            raise ValueError(f"problem.params.nu: must be positive, got {self.nu!r}")

    @property
    def odd(self) -> tuple[str, ...]:  # instance-level: depends on ``symmetric``
        return ("x",) if self.params["symmetric"] else ()

    @property
    def conditions(self) -> tuple[Condition, ...]:  # instance-level: depends on ``hard``
        return () if self.params["hard"] else (Initial(initial_condition), Dirichlet(0.0))

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return u.d("t") + u.value * u.d("x") - self.nu * u.d("x", "x")

    def output_transform(self, u: Jet, x: torch.Tensor) -> Jet:
        if not self.hard:
            return u
        seed = Jet.seed(x, u.mode, u.coords)
        s, t = seed[0:1], seed[1:2]
        angle = PI * s.value
        lift = s.apply(-torch.sin(angle), -PI * torch.cos(angle), PI**2 * torch.sin(angle))  # −sin(πx)
        return lift + t * (1.0 - s * s) * u

    def symbolic_output_transform(self, outputs: list, coords: list) -> list:
        """The same transform in sympy (for :mod:`kanpde.symbolic`)."""
        if not self.hard:
            return list(outputs)
        s, t = coords
        return [-sympy.sin(sympy.pi * s) + t * (1 - s**2) * n for n in outputs]

    def reference_at(self, points: np.ndarray) -> np.ndarray:
        """The exact (Cole–Hopf) solution at scattered points [N, 2] (x, t), not interpolated across the shock."""
        points = np.asarray(points, dtype=float)
        with self.true_values():
            return cole_hopf(points[:, 0], points[:, 1], nu=self.nu)

    def reference(self) -> tuple[list[np.ndarray], np.ndarray]:
        """The cached exact solution (axes [x, t], values u[i, j] = u(x_i, t_j))."""
        cached = self.__dict__.get("_reference_cache")
        if cached is None:
            from kanpde.reference import reference

            solution = reference("burgers", nu=self.nu)
            cached = ([solution.x, solution.t], solution.u)
            self.__dict__["_reference_cache"] = cached
        return cached


__all__ = ["Burgers", "initial_condition"]
