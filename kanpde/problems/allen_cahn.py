"""Allen–Cahn benchmarks (BENCHMARKS.md "allen_cahn" and "allen_cahn_periodic").

Both read u_t = d·u_xx + 5(u − u³) on x ∈ [-1, 1], t ∈ [0, 1] from u(x, 0) = x²·cos(πx):

* ``allen_cahn``: u(±1, t) = −1, d = 1e-3 (the poster's table). With ``hard: true`` (default) the
  trial function is u = x²·cos(πx) + t·(1 − x²)·N(x, t), which meets the initial and both boundary
  conditions exactly (the data are compatible: x²·cos(πx) = −1 at x = ±1).
* ``allen_cahn_periodic``: periodic in x (the network sees cos πx, sin πx), d = 1e-4, hard initial
  condition u = x²·cos(πx)·e^(−λt) + t·N(cos πx, sin πx, t) with λ = 10 (see :class:`AllenCahnPeriodic`).

Errors are measured against the cached classical references of :mod:`kanpde.reference`.
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

PI = math.pi


def initial_condition(x: torch.Tensor) -> torch.Tensor:
    """u(x, 0) = x²·cos(πx) at space-time points ``x`` [N, 2] (only the first column is read)."""
    s = x[:, 0]
    return s**2 * torch.cos(PI * s)


def _coordinate_jets(x: torch.Tensor, mode: str, coords) -> tuple[Jet, Jet]:
    """Jets of the coordinates x and t themselves (channels [1]), in ``mode``."""
    seed = Jet.seed(x, mode, coords)
    return seed[0:1], seed[1:2]


def _initial_jet(s: Jet) -> Jet:
    """The jet of x²·cos(πx), in closed form, from the jet ``s`` of x."""
    angle = PI * s.value
    cos, sin = torch.cos(angle), torch.sin(angle)
    return s * s * s.apply(cos, -PI * sin, -(PI**2) * cos)


class _AllenCahnParts:
    """Shared parts: the space-time box, the residual and the reference (a mixin, not a problem)."""

    box = Box.space_time([-1.0], [1.0], t0=0.0, t1=1.0, names=("x", "t"))
    derivatives = ("t", "x", "xx")  # u_xx, not u_tt: the lean jet "diagonal:0"
    reference_name = "allen_cahn"

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        value = u.value
        return u.d("t") - self.d * u.d("x", "x") - 5.0 * (value - value**3)

    def growth_rate(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        """λ = ∂/∂u of 5(u − u³) = 5(1 − 3u²): 5 at the unstable state u = 0, −10 at the stable u = ±1."""
        return 5.0 * (1.0 - 3.0 * u.value**2)

    def _reference_params(self) -> dict[str, Any]:
        return {"d": self.d}

    def reference(self) -> tuple[list[np.ndarray], np.ndarray]:
        """The cached classical reference (axes [x, t], values u[i, j] = u(x_i, t_j))."""
        cached = self.__dict__.get("_reference_cache")
        if cached is None:
            from kanpde.reference import reference

            solution = reference(self.reference_name, **self._reference_params())
            cached = solution.on_grid("u")
            self.__dict__["_reference_cache"] = cached
        return cached


class AllenCahn(_AllenCahnParts, Problem):
    """u_t = d·u_xx + 5(u − u³), u(x, 0) = x² cos πx, u(±1, t) = boundary (−1), d = 1e-3.

    ``hard`` (default true) builds the initial and boundary conditions into the output,
    u = x² cos(πx) + t·(1 − x²)·N; with ``hard: false`` they are soft loss terms "initial" and
    "boundary". The hard form needs compatible data, boundary = −1 = x² cos πx at x = ±1.
    ``symmetric: true`` builds in the symmetry of the solution, u(−x, t) = u(x, t) (the equation is invariant
    under x → −x and the data are even): the network part becomes (N(x, t) + N(−x, t))/2 (twice the cost per
    step, the same parameters).
    """

    problem_name = "allen_cahn"
    description = "Allen–Cahn u_t = 1e-3 u_xx + 5(u − u³), u(±1,t) = −1, hard IC+BC (poster's table)"
    params = {"d": 1e-3, "boundary": -1.0, "hard": True, "symmetric": False}

    def __init__(self, **params: Any):
        for key in ("hard", "symmetric"):
            if key in params and not isinstance(params[key], bool):
                raise ValueError(f"problem.params.{key}: must be true or false, got {params[key]!r}")
        super().__init__(**params)
        if self.d <= 0:
            raise ValueError(f"problem.params.d: must be positive, got {self.d!r}")
        if self.hard and self.boundary != -1.0:
            raise ValueError(f"problem.params.boundary: hard constraints need data compatible with u(x, 0) = "
                             f"x² cos πx (−1 at x = ±1), got {self.boundary!r}; set problem.params.hard=false")

    @property
    def even(self) -> tuple[str, ...]:  # instance-level: depends on ``symmetric``
        return ("x",) if self.params["symmetric"] else ()

    @property
    def conditions(self) -> tuple[Condition, ...]:  # instance-level: depends on ``hard``
        if self.params["hard"]:
            return ()  # built into output_transform
        return (Initial(initial_condition), Dirichlet(self.params["boundary"]))

    def output_transform(self, u: Jet, x: torch.Tensor) -> Jet:
        if not self.hard:
            return u
        s, t = _coordinate_jets(x, u.mode, u.coords)
        return _initial_jet(s) + t * (1.0 - s * s) * u

    def symbolic_output_transform(self, outputs: list, coords: list) -> list:
        """The same transform in sympy (for :mod:`kanpde.symbolic`)."""
        s, t = coords
        if not self.hard:
            return list(outputs)
        return [s**2 * sympy.cos(sympy.pi * s) + t * (1 - s**2) * n for n in outputs]

    def _reference_params(self) -> dict[str, Any]:
        return {"d": self.d, "boundary": self.boundary}


class AllenCahnPeriodic(_AllenCahnParts, Problem):
    """u_t = d·u_xx + 5u − 5u³, periodic in x, u(x, 0) = x² cos πx, d = 1e-4.

    The network is exactly periodic in x (inputs cos πx, sin πx, t). The initial condition is
    hard: u = x² cos(πx)·e^(−λt) + t·N. The initial data are periodic but their slope is not
    (u_x(−1, 0) = 2, u_x(1, 0) = −2); the solution relaxes to the stable state u = −1 at the seam at
    the linearised rate λ = −f'(−1) = 10 (f(u) = 5u − 5u³), so the decaying lift cancels the kink to
    first order and leaves N a (nearly) periodic correction. ``decay: 0`` gives the plain u = g + t·N.
    """

    problem_name = "allen_cahn_periodic"
    description = "Allen–Cahn u_t = 1e-4 u_xx + 5u − 5u³, periodic in x, hard IC (the classic hard variant)"
    params = {"d": 1e-4, "decay": 10.0}
    periodic = ("x",)
    reference_name = "allen_cahn_periodic"
    conditions = (Initial(initial_condition, hard=True),)

    def __init__(self, **params: Any):
        super().__init__(**params)
        if self.d <= 0:
            raise ValueError(f"problem.params.d: must be positive, got {self.d!r}")
        if self.decay < 0:
            raise ValueError(f"problem.params.decay: must be non-negative, got {self.decay!r}")

    def output_transform(self, u: Jet, x: torch.Tensor) -> Jet:
        s, t = _coordinate_jets(x, u.mode, u.coords)
        lift = _initial_jet(s)
        if self.decay:
            decay = torch.exp(-self.decay * t.value)
            lift = lift * t.apply(decay, -self.decay * decay, self.decay**2 * decay)
        return lift + t * u

    def symbolic_output_transform(self, outputs: list, coords: list) -> list:
        s, t = coords
        lift = s**2 * sympy.cos(sympy.pi * s) * sympy.exp(-sympy.Float(self.decay) * t)
        return [lift + t * n for n in outputs]


__all__ = ["AllenCahn", "AllenCahnPeriodic", "initial_condition"]
