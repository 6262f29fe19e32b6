"""Boundary, initial and point conditions: where each applies and the defect that should vanish there.

Every condition is a :class:`Condition`: a function ``fn(u, x)`` of one field's jet ``u`` and the points
``x`` [N, D] returning a tensor [N] that should be zero, the part of the domain it applies to (``on``),
the field it constrains (``field``; None: the only one, or the whole system's jet), a loss-term name and
a weight. The named conditions (Dirichlet, Neumann, Robin, Periodic, Initial, PointValue) are such
functions, and Dirichlet and Initial can also be built exactly into the output (``hard=True``, see
:meth:`kanpde.Problem.output_transform`).

Where ``on`` applies:
  "all"                every spatial boundary face (box faces span the whole time interval);
  "x=0", "x.lo", ...   one face, or a list of them;
  "hole", "outer", ... a named boundary part of any domain (:mod:`kanpde.geometry`), or a list of them;
  a predicate          ``on(x)`` -> bool [N] choosing sampled boundary points (soft conditions only);
  "initial"            the initial slice t = t0 of a space-time box;
  "interior"           the interior collocation points;
  a point              :class:`PointValue` carries its own point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from kanpde.jet import Jet

Target = float | Callable[[torch.Tensor], torch.Tensor]
Parts = str | Sequence[str]


def target_values(target: Target, x: torch.Tensor) -> torch.Tensor:
    """A condition's target at points ``x`` [N, D], as a tensor [N]."""
    if callable(target):
        value = torch.as_tensor(target(x), dtype=x.dtype, device=x.device)
        return value.expand(x.shape[0]) if value.ndim == 0 else value
    return torch.full((x.shape[0],), float(target), dtype=x.dtype, device=x.device)


def _on(on: Parts, faces: Parts | None) -> Parts:
    """``faces=`` is the old name of ``on=``."""
    if faces is not None:
        if on != "all" and on != faces:
            raise ValueError(f"give either on= or faces= (an alias), not both: on={on!r}, faces={faces!r}")
        return faces
    return on


class Condition:
    """A general condition: ``fn(u, x)`` [N] vanishes on the part ``on``.

    ``u`` is the jet of ``field`` (None: the only field; on a system, the jet of all fields, read
    with ``u["p"]``), carrying the derivatives ``fn`` reads, found by one tracing pass
    (``derivatives="auto"``), or those declared: a jet mode ("none", "diagonal", "diagonal:0", "full") or a
    list of any order such as ("xx", "xxx"). ``weight`` is the loss weight (``train.loss_weights.<name>`` overrides it).
    """

    base_name = "condition"
    hard = False

    def __init__(self, fn: Callable[[Jet, torch.Tensor], torch.Tensor], on: Parts = "all", field: str | None = None,
                 name: str | None = None, weight: float = 1.0, *, derivatives: str | Sequence = "auto",
                 faces: Parts | None = None):
        self.fn, self.on, self.field, self.weight = fn, _on(on, faces), field, float(weight)
        self.derivatives = derivatives
        self.name = name if name is not None else self.base_name + (f"_{field}" if field else "")

    @property
    def faces(self) -> Parts:
        """The old name of ``on``."""
        return self.on

    @property
    def kind(self) -> str:
        """Which points the condition sees: "boundary", "initial", "interior", "periodic" or "point"."""
        return self.on if self.on in ("initial", "interior") else "boundary"

    @property
    def mode(self) -> str:
        """The jet mode :meth:`defect` reads."""
        return self.derivatives

    def defect(self, u: Jet, x: torch.Tensor, normal: torch.Tensor | None) -> torch.Tensor:
        """The quantity [N] that the condition drives to zero at points ``x`` (outward ``normal`` on a boundary)."""
        return self.fn(u, x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, on={self.on!r}, field={self.field!r})"


class Dirichlet(Condition):
    """u = value on ``on``. ``hard=True`` builds it into the output, u = g(x) + D(x)·N(x) with D
    vanishing there, so it holds exactly; then ``value`` must be defined inside the domain too."""

    base_name = "boundary"

    def __init__(self, value: Target = 0.0, on: Parts = "all", field: str | None = None, hard: bool = False,
                 name: str | None = None, weight: float = 1.0, *, faces: Parts | None = None):
        super().__init__(None, on, field, name, weight, derivatives="value", faces=faces)
        self.value, self.hard = value, bool(hard)

    def defect(self, u, x, normal):
        return u.value - target_values(self.value, x)


class Robin(Condition):
    """a·u + b·∂u/∂n = value on ``on`` (outward normal); a = 0 is Neumann, b = 0 Dirichlet."""

    base_name = "robin"

    def __init__(self, a: Target = 1.0, b: Target = 1.0, value: Target = 0.0, on: Parts = "all",
                 field: str | None = None, name: str | None = None, weight: float = 1.0, *,
                 faces: Parts | None = None):
        super().__init__(None, on, field, name, weight, derivatives="none", faces=faces)
        self.a, self.b, self.value = a, b, value

    def defect(self, u, x, normal):
        normal_derivative = (u.grad * normal).sum(-1)  # ∂u/∂n = ∇u·n
        return (target_values(self.a, x) * u.value + target_values(self.b, x) * normal_derivative
                - target_values(self.value, x))


class Neumann(Robin):
    """∂u/∂n = value (outward normal derivative) on ``on``."""

    base_name = "neumann"

    def __init__(self, value: Target = 0.0, on: Parts = "all", field: str | None = None, name: str | None = None,
                 weight: float = 1.0, *, faces: Parts | None = None):
        super().__init__(0.0, 1.0, value, on, field, name, weight, faces=faces)


class Periodic(Condition):
    """u and ∂u/∂axis equal on the two faces of ``axis`` (a coordinate name)."""

    base_name = "periodic"

    def __init__(self, axis: str, field: str | None = None, name: str | None = None, weight: float = 1.0):
        super().__init__(None, f"{axis}.lo", field, name, weight, derivatives="none")
        self.axis = axis

    @property
    def kind(self) -> str:
        return "periodic"


class Initial(Condition):
    """u(x, t0) = value(x), or with ``derivative="t"`` ∂u/∂t(x, t0) = value(x).

    ``hard=True``: u = g(x) + τ·N(x, t) for the value, τ = (t − t0)/(t1 − t0); a hard derivative
    condition (which needs a hard value condition on the same field) adds (t − t0)·h(x) and squares
    the factor. ``ramp=δ`` (hard only) replaces this condition's factor τ by 1 − exp(−τ/δ): τ/δ near
    t0, about 1 after a few δ. The conditions hold as exactly, and N ≈ (u − G)/D away from t0
    instead of (u − G)/(D·τ^m), which is large for a fast oscillation in t (the wave: order ω²).
    """

    base_name = "initial"

    def __init__(self, value: Target = 0.0, derivative: str | None = None, field: str | None = None,
                 hard: bool = False, name: str | None = None, weight: float = 1.0, ramp: float | None = None):
        default = f"initial_{derivative}" if derivative else "initial"
        super().__init__(None, "initial", field, name if name is not None else default + (f"_{field}" if field else ""),
                         weight, derivatives="none" if derivative else "value")
        if ramp is not None and not (hard and isinstance(ramp, (int, float)) and not isinstance(ramp, bool)
                                      and math.isfinite(ramp) and ramp > 0):
            raise ValueError(f"Initial({self.name!r}): ramp must be a positive number, and needs hard=True; "
                             f"got ramp={ramp!r}, hard={hard!r}")
        self.value, self.derivative, self.hard = value, derivative, bool(hard)
        self.ramp = None if ramp is None else float(ramp)

    def factor(self, tau: torch.Tensor) -> torch.Tensor:
        """This hard condition's factor in u = G + D·Π factor·N: τ, or 1 − exp(−τ/ramp)."""
        return tau if self.ramp is None else -torch.expm1(-tau / self.ramp)

    def defect(self, u, x, normal):
        current = u.d(self.derivative) if self.derivative else u.value
        return current - target_values(self.value, x)


class PointValue(Condition):
    """u(at) = value at one point: ``PointValue("p", at=(0, 0), value=0.0)`` pins a pressure."""

    base_name = "point"

    def __init__(self, field: str | None = None, at: Sequence[float] | None = None, value: float = 0.0,
                 name: str | None = None, weight: float = 1.0):
        if at is None:
            raise ValueError("PointValue: give the point with at=(...)")
        super().__init__(None, "point", field, name, weight, derivatives="value")
        self.at, self.value = tuple(float(a) for a in at), value

    @property
    def kind(self) -> str:
        return "point"

    def defect(self, u, x, normal):
        return u.value - target_values(self.value, x)


CONDITIONS = (Condition, Dirichlet, Neumann, Robin, Periodic, Initial, PointValue)
