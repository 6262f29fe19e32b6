"""Residual-based adaptive distribution of the interior points (RAD; Wu, Zhu, Tan, Kartha & Lu 2023).

Every ``every`` steps a pool of ``pool`` uniform candidates is drawn in the domain, the PDE residual r is
evaluated on all of them, and the interior points are replaced by ``n`` candidates drawn without replacement with
probability

    p(x) ∝ |r(x)|^k / mean(|r|^k) + c                                      (Wu et al. 2023, eq. 2)

so that k = 0 (or large c) gives uniform points and large k concentrates them where the residual is large
(a shock, a sharp layer). Before the first ``every`` steps the sampler's own points are used; with ``until``
set, the draw of the last multiple of ``every`` not after ``until`` stays in use for the rest of the run.

The pool and the choice depend only on (seed, step) and on the residuals; under ``torchrun`` every rank evaluates
its contiguous share of the pool and the residuals are summed over ranks, so all ranks choose the same points.
The chosen points are part of the trainer's checkpoint, so a resumed run continues with them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from kanpde import distributed
from kanpde.config import AdaptiveConfig
from kanpde.distributed import World
from kanpde.field import Field
from kanpde.geometry import Points, Sampler, sample_interior
from kanpde.loss import residual as residual_of

__all__ = ["ResidualAdaptive", "build_adaptive", "rad_probabilities"]

RESIDUAL_CHUNK = 8192
"""Pool points evaluated at once (bounds the memory of the jets)."""

_POOL_PART, _CHOICE_PART = 10, 11  # random-stream labels, apart from the sampler's parts 0..2


def rad_probabilities(residual: np.ndarray, k: float, c: float) -> np.ndarray:
    """The RAD distribution over candidates with residual magnitudes ``residual`` [P]: |r|^k/mean|r|^k + c,
    normalised (uniform when every residual is zero)."""
    density = np.abs(residual) ** k
    mean = density.mean()
    weights = (density / mean if mean > 0 else np.zeros_like(density)) + c
    total = weights.sum()
    return weights / total if total > 0 else np.full_like(weights, 1.0 / weights.size)


class ResidualAdaptive:
    """Chooses the interior points of steps ≥ ``every`` by RAD from ``residual`` (a function of points [P, D]
    returning residuals [P] or [P, m]); see the module docstring."""

    def __init__(self, every: int, pool: int, k: float, c: float, *, seed: int,
                 residual: Callable[[torch.Tensor], torch.Tensor], world: World = distributed.SINGLE,
                 across_ranks: Callable[[torch.Tensor], torch.Tensor] | None = None, name: str = "points.adaptive",
                 until: int | None = None):
        if every < 1 or pool < 1 or k < 0 or c < 0:
            raise ValueError(f"{name}: every and pool must be positive, k and c non-negative")
        if until is not None and until < every:
            raise ValueError(f"{name}.until: must be at least every ({every}) or there is no draw, got {until}")
        self.every, self.pool, self.k, self.c, self.until = every, pool, k, c, until
        self.seed, self.residual, self.world, self.name = seed, residual, world, name
        # the sum of a tensor over ranks (kanpde.distributed.sum_over_ranks under torchrun)
        self.across_ranks = across_ranks if across_ranks is not None or not world.parallel \
            else distributed.sum_over_ranks
        self._key = 0
        self._interior: torch.Tensor | None = None

    def check_sampler(self, sampler: Sampler, name: str) -> None:
        """Refuse a sampler with more interior points than the pool can give."""
        if sampler.n_interior > self.pool:
            raise ValueError(f"{self.name}.pool: must be at least {name}.interior ({sampler.n_interior}), "
                             f"got {self.pool}")

    def draw_step(self, step: int) -> int:
        """The step whose adaptive draw is in use at ``step`` (0: the sampler's own points)."""
        if self.until is not None:
            step = min(step, self.until)
        return step - step % self.every

    def points(self, points: Points, sampler: Sampler, step: int) -> Points:
        """``points`` (the sampler's draw for ``step``) with the interior replaced by the adaptive draw."""
        key = self.draw_step(step)
        if key == 0:
            return points
        count = points.interior.shape[0]
        if self._interior is None or key != self._key or self._interior.shape[0] != count:
            self._interior = self._choose(sampler, key, count)
            self._key = key
        return dataclasses.replace(points, interior=self._interior)

    def _rng(self, key: int, part: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, key, part]))

    def _choose(self, sampler: Sampler, key: int, count: int) -> torch.Tensor:
        candidates = sample_interior(sampler.box, self.pool, "uniform", self._rng(key, _POOL_PART),
                                     dtype=sampler.dtype, device=sampler.device)
        magnitude = self._pool_residuals(candidates)
        probabilities = rad_probabilities(magnitude.cpu().numpy(), self.k, self.c)
        chosen = self._rng(key, _CHOICE_PART).choice(self.pool, size=count, replace=False, p=probabilities)
        return candidates[torch.as_tensor(np.sort(chosen), device=candidates.device)]

    def _pool_residuals(self, candidates: torch.Tensor) -> torch.Tensor:
        """|r| at every candidate, identical on every rank: each rank evaluates its share, then a sum."""
        world = self.world
        share = torch.tensor_split(torch.arange(candidates.shape[0]), world.size)[world.rank]
        magnitude = candidates.new_zeros(candidates.shape[0])
        for chunk in torch.split(share, RESIDUAL_CHUNK):
            if chunk.numel():
                r = self.residual(candidates[chunk.to(candidates.device)]).detach()
                magnitude[chunk.to(candidates.device)] = r.reshape(r.shape[0], -1).norm(dim=1)
        return self.across_ranks(magnitude) if world.parallel else magnitude

    # -- checkpoint state -------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"key": self._key, "interior": self._interior}

    def load_state_dict(self, state: dict) -> None:
        self._key, self._interior = state["key"], state["interior"]


def build_adaptive(config: AdaptiveConfig | None, field: Field, interior: int, seed: int,
                   world: World = distributed.SINGLE) -> ResidualAdaptive | None:
    """The RAD sampler of ``points.adaptive`` (None when unset) on the residual of ``field``; the pool defaults
    to 10 x ``interior``."""
    if config is None:
        return None

    @torch.no_grad()
    def residual(x: torch.Tensor) -> torch.Tensor:
        return residual_of(field, x)

    pool = config.pool if config.pool is not None else 10 * interior
    return ResidualAdaptive(config.every, pool, config.k, config.c, seed=seed, residual=residual, world=world,
                            until=config.until)
