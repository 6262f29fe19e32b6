"""Lid-driven cavity: steady incompressible Navier–Stokes, a system of three fields (u, v, p)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from kanpde.conditions import Condition, Dirichlet, PointValue
from kanpde.geometry import Box
from kanpde.problem import Problem


def lid(x: torch.Tensor) -> torch.Tensor:
    """4x(1 − x)·y: the lid velocity 4x(1 − x) on y = 1 and 0 on the other walls (defined inside too)."""
    return 4 * x[:, 0] * (1 - x[:, 0]) * x[:, 1]


class Cavity(Problem):
    """(u·∇)u − ν Δu + ∇p = 0, ∇·u = 0 on [0, 1]², ν = 0.01 (Re = 100 with the lid's peak speed);
    u = 4x(1 − x), v = 0 on the lid y = 1, no slip on the other walls, p(0, 0) = 0.

    Fields u, v, p; three named residuals (momentum_x, momentum_y, continuity). With ``hard``
    (default) the wall conditions are built in, u = 4x(1 − x)y + 16x(1 − x)y(1 − y)·N_u and
    v = 16x(1 − x)y(1 − y)·N_v; the pressure pin is a soft "point_p" term. The reference is a
    Taylor–Hood finite-element solution (:mod:`kanpde.reference.cavity`, docs/systems.md).
    """

    problem_name = "cavity"
    description = "lid-driven cavity, steady Navier–Stokes at ν = 0.01; fields u, v, p (FEM reference)"
    box = Box([0.0, 0.0], [1.0, 1.0], ("x", "y"))
    fields = ("u", "v", "p")
    derivatives = "trace"  # the Laplacian and the gradient
    params = {"nu": 0.01, "hard": True}
    hard_scale = 16.0  # x(1 − x)y(1 − y) peaks at 1/16: the network's output is of the size of u

    def __init__(self, **params: Any):
        if "hard" in params and not isinstance(params["hard"], bool):
            raise ValueError(f"problem.params.hard: must be true or false, got {params['hard']!r}")
        super().__init__(**params)

    @property
    def conditions(self) -> tuple[Condition, ...]:  # instance-level: depends on ``hard``
        hard = self.params["hard"]
        return (Dirichlet(lid, field="u", hard=hard), Dirichlet(0.0, field="v", hard=hard),
                PointValue("p", at=(0.0, 0.0), value=0.0))

    def residual(self, u, x: torch.Tensor) -> dict[str, torch.Tensor]:
        vx, vy, p = u["u"], u["v"], u["p"]
        a, b = vx.value, vy.value
        return {
            "momentum_x": a * vx.d("x") + b * vx.d("y") - self.nu * vx.laplacian + p.d("x"),
            "momentum_y": a * vy.d("x") + b * vy.d("y") - self.nu * vy.laplacian + p.d("y"),
            "continuity": vx.d("x") + vy.d("y"),
        }

    def reference(self) -> tuple[list[np.ndarray], np.ndarray]:
        """Taylor–Hood P2/P1 on a 64×64 mesh, sampled on a 101² grid: values [101, 101, 3] (u, v, p)."""
        cached = self.__dict__.get("_reference_cache")
        if cached is None:
            from kanpde.reference import reference

            solution = reference("cavity", nu=self.nu)  # computed once, then read from $KANPDE_CACHE
            cached = list(solution.axes.values()), np.stack([solution.fields[f] for f in self.fields], axis=-1)
            self.__dict__["_reference_cache"] = cached
        return cached
