"""Univariate functions with all their derivatives in closed form, for jets of any order.

Each ``*_series(v, order)`` returns [g(v), g'(v), …, g^(order)(v)]. The logistic σ and tanh
have derivatives that are polynomials in themselves:

    σ' = σ(1 − σ)      ⇒  σ^(k+1) = P_k'(σ)·σ(1 − σ)   with σ^(k) = P_k(σ),
    tanh' = 1 − tanh²  ⇒  T_{k+1}(t) = T_k'(t)·(1 − t²),

so the integer coefficients are computed once per order and evaluated by Horner's rule.
silu(v) = v·σ(v) gives silu^(k) = v·σ^(k) + k·σ^(k−1) (Leibniz); softplus' = σ;
sin^(k)(v) = sin(v + kπ/2).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from numpy.polynomial import polynomial as P


@functools.cache
def _derivative_polynomials(order: int, start: tuple[int, ...], factor: tuple[int, ...]) -> list[list[float]]:
    """Coefficients (low to high) of D_0 = ``start`` and D_{k+1} = D_k'·``factor``, k < ``order``."""
    polys = [np.array(start, dtype=float)]
    for _ in range(order):
        polys.append(P.polymul(P.polyder(polys[-1]), factor))
    return [list(p) for p in polys]


def _horner(coefficients: list[float], s: torch.Tensor) -> torch.Tensor:
    result = torch.full_like(s, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        result = result * s + c
    return result


def sigmoid_series(v: torch.Tensor, order: int) -> list[torch.Tensor]:
    """[σ, σ', …, σ^(order)] at ``v``."""
    s = torch.sigmoid(v)
    polys = _derivative_polynomials(order, (0, 1), (0, 1, -1))  # σ' = σ − σ²
    return [s] + [_horner(p, s) for p in polys[1:]]


def silu_series(v: torch.Tensor, order: int) -> list[torch.Tensor]:
    """[silu, silu', …, silu^(order)] with silu^(k) = v·σ^(k) + k·σ^(k−1)."""
    sig = sigmoid_series(v, order)
    return [v * sig[0]] + [v * sig[k] + k * sig[k - 1] for k in range(1, order + 1)]


def tanh_series(v: torch.Tensor, order: int) -> list[torch.Tensor]:
    """[tanh, tanh', …, tanh^(order)] at ``v``."""
    t = torch.tanh(v)
    polys = _derivative_polynomials(order, (0, 1), (1, 0, -1))  # tanh' = 1 − tanh²
    return [t] + [_horner(p, t) for p in polys[1:]]


def softplus_series(v: torch.Tensor, order: int) -> list[torch.Tensor]:
    """[softplus, σ, σ', …] at ``v``."""
    return [torch.nn.functional.softplus(v), *(sigmoid_series(v, order - 1) if order else [])]


def sin_series(v: torch.Tensor, order: int, frequency: float = 1.0, phase: int = 0) -> list[torch.Tensor]:
    """d^k/dv^k sin(ω v + phase·π/2) = ω^k sin(ω v + (phase + k)π/2), k = 0 … ``order`` (phase 1: cosine)."""
    angle = frequency * v
    cycle = [torch.sin(angle), torch.cos(angle)]
    cycle += [-cycle[0], -cycle[1]]
    if frequency == 1:
        return [cycle[(phase + k) % 4] for k in range(order + 1)]
    return [frequency**k * cycle[(phase + k) % 4] for k in range(order + 1)]


SERIES = {"tanh": tanh_series, "sin": sin_series, "silu": silu_series, "softplus": softplus_series}
