"""Euler–Bernoulli cantilever beam: a fourth-order problem with conditions on u'' and u'''.

EI·u'''' = q on [0, 1] with EI = 1 and a uniform load q = −1, clamped at x = 0 (u = u' = 0) and
free at x = 1 (no bending moment u'' = 0, no shear force u''' = 0). The exact deflection is
u = −x⁴/24 + x³/6 − x²/4 (integrate four times; the free end fixes the cubic and quadratic terms).
"""

from __future__ import annotations

import torch

from kanpde.autodiff import autograd_jet
from kanpde.geometry import Box
from kanpde.jet import Jet
from kanpde.problem import Condition, Problem


class Beam(Problem):
    """u'''' = q on [0, 1]; u(0) = u'(0) = 0 built into the output (u = x²·N), u''(1) = u'''(1) = 0 as penalties."""

    problem_name = "beam"
    description = "Euler–Bernoulli cantilever u'''' = −1 on [0,1], clamped at 0, free at 1 (4th order)"
    box = Box([0.0], [1.0], ("x",))
    params = {"load": -1.0}
    derivatives = ("xxxx",)
    conditions = [
        Condition(lambda u, x: u.d("x", "x"), on="x=1", name="moment"),  # u''(1) = 0
        Condition(lambda u, x: u.d("x", "x", "x"), on="x=1", name="shear"),  # u'''(1) = 0
    ]

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return u.d("x", "x", "x", "x") - self.load

    def output_transform(self, u: Jet, x: torch.Tensor) -> Jet:
        """u = x²·N(x): the clamped end u(0) = u'(0) = 0 holds exactly."""
        return autograd_jet(lambda p: p[:, :1] ** 2, x, u.mode, u.coords) * u

    def symbolic_output_transform(self, outputs: list, coords: list) -> list:
        """u = x²·N(x), for the symbolic export."""
        return [coords[0] ** 2 * n for n in outputs]

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        s = x[:, 0]
        return self.load * (s**4 / 24 - s**3 / 6 + s**2 / 4)
