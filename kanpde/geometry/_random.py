"""Random and quasi-random points on the unit cube, shared by every domain's sampler.

Every sampler takes ``rng`` (a ``numpy.random.Generator``, a seed, or ``None``), so a run is
reproducible from its seed. Low layer: numpy, scipy and torch only.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from scipy.stats import qmc

METHODS: tuple[str, ...] = ("uniform", "sobol", "halton", "lhs", "grid")
"""Sampling methods: iid uniform, scrambled Sobol', scrambled Halton, Latin hypercube, tensor grid."""

RngLike = np.random.Generator | np.random.SeedSequence | int | None


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


class UnitStream:
    """Successive batches of points in [0, 1)^d by one method, for rejection sampling.

    Sobol' and Halton continue one scrambled sequence across batches (so the kept points stay
    low-discrepancy); "uniform" draws iid; "lhs" draws a fresh Latin hypercube per batch.
    """

    def __init__(self, d: int, method: str, rng: np.random.Generator) -> None:
        self.d, self.method, self.rng = d, method, rng
        self.engine = None
        if d and method in ("sobol", "halton"):
            cls = qmc.Sobol if method == "sobol" else qmc.Halton
            self.engine = _qmc_engine(cls, d, int(rng.integers(2**63)))

    def draw(self, n: int) -> np.ndarray:
        """The next n points [n, d]."""
        if self.engine is None:
            return _unit_random(self.d, n, "lhs" if self.method == "lhs" else "uniform", self.rng)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The balance properties of Sobol", category=UserWarning)
            return self.engine.random(n)
