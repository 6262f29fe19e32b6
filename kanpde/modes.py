"""The residual's sine modes: a weak-form (Galerkin) loss term, "residual_modes" (``train.residual_modes``).

The pointwise loss mean(r²) weighs every part of the residual r alike. On a wave, u_tt = c²u_xx, that is not
what the error feels: an error mode e = a(t)·sin(kπx) obeys a'' + (ckπ)²a = f_k(t), with f_k the residual's
sin(kπx) part, so a residual component oscillating near the frequency ckπ is resonant and drives an error
mode that grows with t, although the hard initial conditions gave that mode nothing (docs/systems.md,
"The wave: attempts at 1e-3"). Such a component can be tiny pointwise, so the mean square hardly sees it.
This term measures the residual in the weak sense instead: its coefficients

    ĉ_k = 2^d/|Ω| ∫_Ω r(x) Π_i sin(k_i π (x_i − lo_i)/L_i) dx,   k_i = 1..m_i,

on a box Ω = Π [lo_i, lo_i + L_i] (the sine series of r: r = Σ ĉ_k φ_k), computed by the midpoint rule on a
fixed grid of n_i points per axis, and the term is mean_k ĉ_k². At the midpoints the sines are exactly
orthogonal for k_i < n_i (the discrete sine transform DST-II), so a residual that is one mode gives exactly
its coefficient there and 0 elsewhere. A few low modes in every coordinate are a handful of numbers that
weigh each slow, resonant residual component as much as the whole pointwise loss weighs everything.

Under ``torchrun`` the grid points are split over the ranks like the collocation points: each rank projects
its own points, the coefficients are summed over ranks, and each rank returns its share of the term (the
shares and their gradients add up to the single-process term and gradient).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

__all__ = ["TERM", "SineModes"]

TERM = "residual_modes"
"""The loss term's name (reserved: no condition, residual or data set may take it)."""


def per_axis(value: int | Sequence[int], dimension: int, key: str) -> tuple[int, ...]:
    """One setting per coordinate: ``value`` repeated, or checked to have ``dimension`` entries (error: ``key``)."""
    if isinstance(value, int):
        return (value,) * dimension
    if len(value) != dimension:
        raise ValueError(f"{key}: must be one integer, or one per coordinate ({dimension}), got {list(value)}")
    return tuple(value)


class SineModes:
    """The sine-mode projection of values on a midpoint grid of the box [lo, hi] (module docstring).

    ``modes`` and ``grid`` are one integer for every axis or one per axis; ``part`` = (rank, size) keeps this
    rank's contiguous share of the grid points (``points``) and of the projection."""

    def __init__(self, lo: Sequence[float], hi: Sequence[float], modes: int | Sequence[int],
                 grid: int | Sequence[int], *, dtype: torch.dtype = torch.float64, device=None,
                 part: tuple[int, int] = (0, 1), key: str = "train.residual_modes"):
        dimension = len(lo)
        self.modes = per_axis(modes, dimension, f"{key}.modes")
        self.grid = per_axis(grid, dimension, f"{key}.grid")
        for axis, (m, n) in enumerate(zip(self.modes, self.grid)):
            if not m < n:
                raise ValueError(f"{key}: axis {axis} has {m} modes on {n} grid points; the grid needs more points "
                                 "than modes (at least twice as many to resolve them)")
        # per axis: the midpoints' indices, and S[k, j] = (2/n)·sin(kπ(j + 1/2)/n)
        index = torch.cartesian_prod(*(torch.arange(n) for n in self.grid)).reshape(-1, dimension)
        index = torch.tensor_split(index, part[1])[part[0]]
        fractions = [(index[:, axis].to(dtype) + 0.5) / n for axis, n in enumerate(self.grid)]
        self.points = torch.stack([a + (b - a) * f for a, b, f in zip(lo, hi, fractions)], dim=1).to(device)
        self.factors = [(2.0 / n) * torch.sin(torch.arange(1, m + 1, dtype=dtype)[:, None] * math.pi * f[None, :])
                        .to(device) for m, n, f in zip(self.modes, self.grid, fractions)]
        letters = "abcdefghij"[:dimension]
        self._formula = "pz," + ",".join(f"{a}p" for a in letters) + "->z" + letters

    def coefficients(self, values: torch.Tensor) -> torch.Tensor:
        """ĉ_k of ``values`` at :attr:`points` (this rank's part of the sums), shape ``modes``; for values with
        several columns ([P, q]) the coefficients of each, shape [q, *modes]."""
        c = torch.einsum(self._formula, values.reshape(values.shape[0], -1), *self.factors)
        return c[0] if values.ndim == 1 else c

    def mean_square(self, values: torch.Tensor,
                    across_ranks: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """mean_k ĉ_k²; with ``across_ranks`` this rank's share: mean(ĉ²)/size + 2·mean(ĉ·(ĉ_rank − ĉ_rank)),
        ĉ summed over ranks (without gradient), the second term zero in value, so the shares add up to the
        term and their gradients, 2·mean(ĉ·∇ĉ_rank), to its gradient."""
        c = self.coefficients(values)
        if across_ranks is None:
            return c.square().mean()
        total = across_ranks(torch.cat([c.detach().reshape(-1), c.new_ones(1)]))
        summed, size = total[:-1].reshape(c.shape), total[-1]
        return summed.square().mean() / size + 2 * (summed * (c - c.detach())).mean()
