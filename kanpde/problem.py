"""Problems: a PDE as data plus a residual — domain, conditions, parameters, exact solution.

A user defines a PDE by subclassing :class:`Problem`::

    class Heat(kanpde.Problem):
        box = kanpde.Box.space_time([0], [1], t0=0, t1=0.5, names=("x", "t"))
        params = {"kappa": 0.1}
        derivatives = ("t", "xx")               # what the residual reads: u_t and u_xx (not u_tt)
        conditions = [kanpde.Dirichlet(0.0), kanpde.Initial(lambda x: torch.sin(torch.pi * x[:, 0]))]

        def residual(self, u, x):
            return u.d("t") - self.kappa * u.d("x", "x")

The problem knows nothing of networks or training: it turns a field's jet into
residuals, and its conditions into targets or exact output transforms.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from kanpde.autodiff import autograd_jet
from kanpde.conditions import (
    CONDITIONS,
    Condition,
    Dirichlet,
    Initial,
    Neumann,
    Periodic,
    PointValue,
    Robin,
    target_values,
)
from kanpde.data import Observations
from kanpde.geometry import Box, Domain
from kanpde.jet import MODES, Jet
from kanpde.taylor import Derivatives, jet_order, resolve, trace
from kanpde.unknown import Unknown, unknown_from

# the condition classes live in kanpde.conditions; importing them from here keeps working
__all__ = ["Problem", "did_you_mean", "target_values", "Condition", "Dirichlet", "Neumann", "Robin", "Periodic",
           "Initial", "PointValue"]

def did_you_mean(name: str, options: Sequence[str]) -> str:
    """"; did you mean 'p'?" for the closest option, else the list of options."""
    close = difflib.get_close_matches(str(name), list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; choices: {', '.join(options) or 'none'}"


RESERVED = ("step", "loss", "stage", "lr", "rel_l2", "seconds",
            "residual_modes", "propagated_residual")  # the grid terms of kanpde.modes and kanpde.propagation



def _detached(jet: Jet) -> Jet:
    """The same jet (of any kind: Jet, TaylorJet) with its stack cut from the autograd graph."""
    out = copy.copy(jet)
    out.stack = jet.stack.detach()
    return out


class Problem:
    """Base class of PDE problems. Subclasses set ``domain`` (or ``box``), ``residual`` and ``conditions``.

    Class attributes:
      ``domain``       the domain (any :mod:`kanpde.geometry` domain, coordinate names included;
                       ``box`` is the older spelling, and ``Problem(domain=...)`` replaces it);
      ``fields``       names of the unknown fields, e.g. ("u", "v", "p") for a system (default ("u",));
      ``outputs``      number of unknown fields (set from ``fields``);
      ``derivatives``  what the residual reads: "trace" (Laplacian), "diagonal" (∂²/∂x_a²
                       and first derivatives; "diagonal:0" for the first axis only, a list of
                       axes "diagonal:0,2"), "full" (mixed second derivatives), "none", a list
                       of derivatives of any order such as ("t", "x", "xx", "xxxx") or
                       (("x", "x"), ("x", "t")), or "auto" (found by one tracing pass of the
                       residual); the instance holds the resolved jet mode, the leanest that
                       carries what is read (("t", "x", "xx") → "diagonal:0": u_xx, not u_tt);
      ``params``       parameters with defaults, settable from YAML (``problem.params``) and
                       read as attributes (``self.kappa``); a :class:`kanpde.Unknown` (or YAML
                       ``{unknown: true, init: ...}``) is trained with the network, ``self.nu`` a tensor;
      ``observations`` measured data (:class:`kanpde.Observations`), each a loss term; more are
                       added by :meth:`add_observations` (YAML ``data:``);
      ``conditions``   boundary/initial/point conditions (:mod:`kanpde.conditions`);
      ``description``  one line for ``python -m kanpde list``;
      ``periodic``     coordinates in which the field is built exactly periodic: the network
                       sees (cos πξ, sin πξ) for them, so its input size is ``input_features``;
      ``odd``          coordinates in which the network part is built exactly odd about the box's
                       centre, (N(ξ) − N(Rξ))/2 (R negates them); the output transform must keep u odd;
      ``even``         the same, exactly even: (N(ξ) + N(Rξ))/2 (a coordinate is odd or even, not both);
      ``hard_scale``   a constant multiplying the hard-condition factor D·τ^m (default 1), so that
                       the network's output N = (u − G)/(s·D·τ^m) is of the size of u (a box's
                       D = x(1 − x) peaks at 1/4: ``hard_scale = 4`` makes the peak 1).
    Optional: ``exact(x)`` (torch, [N] or [N, outputs]) or ``reference()`` for error metrics.
    """

    domain: ClassVar[Domain]
    box: ClassVar[Domain]
    fields: ClassVar[tuple[str, ...]] = ("u",)
    outputs: ClassVar[int] = 1
    derivatives: ClassVar[str | Sequence] = "trace"
    params: ClassVar[dict[str, Any]] = {}
    conditions: ClassVar[Sequence[Condition]] = ()
    description: ClassVar[str] = ""
    problem_name: ClassVar[str] = "problem"  # defaults to the lower-cased class name
    periodic: ClassVar[tuple[str, ...]] = ()  # coordinates the field is exactly periodic in
    odd: ClassVar[tuple[str, ...]] = ()  # coordinates the network part is exactly odd in
    even: ClassVar[tuple[str, ...]] = ()  # coordinates the network part is exactly even in
    observations: ClassVar[Sequence[Observations]] = ()
    hard_scale: ClassVar[float] = 1.0  # multiplies the hard-condition factor D·τ^m

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "problem_name" not in cls.__dict__:
            cls.problem_name = cls.__name__.lower()
        if "fields" in cls.__dict__:
            cls.fields = tuple(cls.fields)
            cls.outputs = len(cls.fields)
        elif "outputs" in cls.__dict__:  # unnamed fields: u_0, u_1, ...
            cls.fields = ("u",) if cls.outputs == 1 else tuple(f"u_{k}" for k in range(cls.outputs))

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
        declared = cls.derivatives
        if isinstance(declared, str) and declared not in (*MODES[1:], "auto") and not declared.startswith("diagonal:"):
            raise ValueError(f"{cls.__name__}.derivatives: must be one of {', '.join(MODES[1:])}, 'diagonal:A' (A: "
                             f"axes), auto, or a list such as ('t', 'xx'), got {declared!r}")
        if not self.fields or len(set(self.fields)) != len(self.fields) or not all(
                isinstance(f, str) and f.isidentifier() for f in self.fields):
            raise ValueError(f"{cls.__name__}.fields: must be distinct names, got {self.fields!r}")
        self.params = dict(cls.params)
        self.unknowns: dict[str, Unknown] = {}
        for key, value in cls.params.items():
            if isinstance(value, Unknown):
                self.unknowns[key] = value.fresh()
        for key, value in params.items():
            if key not in cls.params:
                raise ValueError(f"problem.params.{key}: unknown parameter of {self.name}"
                                 f"{did_you_mean(key, list(cls.params))}")
            default = cls.params[key]
            unknown = unknown_from(value, f"problem.params.{key}")
            if unknown is not None:
                if isinstance(default, bool) or not isinstance(default, (int, float, Unknown)):
                    raise ValueError(f"problem.params.{key}: only a numeric parameter can be unknown")
                self.unknowns[key] = unknown
                self.params[key] = unknown
                continue
            self.unknowns.pop(key, None)
            if isinstance(default, bool) and not isinstance(value, bool):
                raise ValueError(f"problem.params.{key}: must be true or false, got {value!r}")
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ValueError(f"problem.params.{key}: must be a finite number, got {value!r}")
                value = type(default)(value) if isinstance(default, float) else value
            self.params[key] = value
        for key, value in self.params.items():
            if key not in self.unknowns:
                setattr(self, key, value)
        self._added: list[Observations] = []
        self._check_conditions()
        self.derivatives = self._resolve_derivatives(declared)
        self.condition_modes = {c.name: self._condition_mode(c) for c in self.conditions}
        for index, observations in enumerate(self.observations):
            self._check_observations(observations, list(self.observations)[:index])

    def __getattr__(self, name: str) -> Any:
        """An unknown parameter reads as its current value, a 0-d tensor that carries gradients."""
        unknowns = self.__dict__.get("unknowns")
        if unknowns is not None and name in unknowns:
            if self.__dict__.get("_true_values"):
                default = type(self).params[name]
                return default.init if isinstance(default, Unknown) else default
            return unknowns[name].value
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @contextlib.contextmanager
    def true_values(self):
        """Within this block an unknown parameter reads as its default, the truth that ``exact()`` and
        ``reference()`` describe (the evaluation uses it: the error is against the true solution)."""
        self._true_values = True
        try:
            yield self
        finally:
            self._true_values = False

    @property
    def data(self) -> list[Observations]:
        """All measured data: the problem's own ``observations`` and those added."""
        return list(self.observations) + self._added

    def add_observations(self, observations: Observations) -> None:
        """Add measured data (a loss term of its own), checked against the domain and fields."""
        self._check_observations(observations, self.data)
        self._added.append(observations)

    def _check_observations(self, observations: Observations, others: Sequence[Observations]) -> None:
        if not isinstance(observations, Observations):
            raise TypeError(f"{type(self).__name__}.observations: expected kanpde.Observations, got {observations!r}")
        observations.check(self.box, self.fields)
        taken = [c.name for c in self.conditions] + [o.name for o in others] + list(RESERVED) + [
            "residual", *self.unknowns]
        if observations.name in taken:
            raise ValueError(f"{observations.source}: the loss term name {observations.name!r} is taken; "
                             "give the data a name")


    def _probe(self) -> torch.Tensor:
        """Two points inside the box, for tracing passes."""
        lo, hi = torch.tensor(self.box.lo, dtype=torch.float64), torch.tensor(self.box.hi, dtype=torch.float64)
        return lo + torch.tensor([[0.3], [0.6]], dtype=torch.float64) * (hi - lo)

    def _traced(self, fn: Callable) -> str | Derivatives:
        return resolve(trace([fn], self._probe(), self.coords), self.coords)

    def _condition_mode(self, condition: Condition) -> str | Derivatives:
        """The jet mode a condition reads: declared (``derivatives=``), or traced from ``fn`` ("auto")."""
        try:
            if condition.mode == "auto":
                return self._traced(condition.fn)
            return condition.mode if condition.mode in MODES else resolve(condition.mode, self.coords)
        except ValueError as error:
            raise ValueError(f"{type(self).__name__}.conditions ({condition.name}): {error}") from None

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
        return max(jet_order(m) for m in (self.derivatives, *self.condition_modes.values()))

    @property
    def name(self) -> str:
        return self.problem_name

    @property
    def coords(self) -> tuple[str, ...]:
        return self.box.names

    @property
    def is_system(self) -> bool:
        """Several unknown fields: the residual's ``u`` is read field by field, ``u["p"]``."""
        return self.outputs > 1

    @property
    def input_features(self) -> int:
        """The network's input size: one per coordinate, two per periodic one."""
        return self.box.dim + len(self.periodic)

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        """The PDE residual at interior points ``x`` [N, D] for the field's jet ``u``: [N] (or [N, k]),
        or a dict of named residuals {"momentum_x": [N], ...}, each its own loss term."""
        raise NotImplementedError

    def growth_rate(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        """λ = ∂F/∂u of an evolution equation u_t = F[u] at ``x`` [N, D] for the field's jet ``u``: the rate at
        which a small error grows there (> 0) or decays (< 0), read by the "propagated_residual" loss term
        (kanpde.propagation). Default 0: the term is then the residual integrated over time."""
        return torch.zeros_like(x[:, 0])

    def exact(self, x: torch.Tensor) -> torch.Tensor | None:
        """The exact solution at ``x`` [N, D], if known (torch, so that it can be differentiated)."""
        return None

    def reference(self) -> tuple[list, torch.Tensor] | None:
        """A reference solution on a tensor grid, if no exact one: (axes, values) with values of shape
        [len(axis) for axis in axes] (+ [outputs] for a system)."""
        return None

    def reference_at(self, points: np.ndarray) -> np.ndarray:
        """The true solution at scattered ``points`` [N, D] (numpy; [N], or [N, outputs] for a system): the
        exact one, else the reference grid interpolated linearly. Interpolation errs where the solution has
        a feature finer than the grid (Burgers' shock: up to 1e-2), so a problem that can evaluate its
        reference at any point overrides this (measurements for inverse problems are drawn from it)."""
        with self.true_values():
            exact = self.exact(torch.as_tensor(points))
            if exact is not None:
                return exact.detach().cpu().numpy().reshape(len(points), -1).squeeze(-1)
            grid = self.reference()
        if grid is None:
            raise ValueError(f"{type(self).__name__}: has neither an exact nor a reference solution")
        axes, values = grid
        if isinstance(axes[0], np.ndarray) and axes[0].ndim == 2:
            raise ValueError(f"{type(self).__name__}: its reference is at scattered points; "
                             "override reference_at to evaluate it elsewhere")
        from scipy.interpolate import RegularGridInterpolator

        interpolate = RegularGridInterpolator(tuple(np.asarray(a) for a in axes), np.asarray(values))
        return interpolate(np.asarray(points))

    @property
    def has_solution(self) -> bool:
        probe = torch.zeros(1, self.box.dim, dtype=torch.float64)
        with self.true_values():  # exact() and reference() describe the truth, also of unknown parameters
            return self.exact(probe) is not None or self.reference() is not None

    # -- conditions ---------------------------------------------------------------------
    def _check_conditions(self) -> None:
        owner = f"{type(self).__name__}.conditions"
        names: set[str] = set()
        for condition in self.conditions:
            if not isinstance(condition, Condition):
                raise TypeError(f"{owner}: expected kanpde conditions ({', '.join(c.__name__ for c in CONDITIONS)}), "
                                f"got {condition!r}")
            where = f"{owner} ({condition.name})"
            if condition.name in names or condition.name in ("residual", *RESERVED, *self.unknowns):
                raise ValueError(f"{where}: the name {condition.name!r} is used twice or reserved; pass name=")
            names.add(condition.name)
            if not (math.isfinite(condition.weight) and condition.weight >= 0):
                raise ValueError(f"{where}: weight must be a finite number ≥ 0, got {condition.weight}")
            self._check_field(condition, where)
            self._check_where(condition, where)
        for key in ("periodic", "odd", "even"):
            for axis in getattr(self, key):
                if axis not in self.box.names:
                    raise ValueError(f"{type(self).__name__}.{key}: unknown coordinate {axis!r}"
                                     f"{did_you_mean(axis, self.box.names)}")
        if self.odd and self.even:
            raise ValueError(f"{type(self).__name__}: odd {self.odd} and even {self.even} cannot be combined "
                             "(one reflection per field)")
        self._check_hard()

    def _check_field(self, condition: Condition, where: str) -> None:
        if condition.field is None:
            if self.is_system and type(condition) is not Condition:
                raise ValueError(f"{where}: {self.name} has fields {', '.join(self.fields)}; name one with field=")
        elif condition.field not in self.fields:
            raise ValueError(f"{where}: unknown field {condition.field!r}{did_you_mean(condition.field, self.fields)}")

    def _check_where(self, condition: Condition, where: str) -> None:
        box = self.box
        if isinstance(condition, Periodic):
            if not isinstance(box, Box):
                raise ValueError(f"{where}: Periodic conditions need a Box domain")
            if condition.axis not in box.names:
                raise ValueError(f"{where}: unknown coordinate {condition.axis!r}"
                                 f"{did_you_mean(condition.axis, box.names)}")
        elif isinstance(condition, PointValue):
            at = torch.tensor([condition.at], dtype=torch.float64)
            if at.shape[1] != box.dim or not bool(box.contains(at, tol=1e-12).all()):
                raise ValueError(f"{where}: the point {condition.at} is not in the domain {box!r}")
        elif condition.kind == "initial":
            if not box.has_time:
                raise ValueError(f"{where}: an initial condition needs a space-time box")
            derivative = getattr(condition, "derivative", None)
            if derivative is not None and derivative not in box.names:
                raise ValueError(f"{where}: unknown coordinate {derivative!r}{did_you_mean(derivative, box.names)}")
        elif condition.kind == "boundary":
            self.faces_of(condition)

    def _check_hard(self) -> None:
        owner = f"{type(self).__name__}.conditions"
        for field in self.fields:
            hard = self.hard_conditions(field)
            kinds = [("dirichlet" if isinstance(c, Dirichlet) else "initial_" + str(c.derivative)) for c in hard]
            parts = [set(self.faces_of(c)) for c in hard if isinstance(c, Dirichlet)]
            if sum(map(len, parts)) != len(set().union(*parts)):
                raise ValueError(f"{owner}: field {field!r} has hard Dirichlet conditions on a common boundary "
                                 "part; put them on different parts, make one soft or write output_transform()")
            for kind in set(kinds) - {"dirichlet"}:  # several hard Dirichlet ones on different parts combine
                if kinds.count(kind) > 1:
                    raise ValueError(f"{owner}: field {field!r} has two hard conditions of one kind ({kind}); "
                                     "make one soft or write output_transform()")
            derivatives = [c for c in hard if isinstance(c, Initial) and c.derivative]
            for c in derivatives:
                if c.derivative != self.box.names[self.box.time_axis] or "initial_None" not in kinds:
                    raise ValueError(f"{owner} ({c.name}): a hard derivative initial condition needs derivative="
                                     "the time coordinate and a hard value initial condition on the same field")
        for c in self.conditions:
            if c.hard and not isinstance(c, (Dirichlet, Initial)):
                raise ValueError(f"{owner} ({c.name}): only Dirichlet and Initial conditions can be hard")
            if c.hard and isinstance(c, Dirichlet) and callable(c.on):
                raise ValueError(f"{owner} ({c.name}): a hard condition needs part names in on=, not a predicate "
                                 "(its distance function φ is built from whole parts)")

    def faces_of(self, condition: Condition) -> list[int]:
        """Part ids (for a box: indices into ``box.faces()``) a boundary condition applies to (all parts
        for a predicate ``on``: it selects points, not parts); unknown names raise with a "did you mean"."""
        on = condition.on
        if callable(on):
            return self.domain.boundary_parts()
        try:
            return self.domain.parts_of(on, "on")
        except ValueError as error:
            message = f"{type(self).__name__}.conditions ({condition.name!r}): {error}"
            domain = self.domain
            if domain.has_time:  # "t=0", "t.lo": the time faces are not boundary parts
                time = domain.names[domain.time_axis]
                named = [on] if isinstance(on, str) else list(on)
                if any(str(name).replace(" ", "").startswith((f"{time}=", f"{time}.")) for name in named):
                    message += (f"; a time face ({time} = const) gets no boundary points (they are drawn on the "
                                "space faces only): use Initial(...) for t = t0")
            raise ValueError(message) from None

    def boundary_part(self, condition: Condition, points) -> tuple[torch.Tensor, torch.Tensor]:
        """The sampled boundary points (and outward normals) where ``condition.on`` applies.
        The one place that resolves ``on=`` to points (via :meth:`Domain.part_mask`)."""
        chosen = self.domain.part_mask(condition.on, points.boundary_face, points.boundary)
        return points.boundary[chosen], points.boundary_normal[chosen]

    def hard_conditions(self, field: str | None = None) -> list[Condition]:
        """Hard conditions (of ``field`` if given)."""
        return [c for c in self.conditions if c.hard and (field is None or (c.field or self.fields[0]) == field)]

    @property
    def soft_conditions(self) -> list[Condition]:
        return [c for c in self.conditions if not c.hard]

    def loss_terms(self, residuals: Sequence[str] = ("residual",)) -> list[str]:
        """Names of the loss terms: the residual(s), every soft condition and every set of observations."""
        return list(residuals) + [c.name for c in self.soft_conditions] + [o.name for o in self.data]

    # -- hard constraints ---------------------------------------------------------------
    def output_transform(self, u: Jet, x: torch.Tensor) -> Jet:
        """Map the network's jet ``u`` (channels [outputs]) to the fields', building in hard conditions.

        Per field, with its hard Dirichlet (value g_D on parts with distance factor D) and hard
        initial conditions (u = g_0, ∂_t u = g_1 at t0; τ = (t − t0)/(t1 − t0)):
            u = G + D·τ^m·N,   G = g_D + [g_0 − g_D(·, t0)] + (t − t0)·[g_1 − ∂_t g_D(·, t0)],
        m the number of hard initial conditions. G meets each condition where the data agree
        (g_0 = g_D on the boundary at t0, as a smooth solution needs), and D·τ^m·N leaves them alone.
        The factor is multiplied by ``hard_scale``, and an initial condition with ``ramp=δ`` puts
        1 − exp(−τ/δ) in place of its τ.
        D is the domain's distance function φ of the parts (for a box, the product of face gaps);
        several hard Dirichlet conditions g_i on different parts, with distances φ_i, combine by
        transfinite interpolation: g_D = Σ_i w_i g_i / Σ_j w_j with w_i = φ_i⁻¹, and D = (Σ_j φ_j⁻¹)⁻¹
        (Sukumar & Srivastava 2022, §5).
        """
        if not self.hard_conditions():
            return u
        if x.requires_grad:  # someone differentiates through x: keep the graph
            lift, factor = self._lift_jets(x, u)
        else:  # G and D do not depend on the network: their jets are kept (detached) while the points stay
            key = (u.mode, u.coords, x.dtype, x.device, x.shape)
            cached = self.__dict__.get("_lift_cache")
            if cached is None or cached[0] != key or not torch.equal(cached[1], x):
                lift, factor = (_detached(j) for j in self._lift_jets(x, u))
                cached = (key, x.clone(), lift, factor)
                self.__dict__["_lift_cache"] = cached
            lift, factor = cached[2], cached[3]
        parts = []
        for index, field in enumerate(self.fields):
            own = u[index : index + 1]
            if self.hard_conditions(field):
                own = lift[index : index + 1] + factor[index : index + 1] * own
            parts.append(own)
        return Jet.cat(parts)

    def _lift_jets(self, x: torch.Tensor, u: Jet) -> tuple[Jet, Jet]:
        """Jets of G and D·τ^m of every field (channels [outputs]; G = 0, D = 1 for a field without hard ones)."""
        def stacked(p: torch.Tensor) -> torch.Tensor:
            columns = []
            for field in self.fields:
                hard = self.hard_conditions(field)
                g = self._lift(hard, p) if hard else p.new_zeros(p.shape[0])
                d = self._distance(hard, p) if hard else p.new_ones(p.shape[0])
                columns += [g, d]
            return torch.stack(columns, dim=1)

        both = autograd_jet(stacked, x, u.mode, u.coords)
        return both[0::2], both[1::2]

    def _dirichlet(self, hard: Sequence[Condition], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(g_D, D) of the hard Dirichlet conditions of one field, or None if it has none."""
        dirichlet = [c for c in hard if isinstance(c, Dirichlet)]
        if not dirichlet:
            return None
        if len(dirichlet) == 1:
            return target_values(dirichlet[0].value, x), self.domain.distance(x, dirichlet[0].on)
        # transfinite interpolation; φ_i is clamped away from 0 so that points on a part stay finite
        inverse = [1.0 / self.domain.distance(x, c.on).clamp_min(torch.finfo(x.dtype).tiny ** 0.5) for c in dirichlet]
        total = sum(inverse)
        return sum(w * target_values(c.value, x) for w, c in zip(inverse, dirichlet)) / total, 1.0 / total

    def _lift(self, hard: Sequence[Condition], x: torch.Tensor) -> torch.Tensor:
        """G(x) of :meth:`output_transform`: meets every hard condition of one field."""
        value = next((c for c in hard if isinstance(c, Initial) and not c.derivative), None)
        rate = next((c for c in hard if isinstance(c, Initial) and c.derivative), None)
        dirichlet = self._dirichlet(hard, x)
        g = dirichlet[0] if dirichlet else x.new_zeros(x.shape[0])
        if value is None:
            return g
        axis, t0 = self.box.time_axis, self.box.t0
        outer = torch.is_grad_enabled()
        with torch.enable_grad():  # ∂_t g_D(x, t0) by autograd, also when evaluating without gradients
            at_t0 = x.new_full((x.shape[0],), t0).requires_grad_(rate is not None and dirichlet is not None)
            x0 = torch.cat([x[:, :axis], at_t0[:, None], x[:, axis + 1 :]], dim=1)
            g_at_t0 = self._dirichlet(hard, x0)[0] if dirichlet else x.new_zeros(x.shape[0])
            lift = g + target_values(value.value, x0) - g_at_t0
            if rate is not None:
                slope = target_values(rate.value, x0)
                if g_at_t0.requires_grad:
                    slope = slope - torch.autograd.grad(g_at_t0.sum(), at_t0, create_graph=outer)[0]
                lift = lift + (x[:, axis] - t0) * slope
        return lift if outer else lift.detach()

    def _distance(self, hard: Sequence[Condition], x: torch.Tensor) -> torch.Tensor:
        """A smooth factor that vanishes exactly where the hard conditions apply (s·D·τ^m, s = hard_scale)."""
        box = self.box
        dirichlet = self._dirichlet(hard, x)
        factor = self.hard_scale * (dirichlet[1] if dirichlet else torch.ones_like(x[:, 0]))
        for condition in hard:
            if isinstance(condition, Initial):
                axis = box.time_axis
                factor = factor * condition.factor((x[:, axis] - box.lo[axis]) / (box.hi[axis] - box.lo[axis]))
        return factor

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())  # an unknown shows as Unknown(...)
        return f"{type(self).__name__}({params})"
