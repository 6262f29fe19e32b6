"""Steady Darcy flow with a smooth permeability (BENCHMARKS.md "darcy"; setup ours).

−∇·(a∇u) = f on [0, 1]², u = 0 on the boundary, a = 1 + ½·sin(2πx)·sin(2πy),
u* = sin(πx)·sin(πy) + 0.1·sin(4πx)·sin(4πy). The source f = −∇·(a∇u*) and the
gradient of a are derived with sympy when the module is imported, then lambdified to torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy
import torch

from kanpde.geometry import Box
from kanpde.jet import Jet
from kanpde.problem import Condition, Dirichlet, Problem

X, Y = sympy.symbols("x y", real=True)
PERMEABILITY = 1 + sympy.Rational(1, 2) * sympy.sin(2 * sympy.pi * X) * sympy.sin(2 * sympy.pi * Y)
SOLUTION = sympy.sin(sympy.pi * X) * sympy.sin(sympy.pi * Y) \
    + sympy.Rational(1, 10) * sympy.sin(4 * sympy.pi * X) * sympy.sin(4 * sympy.pi * Y)
SOURCE = -(sympy.diff(PERMEABILITY * sympy.diff(SOLUTION, X), X)
           + sympy.diff(PERMEABILITY * sympy.diff(SOLUTION, Y), Y))
"""f = −∇·(a∇u*), symbolically (not simplified: sympy.simplify would take seconds at every import)."""

_TORCH = {"sin": torch.sin, "cos": torch.cos, "exp": torch.exp, "sqrt": torch.sqrt}


def to_torch(expr: sympy.Expr) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function of points [N, 2] (columns x, y) evaluating ``expr`` with torch, as a tensor [N]."""
    function = sympy.lambdify((X, Y), expr, modules=[_TORCH, "math"])

    def evaluate(p: torch.Tensor) -> torch.Tensor:
        value = torch.as_tensor(function(p[:, 0], p[:, 1]), dtype=p.dtype, device=p.device)
        return value.expand(p.shape[0]) if value.ndim == 0 else value

    return evaluate


permeability = to_torch(PERMEABILITY)
permeability_x = to_torch(sympy.diff(PERMEABILITY, X))
permeability_y = to_torch(sympy.diff(PERMEABILITY, Y))
exact_solution = to_torch(SOLUTION)
source = to_torch(SOURCE)


class Darcy(Problem):
    """−∇·(a∇u) = f on [0, 1]², u = 0 on ∂Ω; residual −(a·Δu + a_x·u_x + a_y·u_y) − f.

    ``hard`` (default true): u = x(1 − x)·y(1 − y)·N meets the boundary condition exactly;
    ``hard: false``: a soft "boundary" loss term. ``symmetric: true`` builds in the symmetry of the
    solution under the point reflection (x, y) → (1 − x, 1 − y), which leaves a, f and the boundary data
    unchanged (so the unique solution too): the network part becomes (N(x, y) + N(1 − x, 1 − y))/2 (twice
    the cost per step, the same parameters).
    """

    problem_name = "darcy"
    description = "Darcy −∇·(a∇u) = f on [0,1]², a = 1 + ½ sin 2πx sin 2πy, u = 0 on ∂Ω (poster's table)"
    box = Box([0.0, 0.0], [1.0, 1.0], ("x", "y"))
    derivatives = "trace"  # the Laplacian and the gradient
    params = {"hard": True, "symmetric": False}

    def __init__(self, **params: Any):
        for key in ("hard", "symmetric"):
            if key in params and not isinstance(params[key], bool):
                raise ValueError(f"problem.params.{key}: must be true or false, got {params[key]!r}")
        super().__init__(**params)

    @property
    def even(self) -> tuple[str, ...]:  # instance-level: one joint reflection of x and y when ``symmetric``
        return ("x", "y") if self.params["symmetric"] else ()

    @property
    def conditions(self) -> tuple[Condition, ...]:  # instance-level: depends on ``hard``
        return (Dirichlet(0.0, hard=self.params["hard"]),)

    def source(self, x: torch.Tensor) -> torch.Tensor:
        return source(x)

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        grad = u.grad  # [N, 2]
        return -(permeability(x) * u.laplacian + permeability_x(x) * grad[:, 0]
                 + permeability_y(x) * grad[:, 1]) - source(x)

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return exact_solution(x)


__all__ = ["Darcy", "PERMEABILITY", "SOLUTION", "SOURCE", "permeability", "source", "exact_solution"]
