"""Problems: a PDE as data plus a residual — domain, conditions, parameters, exact solution.

A user defines a PDE by subclassing :class:`Problem`::

    class Heat(kanpde.Problem):
        box = kanpde.Box.space_time([0], [1], t0=0, t1=0.5, names=("x", "t"))
        params = {"kappa": 0.1}
        derivatives = "diagonal"               # the residual reads u_t and u_xx
        conditions = [kanpde.Dirichlet(0.0), kanpde.Initial(lambda x: torch.sin(torch.pi * x[:, 0]))]

        def residual(self, u, x):
            return u.d("t") - self.kappa * u.d("x", "x")

The problem knows nothing of networks or training: it turns a field's jet into
residuals, and its conditions into targets or exact output transforms.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from kanpde.autodiff import autograd_jet
from kanpde.geometry import Box
from kanpde.jet import MODES, Jet
from kanpde.taylor import Derivatives, jet_order, resolve, trace

Target = float | Callable[[torch.Tensor], torch.Tensor]


def target_values(target: Target, x: torch.Tensor) -> torch.Tensor:
    """A condition's target at points ``x`` [N, D], as a tensor [N]."""
    if callable(target):
        value = torch.as_tensor(target(x), dtype=x.dtype, device=x.device)
        return value.expand(x.shape[0]) if value.ndim == 0 else value
    return torch.full((x.shape[0],), float(target), dtype=x.dtype, device=x.device)


@dataclass(frozen=True)
class Dirichlet:
    """u = value on the given faces ("all" spatial faces, or names like "x=-1").

    ``hard=True`` builds it into the output, u = g(x) + D(x)·N(x) with D vanishing on the
    faces, so the condition holds exactly; then ``value`` must be defined inside the domain too.
    """

    value: Target = 0.0
    faces: str | Sequence[str] = "all"
    hard: bool = False
    name: str = "boundary"


@dataclass(frozen=True)
class Neumann:
    """∂u/∂n = value (outward normal derivative) on the given faces."""

    value: Target = 0.0
    faces: str | Sequence[str] = "all"
    name: str = "neumann"


@dataclass(frozen=True)
class Periodic:
    """u and ∂u/∂x_axis equal on the two faces of ``axis`` (a coordinate name)."""

    axis: str
    name: str = "periodic"


@dataclass(frozen=True)
class Initial:
    """u(x, t0) = value(x). ``hard=True``: u = g(x) + (t − t0)/(t1 − t0)·N(x, t)."""

    value: Target
    hard: bool = False
    name: str = "initial"


@dataclass(frozen=True)
class Condition:
    """A general condition: ``fn(u, x)`` [N] should vanish on the boundary points of the parts ``on``
    ("all" spatial faces, or names like "x=1"); ``u`` is the field's jet there, carrying the
    derivatives ``fn`` reads (found by one tracing pass), e.g. ``lambda u, x: u.d("x", "x")``."""

    fn: Callable[[Jet, torch.Tensor], torch.Tensor]
    on: str | Sequence[str] = "all"
    field: str | None = None
    name: str | None = None
    weight: float = 1.0

    def __post_init__(self):
        if not callable(self.fn):
            raise TypeError(f"Condition.fn: must be a function fn(u, x), got {self.fn!r}")
        if self.field is not None:
            raise ValueError("Condition.field: problems have one field here; leave it None")
        if self.name is None:
            object.__setattr__(self, "name", "condition")

    @property
    def faces(self) -> str | Sequence[str]:
        return self.on


AnyCondition = Dirichlet | Neumann | Periodic | Initial | Condition


class Problem:
    """Base class of PDE problems. Subclasses set ``box``, ``residual`` and ``conditions``.

    Class attributes:
      ``box``          the domain (:class:`kanpde.Box`, coordinate names included);
      ``outputs``      number of unknown fields (1 by default);
      ``derivatives``  what the residual reads: "trace" (Laplacian), "diagonal" (∂²/∂x_a²
                       and first derivatives), "full" (mixed second derivatives), "none", a list
                       of derivatives of any order such as ("t", "x", "xx", "xxxx") or
                       (("x", "x"), ("x", "t")), or "auto" (found by one tracing pass of the
                       residual); the instance holds the resolved jet mode;
      ``params``       parameters with defaults, settable from YAML (``problem.params``) and
                       read as attributes (``self.kappa``);
      ``conditions``   boundary/initial conditions;
      ``description``  one line for ``python -m kanpde list``;
      ``periodic``     coordinates in which the field is built exactly periodic: the network
                       sees (cos πξ, sin πξ) for them, so its input size is ``input_features``.
    Optional: ``exact(x)`` (torch, [N] or [N, outputs]) or ``reference()`` for error metrics.
    """

    box: ClassVar[Box]
    outputs: ClassVar[int] = 1
    derivatives: ClassVar[str | Sequence] = "trace"
    params: ClassVar[dict[str, Any]] = {}
    conditions: ClassVar[Sequence[AnyCondition]] = ()
    description: ClassVar[str] = ""
    problem_name: ClassVar[str] = "problem"  # defaults to the lower-cased class name
    periodic: ClassVar[tuple[str, ...]] = ()  # coordinates the field is exactly periodic in

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "problem_name" not in cls.__dict__:
            cls.problem_name = cls.__name__.lower()

    def __init__(self, **params: Any):
        cls = type(self)
        if cls.residual is Problem.residual:
            raise TypeError(f"{cls.__name__}: a Problem must define residual(self, u, x)")
        if not isinstance(getattr(cls, "box", None), Box):
            raise TypeError(f"{cls.__name__}: a Problem must set box = kanpde.Box(...)")
        declared = cls.derivatives
        if isinstance(declared, str) and declared not in (*MODES[1:], "auto"):
            raise ValueError(f"{cls.__name__}.derivatives: must be one of {', '.join(MODES[1:])}, auto, or a list "
                             f"such as ('t', 'xx'), got {declared!r}")
        self.params = dict(cls.params)
        for key, value in params.items():
            if key not in cls.params:
                close = difflib.get_close_matches(key, list(cls.params), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; parameters: {', '.join(cls.params) or 'none'}"
                raise ValueError(f"problem.params.{key}: unknown parameter of {self.name}{hint}")
            default = cls.params[key]
            if isinstance(default, bool) and not isinstance(value, bool):
                raise ValueError(f"problem.params.{key}: must be true or false, got {value!r}")
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ValueError(f"problem.params.{key}: must be a finite number, got {value!r}")
                value = type(default)(value) if isinstance(default, float) else value
            self.params[key] = value
        for key, value in self.params.items():
            setattr(self, key, value)
        self._check_conditions()
        self.derivatives = self._resolve_derivatives(declared)
        self.condition_modes = {c.name: self._traced(c.fn) for c in self.conditions if isinstance(c, Condition)}

    def _probe(self) -> torch.Tensor:
        """Two points inside the box, for tracing passes."""
        lo, hi = torch.tensor(self.box.lo, dtype=torch.float64), torch.tensor(self.box.hi, dtype=torch.float64)
        return lo + torch.tensor([[0.3], [0.6]], dtype=torch.float64) * (hi - lo)

    def _traced(self, fn: Callable) -> str | Derivatives:
        return resolve(trace([fn], self._probe(), self.coords), self.coords)

    def _resolve_derivatives(self, declared) -> str | Derivatives:
        try:
            if declared == "auto":
                return self._traced(self.residual)
            return resolve(declared, self.coords)
        except ValueError as error:
            raise ValueError(f"{type(self).__name__}.{error}") from None

    @property
    def derivative_order(self) -> int:
        """The highest derivative order the residual and the conditions read."""
        orders = [jet_order(self.derivatives), *(jet_order(m) for m in self.condition_modes.values())]
        orders += [1 for c in self.conditions if isinstance(c, (Neumann, Periodic))]
        return max(orders)

    @property
    def name(self) -> str:
        return self.problem_name

    @property
    def coords(self) -> tuple[str, ...]:
        return self.box.names

    @property
    def input_features(self) -> int:
        """The network's input size: one per coordinate, two per periodic one."""
        return self.box.dim + len(self.periodic)

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        """The PDE residual at interior points ``x`` [N, D] for the field's jet ``u``; [N] (or [N, k])."""
        raise NotImplementedError

    def exact(self, x: torch.Tensor) -> torch.Tensor | None:
        """The exact solution at ``x`` [N, D], if known (torch, so that it can be differentiated)."""
        return None

    def reference(self) -> tuple[list, torch.Tensor] | None:
        """A reference solution on a grid (axes, values of shape [len(axis) for axis in axes]), if no exact one."""
        return None

    @property
    def has_solution(self) -> bool:
        probe = torch.zeros(1, self.box.dim, dtype=torch.float64)
        return self.exact(probe) is not None or self.reference() is not None

    # -- conditions ---------------------------------------------------------------------
    def _check_conditions(self) -> None:
        names = set()
        for condition in self.conditions:
            if not isinstance(condition, (Dirichlet, Neumann, Periodic, Initial, Condition)):
                raise TypeError(f"{type(self).__name__}.conditions: expected Dirichlet, Neumann, Periodic, "
                                f"Initial or Condition, got {condition!r}")
            if condition.name in names or condition.name == "residual":
                raise ValueError(f"{type(self).__name__}.conditions: the name {condition.name!r} is used twice")
            names.add(condition.name)
            if isinstance(condition, (Dirichlet, Neumann, Condition)):
                self.faces_of(condition)
            if isinstance(condition, Periodic) and condition.axis not in self.box.names:
                raise ValueError(f"Periodic.axis: unknown coordinate {condition.axis!r}; coordinates: {self.box.names}")
            if isinstance(condition, Initial) and not self.box.has_time:
                raise ValueError(f"{type(self).__name__}: an Initial condition needs a space-time box")
        for axis in self.periodic:
            if axis not in self.box.names:
                raise ValueError(f"{type(self).__name__}.periodic: unknown coordinate {axis!r}; "
                                 f"coordinates: {self.box.names}")
        if sum(getattr(c, "hard", False) for c in self.conditions) > 1:
            raise ValueError(f"{type(self).__name__}: at most one hard condition is supported by the generic "
                             "output transform; override output_transform() to combine several")

    def faces_of(self, condition: Dirichlet | Neumann | Condition) -> list[int]:
        """Indices (into ``box.faces()``) of the faces a boundary condition applies to."""
        if condition.faces == "all":
            return list(self.box.boundary_faces())
        faces = [condition.faces] if isinstance(condition.faces, str) else list(condition.faces)
        return [self.box.face_index(face) for face in faces]

    @property
    def soft_conditions(self) -> list[AnyCondition]:
        return [c for c in self.conditions if not getattr(c, "hard", False)]

    def loss_terms(self) -> list[str]:
        """Names of the loss terms: "residual" and every soft condition."""
        return ["residual"] + [c.name for c in self.soft_conditions]

    # -- hard constraints ---------------------------------------------------------------
    def output_transform(self, u: Jet, x: torch.Tensor) -> Jet:
        """Map the network's jet ``u`` (channels [outputs]) to the field's, building in hard
        conditions. Default: for a hard Dirichlet or Initial condition u ← g + D·u."""
        hard = [c for c in self.conditions if getattr(c, "hard", False)]
        if not hard:
            return u
        condition = hard[0]
        lift = autograd_jet(lambda p: target_values(condition.value, p)[:, None], x, u.mode, u.coords)
        distance = autograd_jet(lambda p: self._distance(condition, p)[:, None], x, u.mode, u.coords)
        return lift + distance * u

    def _distance(self, condition: Dirichlet | Initial, x: torch.Tensor) -> torch.Tensor:
        """A smooth factor that vanishes exactly where the hard condition applies."""
        box = self.box
        if isinstance(condition, Initial):
            axis = box.time_axis
            return (x[:, axis] - box.lo[axis]) / (box.hi[axis] - box.lo[axis])
        factor = torch.ones_like(x[:, 0])
        for index in self.faces_of(condition):
            face = box.faces()[index]
            lo, hi = box.lo[face.axis], box.hi[face.axis]
            gap = x[:, face.axis] - lo if face.side == "lo" else hi - x[:, face.axis]
            factor = factor * gap / (hi - lo)
        return factor

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({params})"
