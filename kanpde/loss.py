"""Loss terms: the mean squared PDE residual and one mean squared error per soft condition."""

from __future__ import annotations

from collections.abc import Callable

import torch

from kanpde.field import Field
from kanpde.geometry import Points
from kanpde.jet import Jet
from kanpde.problem import Dirichlet, Initial, Neumann, Periodic, Problem, target_values


def _scalar(u: Jet | torch.Tensor, problem: Problem):
    """Drop the channel axis of single-output fields, so residuals read u.value as [N]."""
    if problem.outputs != 1:
        return u
    return u[0] if isinstance(u, Jet) else u[:, 0]


def residual(field: Field, x: torch.Tensor) -> torch.Tensor:
    """The problem's residual at interior points ``x``, checked for shape."""
    problem = field.problem
    r = problem.residual(_scalar(field.jet(x, problem.derivatives), problem), x)
    if not isinstance(r, torch.Tensor) or r.ndim == 0 or r.shape[0] != x.shape[0]:
        shape = tuple(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__
        raise ValueError(f"{type(problem).__name__}.residual: must return a tensor with one row per point "
                         f"([{x.shape[0]}] or [{x.shape[0]}, k]), got {shape}")
    return r


SumOverRanks = Callable[[torch.Tensor], torch.Tensor]
"""Data-parallel training: the sum of a tensor over all ranks (see kanpde.distributed)."""


def _mse(error: torch.Tensor, across_ranks: SumOverRanks | None = None) -> torch.Tensor:
    """Mean of error²; with ``across_ranks`` this rank's share Σ_local e² / N_all_ranks of the global mean."""
    if across_ranks is not None:
        return error.square().sum() / across_ranks(error.new_tensor(float(error.numel()))).clamp_min(1)
    return error.square().mean() if error.numel() else error.new_zeros(())


def causal_mean(squared: torch.Tensor, t: torch.Tensor, t0: float, t1: float, epsilon: float | str,
                chunks: int, across_ranks: SumOverRanks | None = None, frozen: dict | None = None,
                min_weight: float = 0.05) -> torch.Tensor:
    """Causally weighted mean of squared residuals (Wang, Sankaran & Perdikaris 2022, eq. 3.11):
    chunk i of the time axis has mean L_i and weight w_i = exp(−ε Σ_{k<i} L_k), without gradient,
    so later times count only once earlier ones are resolved. With ``across_ranks`` the chunk
    means and weights are those of all ranks' points, and the result is this rank's share.
    ``frozen`` (a dict) keeps the first weights computed with it and reuses them: an L-BFGS line
    search needs one objective, and with a large ε the weights would change at every trial point.

    ``epsilon="auto"`` rescales ε at every step to the losses, ε = −ln(min_weight) / Σ_{k<last} L_k,
    so the last chunk's weight is ``min_weight``: a fixed ε leaves every weight ≈ 1 once the losses
    are small, or starves the late chunks while they are large (docs/tables.md, "Targets")."""
    index = ((t - t0) / (t1 - t0) * chunks).floor().long().clamp(0, chunks - 1)
    totals = squared.new_zeros(chunks).index_add(0, index, squared)
    counts = torch.bincount(index, minlength=chunks).to(squared.dtype)
    if across_ranks is not None:
        counts = across_ranks(counts).clamp_min(1)
        means, global_means = totals / counts, across_ranks(totals) / counts
    else:
        counts = counts.clamp_min(1)
        means = global_means = totals / counts
    weights = None if frozen is None else frozen.get("causal_weights")
    if weights is None:
        earlier = torch.cat([global_means.new_zeros(1), global_means.cumsum(0)[:-1]]).detach()
        if epsilon == "auto":  # w_i = min_weight^(Σ_{k<i} L_k / Σ_{k<last} L_k)
            weights = torch.pow(min_weight, earlier / earlier[-1]) if earlier[-1] > 0 else torch.ones_like(earlier)
        else:
            weights = torch.exp(-epsilon * earlier)
        if frozen is not None:
            frozen["causal_weights"] = weights
    return (weights * means).mean()


def loss_terms(field: Field, points: Points, causal_epsilon: float | str = 0.0, causal_chunks: int = 16,
               across_ranks: SumOverRanks | None = None, time_end: float | None = None,
               frozen: dict | None = None, causal_min_weight: float = 0.05) -> dict[str, torch.Tensor]:
    """Every loss term by name: "residual" and each soft condition's. With ``causal_epsilon`` > 0 or
    "auto" (space-time problems) the residual term is the causally weighted mean, its chunks spanning
    [t0, ``time_end``] (default t1: the points' time window), its weights kept in ``frozen`` if given
    (see :func:`causal_mean`). With ``across_ranks``
    (data-parallel training on a shard of the points) each term is this rank's share: the shares
    of all ranks add up to the term on all ranks' points."""
    problem = field.problem
    r = residual(field, points.interior)
    if (causal_epsilon == "auto" or causal_epsilon > 0) and problem.box.has_time:
        squared = r.square().reshape(r.shape[0], -1).sum(1)
        t = points.interior[:, problem.box.time_axis]
        box = problem.box
        t1 = box.t1 if time_end is None else time_end
        terms = {"residual": causal_mean(squared, t, box.t0, t1, causal_epsilon, causal_chunks, across_ranks,
                                             frozen, causal_min_weight)}
    else:
        terms = {"residual": _mse(r, across_ranks)}
    for condition in problem.soft_conditions:
        terms[condition.name] = _mse(condition_error(field, condition, points), across_ranks)
    return terms


def condition_error(field: Field, condition, points: Points) -> torch.Tensor:
    """Pointwise error of one condition on the sampled points."""
    problem = field.problem
    if isinstance(condition, Initial):
        x = points.initial
        return _scalar(field(x), problem) - target_values(condition.value, x)
    if isinstance(condition, Periodic):
        axis = problem.box.names.index(condition.axis)
        lo = points.boundary[points.boundary_face == problem.box.face_index(f"{condition.axis}.lo")]
        hi = lo.clone()
        hi[:, axis] = problem.box.hi[axis]
        u_lo, u_hi = field.jet(lo, "none"), field.jet(hi, "none")
        return torch.cat([u_lo.value - u_hi.value, u_lo.first[:, axis] - u_hi.first[:, axis]])
    chosen = problem.boundary_mask(condition, points.boundary_face, points.boundary)
    x = points.boundary[chosen]
    if isinstance(condition, Dirichlet):
        return _scalar(field(x), problem) - target_values(condition.value, x)
    if isinstance(condition, Neumann):
        u = field.jet(x, "none")
        normal_derivative = (u.grad * points.boundary_normal[chosen].unsqueeze(1)).sum(-1)
        return _scalar(normal_derivative, problem) - target_values(condition.value, x)
    raise TypeError(f"unknown condition {condition!r}")
