"""Axis-aligned boxes in space and space × time, and collocation-point sampling.

A :class:`Box` is a product of intervals [lo_i, hi_i] with a name per axis. One axis may
be time (``time_axis``); then the box is a space-time cylinder: its *boundary* is made of
the spatial faces only (they span the whole time interval) and the *initial* face is
t = t0. The final time face carries no condition and is never sampled.

Faces are indexed in :meth:`Box.faces` order (axis 0 lo, axis 0 hi, axis 1 lo, …), time
faces included, so a face index means the same thing for every box; boundary sampling
simply never produces the indices of time faces.

Sampling draws on the unit cube with one of :data:`METHODS` and maps affinely to the box,
in float64, then casts to the requested dtype. Every sampler takes ``rng`` (a
``numpy.random.Generator``, a seed, or ``None``), so a run is reproducible from its seed.
This module is a low layer: it imports only numpy, scipy and torch.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from scipy.stats import qmc

__all__ = [
    "METHODS",
    "Box",
    "Face",
    "BoundaryPoints",
    "Points",
    "Sampler",
    "sample_interior",
    "sample_boundary",
    "sample_initial",
    "evaluation_grid",
]

METHODS: tuple[str, ...] = ("uniform", "sobol", "halton", "lhs", "grid")
"""Sampling methods: iid uniform, scrambled Sobol', scrambled Halton, Latin hypercube, tensor grid."""

RngLike = np.random.Generator | np.random.SeedSequence | int | None


# ----------------------------------------------------------------------------- boxes


class Face(NamedTuple):
    """One (D−1)-dimensional face of a box: the set where coordinate ``axis`` equals lo or hi."""

    axis: int
    side: str  # "lo" or "hi"
    name: str  # e.g. "x=-1"

    @property
    def sign(self) -> float:
        """Sign of the outward normal along ``axis``: −1 on the lo face, +1 on the hi face."""
        return -1.0 if self.side == "lo" else 1.0


def _default_names(dim: int) -> tuple[str, ...]:
    return tuple("xyz"[:dim]) if dim <= 3 else tuple(f"x{i}" for i in range(dim))


def _float_tuple(value: float | Sequence[float], arg: str) -> tuple[float, ...]:
    try:
        arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{arg}: must be a sequence of numbers, got {value!r}") from exc
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{arg}: must be a non-empty flat sequence of numbers, got {value!r}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{arg}: must be finite, got {arr.tolist()}")
    return tuple(float(v) for v in arr)


def _fmt(value: float) -> str:
    return f"{value:.12g}"


@dataclass(frozen=True, init=False)
class Box:
    """The box [lo_0, hi_0] × … × [lo_{D−1}, hi_{D−1}], axes named ``names``; optionally one is time.

    ``Box([-1, -1], [1, 1], ("x", "y"))`` is the square; ``Box.space_time([-1], [1], 0, 1)``
    is the space-time cylinder of the 1-D interval over t ∈ [0, 1]. ``time_axis`` may be
    given as an index or as an axis name. Invalid input raises ``ValueError`` naming the
    argument. Immutable and hashable.
    """

    lo: tuple[float, ...]
    hi: tuple[float, ...]
    names: tuple[str, ...]
    time_axis: int | None

    def __init__(
        self,
        lo: float | Sequence[float],
        hi: float | Sequence[float],
        names: str | Sequence[str] | None = None,
        time_axis: int | str | None = None,
    ) -> None:
        lo_t = _float_tuple(lo, "lo")
        hi_t = _float_tuple(hi, "hi")
        if len(lo_t) != len(hi_t):
            raise ValueError(f"hi: must have the same length as lo ({len(lo_t)}), got {len(hi_t)}")
        for i, (a, b) in enumerate(zip(lo_t, hi_t)):
            if not a < b:
                raise ValueError(f"hi: must be greater than lo on every axis, got lo={a:g}, hi={b:g} on axis {i}")
        dim = len(lo_t)
        if names is None:
            names_t = _default_names(dim)
        else:
            names_t = (names,) if isinstance(names, str) else tuple(names)
            if len(names_t) != dim:
                raise ValueError(f"names: must have one name per axis ({dim}), got {list(names_t)}")
            for n in names_t:
                if not isinstance(n, str) or not n.strip():
                    raise ValueError(f"names: must be non-empty strings, got {list(names_t)}")
            if len(set(names_t)) != dim:
                raise ValueError(f"names: must be unique, got {list(names_t)}")
        if isinstance(time_axis, str):
            if time_axis not in names_t:
                raise ValueError(f"time_axis: {time_axis!r} is not one of the names {list(names_t)}")
            time_axis = names_t.index(time_axis)
        elif time_axis is not None:
            if not isinstance(time_axis, numbers.Integral) or isinstance(time_axis, bool):
                raise ValueError(f"time_axis: must be an axis index, a name or None, got {time_axis!r}")
            if not -dim <= int(time_axis) < dim:
                raise ValueError(f"time_axis: must be in [0, {dim}), got {time_axis}")
            time_axis = int(time_axis) % dim
        object.__setattr__(self, "lo", lo_t)
        object.__setattr__(self, "hi", hi_t)
        object.__setattr__(self, "names", names_t)
        object.__setattr__(self, "time_axis", time_axis)

    @classmethod
    def space_time(
        cls,
        lo: float | Sequence[float],
        hi: float | Sequence[float],
        t0: float,
        t1: float,
        names: Sequence[str] | None = None,
    ) -> Box:
        """Space box [lo, hi] × [t0, t1], time last; ``names`` lists all axes, time included."""
        lo_t = _float_tuple(lo, "lo")
        hi_t = _float_tuple(hi, "hi")
        try:
            t0f, t1f = float(t0), float(t1)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"t0, t1: must be numbers, got {t0!r}, {t1!r}") from exc
        if not (math.isfinite(t0f) and math.isfinite(t1f)):
            raise ValueError(f"t0, t1: must be finite, got {t0f:g}, {t1f:g}")
        if not t0f < t1f:
            raise ValueError(f"t1: must be greater than t0, got t0={t0f:g}, t1={t1f:g}")
        if names is None:
            names = (*_default_names(len(lo_t)), "t")
        return cls((*lo_t, t0f), (*hi_t, t1f), names, time_axis=len(lo_t))

    # -- shape

    @property
    def dim(self) -> int:
        """Number of coordinates D (space and time together)."""
        return len(self.lo)

    @property
    def has_time(self) -> bool:
        """Whether one axis is time."""
        return self.time_axis is not None

    @property
    def space_axes(self) -> tuple[int, ...]:
        """Indices of the spatial axes, in order."""
        return tuple(i for i in range(self.dim) if i != self.time_axis)

    @property
    def space_dim(self) -> int:
        """Number of spatial coordinates."""
        return len(self.space_axes)

    @property
    def t0(self) -> float:
        """Initial time (ValueError for a box without time axis)."""
        return self.lo[self._require_time("t0")]

    @property
    def t1(self) -> float:
        """Final time (ValueError for a box without time axis)."""
        return self.hi[self._require_time("t1")]

    def _require_time(self, what: str) -> int:
        if self.time_axis is None:
            raise ValueError(f"{what}: box {self.names} has no time axis")
        return self.time_axis

    @property
    def widths(self) -> tuple[float, ...]:
        """Side lengths hi − lo."""
        return tuple(b - a for a, b in zip(self.lo, self.hi))

    @property
    def measure(self) -> float:
        """D-dimensional volume."""
        return math.prod(self.widths)

    @property
    def scale(self) -> tuple[float, ...]:
        """2 / (hi − lo) per axis: d/dx = scale · d/dz for the unit coordinate z = to_unit(x)."""
        return tuple(2.0 / w for w in self.widths)

    # -- unit map

    def _bounds(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lo = torch.tensor(self.lo, dtype=like.dtype, device=like.device)
        hi = torch.tensor(self.hi, dtype=like.dtype, device=like.device)
        return lo, hi

    def _check_last(self, x: torch.Tensor, arg: str) -> None:
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"{arg}: last dimension must be {self.dim}, got shape {tuple(x.shape)}")

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Affine map of the box onto [−1, 1]^D (lo → −1 and hi → +1 exactly), on the last dimension."""
        self._check_last(x, "x")
        lo, hi = self._bounds(x)
        return 2 * (x - lo) / (hi - lo) - 1

    def from_unit(self, z: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_unit` (−1 → lo and +1 → hi exactly)."""
        self._check_last(z, "z")
        lo, hi = self._bounds(z)
        return lo * ((1 - z) / 2) + hi * ((1 + z) / 2)

    def contains(self, x: torch.Tensor, tol: float = 0.0) -> torch.Tensor:
        """Boolean mask [...]: whether each point lies in the box enlarged by ``tol`` (compared in x's dtype)."""
        self._check_last(x, "x")
        lo, hi = self._bounds(x)
        return ((x >= lo - tol) & (x <= hi + tol)).all(dim=-1)

    # -- faces

    def faces(self) -> list[Face]:
        """All 2D faces, time faces included: axis 0 lo, axis 0 hi, axis 1 lo, … (index = 2·axis + side)."""
        out = []
        for axis, name in enumerate(self.names):
            out.append(Face(axis, "lo", f"{name}={_fmt(self.lo[axis])}"))
            out.append(Face(axis, "hi", f"{name}={_fmt(self.hi[axis])}"))
        return out

    def boundary_faces(self) -> list[int]:
        """Indices (into :meth:`faces`) of the spatial faces, where boundary conditions apply."""
        return [2 * a + s for a in self.space_axes for s in (0, 1)]

    def initial_face(self) -> int:
        """Index (into :meth:`faces`) of the t = t0 face."""
        return 2 * self._require_time("initial_face")

    def face_index(self, key: int | str) -> int:
        """Index of a face from its index, its name (``"x=-1"``, value compared numerically) or ``"x.lo"``."""
        faces = self.faces()
        if isinstance(key, numbers.Integral) and not isinstance(key, bool):
            if 0 <= int(key) < len(faces):
                return int(key)
        elif isinstance(key, str):
            for i, f in enumerate(faces):
                if key.replace(" ", "") in (f.name, f"{self.names[f.axis]}.{f.side}"):
                    return i
            name, sep, value = key.replace(" ", "").partition("=")
            if sep and name in self.names:
                axis = self.names.index(name)
                try:
                    v = float(value)
                except ValueError:
                    v = math.nan
                for side, bound in enumerate((self.lo[axis], self.hi[axis])):
                    if math.isclose(v, bound, rel_tol=1e-9, abs_tol=1e-12):
                        return 2 * axis + side
        raise ValueError(f"face: must be one of {[f.name for f in faces]} or an index below {len(faces)}, got {key!r}")

    def normal(
        self, face: int | str, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Outward unit normal [D] of face ``face`` (index into :meth:`faces`)."""
        f = self.faces()[self.face_index(face)]
        n = torch.zeros(self.dim, dtype=dtype or torch.get_default_dtype(), device=device)
        n[f.axis] = f.sign
        return n

    def __repr__(self) -> str:
        axes = ", ".join(f"{n}∈[{_fmt(a)}, {_fmt(b)}]" for n, a, b in zip(self.names, self.lo, self.hi))
        t = "" if self.time_axis is None else f", time={self.names[self.time_axis]}"
        return f"Box({axes}{t})"


# ----------------------------------------------------------------------------- unit-cube sampling


def _as_rng(rng: RngLike) -> np.random.Generator:
    """A Generator from a Generator (used as is), a SeedSequence, an int seed or None (fresh entropy)."""
    if isinstance(rng, bool) or not (
        rng is None or isinstance(rng, np.random.Generator | np.random.SeedSequence | numbers.Integral)
    ):
        raise ValueError(f"rng: must be a numpy Generator, a seed or None, got {rng!r}")
    return np.random.default_rng(rng)


def _check_method(method: str, arg: str = "method") -> str:
    if method not in METHODS:
        raise ValueError(f"{arg}: must be one of {', '.join(METHODS)}, got {method!r}")
    return method


def _check_count(n: int, arg: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"{arg}: must be a non-negative integer, got {n!r}")
    return int(n)


def _qmc_engine(cls: type, d: int, seed: int) -> qmc.QMCEngine:
    # scipy >= 1.15 names the seed argument ``rng``; older versions call it ``seed``.
    key = "rng" if "rng" in inspect.signature(cls).parameters else "seed"
    return cls(d, scramble=True, **{key: seed})


def _unit_random(d: int, n: int, method: str, rng: np.random.Generator) -> np.ndarray:
    """n points [n, d] in [0, 1)^d by a random or quasi-random method (not grid)."""
    if d == 0 or n == 0:
        return np.zeros((n, d))
    if method == "uniform":
        return rng.random((n, d))
    seed = int(rng.integers(2**63))
    if method == "sobol":
        engine = _qmc_engine(qmc.Sobol, d, seed)
        with warnings.catch_warnings():
            # Taking the first n of a scrambled Sobol' sequence is fine; n need not be a power of 2.
            warnings.filterwarnings("ignore", message="The balance properties of Sobol", category=UserWarning)
            return engine.random(n)
    if method == "halton":
        return _qmc_engine(qmc.Halton, d, seed).random(n)
    if method == "lhs":
        return _qmc_engine(qmc.LatinHypercube, d, seed).random(n)
    raise AssertionError(method)


def _grid_counts(widths: Sequence[float], n: int) -> list[int]:
    """Points per axis for a grid of at least n points with about equal spacing on every axis."""
    if n == 0:
        return [0] * len(widths)
    if not widths:
        return []
    h = (math.prod(widths) / n) ** (1.0 / len(widths))
    return [max(1, math.ceil(w / h - 1e-9)) for w in widths]


def _sample_box(lo: np.ndarray, hi: np.ndarray, n: int, method: str, rng: np.random.Generator) -> np.ndarray:
    """Points [m, d] in the d-box [lo, hi] (d may be 0). m = n, except for "grid" (cell centres, m ≥ n)."""
    d = len(lo)
    if method == "grid":
        if n == 0:
            return np.zeros((0, d))
        counts = _grid_counts(list(hi - lo), n)
        axes = [a + (np.arange(m) + 0.5) * (b - a) / m for a, b, m in zip(lo, hi, counts)]
        if d == 0:
            return np.zeros((1, 0))
        return np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=-1)
    u = _unit_random(d, n, method, rng)
    return np.clip(lo + u * (hi - lo), lo, hi)


def _to_torch(x: np.ndarray, dtype: torch.dtype | None, device: torch.device | str | None) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype or torch.get_default_dtype(), device=device)


def _allocate(n: int, weights: Sequence[float]) -> list[int]:
    """Split n into integer parts proportional to ``weights`` (largest remainder; exact sum n)."""
    total = sum(weights)
    quotas = [n * w / total for w in weights]
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


# ----------------------------------------------------------------------------- samplers


class BoundaryPoints(NamedTuple):
    """Boundary collocation points, grouped by face in :meth:`Box.faces` order.

    ``points`` [N, D]; ``face`` [N] (int64 index into ``box.faces()``); ``normal`` [N, D]
    outward unit normals. Select one face's points with ``points[face == k]``.
    """

    points: torch.Tensor
    face: torch.Tensor
    normal: torch.Tensor

    def by_face(self) -> dict[int, torch.Tensor]:
        """The points of each face that received any, as {face index: [N_k, D]}."""
        return {int(k): self.points[self.face == k] for k in torch.unique(self.face).tolist()}


def sample_interior(
    box: Box,
    n: int,
    method: str = "uniform",
    rng: RngLike = None,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Collocation points [n, D] in the box (time included for a space-time box).

    "grid" gives the cell centres of a grid of at least n points with about equal spacing
    per axis (so strictly inside the box), not exactly n points.
    """
    n = _check_count(n)
    _check_method(method)
    x = _sample_box(np.array(box.lo), np.array(box.hi), n, method, _as_rng(rng))
    return _to_torch(x, dtype, device)


def _sample_on_faces(
    box: Box, faces: list[int], n: int, method: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Points on the given faces, split by face measure; returns (points [N, D], face index [N])."""
    lo, hi = np.array(box.lo), np.array(box.hi)
    all_faces = box.faces()
    measures = [math.prod(w for i, w in enumerate(box.widths) if i != all_faces[k].axis) for k in faces]
    pts, idx = [], []
    for k, n_k in zip(faces, _allocate(n, measures)):
        axis = all_faces[k].axis
        free = [i for i in range(box.dim) if i != axis]
        sub = _sample_box(lo[free], hi[free], n_k, method, rng)
        x = np.empty((len(sub), box.dim))
        x[:, free] = sub
        x[:, axis] = lo[axis] if all_faces[k].side == "lo" else hi[axis]
        pts.append(x)
        idx.append(np.full(len(sub), k, dtype=np.int64))
    return np.concatenate(pts), np.concatenate(idx)


def sample_boundary(
    box: Box,
    n: int,
    method: str = "uniform",
    rng: RngLike = None,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> BoundaryPoints:
    """Points on the spatial faces, n split among them in proportion to face measure.

    Time faces are excluded: on a space-time box each spatial face spans [t0, t1]. With
    one spatial dimension the two end points share n (n/2 each, spread over time; without
    time, repeated copies of the end point, or one each for "grid"). "grid" lays a grid of
    cell centres on each face, so corners are not duplicated.
    """
    n = _check_count(n)
    _check_method(method)
    faces = box.boundary_faces()
    if not faces:
        if n > 0:
            raise ValueError(f"n: box {box.names} has no spatial faces, so no boundary points can be drawn, got n={n}")
        x, idx = np.zeros((0, box.dim)), np.zeros(0, dtype=np.int64)
    else:
        x, idx = _sample_on_faces(box, faces, n, method, _as_rng(rng))
    points = _to_torch(x, dtype, device)
    face = torch.as_tensor(idx, dtype=torch.int64, device=device)
    axis, sign = face // 2, (face % 2).to(points.dtype) * 2 - 1
    normal = torch.zeros_like(points)
    normal[torch.arange(len(face), device=device), axis] = sign
    return BoundaryPoints(points, face, normal)


def sample_initial(
    box: Box,
    n: int,
    method: str = "uniform",
    rng: RngLike = None,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Points [n, D] on the initial face t = t0 of a space-time box (ValueError without time axis).

    "grid" uses cell centres of the spatial box, as for :func:`sample_interior`.
    """
    n = _check_count(n)
    _check_method(method)
    if box.time_axis is None:
        raise ValueError(f"box: {box.names} has no time axis, so it has no initial face")
    x, _ = _sample_on_faces(box, [box.initial_face()], n, method, _as_rng(rng))
    return _to_torch(x, dtype, device)


def evaluation_grid(
    box: Box,
    resolution: int | Sequence[int],
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[list[np.ndarray], torch.Tensor]:
    """Tensor grid including both ends of every axis, for plots and error norms.

    Returns the 1-D axes and the points [prod(res), D] in "ij" order, so values at the
    points reshape to ``[len(a) for a in axes]`` (axis 0 slowest).
    """
    res = [resolution] * box.dim if isinstance(resolution, numbers.Integral) else list(resolution)
    if len(res) != box.dim:
        raise ValueError(f"resolution: must be an int or one int per axis ({box.dim}), got {resolution!r}")
    for r in res:
        if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 2:
            raise ValueError(f"resolution: must be integers >= 2 (both ends included), got {resolution!r}")
    axes = [np.linspace(a, b, int(r)) for a, b, r in zip(box.lo, box.hi, res)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return axes, _to_torch(np.stack([m.ravel() for m in mesh], axis=-1), dtype, device)


@dataclass(frozen=True)
class Points:
    """One draw of collocation points; parts that were not requested are empty [0, D] tensors."""

    interior: torch.Tensor
    boundary: torch.Tensor
    boundary_face: torch.Tensor  # [N_b] int64 index into box.faces()
    boundary_normal: torch.Tensor  # [N_b, D] outward unit normals
    initial: torch.Tensor


class Sampler:
    """Draws interior, boundary and initial points, and redraws them every ``resample_every`` steps.

    The points used at step s come from the draw at step s − s mod resample_every (0 if
    ``resample_every`` is 0: one fixed draw). A draw depends only on (seed, that step,
    part), so two runs with one seed see the same points at the same steps, also after a
    restart mid-run; and changing one count does not change the other parts. ``name`` is
    the config key path put in front of error messages.
    """

    def __init__(
        self,
        box: Box,
        interior: int,
        boundary: int = 0,
        initial: int = 0,
        method: str = "uniform",
        seed: int | None = 0,
        resample_every: int = 0,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        name: str = "points",
    ) -> None:
        p = f"{name}." if name else ""
        if not isinstance(box, Box):
            raise ValueError(f"{p}box: must be a Box, got {type(box).__name__}")
        self.box = box
        self.n_interior = _check_count(interior, f"{p}interior")
        self.n_boundary = _check_count(boundary, f"{p}boundary")
        self.n_initial = _check_count(initial, f"{p}initial")
        if self.n_boundary and not box.boundary_faces():
            raise ValueError(f"{p}boundary: box {box.names} has no spatial faces, got {boundary}")
        if self.n_initial and not box.has_time:
            raise ValueError(f"{p}initial: box {box.names} has no time axis, got {initial}")
        self.method = _check_method(method, f"{p}method")
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1)
        self.seed = _check_count(seed, f"{p}seed")
        self.resample_every = _check_count(resample_every, f"{p}resample_every")
        self.dtype = dtype or torch.get_default_dtype()
        self.device = device
        self._key: int | None = None
        self._points: Points | None = None

    @property
    def counts(self) -> dict[str, int]:
        """Requested counts per part ("grid" may give more)."""
        return {"interior": self.n_interior, "boundary": self.n_boundary, "initial": self.n_initial}

    def derive(self, name: str, **changes: int) -> Sampler:
        """The same sampler (box, method, seed, dtype, device) with other ``interior``, ``boundary``,
        ``initial`` or ``resample_every``; ``name`` prefixes its error messages."""
        settings = {"interior": self.n_interior, "boundary": self.n_boundary, "initial": self.n_initial,
                    "resample_every": self.resample_every}
        unknown = set(changes) - set(settings)
        if unknown:
            raise ValueError(f"{name}: unknown setting {sorted(unknown)[0]!r}; allowed: {', '.join(settings)}")
        return Sampler(self.box, **{**settings, **changes}, method=self.method, seed=self.seed,
                       dtype=self.dtype, device=self.device, name=name)

    def draw_step(self, step: int) -> int:
        """The step whose draw is in use at ``step``."""
        step = _check_count(step, "step")
        if self.resample_every == 0 or self.method == "grid":  # a grid never changes
            return 0
        return step - step % self.resample_every

    def sample(self, step: int = 0) -> Points:
        """Points for training step ``step``; a new draw only when ``draw_step(step)`` changes."""
        key = self.draw_step(step)
        if self._points is None or key != self._key:
            self._points = self._draw(key)
            self._key = key
        return self._points

    def _rng(self, key: int, part: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, key, part]))

    def _draw(self, key: int) -> Points:
        kw = {"dtype": self.dtype, "device": self.device}
        box, empty = self.box, torch.zeros(0, self.box.dim, **kw)
        interior = sample_interior(box, self.n_interior, self.method, self._rng(key, 0), **kw)
        if self.n_boundary:
            bnd = sample_boundary(box, self.n_boundary, self.method, self._rng(key, 1), **kw)
        else:
            bnd = BoundaryPoints(empty, torch.zeros(0, dtype=torch.int64, device=self.device), empty)
        initial = sample_initial(box, self.n_initial, self.method, self._rng(key, 2), **kw) if self.n_initial else empty
        return Points(interior, bnd.points, bnd.face, bnd.normal, initial)

    def __repr__(self) -> str:
        return (
            f"Sampler({self.box!r}, interior={self.n_interior}, boundary={self.n_boundary}, initial={self.n_initial}, "
            f"method={self.method!r}, seed={self.seed}, resample_every={self.resample_every})"
        )
