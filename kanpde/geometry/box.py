"""Axis-aligned boxes in space and space × time (the fast, original domain), with their sampling.

A :class:`Box` is a product of intervals [lo_i, hi_i] with a name per axis. One axis may
be time (``time_axis``); then the box is a space-time cylinder: its *boundary* is made of
the spatial faces only (they span the whole time interval) and the *initial* face is
t = t0. The final time face carries no condition and is never sampled.

Faces are indexed in :meth:`Box.faces` order (axis 0 lo, axis 0 hi, axis 1 lo, …), time
faces included, so a face index means the same thing for every box; boundary sampling
simply never produces the indices of time faces.

Sampling draws on the unit cube with one of :data:`METHODS` and maps affinely to the box,
in float64. A box is a :class:`~kanpde.geometry.domain.Domain`: it can be combined with other
domains (``Box(...) - Disk(...)``); its boundary parts are its faces, labelled by their name
(``"x=-1"``), ``"x.lo"`` and the box's ``name`` if given.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from kanpde.geometry._random import _allocate, _sample_box
from kanpde.geometry.distance import r_and_all
from kanpde.geometry.domain import Domain, On, Piece, default_names, label_check

__all__ = ["Box", "Face"]


class Face(NamedTuple):
    """One (D−1)-dimensional face of a box: the set where coordinate ``axis`` equals lo or hi."""

    axis: int
    side: str  # "lo" or "hi"
    name: str  # e.g. "x=-1"

    @property
    def sign(self) -> float:
        """Sign of the outward normal along ``axis``: −1 on the lo face, +1 on the hi face."""
        return -1.0 if self.side == "lo" else 1.0


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
class Box(Domain):
    """The box [lo_0, hi_0] × … × [lo_{D−1}, hi_{D−1}], axes named ``names``; optionally one is time.

    ``Box([-1, -1], [1, 1], ("x", "y"))`` is the square; ``Box.space_time([-1], [1], 0, 1)``
    is the space-time cylinder of the 1-D interval over t ∈ [0, 1]. ``time_axis`` may be
    given as an index or as an axis name. Invalid input raises ``ValueError`` naming the
    argument. ``name`` labels all its faces as one boundary part (e.g. ``"outer"``). Immutable and hashable.
    """

    lo: tuple[float, ...]
    hi: tuple[float, ...]
    names: tuple[str, ...]
    time_axis: int | None
    name: str | None

    def __init__(
        self,
        lo: float | Sequence[float],
        hi: float | Sequence[float],
        names: str | Sequence[str] | None = None,
        time_axis: int | str | None = None,
        *,
        name: str | None = None,
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
            names_t = default_names(dim)
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
        object.__setattr__(self, "name", None if name is None else label_check(name, ""))

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
            names = (*default_names(len(lo_t)), "t")
        return cls((*lo_t, t0f), (*hi_t, t1f), names, time_axis=len(lo_t))

    # -- shape

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
    def measure(self) -> float:
        """D-dimensional volume."""
        return math.prod(self.widths)

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
        if not isinstance(x, torch.Tensor):
            return super().contains(x, tol)
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
        label = "" if self.name is None else f", name={self.name!r}"
        return f"Box({axes}{t}{label})"

    # -- as a Domain: parts are faces (index = face index), φ is the product of face gaps
    def part_labels(self) -> list[tuple[str, ...]]:
        extra = () if self.name is None else (self.name,)
        return [(f.name, f"{self.names[f.axis]}.{f.side}", *extra) for f in self.faces()]

    def boundary_parts(self) -> list[int]:
        return self.boundary_faces()

    def _match_part(self, name: str) -> list[int]:
        found = super()._match_part(name)
        if not found:
            try:
                index = self.face_index(name)
            except ValueError:
                return []
            found = [index] if index in self.boundary_faces() else []
        return found

    def distance(self, x: torch.Tensor, on: On = "all") -> torch.Tensor:
        """φ = Π over the selected faces of (gap to the face)/(width): zero on them, positive inside."""
        if callable(on):
            raise ValueError("on: a hard condition needs part names, not a predicate")
        factor = torch.ones_like(x[:, 0])
        for index in self.parts_of(on):
            face = self.faces()[index]
            lo, hi = self.lo[face.axis], self.hi[face.axis]
            gap = x[:, face.axis] - lo if face.side == "lo" else hi - x[:, face.axis]
            factor = factor * gap / (hi - lo)
        return factor

    def _signed(self, x: np.ndarray) -> np.ndarray:
        lo, hi = np.array(self.lo), np.array(self.hi)
        return np.minimum(x - lo, hi - x).min(axis=1)

    def _slab(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        """((w/2)² − (x_a − c_a)²)/w: positive strictly between the two faces of ``axis``."""
        w, c = self.widths[axis], (self.lo[axis] + self.hi[axis]) / 2
        return ((w / 2) ** 2 - (x[:, axis] - c) ** 2) / w

    def level(self, x: torch.Tensor) -> torch.Tensor:
        return r_and_all(self._slab(x, a) for a in self.space_axes)

    def pieces(self) -> tuple[Piece, ...]:
        """The spatial faces as pieces (for CSG); defined for boxes without a time axis."""
        if self.has_time:
            raise ValueError(f"domain: {self!r} has a time axis; use SpaceTime(domain, t0, t1) for CSG in time")
        return self.cached("pieces", lambda: tuple(self._face_piece(f) for f in self.faces()))

    def _face_piece(self, face: Face) -> Piece:
        lo, hi, axis = np.array(self.lo), np.array(self.hi), face.axis
        free = [i for i in range(self.dim) if i != axis]
        bound = self.lo[axis] if face.side == "lo" else self.hi[axis]

        def point(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            x = np.empty((len(u), self.dim))
            x[:, free] = lo[free] + u * (hi[free] - lo[free])
            x[:, axis] = bound
            normal = np.zeros_like(x)
            normal[:, axis] = face.sign
            return x, normal

        trim = (lambda x: r_and_all(self._slab(x, i) for i in free)) if free else None
        labels = self.part_labels()[self.faces().index(face)]
        return Piece(labels, math.prod(self.widths[i] for i in free), len(free), point,
                     lambda x: x[:, axis] - bound, trim)

    def _interior(self, n: int, method: str, rng: np.random.Generator) -> np.ndarray:
        return _sample_box(np.array(self.lo), np.array(self.hi), n, method, rng)

    def _boundary(self, n: int, method: str, rng: np.random.Generator, extra: int = 0):
        if extra:
            raise ValueError("domain: a Box samples its own time axis; use Box.space_time")
        faces = self.boundary_faces()
        if not faces:
            if n > 0:
                raise ValueError(f"n: box {self.names} has no spatial faces, so no boundary points can be drawn, "
                                 f"got n={n}")
            x, idx = np.zeros((0, self.dim)), np.zeros(0, dtype=np.int64)
        else:
            x, idx = _sample_on_faces(self, faces, n, method, rng)
        normal = np.zeros_like(x)
        normal[np.arange(len(idx)), idx // 2] = (idx % 2) * 2 - 1
        return x, idx, normal, np.zeros((len(x), 0))

    def _initial(self, n: int, method: str, rng: np.random.Generator) -> np.ndarray:
        if self.time_axis is None:
            raise ValueError(f"box: {self.names} has no time axis, so it has no initial face")
        return _sample_on_faces(self, [self.initial_face()], n, method, rng)[0]


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


