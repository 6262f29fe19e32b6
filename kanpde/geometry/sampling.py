"""Collocation points on any domain: one-off samplers and the :class:`Sampler` used in training.

Sampling draws in float64 (numpy) and casts to the requested dtype. Every sampler takes ``rng``
(a ``numpy.random.Generator``, a seed, or ``None``), so a run is reproducible from its seed.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from kanpde.geometry._random import RngLike, _as_rng, _check_count, _check_method, _to_torch
from kanpde.geometry.domain import Domain

__all__ = ["BoundaryPoints", "Points", "Sampler", "sample_interior", "sample_boundary", "sample_initial",
           "evaluation_grid"]


class BoundaryPoints(NamedTuple):
    """Boundary collocation points with their part ids (for a box: face index in :meth:`Box.faces` order).

    ``points`` [N, D]; ``face`` [N] (int64 part id); ``normal`` [N, D] outward unit normals.
    Select one part's points with ``points[face == k]``.
    """

    points: torch.Tensor
    face: torch.Tensor
    normal: torch.Tensor

    def by_face(self) -> dict[int, torch.Tensor]:
        """The points of each face that received any, as {face index: [N_k, D]}."""
        return {int(k): self.points[self.face == k] for k in torch.unique(self.face).tolist()}


def sample_interior(
    box: Domain,
    n: int,
    method: str = "uniform",
    rng: RngLike = None,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Collocation points [n, D] in the domain (time included for a space-time domain).

    Exactly n points, except for "grid": the cell centres of a grid of at least n points with
    about equal spacing per axis (so strictly inside a box; about n inside another domain).
    """
    n = _check_count(n)
    _check_method(method)
    return _to_torch(box._interior(n, method, _as_rng(rng)), dtype, device)


def sample_boundary(
    box: Domain,
    n: int,
    method: str = "uniform",
    rng: RngLike = None,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> BoundaryPoints:
    """Points on the boundary parts, n split among them in proportion to their measure, with outward
    unit normals and part ids. For a box the parts are the spatial faces:

    Time faces are excluded: on a space-time box each spatial face spans [t0, t1]. With
    one spatial dimension the two end points share n (n/2 each, spread over time; without
    time, repeated copies of the end point, or one each for "grid"). "grid" lays a grid of
    cell centres on each face, so corners are not duplicated.
    """
    n = _check_count(n)
    _check_method(method)
    x, part, normal, _ = box._boundary(n, method, _as_rng(rng))
    points = _to_torch(x, dtype, device)
    return BoundaryPoints(points, torch.as_tensor(part, dtype=torch.int64, device=device),
                          _to_torch(normal, points.dtype, device))


def sample_initial(
    box: Domain,
    n: int,
    method: str = "uniform",
    rng: RngLike = None,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Points [n, D] at t = t0 of a space-time domain (ValueError without time axis).

    "grid" uses cell centres of the spatial domain, as for :func:`sample_interior`.
    """
    n = _check_count(n)
    _check_method(method)
    return _to_torch(box._initial(n, method, _as_rng(rng)), dtype, device)


def evaluation_grid(
    box: Domain,
    resolution: int | Sequence[int],
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[list[np.ndarray], torch.Tensor]:
    """Tensor grid over the (bounding) box including both ends of every axis, for plots and error norms.

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
    boundary_face: torch.Tensor  # [N_b] int64 part id (for a box: index into box.faces())
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
        box: Domain,
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
        if not isinstance(box, Domain):
            raise ValueError(f"{p}box: must be a Box or another kanpde domain, got {type(box).__name__}")
        self.box = box
        self.n_interior = _check_count(interior, f"{p}interior")
        self.n_boundary = _check_count(boundary, f"{p}boundary")
        self.n_initial = _check_count(initial, f"{p}initial")
        if self.n_boundary and not box.boundary_parts():
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
