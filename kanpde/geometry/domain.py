"""The :class:`Domain` interface, and what all domains share: named boundary parts, ``on=``
resolution, rejection sampling with exact counts, and the distance function φ.

A domain is described by three things its subclasses provide:

* ``_signed(x)`` (numpy): a signed distance, exact or approximate, > 0 inside, < 0 outside —
  for ``contains``, rejection sampling and telling which candidate points are boundary points;
* ``level(x)`` (torch, smooth): the same sign, smooth in the interior, for R-function CSG;
* ``pieces()``: the boundary as smooth pieces (:class:`Piece`), each with names (its *part*
  labels), a parametrisation for sampling with outward unit normals, and a distance that
  vanishes exactly on it.

``a - b``, ``a | b`` and ``a & b`` are defined by :mod:`kanpde.geometry.csg` (which builds on this module).
A boundary point's *part* is the index of its piece in ``pieces()``; ``on=`` (a name, a list of
names, ``"all"`` or a predicate on points) selects parts by their labels.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from kanpde.geometry._random import UnitStream, _allocate, _sample_box
from kanpde.geometry.distance import join, r_and_all, trimmed

On = str | Sequence[str] | Callable[[torch.Tensor], torch.Tensor]
"""Where a condition applies: a part name, a list of names, "all", or a predicate x [N, D] -> bool [N]."""

_MAX_BATCHES = 200


@dataclass(frozen=True, eq=False)
class Piece:
    """One smooth piece of a boundary.

    ``point(u)`` maps u ∈ [0, 1)^param_dim, uniformly in surface measure, to points [n, D] and the
    primitive's outward unit normals; ``level(x)`` vanishes on the whole surface the piece lies on,
    ``trim(x)`` > 0 on the piece itself (None: the whole surface is the piece). CSG adds ``keeps``,
    regions (domain, inside?) the piece must lie in, and ``flip`` (a hole's normals point inward).
    """

    names: tuple[str, ...]
    measure: float
    param_dim: int
    point: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    level: Callable[[torch.Tensor], torch.Tensor]
    trim: Callable[[torch.Tensor], torch.Tensor] | None = None
    keeps: tuple[tuple[Domain, bool], ...] = ()
    flip: bool = False

    def sample(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points on the untrimmed surface and the domain's outward normals there."""
        x, normal = self.point(u)
        return x, (-normal if self.flip else normal)

    def distance(self, x: torch.Tensor) -> torch.Tensor:
        """Distance-like φ_k ≥ 0, zero exactly on the (trimmed) piece."""
        trims = [] if self.trim is None else [self.trim(x)]
        trims += [d.level(x) if inside else -d.level(x) for d, inside in self.keeps]
        return trimmed(self.level(x), r_and_all(trims))

    def kept_by(self, **changes) -> Piece:
        return replace(self, **changes)


def label_check(name: str | None, default: str) -> str:
    """A part name: a non-empty string (or the default)."""
    if name is None:
        return default
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name: must be a non-empty string, got {name!r}")
    return name


def default_names(dim: int) -> tuple[str, ...]:
    return tuple("xyz"[:dim]) if dim <= 3 else tuple(f"x{i}" for i in range(dim))


def as_points(x, dim: int, arg: str = "x") -> np.ndarray:
    """x (numpy or torch) as a float64 array [N, dim]."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{arg}: must have shape [N, {dim}], got {list(x.shape)}")
    return x


class Domain:
    """Base class of spatial (and space-time) domains. Subclasses set ``names``, ``lo``, ``hi``
    (the bounding box, which the network's inputs are mapped from) and implement ``_signed``,
    ``level``, ``pieces`` and ``measure``."""

    names: tuple[str, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    time_axis: int | None = None
    _trimmed: bool = False  # CSG results: some pieces are only partly boundary

    def cached(self, key: str, build: Callable[[], object]):
        """``build()`` once per domain (domains are immutable); kept out of pickles."""
        key = f"_cache_{key}"
        if key not in self.__dict__:
            self.__dict__[key] = build()
        return self.__dict__[key]

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_cache_")}

    # -- to implement
    def _signed(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def level(self, x: torch.Tensor) -> torch.Tensor:
        """Smooth level function: > 0 inside, < 0 outside, 0 on the boundary (torch, differentiable)."""
        raise NotImplementedError

    def pieces(self) -> tuple[Piece, ...]:
        raise NotImplementedError

    @property
    def measure(self) -> float:
        raise NotImplementedError

    # -- shape (the same attributes as a Box, so that a Problem can use any domain)
    @property
    def dim(self) -> int:
        return len(self.lo)

    @property
    def has_time(self) -> bool:
        return self.time_axis is not None

    @property
    def space_axes(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.dim) if i != self.time_axis)

    @property
    def space_dim(self) -> int:
        return len(self.space_axes)

    @property
    def widths(self) -> tuple[float, ...]:
        return tuple(b - a for a, b in zip(self.lo, self.hi))

    @property
    def scale(self) -> tuple[float, ...]:
        """2 / (hi − lo) of the bounding box: the network sees ξ = scale·(x − lo) − 1 ∈ [−1, 1]^D."""
        return tuple(2.0 / w for w in self.widths)

    @property
    def diameter(self) -> float:
        return math.sqrt(sum(w * w for w in self.widths))

    def contains(self, x, tol: float = 0.0):
        """Whether each point of x [N, D] (numpy or torch) lies in the domain grown by ``tol``.

        The domain is the closure of its interior: for a CSG result, a point on a sliver left by
        coincident boundaries (x = 1, 0 < y < 1 of [-1, 1]² minus [0, 1]²) is not in it.
        """
        points = as_points(x, self.dim)
        signed = self._signed(points)
        inside = signed >= -tol
        if self._trimmed:
            step = 2 * max(tol, 1e-9 * self.diameter)
            near = np.flatnonzero(inside & (signed <= step / 2))
            if len(near):
                grid = np.meshgrid(*[[-1.0, 0.0, 1.0]] * self.dim, indexing="ij")
                directions = np.stack(grid, -1).reshape(-1, self.dim)
                directions = directions[np.abs(directions).sum(1) > 0]
                directions /= np.linalg.norm(directions, axis=1, keepdims=True)
                probes = points[near, None, :] + step * directions
                inside[near] = (self._signed(probes.reshape(-1, self.dim)).reshape(len(near), -1) > 0).any(1)
        return torch.as_tensor(inside, device=x.device) if isinstance(x, torch.Tensor) else inside

    # -- named boundary parts
    def part_labels(self) -> list[tuple[str, ...]]:
        """The labels of every boundary part, indexed by part id."""
        return [piece.names for piece in self.pieces()]

    def boundary_parts(self) -> list[int]:
        """Part ids where boundary conditions apply ("all")."""
        return list(range(len(self.part_labels())))

    def boundary_faces(self) -> list[int]:
        """The older name of :meth:`boundary_parts` (a box's parts are its faces)."""
        return self.boundary_parts()

    def _match_part(self, name: str) -> list[int]:
        return [i for i, labels in enumerate(self.part_labels()) if name in labels and i in self.boundary_parts()]

    def parts_of(self, on: On, arg: str = "on") -> list[int]:
        """Part ids selected by ``on`` (a name, names or "all"); unknown names raise ValueError with a hint."""
        if on == "all":
            return self.boundary_parts()
        names = [on] if isinstance(on, str) else list(on)
        ids: set[int] = set()
        for name in names:
            found = self._match_part(name) if isinstance(name, str) else []
            if not found:
                known = sorted({label for i in self.boundary_parts() for label in self.part_labels()[i]})
                close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.5)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(f"{arg}: no boundary part named {name!r}; {hint}parts: {', '.join(known)}")
            ids.update(found)
        return sorted(ids)

    def part_mask(self, on: On, part: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Which boundary points (part ids ``part`` [N], points ``x`` [N, D]) ``on`` selects."""
        if callable(on):
            mask = torch.as_tensor(on(x), device=x.device)
            if mask.shape != part.shape:
                raise ValueError(f"on: a predicate must return one boolean per point [{len(part)}], "
                                 f"got shape {list(mask.shape)}")
            return mask.bool()
        return torch.isin(part, torch.as_tensor(self.parts_of(on), dtype=part.dtype, device=part.device))

    # -- distance function
    def distance(self, x: torch.Tensor, on: On = "all") -> torch.Tensor:
        """φ [N]: zero on the selected boundary parts, positive elsewhere in the domain, smooth inside."""
        if callable(on):
            raise ValueError("on: a hard condition needs part names, not a predicate")
        pieces = self.pieces()
        return join(pieces[k].distance(x) for k in self.parts_of(on))

    # -- sampling (numpy, float64)
    def part_measures(self) -> list[float]:
        """Length/area of each part (for a CSG result: estimated from 4096 Sobol' points per piece)."""
        def build() -> list[float]:
            out = []
            for piece in self.pieces():
                if not self._trimmed:
                    out.append(piece.measure)
                    continue
                u = UnitStream(piece.param_dim, "sobol", np.random.default_rng(0)).draw(4096)
                x, normal = piece.sample(u)
                out.append(piece.measure * float(self._on_boundary(x, normal).mean()))
            return out

        return self.cached("part_measures", build)

    def _on_boundary(self, x: np.ndarray, normal: np.ndarray) -> np.ndarray:
        """Whether candidate points with outward normals are boundary points: inside behind, outside ahead."""
        eps = 1e-9 * self.diameter
        return (self._signed(x - eps * normal) > 0) & (self._signed(x + eps * normal) < 0)

    def _interior(self, n: int, method: str, rng: np.random.Generator) -> np.ndarray:
        """n points inside, by rejection from the bounding box ("grid": cell centres inside, about n)."""
        lo, hi = np.array(self.lo), np.array(self.hi)
        fraction = max(self.measure / math.prod(self.widths), 1e-6)
        if method == "grid":
            x = _sample_box(lo, hi, math.ceil(n / fraction), "grid", rng)
            return x[self._signed(x) >= 0]
        stream, parts, got = UnitStream(self.dim, method, rng), [], 0
        for _ in range(_MAX_BATCHES):
            if got >= n:
                break
            x = lo + stream.draw(math.ceil((n - got) / fraction * 1.05) + 16) * (hi - lo)
            x = x[self._signed(x) >= 0]
            parts.append(x)
            got += len(x)
        else:
            raise ValueError(f"domain: could not draw {n} interior points (is it empty?)")
        return np.concatenate(parts or [np.zeros((0, self.dim))])[:n]

    def _boundary(self, n: int, method: str, rng: np.random.Generator,
                  extra: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """n boundary points split among parts by measure: (x, part, normal, extra coordinates in [0, 1))."""
        xs, parts, normals, extras = [], [], [], []
        for k, n_k in enumerate(_allocate(n, self.part_measures())):
            if n_k == 0:
                continue
            x, normal, e = self._piece_points(k, n_k, method, rng, extra)
            xs.append(x), normals.append(normal), extras.append(e)
            parts.append(np.full(len(x), k, dtype=np.int64))
        if not xs:
            return np.zeros((0, self.dim)), np.zeros(0, np.int64), np.zeros((0, self.dim)), np.zeros((0, extra))
        return np.concatenate(xs), np.concatenate(parts), np.concatenate(normals), np.concatenate(extras)

    def _piece_points(self, k: int, n: int, method: str, rng: np.random.Generator, extra: int):
        piece = self.pieces()[k]
        d = piece.param_dim + extra
        if method == "grid":
            u = _sample_box(np.zeros(d), np.ones(d), n, "grid", rng)
            x, normal = piece.sample(u[:, : piece.param_dim])
            keep = self._on_boundary(x, normal) if self._trimmed else np.ones(len(x), bool)
            return x[keep], normal[keep], u[keep, piece.param_dim:]
        stream, out, got = UnitStream(d, method, rng), [], 0
        fraction = max(self.part_measures()[k] / piece.measure, 1e-3)
        for _ in range(_MAX_BATCHES):
            if got >= n:
                break
            u = stream.draw(math.ceil((n - got) / fraction * 1.1) + 16 if self._trimmed else n)
            x, normal = piece.sample(u[:, : piece.param_dim])
            keep = self._on_boundary(x, normal) if self._trimmed else slice(None)
            out.append((x[keep], normal[keep], u[keep, piece.param_dim:]))
            got += len(out[-1][0])
        return tuple(np.concatenate(parts)[:n] for parts in zip(*out))

    def _initial(self, n: int, method: str, rng: np.random.Generator) -> np.ndarray:
        raise ValueError(f"domain: {self!r} has no time axis, so it has no initial face")
