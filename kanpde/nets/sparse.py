"""Sparse, pruned and snapped KANs (the KAN paper's route to interpretable networks, section 2.5.1).

* :func:`sparsity_penalty`: Σ_layers (Σ_ji |φ_ji|₁ + μ·S_l), |φ_ji|₁ = mean over the points of |φ_ji(h_i)|, and
  S_l = −Σ_ji p_ji log p_ji the entropy of p = |φ|₁ / Σ|φ|₁ over the layer's edges. Computed from the layer
  inputs of a value pass over the interior points (the jets' own values; no derivatives needed).
  Data-parallel (``across_ranks``): each rank returns its share, whose sum over ranks has exactly the
  value and the gradient of the penalty on all ranks' points together (the entropy's gradient at the
  global |φ|₁, times each rank's share of |φ|₁).
* :func:`prune_`: edges whose score |φ_ji|₁ falls below ``threshold``·(the layer's largest) are masked
  (held at zero); hidden nodes whose incoming or outgoing edges all fall below it are removed: the
  network gets a new width, in place (the optimizer must be rebuilt).
* :func:`best_fit` / :func:`snap_edge`: an edge replaced by a library function a·f(b·s + c) + d with
  trainable (a, b, c, d) (:mod:`kanpde.nets.library`); its spline and base weights are masked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from kanpde.nets.kan import KAN, KANLayer
from kanpde.nets.library import NAMES, SnapFit, fit_function

__all__ = ["edge_activations", "edge_scores", "sparsity_penalty", "prune_", "best_fit", "snap_edge"]


def edge_activations(kan: KAN, x: torch.Tensor) -> list[torch.Tensor]:
    """φ_ji(h_i) per layer, [N, n_in, n_out] each, at network inputs ``x`` [N, D] (differentiable)."""
    out, h = [], x
    for layer in kan.layers:
        phi = layer.edge_values(h)
        out.append(phi)
        h = phi.sum(1)
    return out


@torch.no_grad()
def edge_scores(kan: KAN, x: torch.Tensor) -> list[torch.Tensor]:
    """|φ_ji|₁ (mean |φ| over ``x``) per layer, [n_in, n_out] each."""
    return [phi.abs().mean(0) for phi in edge_activations(kan, x)]


def _penalty(l1: Sequence[torch.Tensor], entropy: float) -> torch.Tensor:
    total = l1[0].new_zeros(())
    for scores in l1:
        norm = scores.sum()
        p = scores / norm.clamp_min(1e-30)
        total = total + norm + entropy * -(p * torch.log(p.clamp_min(1e-30))).sum()
    return total


def sparsity_penalty(kan: KAN, x: torch.Tensor, entropy: float = 2.0,
                     across_ranks: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """The sparsity regulariser at network inputs ``x`` (module docstring), unweighted."""
    sums = [phi.abs().sum(0) for phi in edge_activations(kan, x)]
    if across_ranks is None:
        return _penalty([s / max(x.shape[0], 1) for s in sums], entropy)
    count = across_ranks(x.new_tensor(float(x.shape[0]))).clamp_min(1)
    shares = [s / count for s in sums]  # this rank's share of the global |φ|₁
    leaves = [across_ranks(share).requires_grad_() for share in shares]  # the global |φ|₁
    value = _penalty(leaves, entropy)
    gradients = torch.autograd.grad(value, leaves)
    ranks = across_ranks(x.new_ones(()))
    surrogate = sum(((g * share).sum() for g, share in zip(gradients, shares)), x.new_zeros(()))
    return value.detach() / ranks + surrogate - surrogate.detach()


def _take(tensor: torch.Tensor | None, rows: torch.Tensor, columns: torch.Tensor, column_dim: int):
    if tensor is None:
        return None
    return tensor.index_select(0, rows).index_select(column_dim, columns).contiguous()


def _restrict(layer: KANLayer, rows: torch.Tensor, columns: torch.Tensor) -> None:
    """Keep the inputs ``rows`` and outputs ``columns`` of ``layer`` (in place)."""
    layer.coef = nn.Parameter(_take(layer.coef.detach(), rows, columns, 2))
    layer.base_weight = nn.Parameter(_take(layer.base_weight.detach(), rows, columns, 1))
    layer.spline_weight = nn.Parameter(_take(layer.spline_weight.detach(), rows, columns, 1))
    layer.edge_mask = _take(layer.edge_mask, rows, columns, 1)
    layer.snap_function = _take(layer.snap_function, rows, columns, 1)
    if layer.snap_affine is not None:
        layer.snap_affine = nn.Parameter(_take(layer.snap_affine.detach(), rows, columns, 1))
    layer.in_features, layer.out_features = len(rows), len(columns)
    layer._set_knots(layer.knots.index_select(0, rows))


@torch.no_grad()
def prune_(kan: KAN, x: torch.Tensor, threshold: float) -> tuple[list[int], list[int], int]:
    """Prune ``kan`` in place (module docstring): returns (old width, new width, edges masked)."""
    old = kan.width
    scores = edge_scores(kan, x)
    keep = [s >= threshold * s.max().clamp_min(1e-30) for s in scores]
    nodes = []  # kept hidden nodes after each layer but the last
    for index in range(len(keep) - 1):
        alive = keep[index].any(0) & keep[index + 1].any(1)
        if not alive.any():  # keep the strongest node rather than nothing
            alive[int((scores[index].max(0).values * scores[index + 1].max(1).values).argmax())] = True
        nodes.append(alive.nonzero().flatten())
    masked = 0
    for index, layer in enumerate(kan.layers):
        rows = nodes[index - 1] if index > 0 else torch.arange(layer.in_features, device=x.device)
        columns = nodes[index] if index < len(nodes) else torch.arange(layer.out_features, device=x.device)
        kept = keep[index].index_select(0, rows).index_select(1, columns)
        _restrict(layer, rows, columns)
        if not bool(kept.all()):
            layer.enable_edge_state()
            drop = ~kept & (layer.snap_function < 0)
            masked += int(drop.sum())
            layer.edge_mask[drop] = 0
            layer.apply_mask()
    return old, kan.width, masked


def best_fit(s: np.ndarray, y: np.ndarray, library: Sequence[str], tolerance: float = 1e-3) -> SnapFit:
    """The first function of ``library`` (simplest first) that leaves at most ``tolerance`` of the variance of
    samples (s, y) unexplained, else the one leaving the least."""
    fits = [fit_function(s, y, name) for name in library]
    for fit in fits:
        if fit.q <= tolerance:
            return fit
    return min(fits, key=lambda fit: fit.q)


@torch.no_grad()
def snap_edge(layer: KANLayer, i: int, j: int, fit: SnapFit) -> None:
    """Replace edge (i, j) of ``layer`` by ``fit``'s a·f(b·s + c) + d (spline and base weights masked)."""
    layer.enable_edge_state()
    layer.snap_function[i, j] = NAMES.index(fit.name)
    layer.snap_affine[i, j] = layer.snap_affine.new_tensor([fit.a, fit.b, fit.c, fit.d])
    layer.edge_mask[i, j] = 0
    layer.apply_mask()
