"""The residual propagated in time to the error it causes: a loss term, "propagated_residual"
(``train.propagated_residual``).

For an evolution equation u_t = F[u] the PINN residual r = u_t − F[u] of a trial function drives its error
e = u − u*. Linearised, e_t = F′[u*]e + r. Keeping only the pointwise (reaction) part of F′,
λ = ∂F/∂u (the problem's :meth:`~kanpde.Problem.growth_rate`, default 0), and dropping the spatial coupling
(diffusion, advection), every point x carries its own ordinary differential equation

    e_t = λ(x, t)·e + r(x, t),   e(x, t0) = 0   (a hard initial condition),
    e(x, t) = ∫_{t0}^t exp(∫_s^t λ dτ) r(x, s) ds,

and the term is the mean of e² over a fixed midpoint grid of the space-time box: an estimate of the squared
error itself. The pointwise loss mean(r²) weighs a residual by its size alone. Where the dynamics amplify
errors (λ > 0: an unstable state, as u = 0 of Allen–Cahn u_t = d·u_xx + 5(u − u³), λ = 5(1 − 3u²)) a small
early residual becomes a large late error, and residuals of one sign accumulate while oscillating ones
cancel; this term sees both, the mean square sees neither (docs/tables.md, "Allen–Cahn Dirichlet at G = 5").

On each time column of the grid (n_t cells of length h, λ and r taken at their midpoints t_i) the integral is
taken by the exponential midpoint rule, second order in h: with Λ_j = Σ_{k≤j} λ_k h,

    E_j = exp(Λ_j)·Σ_{i≤j} exp(−Λ_i + λ_i h/2)·r_i·h ≈ e(t_j + h/2),

the error at the end of cell j (a cumulative sum), or the same recursion E_j = exp(λ_j h)·E_{j−1} +
exp(λ_j h/2)·r_j h step by step when |Λ| is too large for the exponentials of the sum.
λ is computed from the trial function without gradient (a weight, not a thing to train).

Under ``torchrun`` the grid's time columns are split over the ranks (``part``): each rank integrates its own
columns and returns its share Σ_own E² / all grid points; the shares add up to the term (tests/
test_propagated_residual.py), and a 2-rank run matches one process (tests/test_distributed.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from kanpde.modes import per_axis

__all__ = ["TERM", "PropagatedResidual"]

TERM = "propagated_residual"
"""The loss term's name (reserved: no condition, residual or data set may take it)."""

_SAFE_EXPONENT = 300.0  # beyond this |Λ| the cumulative-sum form could overflow: integrate step by step


class PropagatedResidual:
    """The propagated residual on a midpoint grid of the space-time box [lo, hi] (module docstring).

    ``grid`` is one integer for every axis or one per axis; ``time_axis`` the box's time coordinate; ``part`` =
    (rank, size) keeps this rank's share of the time columns (:attr:`points`, ordered column by column)."""

    def __init__(self, lo: Sequence[float], hi: Sequence[float], grid: int | Sequence[int], time_axis: int, *,
                 dtype: torch.dtype = torch.float64, device=None, part: tuple[int, int] = (0, 1),
                 key: str = "train.propagated_residual"):
        dimension = len(lo)
        self.grid = per_axis(grid, dimension, f"{key}.grid")
        self.time_axis = time_axis
        space = [axis for axis in range(dimension) if axis != time_axis]
        columns = torch.cartesian_prod(*(torch.arange(self.grid[a]) for a in space)).reshape(-1, len(space))
        columns = torch.tensor_split(columns, part[1])[part[0]]
        steps = self.grid[time_axis]
        self.columns, self.steps, self.total = columns.shape[0], steps, math.prod(self.grid)
        # the cells' indices [columns, steps, (space…, time)], then the coordinates put back in the box's order
        cells = torch.cat([columns[:, None, :].expand(-1, steps, -1),
                           torch.arange(steps)[None, :, None].expand(self.columns, -1, 1)], dim=2)
        index = cells[..., torch.tensor([*space, time_axis]).argsort()].reshape(-1, dimension)
        fractions = (index.to(dtype) + 0.5) / torch.tensor(self.grid, dtype=dtype)
        lo_, hi_ = torch.tensor(lo, dtype=dtype), torch.tensor(hi, dtype=dtype)
        self.points = (lo_ + (hi_ - lo_) * fractions).to(device)
        self.dt = (hi[time_axis] - lo[time_axis]) / steps

    def errors(self, residual: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        """E [columns, steps]: the error at the end of each cell of each time column, from the residual and the
        growth ``rate`` λ (detached here) at :attr:`points` (module docstring)."""
        r = residual.reshape(self.columns, self.steps) * self.dt
        lam = rate.detach().reshape(self.columns, self.steps) * self.dt
        exponent = torch.cumsum(lam, dim=1)
        if exponent.numel() == 0 or exponent.abs().max() <= _SAFE_EXPONENT:
            return torch.exp(exponent) * torch.cumsum(torch.exp(lam / 2 - exponent) * r, dim=1)
        growth, half, errors, e = torch.exp(lam), torch.exp(lam / 2), [], torch.zeros_like(r[:, 0])
        for j in range(self.steps):
            e = growth[:, j] * e + half[:, j] * r[:, j]
            errors.append(e)
        return torch.stack(errors, dim=1)

    def mean_square(self, residual: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        """mean E² over the whole grid (under torchrun this rank's share Σ_own E² / all grid points)."""
        return self.errors(residual, rate).square().sum() / self.total
