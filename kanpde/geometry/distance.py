"""Smooth approximate distance functions: R-functions, trimming and joining (Sukumar & Srivastava 2022).

A *level* function is positive inside a region, negative outside and zero on its boundary;
R-functions combine levels of regions into the level of their intersection or union
(Rvachev's R0 system, eqs. 4–5 of Sukumar & Srivastava, CMAME 389 (2022) 114333). A boundary
*piece* (an arc, a segment, a face) gets an unsigned distance that vanishes only on the piece:
the distance f to its whole curve, trimmed by a function t > 0 where the piece is kept (their
eq. 10). Pieces are joined by R-equivalence (their eq. 13), φ = (Σ_k φ_k^−1)^−1, which is
zero on every piece, positive elsewhere, and ≈ the distance to the nearest piece to first order.

Square roots are taken of arguments clamped to the dtype's smallest normal number, so that
values and derivatives stay finite on the boundary itself (φ there is ≈ 1e-154 in float64).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def _tiny(x: torch.Tensor) -> float:
    return torch.finfo(x.dtype).tiny


def safe_sqrt(a: torch.Tensor) -> torch.Tensor:
    """√a with a clamped to the smallest normal number: finite value and gradient at a = 0."""
    return torch.sqrt(a.clamp_min(_tiny(a)))


def r_and(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """R-conjunction a ∧ b = a + b − √(a² + b²): positive where both are (intersection)."""
    return a + b - safe_sqrt(a * a + b * b)


def r_or(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """R-disjunction a ∨ b = a + b + √(a² + b²): positive where either is (union)."""
    return a + b + safe_sqrt(a * a + b * b)


def r_and_all(levels: Iterable[torch.Tensor]) -> torch.Tensor | None:
    """a₁ ∧ a₂ ∧ …, or None for no levels."""
    out = None
    for level in levels:
        out = level if out is None else r_and(out, level)
    return out


def trimmed(f: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
    """Distance to the part of the curve f = 0 where t ≥ 0: √(f² + ((√(t² + f⁴) − t)/2)²)."""
    if t is None:
        return safe_sqrt(f * f)
    return safe_sqrt(f * f + ((safe_sqrt(t * t + f**4) - t) / 2) ** 2)


def join(distances: Iterable[torch.Tensor]) -> torch.Tensor:
    """R-equivalence of piece distances, φ = 1 / Σ_k (1/φ_k): zero on every piece, positive elsewhere."""
    total = None
    for phi in distances:
        inverse = 1.0 / phi.clamp_min(_tiny(phi) ** 0.5)
        total = inverse if total is None else total + inverse
    if total is None:
        raise ValueError("on: selects no boundary part")
    return 1.0 / total
