"""Knots that follow the solution: equidistribute a monitor of each edge function (de Boor 1973).

The quantile grid update places a layer's knots where its inputs (activations) fall, whatever the edge functions
do there. Here the knots of input i of a layer are placed so that every knot interval carries the same share of

    ∫ m_i(s) ds,   m_i = (1 − ε)·M_i / mean(M_i) + ε,
    M_i(s) = sqrt(1 + Σ_j φ_ji'(s)² / mean_s Σ_j φ_ji'²)            ("arclength": the normalised arc length)
    M_i(s) = (1 + Σ_j φ_ji''(s)² / mean_s Σ_j φ_ji''²)^(1/4)        ("curvature")

over the range of the samples (the activations of the training points), with φ_ji = w_b·silu + w_s·spline the edge
functions of every output j on that input (they share one knot vector) and ε = ``grid_eps`` the uniform share
(ε = 1 gives a uniform grid). M_i is evaluated at ``MONITOR_POINTS`` points per input from the cell polynomials, so
the cost does not depend on G; the knots come from inverting the cumulative trapezoidal integral (linear in
between). The knots are non-uniform, which the layers already support (cell lookup by ``searchsorted``; the cell
polynomials and the closed-form jets are exact on any strictly increasing knots).
"""

from __future__ import annotations

import torch

from kanpde import splines
from kanpde.nets.base import silu_derivatives

__all__ = ["MONITORS", "MONITOR_POINTS", "edge_derivatives", "equidistributed_knots", "monitor"]

MONITORS = ("arclength", "curvature")
MONITOR_POINTS = 513
"""Points per input at which the monitor is evaluated and integrated."""


def edge_derivatives(layer, h: torch.Tensor, derivatives: int = 2) -> list[torch.Tensor]:
    """[φ, φ', …] of every edge function of ``layer`` (a KANLayer) at inputs ``h`` [N, n_in]: each [N, n_in, n_out]."""
    polynomial, s = layer._edge_polynomials(layer.spline_weight[:, None, :] * layer.coef, h)
    spline = splines.horner(polynomial, s, derivatives)
    silu = silu_derivatives(h, max(derivatives, 1))
    return [part + silu[d][..., None] * layer.base_weight for d, part in enumerate(spline)]


def monitor(layer, s: torch.Tensor, kind: str, grid_eps: float) -> torch.Tensor:
    """The monitor m_i at points ``s`` [Q, n_in] (module docstring), [Q, n_in]."""
    if kind not in MONITORS:
        raise ValueError(f"monitor: must be one of {', '.join(MONITORS)}, got {kind!r}")
    order = 1 if kind == "arclength" else 2
    size = edge_derivatives(layer, s, order)[order].square().sum(-1)  # Σ_j (φ_ji^(order))², [Q, n]
    size = size / size.mean(0).clamp_min(torch.finfo(s.dtype).tiny)
    strength = (1 + size).pow(0.5 if kind == "arclength" else 0.25)
    return (1 - grid_eps) * strength / strength.mean(0) + grid_eps


def equidistributed_knots(layer, samples: torch.Tensor, kind: str = "arclength",
                          grid_eps: float = 0.02) -> torch.Tensor:
    """Extended knots [n_in, G + 2k + 1] for ``layer`` whose G intervals on [min, max] of ``samples`` [P, n_in]
    carry equal integrals of the monitor (the current edge functions are read, not changed)."""
    grid, order = layer.grid, layer.order
    lo, hi = samples.min(0).values, samples.max(0).values
    span = torch.maximum(hi - lo, 1e-6 * (1 + lo.abs()))  # a constant activation still gets a grid
    centre = (hi + lo) / 2
    lo = centre - span / 2
    fractions = torch.linspace(0, 1, MONITOR_POINTS, dtype=samples.dtype, device=samples.device)
    s = lo + fractions[:, None] * span  # [Q, n]
    with torch.no_grad():
        m = monitor(layer, s, kind, grid_eps)
    # cumulative integral by the trapezoidal rule, normalised to [0, 1]
    pieces = (m[1:] + m[:-1]) / 2 * (span / (MONITOR_POINTS - 1))
    cumulative = torch.cat([pieces.new_zeros(1, s.shape[1]), pieces.cumsum(0)])
    cumulative = cumulative / cumulative[-1]
    levels = torch.linspace(0, 1, grid + 1, dtype=samples.dtype, device=samples.device)
    points = torch.stack([_invert(c, x, levels) for c, x in zip(cumulative.T.contiguous(), s.T)])  # [n, G+1]
    points[:, 0], points[:, -1] = lo, lo + span  # exactly the sample range
    return splines.extend_knots(points, order)


def _invert(cumulative: torch.Tensor, s: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """s where the increasing piecewise-linear ``cumulative(s)`` reaches each of ``levels``."""
    right = torch.searchsorted(cumulative, levels).clamp(1, cumulative.shape[0] - 1)
    left = right - 1
    c0, c1 = cumulative[left], cumulative[right]
    weight = ((levels - c0) / (c1 - c0).clamp_min(torch.finfo(s.dtype).tiny)).clamp(0, 1)
    return s[left] + weight * (s[right] - s[left])
