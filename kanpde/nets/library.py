"""Library functions a KAN edge can be snapped to, φ(s) = a·f(b·s + c) + d, with derivatives of any order.

Used in training (:mod:`kanpde.nets.sparse`: snapped edges are part of the network and its jets) and by the
symbolic export (which reads a snapped edge off the network as its formula). :func:`fit_function` fits samples
(s, y) of an edge with one library function: (a, d) enter linearly and are eliminated by least squares, (b, c)
start from a grid and are polished by ``scipy.optimize.least_squares``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from scipy.optimize import least_squares

from kanpde.univariate import sin_series, tanh_series

__all__ = ["LIBRARY", "DEFAULT_LIBRARY", "LibraryFunction", "SnapFit", "check_library", "fit_function",
           "affine_derivatives"]


def _power(p: int) -> Callable[[torch.Tensor, int], list[torch.Tensor]]:
    def series(z: torch.Tensor, order: int) -> list[torch.Tensor]:
        out = []
        for k in range(order + 1):
            factor = math.perm(p, k)
            out.append(factor * z ** (p - k) if k <= p else torch.zeros_like(z))
        return out
    return series


def _exp(z: torch.Tensor, order: int) -> list[torch.Tensor]:
    e = torch.exp(z)
    return [e] * (order + 1)


class LibraryFunction(NamedTuple):
    """f with its torch derivative series ``series(z, order)`` = [f, f', …], a numpy form and whether b, c are free
    (False for powers: a·(s + c)^p + d with b = 1, and c = 0 for x)."""

    series: Callable[[torch.Tensor, int], list[torch.Tensor]]
    numpy: Callable[[np.ndarray], np.ndarray]
    free_scale: bool
    free_shift: bool


LIBRARY: dict[str, LibraryFunction] = {
    "x": LibraryFunction(_power(1), lambda z: z, False, False),
    "x^2": LibraryFunction(_power(2), np.square, False, True),
    "x^3": LibraryFunction(_power(3), lambda z: z**3, False, True),
    "x^4": LibraryFunction(_power(4), lambda z: z**4, False, True),
    "sin": LibraryFunction(sin_series, np.sin, True, True),
    "cos": LibraryFunction(lambda z, order: sin_series(z, order, phase=1), np.cos, True, True),
    "exp": LibraryFunction(_exp, np.exp, True, False),
    "tanh": LibraryFunction(tanh_series, np.tanh, True, True),
}
"""The snapping library; names match :data:`kanpde.symbolic.FUNCTIONS` (the export's sympy forms)."""

NAMES = tuple(LIBRARY)
"""Index of a function in a layer's ``snap_function`` buffer."""

DEFAULT_LIBRARY = ("x", "x^2", "x^3", "sin", "cos", "exp")


def check_library(names: Sequence[str], key: str = "library") -> tuple[str, ...]:
    """The names, checked against :data:`LIBRARY` (ValueError naming ``key``)."""
    unknown = [name for name in names if name not in LIBRARY]
    if unknown or not names:
        raise ValueError(f"{key}: unknown or no function names {unknown}; known: {', '.join(LIBRARY)}")
    return tuple(names)


def affine_derivatives(name: str, s: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
                       d: torch.Tensor, order: int) -> list[torch.Tensor]:
    """[φ, φ', …, φ^(order)] of φ(s) = a·f(b·s + c) + d: φ^(k) = a·b^k·f^(k)(b·s + c) (+ d for k = 0)."""
    series = LIBRARY[name].series(b * s + c, order)
    return [a * b**k * f + (d if k == 0 else 0) for k, f in enumerate(series)]


class SnapFit(NamedTuple):
    """The best (a, b, c, d) of one library function and the fraction q = 1 − R² of variance it leaves."""

    name: str
    a: float
    b: float
    c: float
    d: float
    q: float


def _linear(f: np.ndarray, y: np.ndarray) -> tuple[float, float, np.ndarray]:
    """a, d minimising |a·f + d − y|² and the residual."""
    fc, yc = f - f.mean(), y - y.mean()
    denom = float(fc @ fc)
    a = float(fc @ yc) / denom if denom > 1e-300 else 0.0
    d = float(y.mean() - a * f.mean())
    return a, d, a * f + d - y


_SCALES = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0)
_SHIFTS = tuple(np.linspace(-3.0, 3.0, 13))


def fit_function(s: np.ndarray, y: np.ndarray, name: str) -> SnapFit:
    """Fit y ≈ a·f(b·s + c) + d with f = LIBRARY[name] (module docstring)."""
    s, y = np.asarray(s, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    spread = float(((y - y.mean()) ** 2).sum()) or 1e-300
    entry = LIBRARY[name]
    scales = _SCALES if entry.free_scale else (1.0,)
    shifts = _SHIFTS if entry.free_shift else (0.0,)

    def residual(p: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            f = entry.numpy(p[0] * s + p[1])
        if not np.all(np.isfinite(f)):
            return np.full_like(y, 1e6)
        return _linear(f, y)[2]

    best = None
    for b in scales:
        for c in shifts:
            value = float(np.sum(residual(np.array([b, c])) ** 2))
            if best is None or value < best[0]:
                best = (value, b, c)
    start = np.array(best[1:])
    free = [entry.free_scale, entry.free_shift]
    if any(free):
        def partial(q: np.ndarray) -> np.ndarray:
            p = start.copy()
            p[np.array(free)] = q
            return residual(p)
        result = least_squares(partial, start[np.array(free)], method="lm", max_nfev=200)
        start[np.array(free)] = result.x
    b, c = (float(v) for v in start)
    with np.errstate(all="ignore"):
        a, d, r = _linear(entry.numpy(b * s + c), y)
    return SnapFit(name, a, b, c, d, float(r @ r) / spread)
