"""Run configuration: YAML (+ ``KEY=VALUE`` overrides) -> a validated, frozen tree of dataclasses.

Every field is declared once with a *check* (what values are allowed, how to clean them) and a raw default;
one generic builder walks the tree, so validation and defaults cannot drift apart. All errors are
:class:`ConfigError` with a one-line message ``key.path: must be ..., got VALUE``. Lists are stored as tuples;
mappings (``params``, ``grid_schedule``, ``loss_weights``) stay dicts. Low layer: stdlib + PyYAML only.
"""

from __future__ import annotations

import copy
import difflib
import math
import numbers
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import yaml

__all__ = [
    "BUILTIN_DIR", "ConfigError", "ProblemConfig", "ModelConfig", "AdaptiveConfig", "PointsConfig",
    "StagePointsConfig", "StageConfig", "LossBalancingConfig", "ResidualModesConfig", "TrainConfig", "EvaluateConfig",
    "OutputConfig", "DataConfig", "Config", "load_config", "config_from_dict", "config_to_dict", "dump_config",
    "apply_overrides",
]

BUILTIN_DIR = Path(__file__).parent / "problems"  # built-in configs; read at call time (tests monkeypatch it)


class ConfigError(ValueError):
    """A configuration problem; the message is always a single line naming the key path."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(part.strip() for part in str(message).splitlines() if part.strip()))


# ----------------------------------------------------------------------------------------------- checks


def _show(value: Any) -> str:
    """Short one-line rendering of a bad value (YAML spelling for bools/null)."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    try:
        text = repr(value)
    except Exception:  # e.g. ints beyond the str-conversion limit, pathological nesting
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _specs(cls: type) -> dict[str, Any]:
    """The checked fields of ``cls`` by their YAML key (the field name, or its ``key`` for a Python keyword)."""
    return {f.metadata.get("key", f.name): f for f in fields(cls) if "check" in f.metadata}


def _fail(path: str, what: str, value: Any) -> NoReturn:
    raise ConfigError(f"{path}: must be {what}, got {_show(value)}")


@dataclass(frozen=True)
class Check:
    """A validator: ``what`` describes the allowed values, ``fn(value, path)`` returns the cleaned value;
    ``schema`` is the dataclass a section (or list of sections) builds, used to navigate overrides."""

    what: str
    fn: Callable[[Any, str], Any]
    schema: type | None = None

    def __call__(self, value: Any, path: str) -> Any:
        return self.fn(value, path)


def integer(lo: int = 0, hi: int = 10**9) -> Check:
    """Integer in [lo, hi]; bools and floats are rejected (strict types)."""
    what = {0: "a non-negative integer", 1: "a positive integer"}.get(lo, f"an integer >= {lo}")

    def fn(v: Any, path: str) -> int:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
            _fail(path, what, v)
        if v > hi:
            _fail(path, f"{what} <= {hi}", v)
        return int(v)

    return Check(what, fn)


def number(what: str, ok: Callable[[float], bool] = lambda x: True) -> Check:
    """Finite float with ``ok(x)``; ints and numeric strings (PyYAML reads ``1e-3`` as a string) are accepted."""

    def fn(v: Any, path: str) -> float:
        try:
            x = float(v) if isinstance(v, (str, numbers.Real)) and not isinstance(v, bool) else math.nan
        except (ValueError, OverflowError):  # "abc", 10**400
            x = math.nan
        if not math.isfinite(x) or not ok(x):
            _fail(path, what, v)
        return x

    return Check(what, fn)


def choice(*options: str) -> Check:
    """One of a fixed set of strings."""
    what = "one of " + ", ".join(repr(o) for o in options)

    def fn(v: Any, path: str) -> str:
        if not isinstance(v, str) or v not in options:
            _fail(path, what, v)
        return v

    return Check(what, fn)


def string(nullable: bool = False) -> Check:
    """Non-empty string (or null when ``nullable``)."""
    what = "a non-empty string" + (" or null" if nullable else "")

    def fn(v: Any, path: str) -> str | None:
        if not (isinstance(v, str) and v.strip()) and not (nullable and v is None):
            _fail(path, what, v)
        return v

    return Check(what, fn)


boolean = Check("true or false", lambda v, path: v if isinstance(v, bool) else _fail(path, "true or false", v))


def list_of(item: Check, what: str, min_len: int = 1, max_len: int = 1000) -> Check:
    """List (or tuple) of ``min_len..max_len`` items, each checked; stored as a tuple."""

    def fn(v: Any, path: str) -> tuple:
        if not isinstance(v, (list, tuple)) or not min_len <= len(v) <= max_len:
            _fail(path, what, v)
        return tuple(item(x, f"{path}[{i}]") for i, x in enumerate(v))

    return Check(what, fn, item.schema)


def mapping_of(key: Check, value: Check, what: str) -> Check:
    """Mapping (null = empty) with checked keys and values; stored as a dict, sorted when keys are ints."""

    def fn(v: Any, path: str) -> dict:
        if v is None:
            return {}
        if not isinstance(v, Mapping):
            _fail(path, what, v)
        out = {}
        for k, x in v.items():
            try:
                clean = key(k, path)
            except ConfigError:
                raise ConfigError(f"{path}: keys must be {key.what}, got {_show(k)}") from None
            out[clean] = value(x, f"{path}.{k}")
        return dict(sorted(out.items())) if all(isinstance(k, int) for k in out) else out

    return Check(what, fn)


def section(cls: type) -> Check:
    """Nested dataclass built from a mapping by :func:`_build`."""
    return Check("a mapping with keys " + ", ".join(_specs(cls)), lambda v, path: _build(cls, v, path), cls)


def _grid_range(v: Any, path: str) -> tuple[float, float]:
    lo, hi = list_of(number("a finite number"), "a list [lo, hi] of two finite numbers", 2, 2)(v, path)
    if not lo < hi:
        _fail(path, "[lo, hi] with lo < hi", v)
    return lo, hi


_AXIS = integer(1, 10**4)


def _resolution(v: Any, path: str) -> int | tuple[int, ...]:
    if isinstance(v, (list, tuple)):
        return list_of(_AXIS, "a list of 1 to 10 positive integers <= 10000", 1, 10)(v, path)
    return _AXIS(v, path)


_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")  # YAML 1.2 floats that PyYAML leaves as strings


def _param(v: Any, path: str, depth: int = 0) -> Any:
    """Problem parameter: a scalar or a (nested, depth <= 3) list of scalars; ``1e-3`` strings become floats."""
    if isinstance(v, str) and _SCIENTIFIC.fullmatch(v.strip()):
        v = float(v)
    if isinstance(v, float) and not math.isfinite(v):
        _fail(path, "a finite number", v)
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)) and depth < 3:
        return [_param(x, f"{path}[{i}]", depth + 1) for i, x in enumerate(v)]
    if isinstance(v, Mapping) and depth == 0:  # an unknown parameter {unknown: true, init: ...}: checked by the problem
        return {str(k): _param(x, f"{path}.{k}", 1) for k, x in v.items()}
    _fail(path, "a scalar, a list of scalars or {unknown: true, init: ...}", v)


DOMAIN_SHAPES = ("rectangle", "box", "interval", "disk", "ball", "ellipse", "polygon", "difference", "union",
                 "intersection", "space_time")
"""The shape keys of a domain mapping (kanpde.geometry.spec builds each)."""


def _domain(v: Any, path: str) -> dict | None:
    """A domain as a YAML mapping (null: the problem's own): one shape key with a list of arguments, and an
    optional name. The arguments' values (a radius > 0, a simple polygon, ...) are checked by
    kanpde.geometry.spec when the problem is built, before any work starts."""
    if v is None:
        return None
    shapes = [k for k in v if k != "name"] if isinstance(v, Mapping) else []
    if len(shapes) != 1 or shapes[0] not in DOMAIN_SHAPES:
        _fail(path, f"a domain mapping with exactly one of {', '.join(DOMAIN_SHAPES)} (and optionally name), "
                    "such as {disk: [[0, 0], 1]}, or null", v)
    if "name" in v:
        string()(v["name"], f"{path}.name")
    key, args = shapes[0], v[shapes[0]]
    if not isinstance(args, (list, tuple)):
        _fail(f"{path}.{key}", "a list of the shape's arguments", args)
    items = [_domain(y, f"{path}.{key}[{i}]") if isinstance(y, Mapping) else _param(y, f"{path}.{key}[{i}]")
             for i, y in enumerate(args)]
    return {key: items, **({"name": v["name"]} if "name" in v else {})}


def _step(v: Any, path: str) -> int:
    """Global step used as a mapping key; decimal strings are allowed since JSON/CLI keys are strings."""
    return integer(0)(int(v) if isinstance(v, str) and v.isdecimal() and len(v) < 20 else v, path)


POSITIVE = number("a positive finite number", lambda x: x > 0)
NON_NEGATIVE = number("a non-negative finite number", lambda x: x >= 0)
COUNT = integer(0)
POSITIVE_COUNT = integer(1)
MAX_POINTS = 10**7  # per kind of point: more would not fit in memory with their jets
MAX_GRID = 1000  # KAN grid intervals: G = 100000 took over 40 s per step on poisson (2400 points, 2026-12-02)
MAX_ORDER = 10  # spline degree: the Cox–de Boor recursion costs O(order²) per point, and degrees > 5 gain nothing


def _causal_epsilon(what: str) -> Check:
    """Causal weighting's ε: a non-negative number, or "auto" (rescaled at every step, see kanpde.loss)."""

    def fn(v: Any, path: str) -> float | str:
        if v == "auto":
            return v
        try:
            return NON_NEGATIVE(v, path)
        except ConfigError:
            _fail(path, what, v)

    return Check(what, fn)


def _f(check: Check, default: Any = MISSING, key: str | None = None) -> Any:
    """Declare a config field: its check and raw default (validated to build the dataclass default); ``key``: its
    YAML key when that is not the field's name (``lambda``)."""
    meta = {"check": check, "raw": default} | ({"key": key} if key else {})
    if default is MISSING:
        return field(metadata=meta)
    return field(default_factory=lambda: check(copy.deepcopy(default), "<default>"), metadata=meta)


def nullable(check: Check) -> Check:
    """``check``, or null (meaning: inherit the value from elsewhere)."""
    what = check.what if "null" in check.what else check.what + " or null"
    return Check(what, lambda v, path: None if v is None else check(v, path), check.schema)


# ----------------------------------------------------------------------------------------------- schema


@dataclass(frozen=True, kw_only=True)
class ProblemConfig:
    """Which PDE to solve: a built-in name or ``path/to/file.py:ClassName``; ``params`` are checked by the problem."""

    name: str = _f(string())
    params: dict[str, Any] = _f(mapping_of(string(), Check("a scalar, a list of scalars or {unknown: true, init: ...}",
                                                             _param),
                                           "a mapping of parameter names to scalars or lists"), {})
    domain: dict | None = _f(Check("a domain mapping or null", _domain), None)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Network architecture; keys for other model types are accepted and ignored."""

    type: str = _f(choice("kan", "mlp", "siren", "fourier_mlp"), "kan")
    width: tuple[int, ...] = _f(list_of(integer(1, 10**5), "a list of 2 to 1000 positive integers <= 100000", 2),
                                [2, 10, 1])
    grid: int = _f(integer(1, MAX_GRID), 5)
    order: int = _f(integer(0, MAX_ORDER), 3)
    grid_eps: float = _f(number("a number in [0, 1]", lambda x: 0 <= x <= 1), 0.02)
    grid_monitor: str = _f(choice("quantile", "arclength", "curvature"), "quantile")
    grid_range: tuple[float, float] = _f(Check("a list [lo, hi] of finite numbers with lo < hi", _grid_range),
                                         [-1.0, 1.0])
    activation: str = _f(choice("tanh", "sin", "silu", "softplus"), "tanh")
    omega0: float = _f(POSITIVE, 30.0)
    sigma: float = _f(POSITIVE, 1.0)
    features: int = _f(integer(1, 10**5), 64)


@dataclass(frozen=True, kw_only=True)
class AdaptiveConfig:
    """Residual-based adaptive interior points (RAD, see kanpde.adaptive): every ``every`` steps ``pool`` uniform
    candidates (null: 10 x points.interior), kept with probability ∝ |r|^k / mean|r|^k + c; no new draw after
    step ``until`` (null: draws until the end)."""

    every: int = _f(POSITIVE_COUNT, 1000)
    until: int | None = _f(nullable(POSITIVE_COUNT), None)
    pool: int | None = _f(nullable(integer(1, MAX_POINTS)), None)
    k: float = _f(NON_NEGATIVE, 1.0)
    c: float = _f(NON_NEGATIVE, 1.0)


@dataclass(frozen=True, kw_only=True)
class PointsConfig:
    """Collocation points per batch and how they are drawn."""

    interior: int = _f(integer(1, MAX_POINTS), 2000)
    boundary: int = _f(integer(0, MAX_POINTS), 400)
    initial: int = _f(integer(0, MAX_POINTS), 400)
    sampler: str = _f(choice("uniform", "sobol", "halton", "lhs", "grid"), "sobol")
    resample_every: int = _f(COUNT, 0)
    seed: int | None = _f(nullable(integer(0, 2**32 - 1)), None)  # null: train.seed; compare shares one
    adaptive: AdaptiveConfig | None = _f(nullable(section(AdaptiveConfig)), None)


@dataclass(frozen=True, kw_only=True)
class StagePointsConfig:
    """A stage's own collocation points: each key set here replaces that key of ``points``
    (e.g. L-BFGS on more fixed points after Adam on redrawn ones); null keys keep ``points``'."""

    interior: int | None = _f(nullable(integer(1, MAX_POINTS)), None)
    boundary: int | None = _f(nullable(integer(0, MAX_POINTS)), None)
    initial: int | None = _f(nullable(integer(0, MAX_POINTS)), None)
    resample_every: int | None = _f(nullable(COUNT), None)

    def changes(self) -> dict[str, int]:
        """The keys this stage sets."""
        return {name: getattr(self, spec.name) for name, spec in _specs(type(self)).items()
                if getattr(self, spec.name) is not None}


DEFAULT_LR = {"adam": 1e-3, "lbfgs": 1.0}


@dataclass(frozen=True, kw_only=True)
class StageConfig:
    """One optimisation stage; ``lr`` defaults per optimizer (filled in at construction); ``loss_weights``
    replaces those terms' weights (``train.loss_weights``) during this stage only."""

    optimizer: str = _f(choice(*DEFAULT_LR))
    steps: int = _f(POSITIVE_COUNT)
    lr: float | None = _f(Check("a positive finite number", lambda v, p: v if v is None else POSITIVE(v, p)), None)
    decay: str = _f(choice("none", "exponential", "step"), "none")
    decay_rate: float = _f(number("a number in (0, 1]", lambda x: 0 < x <= 1), 0.1)
    decay_every: int = _f(POSITIVE_COUNT, 1000)
    history_size: int = _f(integer(1, 10**4), 50)
    causal_epsilon: float | str | None = _f(nullable(_causal_epsilon(
        "a non-negative finite number, 'auto', or null for train.causal_epsilon")), None)
    points: StagePointsConfig | None = _f(nullable(section(StagePointsConfig)), None)
    loss_weights: dict[str, float] = _f(mapping_of(string(), number("a non-negative finite number", lambda x: x >= 0),
                                                   "a mapping of loss-term names to weights"), {})

    def __post_init__(self) -> None:
        if self.lr is None:
            object.__setattr__(self, "lr", DEFAULT_LR.get(self.optimizer))


@dataclass(frozen=True, kw_only=True)
class LossBalancingConfig:
    """Loss weights set by gradient norms every ``every`` steps, λ ← (1 − alpha)·λ + alpha·λ̂ (kanpde.balancing)."""

    method: str = _f(choice("gradient_norm"), "gradient_norm")
    every: int = _f(POSITIVE_COUNT, 100)
    alpha: float = _f(number("a number in (0, 1]", lambda x: 0 < x <= 1), 0.9)


def _per_axis(lo: int, what: str) -> Check:
    """One integer >= ``lo`` for every coordinate, or a list of them (one per coordinate, up to 10)."""
    one = integer(lo, 10**4)
    full = f"{what}, or a list of them (one per coordinate)"

    def fn(v: Any, path: str) -> int | tuple[int, ...]:
        if isinstance(v, (list, tuple)):
            return list_of(one, full, 1, 10)(v, path)
        try:
            return one(v, path)
        except ConfigError:
            _fail(path, full, v)

    return Check(full, fn)


@dataclass(frozen=True, kw_only=True)
class ResidualModesConfig:
    """The loss term "residual_modes" (kanpde.modes): the PDE residual on a fixed midpoint grid of ``grid`` points
    per axis of the box, projected onto the sine modes k_i = 1..``modes``_i of each coordinate; the term is the
    mean square of those coefficients. Its weight is set like any term's (``loss_weights``, default 1)."""

    modes: int | tuple[int, ...] = _f(_per_axis(1, "a positive integer <= 10000"))
    grid: int | tuple[int, ...] = _f(_per_axis(2, "an integer in [2, 10000]"), 200)


@dataclass(frozen=True, kw_only=True)
class PropagatedResidualConfig:
    """The loss term "propagated_residual" (kanpde.propagation): the PDE residual on a fixed midpoint grid of
    ``grid`` points per axis of a space-time box, integrated along t with the problem's growth rate to the error
    it causes; the term is that error's mean square. Its weight is set like any term's (``loss_weights``)."""

    grid: int | tuple[int, ...] = _f(_per_axis(2, "an integer in [2, 10000]"), 200)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Optimisation: stages, grid extension/update schedule, loss weights, recovery from divergence."""

    seed: int = _f(integer(0, 2**32 - 1), 0)
    dtype: str = _f(choice("float64", "float32"), "float64")
    device: str = _f(choice("auto", "cpu", "cuda"), "auto")
    tf32: bool = _f(boolean, False)  # CUDA, float32: TensorFloat-32 matrix products (faster, ~1e-3 relative)
    derivatives: str = _f(choice("jet", "autograd"), "jet")
    compile: bool = _f(boolean, False)  # torch.compile of the jet (kanpde.nets.compiled, nets.fused_kan)
    stages: tuple[StageConfig, ...] = _f(list_of(section(StageConfig), "a non-empty list of stage mappings", 1, 100),
                                         [{"optimizer": "adam", "steps": 1000}])
    grid_schedule: dict[int, int] = _f(mapping_of(Check("a non-negative integer", _step), integer(1, MAX_GRID),
                                                  "a mapping of global step -> grid size"), {})
    grid_update_every: int = _f(COUNT, 0)
    grid_update_until: int = _f(COUNT, 0)
    loss_weights: dict[str, float] = _f(mapping_of(string(), number("a non-negative finite number", lambda x: x >= 0),
                                                   "a mapping of loss-term names to weights"), {})
    loss_balancing: LossBalancingConfig | None = _f(nullable(section(LossBalancingConfig)), None)
    residual_modes: ResidualModesConfig | None = _f(nullable(section(ResidualModesConfig)), None)
    propagated_residual: PropagatedResidualConfig | None = _f(nullable(section(PropagatedResidualConfig)), None)
    max_recoveries: int = _f(integer(0, 1000), 3)
    causal_epsilon: float | str = _f(_causal_epsilon("a non-negative finite number or 'auto'"), 0.0)
    causal_min_weight: float = _f(number("a number in (0, 1)", lambda x: 0 < x < 1), 0.05)
    causal_chunks: int = _f(integer(1, 10**4), 16)
    time_windows: int = _f(integer(1, 10**4), 1)
    time_windows_until: int = _f(COUNT, 0)

    def causal_epsilon_of(self, stage: StageConfig) -> float | str:
        """The causal ε a stage trains with: its own, else ``causal_epsilon``."""
        return self.causal_epsilon if stage.causal_epsilon is None else stage.causal_epsilon


SNAP_FUNCTIONS = ("x", "x^2", "x^3", "x^4", "sin", "cos", "exp", "tanh")
"""The names of kanpde.nets.library.LIBRARY (a test checks that they agree)."""


@dataclass(frozen=True, kw_only=True)
class SymbolicConfig:
    """Symbolic discovery (kanpde.discover): sparsity-regularised training (weight ``lambda``), pruning, then
    snapping edges to ``library`` functions, each kept only if the PDE loss stays within ``snap_tolerance``.
    ``prune_rounds`` > 1 adds pruning rounds: ``round_steps`` L-BFGS steps with the penalty (weight ``lambda``
    times ``lambda_growth`` per round), prune, retrain; a round is undone (and the rounds end) if it removes no
    edge or leaves the PDE loss above (1 + ``prune_tolerance``) times the loss after the first pruning.
    ``linear_first_layer`` snaps every first-layer edge to a·(b·s + c) + d after the first pruning (before
    the rounds): the hidden nodes then see linear combinations of the inputs."""

    discover: bool = _f(boolean, False)
    lambda_: float = _f(NON_NEGATIVE, 1e-3, key="lambda")
    entropy: float = _f(NON_NEGATIVE, 2.0)
    prune_threshold: float = _f(number("a number in [0, 1)", lambda x: 0 <= x < 1), 0.05)
    retrain_steps: int = _f(COUNT, 100)
    library: tuple[str, ...] = _f(list_of(choice(*SNAP_FUNCTIONS), "a non-empty list of library function names"),
                                  ["x", "x^2", "x^3", "sin", "cos", "exp"])
    fit_tolerance: float = _f(number("a number in (0, 1)", lambda x: 0 < x < 1), 1e-2)
    snap_steps: int = _f(COUNT, 30)
    snap_tolerance: float = _f(NON_NEGATIVE, 1.0)
    final_steps: int = _f(COUNT, 100)
    prune_rounds: int = _f(POSITIVE_COUNT, 1)
    round_steps: int = _f(COUNT, 100)
    lambda_growth: float = _f(number("a number >= 1", lambda x: x >= 1), 10.0)
    prune_tolerance: float = _f(NON_NEGATIVE, 1.0)
    linear_first_layer: bool = _f(boolean, False)


@dataclass(frozen=True, kw_only=True)
class EvaluateConfig:
    """Evaluation against the reference: how often (0 = only at the end) and on which grid."""

    every: int = _f(COUNT, 100)
    resolution: int | tuple[int, ...] = _f(Check("a positive integer or a list of them", _resolution), 101)


@dataclass(frozen=True, kw_only=True)
class OutputConfig:
    """Where results go; ``dir`` null means ``runs/<problem>-<model>-<timestamp>``."""

    dir: str | None = _f(string(nullable=True), None)
    checkpoint_every: int = _f(COUNT, 500)
    plots: bool = _f(boolean, True)


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Measured data: a CSV, NPZ or HDF5 file (relative to the current directory) whose columns are named
    by the problem's coordinates and fields; ``field`` null means the only field; ``noise`` the
    measurements' standard deviation, if known (the misfit is divided by it)."""

    file: str = _f(string())
    field: str | None = _f(string(nullable=True), None)
    weight: float = _f(NON_NEGATIVE, 1.0)
    noise: float | None = _f(nullable(POSITIVE), None)
    name: str | None = _f(string(nullable=True), None)


@dataclass(frozen=True, kw_only=True)
class Config:
    """A whole run; ``source`` is the file it was loaded from (not part of the schema or of equality)."""

    problem: ProblemConfig = _f(section(ProblemConfig))
    model: ModelConfig = _f(section(ModelConfig), {})
    points: PointsConfig = _f(section(PointsConfig), {})
    train: TrainConfig = _f(section(TrainConfig), {})
    evaluate: EvaluateConfig = _f(section(EvaluateConfig), {})
    output: OutputConfig = _f(section(OutputConfig), {})
    data: tuple[DataConfig, ...] = _f(list_of(section(DataConfig), "a list of {file: ..., field: ...} mappings", 0), [])
    symbolic: SymbolicConfig | None = _f(nullable(section(SymbolicConfig)), None)
    source: str = field(default="<dict>", compare=False)


# ----------------------------------------------------------------------------------------------- building


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _unknown(path: str, key: Any, allowed: Sequence[str]) -> str:
    key = key if isinstance(key, str) else _show(key)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(allowed)
    return f"{_join(path, key)}: unknown key; {hint}"


def _build(cls: type, data: Any, path: str, **extra: Any) -> Any:
    """Validate a mapping against dataclass ``cls``: unknown keys, required keys, then each field's check."""
    specs = _specs(cls)
    if data is None:  # an empty YAML section (``model:``) means all defaults
        data = {}
    if not isinstance(data, Mapping):
        _fail(path, "a mapping with keys " + ", ".join(specs), data)
    for key in data:
        if key not in specs:
            raise ConfigError(_unknown(path, key, list(specs)))
    values = {}
    for name, spec in specs.items():
        if name in data:
            values[spec.name] = spec.metadata["check"](data[name], _join(path, name))
        elif spec.metadata["raw"] is MISSING:
            raise ConfigError(f"{_join(path, name)}: required key is missing (must be {spec.metadata['check'].what})")
    return cls(**values, **extra)


def config_from_dict(data: Mapping, source: str = "<dict>") -> Config:
    """Validate a plain (YAML-like) mapping into a :class:`Config`."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: top-level document must be a mapping, got {_show(data)}")
    return _build(Config, data, "", source=str(source))


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {name: _plain(getattr(value, spec.name)) for name, spec in _specs(type(value)).items()}
    if isinstance(value, (list, tuple)):
        return [_plain(x) for x in value]
    if isinstance(value, Mapping):
        return {k: _plain(x) for k, x in value.items()}
    return value


def config_to_dict(config: Config) -> dict:
    """Plain, YAML-serialisable dict; ``config_from_dict(config_to_dict(c)) == c``."""
    return _plain(config)


def dump_config(config: Config, path: str | os.PathLike) -> None:
    """Write the config as YAML (e.g. into a run directory, so a run can be reproduced)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump(config_to_dict(config), Dumper=_Dumper, sort_keys=False), encoding="utf-8")


class _Dumper(yaml.SafeDumper):
    """Block style, except lists of scalars (``width: [2, 10, 1]``) which read better inline."""


_Dumper.add_representer(list, lambda dumper, data: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=not any(isinstance(x, (list, dict)) for x in data)))


# ----------------------------------------------------------------------------------------------- overrides


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML silently keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable key: the base class reports it
                continue
            if duplicate:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {_show(key)} (the later value would silently replace the "
                                "earlier one)", mark)
        return super().construct_mapping(node, deep=deep)


def _safe_load(text: str, label: str) -> Any:
    """``yaml.safe_load`` with every failure turned into a one-line ConfigError; duplicate keys are refused."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{label}: invalid YAML{where}: {getattr(err, 'problem', None) or err}") from None
    except (ValueError, RecursionError) as err:  # bad timestamps, int-digit limits, absurd nesting
        raise ConfigError(f"{label}: invalid YAML: {type(err).__name__}: {err}") from None


def apply_overrides(data: Mapping, overrides: Sequence[str]) -> dict:
    """Return a copy of ``data`` with ``a.b.c=value`` overrides applied (value parsed as YAML).

    Numeric segments (or ``[i]``) index lists (index == length appends); sections and lists missing from
    ``data`` are filled with their defaults first, so ``train.stages.0.steps=5`` works on a minimal file.
    Keys are checked against the schema; only free mappings (``problem.params`` etc.) accept new keys.
    """
    out = copy.deepcopy(dict(data))
    for item in [overrides] if isinstance(overrides, str) else overrides:
        key, sep, text = item.partition("=")
        parts = re.sub(r"\[(\d+)\]", r".\1", key.strip()).split(".")
        if not sep or not all(parts):
            raise ConfigError(f"--set {item}: expected KEY=VALUE")
        _set(out, parts, _safe_load(text, f"--set {item}"), item)
    return out


def _index(part: str) -> int | None:
    return int(part) if part.isdecimal() and len(part) < 10 else None


def _set(root: dict, parts: list[str], value: Any, item: str) -> None:
    """Set ``root[parts...] = value``, checking keys against the schema and creating missing containers."""
    node: Any = root
    schema: type | None = Config
    path = ""
    for i, part in enumerate(parts):
        if isinstance(node, list):
            key: Any = _index(part)
            if key is None or key > len(node):
                raise ConfigError(f"--set {item}: {path}: expected a list index in 0..{len(node)}, got {part!r}")
            if key == len(node):
                node.append(None)
            child_path, raw, child_schema = f"{path}[{key}]", MISSING, schema  # list items share the schema
        elif isinstance(node, dict) and schema is not None:
            specs = _specs(schema)
            if part not in specs:
                raise ConfigError(f"{_unknown(path, part, list(specs))} (in --set {item})")
            key, raw, child_schema = part, specs[part].metadata["raw"], specs[part].metadata["check"].schema
            child_path = _join(path, key)
        elif isinstance(node, dict):  # free mapping: new keys allowed; reuse an existing int key (grid_schedule)
            key = _index(part) if part not in node and _index(part) in node else part
            child_path, raw, child_schema = _join(path, key), MISSING, None
        else:
            raise ConfigError(f"--set {item}: {path} is {_show(node)}, not a mapping or list")
        if i == len(parts) - 1:
            node[key] = value
            return
        if (node[key] if isinstance(node, list) else node.get(key)) is None:  # missing: start from the default
            if raw is not MISSING and not isinstance(raw, (list, dict)) and child_schema is None:
                raise ConfigError(f"--set {item}: {child_path} is a single value, not a mapping or list")
            node[key] = copy.deepcopy(raw) if isinstance(raw, (list, dict)) else {}
        node, schema, path = node[key], child_schema, child_path


# ----------------------------------------------------------------------------------------------- loading


def _resolve(source: str | os.PathLike) -> Path:
    """An existing file as is; else a bare name (``.yaml`` optional) from :data:`BUILTIN_DIR`."""
    path = Path(source)
    if path.is_file():
        return path
    if not path.exists() and path.name and path.parent == Path("."):
        for name in (path.name, path.name + ".yaml"):
            if (BUILTIN_DIR / name).is_file():
                return BUILTIN_DIR / name
    builtins = sorted(p.name for p in BUILTIN_DIR.glob("*.yaml")) if BUILTIN_DIR.is_dir() else []
    problem = "not a file" if path.exists() else "file not found"
    raise ConfigError(f"config: {problem}: {os.fspath(source)} (built-in configs: {', '.join(builtins) or 'none'})")


def load_config(source: str | os.PathLike, overrides: Sequence[str] = ()) -> Config:
    """Load a YAML config file (or built-in name such as ``poisson``), apply overrides and validate."""
    path = _resolve(source)
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{label}: cannot read: {err}") from None
    data = _safe_load(text, label)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{label}: top-level document must be a mapping, got {_show(data)}")
    config = config_from_dict(apply_overrides(data, overrides), source=label)
    return replace(config, problem=replace(config.problem, name=_problem_path(config.problem.name, path.parent)),
                   source=label)


def _problem_path(name: str, folder: Path) -> str:
    """A user problem "file.py:Class" with a relative file is found beside the config file first
    (then in the working directory), and recorded absolute, so the saved config works anywhere."""
    file, colon, class_name = name.rpartition(":")
    if not colon or Path(file).is_absolute():
        return name
    candidate = folder / file if (folder / file).is_file() else Path(file)
    return f"{candidate.resolve()}:{class_name}" if candidate.is_file() else name
