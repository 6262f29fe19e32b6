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
from kanpde.geometry import Box, Domain
from kanpde.jet import MODES, Jet

Target = float | Callable[[torch.Tensor], torch.Tensor]


def target_values(target: Target, x: torch.Tensor) -> torch.Tensor:
    """A condition's target at points ``x`` [N, D], as a tensor [N]."""
    if callable(target):
        value = torch.as_tensor(target(x), dtype=x.dtype, device=x.device)
        return value.expand(x.shape[0]) if value.ndim == 0 else value
    return torch.full((x.shape[0],), float(target), dtype=x.dtype, device=x.device)


@dataclass(frozen=True)
class Dirichlet:
    """u = value on the boundary parts ``on`` ("all", a part name like "x=-1" or "hole", a list, or a
    predicate on points); ``faces`` is the older spelling of ``on``.

    ``hard=True`` builds it into the output, u = g(x) + φ(x)·N(x) with φ the domain's distance
    function of those parts, so the condition holds exactly; then ``value`` must be defined inside
    the domain too.
    """

    value: Target = 0.0
    faces: str | Sequence[str] = "all"
    hard: bool = False
    name: str = "boundary"
    on: str | Sequence[str] | Callable | None = None


@dataclass(frozen=True)
class Neumann:
    """∂u/∂n = value (outward normal derivative) on the boundary parts ``on`` (alias ``faces``)."""

    value: Target = 0.0
    faces: str | Sequence[str] = "all"
    name: str = "neumann"
    on: str | Sequence[str] | Callable | None = None


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


Condition = Dirichlet | Neumann | Periodic | Initial


class Problem:
    """Base class of PDE problems. Subclasses set ``domain`` (or ``box``), ``residual`` and ``conditions``.

    Class attributes:
      ``domain``       the domain (any :mod:`kanpde.geometry` domain, coordinate names included;
                       ``box`` is the older spelling, and ``Problem(domain=...)`` replaces it);
      ``outputs``      number of unknown fields (1 by default);
      ``derivatives``  what the residual reads: "trace" (Laplacian), "diagonal" (∂²/∂x_a²
                       and first derivatives), "full" (mixed second derivatives) or "none";
      ``params``       parameters with defaults, settable from YAML (``problem.params``) and
                       read as attributes (``self.kappa``);
      ``conditions``   boundary/initial conditions;
      ``description``  one line for ``python -m kanpde list``;
      ``periodic``     coordinates in which the field is built exactly periodic: the network
                       sees (cos πξ, sin πξ) for them, so its input size is ``input_features``.
    Optional: ``exact(x)`` (torch, [N] or [N, outputs]) or ``reference()`` for error metrics.
    """

    domain: ClassVar[Domain]
    box: ClassVar[Box]
    outputs: ClassVar[int] = 1
    derivatives: ClassVar[str] = "trace"
    params: ClassVar[dict[str, Any]] = {}
    conditions: ClassVar[Sequence[Condition]] = ()
    description: ClassVar[str] = ""
    problem_name: ClassVar[str] = "problem"  # defaults to the lower-cased class name
    periodic: ClassVar[tuple[str, ...]] = ()  # coordinates the field is exactly periodic in

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "problem_name" not in cls.__dict__:
            cls.problem_name = cls.__name__.lower()

    def __init__(self, *, domain: Domain | None = None, **params: Any):
        cls = type(self)
        if cls.residual is Problem.residual:
            raise TypeError(f"{cls.__name__}: a Problem must define residual(self, u, x)")
        default = getattr(cls, "domain", getattr(cls, "box", None))
        if not isinstance(default, Domain):
            raise TypeError(f"{cls.__name__}: a Problem must set domain = a kanpde domain (e.g. kanpde.Box(...))")
        domain = default if domain is None else domain
        if not isinstance(domain, Domain) or domain.names != default.names:
            raise ValueError(f"problem.domain: {cls.__name__} needs a domain with coordinates {default.names}, "
                             f"got {getattr(domain, 'names', domain)!r}")
        self.domain = self.box = domain
        if self.derivatives not in MODES[1:]:
            raise ValueError(f"{cls.__name__}.derivatives: must be one of {', '.join(MODES[1:])}, "
                             f"got {self.derivatives!r}")
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
            if not isinstance(condition, (Dirichlet, Neumann, Periodic, Initial)):
                raise TypeError(f"{type(self).__name__}.conditions: expected Dirichlet, Neumann, Periodic or "
                                f"Initial, got {condition!r}")
            if condition.name in names or condition.name == "residual":
                raise ValueError(f"{type(self).__name__}.conditions: the name {condition.name!r} is used twice")
            names.add(condition.name)
            if isinstance(condition, (Dirichlet, Neumann)):
                self.faces_of(condition)
            if isinstance(condition, Periodic) and not isinstance(self.box, Box):
                raise ValueError(f"{type(self).__name__}: Periodic conditions need a Box domain")
            if isinstance(condition, Periodic) and condition.axis not in self.box.names:
                raise ValueError(f"Periodic.axis: unknown coordinate {condition.axis!r}; coordinates: {self.box.names}")
            if isinstance(condition, Initial) and not self.box.has_time:
                raise ValueError(f"{type(self).__name__}: an Initial condition needs a space-time box")
        for axis in self.periodic:
            if axis not in self.box.names:
                raise ValueError(f"{type(self).__name__}.periodic: unknown coordinate {axis!r}; "
                                 f"coordinates: {self.box.names}")
        hard = [c for c in self.conditions if getattr(c, "hard", False)]
        if len(hard) > 1 and not all(isinstance(c, Dirichlet) for c in hard):
            raise ValueError(f"{type(self).__name__}: several hard conditions are supported only if all are "
                             "Dirichlet conditions (on different parts); override output_transform() otherwise")
        if len(hard) > 1:
            parts = [set(self.faces_of(c)) for c in hard]
            if sum(map(len, parts)) != len(set().union(*parts)):
                raise ValueError(f"{type(self).__name__}: hard Dirichlet conditions must be on different parts")

    @staticmethod
    def where(condition: Dirichlet | Neumann):
        """Where a boundary condition applies: its ``on``, else its ``faces``."""
        on = getattr(condition, "on", None)
        return condition.faces if on is None else on

    def faces_of(self, condition: Dirichlet | Neumann) -> list[int]:
        """Part ids (for a box: indices into ``box.faces()``) a boundary condition applies to
        (all parts for a predicate ``on``: it selects points, not parts)."""
        on = self.where(condition)
        return self.domain.boundary_parts() if callable(on) else self.domain.parts_of(on, f"{condition.name}.on")

    def boundary_mask(self, condition: Dirichlet | Neumann, part: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Which sampled boundary points (part ids ``part``, points ``x``) a condition applies to."""
        return self.domain.part_mask(self.where(condition), part, x)

    @property
    def soft_conditions(self) -> list[Condition]:
        return [c for c in self.conditions if not getattr(c, "hard", False)]

    def loss_terms(self) -> list[str]:
        """Names of the loss terms: "residual" and every soft condition."""
        return ["residual"] + [c.name for c in self.soft_conditions]

    # -- hard constraints ---------------------------------------------------------------
    def output_transform(self, u: Jet, x: torch.Tensor) -> Jet:
        """Map the network's jet ``u`` (channels [outputs]) to the field's, building in hard
        conditions. Default: for a hard Dirichlet or Initial condition u ← g + φ·u; for several hard
        Dirichlet conditions g_i on parts with distances φ_i, transfinite interpolation
        u ← Σ_i w_i g_i + φ·u with w_i = φ_i⁻¹ / Σ_j φ_j⁻¹ and φ = (Σ_j φ_j⁻¹)⁻¹ (Sukumar & Srivastava 2022, §5)."""
        hard = [c for c in self.conditions if getattr(c, "hard", False)]
        if not hard:
            return u
        def jets() -> tuple[Jet, Jet]:
            both = autograd_jet(lambda p: torch.stack(self._lift(hard, p), dim=1), x, u.mode, u.coords)
            return both[0:1], both[1:2]

        if x.requires_grad:  # someone differentiates through x: keep the graph
            lift, distance = jets()
            return lift + distance * u
        # g and φ do not depend on the network: their jets are kept (detached) while the points stay the same
        key = (u.mode, u.coords, x.dtype, x.device, x.shape)
        cached = self.__dict__.get("_lift_cache")
        if cached is None or cached[0] != key or not torch.equal(cached[1], x):
            lift, distance = (Jet(j.stack.detach(), j.dim, j.mode, j.coords) for j in jets())
            cached = (key, x.clone(), lift, distance)
            self.__dict__["_lift_cache"] = cached
        return cached[2] + cached[3] * u

    def _lift(self, hard: list, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(g, φ) of the hard conditions: the lift that meets them and the factor that vanishes there."""
        if len(hard) == 1:
            return target_values(hard[0].value, x), self._distance(hard[0], x)
        inverse = [1.0 / self._distance(c, x).clamp_min(torch.finfo(x.dtype).tiny ** 0.5) for c in hard]
        total = sum(inverse)
        return sum(w * target_values(c.value, x) for w, c in zip(inverse, hard)) / total, 1.0 / total

    def _distance(self, condition: Dirichlet | Initial, x: torch.Tensor) -> torch.Tensor:
        """A smooth factor that vanishes exactly where the hard condition applies."""
        box = self.box
        if isinstance(condition, Initial):
            axis = box.time_axis
            return (x[:, axis] - box.lo[axis]) / (box.hi[axis] - box.lo[axis])
        return self.domain.distance(x, self.where(condition))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({params})"
