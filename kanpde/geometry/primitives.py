"""Primitive domains: Interval, Rectangle (boxes), Ball/Disk, Ellipse and Polygon.

Each primitive's boundary is one named part (default: "circle", "sphere", "ellipse",
"polygon"; boxes: their faces, plus the box's name). Polygon predicates use plain numpy
(crossing number, segment distances): the polygons here have few edges, and numpy keeps the
sampler free of a geometry dependency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.special import gamma, ndtri

from kanpde.geometry.box import Box
from kanpde.geometry.distance import join
from kanpde.geometry.domain import Domain, Piece, default_names, label_check

__all__ = ["Interval", "Rectangle", "Ball", "Disk", "Ellipse", "Polygon"]


def _vector(value, arg: str, dim: int | None = None) -> np.ndarray:
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{arg}: must be a list of numbers, got {value!r}") from None
    if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)) or (dim is not None and v.size != dim):
        size = f"{dim} " if dim is not None else ""
        raise ValueError(f"{arg}: must be a list of {size}finite numbers, got {value!r}")
    return v


def _positive(value, arg: str) -> float:
    try:
        r = float(value)
    except (TypeError, ValueError):
        r = math.nan
    if not (math.isfinite(r) and r > 0):
        raise ValueError(f"{arg}: must be a finite number > 0, got {value!r}")
    return r


def Interval(a: float, b: float, name: str | None = None, names: Sequence[str] | None = None) -> Box:  # noqa: N802
    """The interval [a, b] (a 1-D :class:`Box`; its end points are the parts "x=a" and "x=b")."""
    return Box([a], [b], names, name=name)


def Rectangle(lo: Sequence[float], hi: Sequence[float], name: str | None = None,  # noqa: N802
              names: Sequence[str] | None = None) -> Box:
    """The rectangle [lo, hi] (a 2-D :class:`Box`); ``name`` labels its four sides together."""
    if len(_vector(lo, "lo")) != 2:
        raise ValueError(f"lo: a rectangle needs 2 coordinates, got {list(lo)}")
    return Box(lo, hi, names, name=name)


class Ball(Domain):
    """The ball |x − c| ≤ r in any dimension ≥ 2 (:func:`Disk` in 2-D); one boundary part."""

    def __init__(self, center: Sequence[float], radius: float, name: str | None = None,
                 names: Sequence[str] | None = None) -> None:
        self.center = _vector(center, "center")
        self.radius = _positive(radius, "radius")
        d = len(self.center)
        if d < 2:
            raise ValueError(f"center: a ball needs 2 or more coordinates (use Interval in 1-D), got {list(center)}")
        self.name = label_check(name, "circle" if d == 2 else "sphere")
        self.names = tuple(names) if names is not None else default_names(d)
        self.lo = tuple(self.center - self.radius)
        self.hi = tuple(self.center + self.radius)

    @property
    def measure(self) -> float:
        d = self.dim
        return math.pi ** (d / 2) / gamma(d / 2 + 1) * self.radius**d

    def _signed(self, x: np.ndarray) -> np.ndarray:
        return self.radius - np.sqrt(sum((x[:, i] - c) ** 2 for i, c in enumerate(self.center)))

    def level(self, x: torch.Tensor) -> torch.Tensor:
        """(r² − |x − c|²) / 2r."""
        c = torch.as_tensor(self.center, dtype=x.dtype, device=x.device)
        return (self.radius**2 - (x - c).square().sum(-1)) / (2 * self.radius)

    def _unit_normals(self, u: np.ndarray) -> np.ndarray:
        """Uniform points on the unit sphere from u ∈ [0, 1)^param_dim."""
        if self.dim == 2:
            angle = 2 * np.pi * u[:, 0]
            return np.stack([np.cos(angle), np.sin(angle)], axis=1)
        if self.dim == 3:  # Archimedes: z uniform in [-1, 1]
            z, angle = 1 - 2 * u[:, 0], 2 * np.pi * u[:, 1]
            s = np.sqrt(np.clip(1 - z * z, 0, None))
            return np.stack([s * np.cos(angle), s * np.sin(angle), z], axis=1)
        g = ndtri(np.clip(u, 1e-12, 1 - 1e-12))  # normalised Gaussian vectors
        return g / np.linalg.norm(g, axis=1, keepdims=True)

    def pieces(self) -> tuple[Piece, ...]:
        def point(u):
            n = self._unit_normals(u)
            return self.center + self.radius * n, n

        d = self.dim
        area = 2 * math.pi ** (d / 2) / gamma(d / 2) * self.radius ** (d - 1)
        return self.cached("pieces", lambda: (Piece((self.name,), area, d - 1 if d <= 3 else d, point, self.level),))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.center.tolist()}, {self.radius:g}, name={self.name!r})"


def Disk(center: Sequence[float], radius: float, name: str | None = None,  # noqa: N802
         names: Sequence[str] | None = None) -> Ball:
    """The disk |x − c| ≤ r in the plane (a 2-D :class:`Ball`)."""
    if len(_vector(center, "center")) != 2:
        raise ValueError(f"center: a disk needs 2 coordinates, got {list(center)}")
    return Ball(center, radius, name, names)


class Ellipse(Domain):
    """The ellipse ((x − c_x)/a)² + ((y − c_y)/b)² ≤ 1; one boundary part, sampled uniformly in arc length."""

    def __init__(self, center: Sequence[float], axes: Sequence[float], name: str | None = None,
                 names: Sequence[str] | None = None) -> None:
        self.center = _vector(center, "center", 2)
        axes_v = _vector(axes, "axes", 2)
        self.axes = np.array([_positive(a, "axes") for a in axes_v])
        self.name = label_check(name, "ellipse")
        self.names = tuple(names) if names is not None else default_names(2)
        self.lo, self.hi = tuple(self.center - self.axes), tuple(self.center + self.axes)
        theta = np.linspace(0, 2 * np.pi, 8193)
        speed = np.hypot(self.axes[0] * np.sin(theta), self.axes[1] * np.cos(theta))
        self._theta = theta
        self._arc = np.concatenate([[0], np.cumsum((speed[1:] + speed[:-1]) / 2 * np.diff(theta))])

    @property
    def measure(self) -> float:
        return math.pi * self.axes[0] * self.axes[1]

    def _q(self, x):
        return (((x - self.center) / self.axes) ** 2).sum(1)

    def _signed(self, x: np.ndarray) -> np.ndarray:
        return (1 - self._q(x)) * self.axes.min() / 2

    def level(self, x: torch.Tensor) -> torch.Tensor:
        """(1 − q(x))·min(a, b)/2, q the ellipse's quadratic form."""
        c = torch.as_tensor(self.center, dtype=x.dtype, device=x.device)
        a = torch.as_tensor(self.axes, dtype=x.dtype, device=x.device)
        return (1 - ((x - c) / a).square().sum(-1)) * float(self.axes.min()) / 2

    def pieces(self) -> tuple[Piece, ...]:
        def point(u):
            theta = np.interp(u[:, 0] * self._arc[-1], self._arc, self._theta)
            cos, sin = np.cos(theta), np.sin(theta)
            a, b = self.axes
            normal = np.stack([b * cos, a * sin], axis=1)
            return self.center + np.stack([a * cos, b * sin], axis=1), normal / np.linalg.norm(normal, axis=1)[:, None]

        return self.cached("pieces", lambda: (Piece((self.name,), float(self._arc[-1]), 1, point, self.level),))

    def __repr__(self) -> str:
        return f"Ellipse({self.center.tolist()}, {self.axes.tolist()}, name={self.name!r})"


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _segments_cross(p, q, r, s) -> bool:
    """Whether the closed segments pq and rs share a point."""
    d1, d2 = _cross(q - p, r - p), _cross(q - p, s - p)
    d3, d4 = _cross(s - r, p - r), _cross(s - r, q - r)
    if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and d1 * d2 < 0 and d3 * d4 < 0:
        return True

    def on(a, b, c, d):  # c collinear with ab and within its bounding box
        return d == 0 and min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    return on(p, q, r, d1) or on(p, q, s, d2) or on(r, s, p, d3) or on(r, s, q, d4)


class Polygon(Domain):
    """A simple polygon (vertices in order, either orientation); each edge is a piece of one part."""

    def __init__(self, vertices: Sequence[Sequence[float]], name: str | None = None,
                 names: Sequence[str] | None = None) -> None:
        try:
            v = np.asarray(vertices, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"vertices: must be a list of [x, y] pairs, got {vertices!r}") from None
        if v.ndim != 2 or v.shape[1] != 2 or len(v) < 3 or not np.all(np.isfinite(v)):
            raise ValueError(f"vertices: must be 3 or more [x, y] pairs of finite numbers, got {vertices!r}")
        edges = np.roll(v, -1, axis=0) - v
        if np.any(np.hypot(*edges.T) == 0):
            raise ValueError("vertices: two consecutive vertices coincide")
        m = len(v)
        for i in range(m):
            for j in range(i + 1, m):
                adjacent = j == i + 1 or (i == 0 and j == m - 1)
                if not adjacent and _segments_cross(v[i], v[(i + 1) % m], v[j], v[(j + 1) % m]):
                    raise ValueError(f"vertices: the polygon is self-intersecting (edges {i} and {j} meet)")
                if adjacent and _cross(edges[i], edges[j]) == 0 and np.dot(edges[i], edges[j]) < 0:
                    raise ValueError(f"vertices: the polygon folds back on itself at edges {i} and {j}")
        area = 0.5 * float(_cross(v, np.roll(v, -1, axis=0)).sum())
        self.vertices = v if area > 0 else v[::-1].copy()  # counter-clockwise
        self._area = abs(area)
        self.name = label_check(name, "polygon")
        self.names = tuple(names) if names is not None else default_names(2)
        self.lo, self.hi = tuple(v.min(0)), tuple(v.max(0))

    @property
    def measure(self) -> float:
        return self._area

    def _edges(self) -> tuple[np.ndarray, np.ndarray]:
        return self.vertices, np.roll(self.vertices, -1, axis=0)

    def _inside_odd(self, x: np.ndarray) -> np.ndarray:
        """Crossing-number test (ray towards +x)."""
        p, q = self._edges()
        px, py, qx, qy = p[:, 0], p[:, 1], q[:, 0], q[:, 1]
        y = x[:, 1:2]
        straddle = (py > y) != (qy > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = px + (y - py) * (qx - px) / (qy - py)
        return ((straddle & (x[:, 0:1] < x_cross)).sum(1) % 2) == 1

    def _signed(self, x: np.ndarray) -> np.ndarray:
        p, q = self._edges()
        d = q - p
        t = np.clip(((x[:, None, :] - p) * d).sum(-1) / (d * d).sum(-1), 0, 1)
        dist = np.linalg.norm(x[:, None, :] - (p + t[..., None] * d), axis=-1).min(1)
        return np.where(self._inside_odd(x), dist, -dist)

    def level(self, x: torch.Tensor) -> torch.Tensor:
        """±φ (R-equivalence of the edges' trimmed distances), + inside by the crossing-number test."""
        phi = join(piece.distance(x) for piece in self.pieces())
        inside = torch.as_tensor(self._inside_odd(x.detach().cpu().numpy().astype(np.float64)), device=x.device)
        return torch.where(inside, phi, -phi)

    def pieces(self) -> tuple[Piece, ...]:
        return self.cached("pieces", lambda: tuple(self._edge(i) for i in range(len(self.vertices))))

    def _edge(self, i: int) -> Piece:
        p, q = self.vertices[i], self.vertices[(i + 1) % len(self.vertices)]
        length = float(np.hypot(*(q - p)))
        normal = np.array([q[1] - p[1], p[0] - q[0]]) / length  # outward for a counter-clockwise polygon
        mid = (p + q) / 2

        def point(u):
            return p + u[:, :1] * (q - p), np.broadcast_to(normal, (len(u), 2)).copy()

        def line(x):  # signed distance to the edge's line (Sukumar & Srivastava eq. 11)
            return (x[:, 0] - p[0]) * normal[0] + (x[:, 1] - p[1]) * normal[1]

        def trim(x):  # > 0 within the disk whose diameter is the edge
            return (length**2 / 4 - (x[:, 0] - mid[0]) ** 2 - (x[:, 1] - mid[1]) ** 2) / length

        return Piece((self.name,), length, 1, point, line, trim)

    def __repr__(self) -> str:
        return f"Polygon({self.vertices.tolist()}, name={self.name!r})"
