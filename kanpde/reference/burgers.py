"""Exact solution of the viscous Burgers benchmark by the Cole–Hopf transform (numpy/scipy only).

``u_t + u u_x = nu u_xx`` on ``[-1, 1] x [0, 1]``, ``u(x, 0) = -sin(pi x)``, ``u(±1, t) = 0``, ``nu = 0.01/pi``.
The Cole–Hopf substitution ``u = -2 nu (ln phi)_x`` turns it into the heat equation ``phi_t = nu phi_xx`` with
``phi(x, 0) = exp(-cos(pi x) / (2 pi nu))`` (up to a constant), whose solution on the line (the initial data are
2-periodic and odd about ``x = ±1``, so the boundary values hold) is the Gaussian convolution

    u(x, t) = -∫ sin(pi (x - eta)) f(x - eta) G(eta) d eta / ∫ f(x - eta) G(eta) d eta,
    f(y) = exp(-cos(pi y) / (2 pi nu)),  G(eta) = exp(-eta^2 / (4 nu t))

(Basdevant et al. 1986). With ``eta = sqrt(4 nu t) z`` both integrals have the weight ``exp(-z^2)``: Gauss–Hermite
quadrature on ``nodes`` points, summed in log space (``f`` spans ``e^{±50}``), gives them to round-off once the
nodes resolve ``f`` on the Gaussian's width; :func:`burgers_cole_hopf` with ``estimate_error`` doubles ``nodes`` and
records the change: measured max changes over x, t in [0, 1] when doubling 40, 60, 80, 128 nodes are 3e-5, 1e-9,
9e-14 and 5e-15 (tests/test_burgers.py checks the default).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import roots_hermite

from kanpde.reference.common import defaults
from kanpde.reference.registry import register_reference, self_convergence
from kanpde.reference.store import Reference

__all__ = ["BURGERS_NU", "burgers_cole_hopf", "cole_hopf"]

BURGERS_NU = 0.01 / math.pi
"""The benchmark's viscosity."""


def cole_hopf(x: ArrayLike, t: ArrayLike, nu: float = BURGERS_NU, nodes: int = 128) -> np.ndarray:
    """u(x, t) of Burgers' equation from ``u(x, 0) = -sin(pi x)`` at the points ``x`` and times ``t`` >= 0 (a
    scalar, or an array broadcasting with ``x``: scattered points (x_i, t_i)), by ``nodes``-point Gauss–Hermite
    quadrature of the Cole–Hopf integrals (module docstring)."""
    x, t = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(t, dtype=float))
    if np.any(t < 0):
        raise ValueError(f"t must be non-negative, got {t.min()}")
    z, w = roots_hermite(int(nodes))
    keep = w > 0  # the outermost weights underflow for large ``nodes``: they contribute nothing
    z, log_w = z[keep], np.log(w[keep])
    y = x[..., None] - np.sqrt(4.0 * nu * t)[..., None] * z
    exponent = log_w - np.cos(np.pi * y) / (2.0 * np.pi * nu)
    weight = np.exp(exponent - exponent.max(axis=-1, keepdims=True))  # log-sum-exp scaling
    u = -(weight * np.sin(np.pi * y)).sum(axis=-1) / weight.sum(axis=-1)
    return np.where(t == 0, -np.sin(np.pi * x), u)


def _refine(params: dict[str, Any], refine: str) -> tuple[dict[str, Any], str]:
    """Self-convergence of :func:`burgers_cole_hopf`: the Gauss–Hermite nodes doubled."""
    if refine != "default":
        raise ValueError("the Cole-Hopf solution refines only one way: refine='default'")
    return {**params, "nodes": 2 * {**defaults(burgers_cole_hopf), **params}["nodes"]}, "Gauss-Hermite nodes doubled"


@register_reference("burgers", refine=_refine, estimate_error=True)
def burgers_cole_hopf(
    nu: float = BURGERS_NU,
    nodes: int = 128,
    x: ArrayLike | None = None,
    t: ArrayLike | None = None,
    estimate_error: bool = False,
) -> Reference:
    """The Burgers benchmark's exact solution on the grid ``x`` (default ``linspace(-1, 1, 513)``, which contains
    the shock at ``x = 0``) times ``t`` (default ``linspace(0, 1, 201)``), as a :class:`Reference`.

    ``estimate_error``: also evaluate with ``2 * nodes`` nodes (:func:`self_convergence`) and record the max abs
    change in ``attrs["self_convergence"]``.
    """
    if estimate_error:
        return self_convergence("burgers", return_references=True, nu=nu, nodes=nodes, x=x, t=t)[1]
    x = np.linspace(-1.0, 1.0, 513) if x is None else np.asarray(x, dtype=float)
    t = np.linspace(0.0, 1.0, 201) if t is None else np.asarray(t, dtype=float)
    if x.ndim != 1 or t.ndim != 1 or t.size == 0 or np.any(t < 0):
        raise ValueError("x and t must be 1-D grids with t >= 0")
    if nu <= 0:
        raise ValueError(f"nu must be positive, got {nu}")
    start = time.perf_counter()
    u = np.stack([cole_hopf(x, float(time_), nu, nodes) for time_ in t], axis=1)
    attrs = {
        "problem": "burgers",
        "equation": "u_t + u*u_x = nu*u_xx, u(x,0) = -sin(pi*x), u(-1,t) = u(1,t) = 0",
        "method": "Cole-Hopf transform, Gauss-Hermite quadrature of both integrals in log-sum-exp form",
        "resolution": {"nodes": int(nodes)},
        "parameters": {"nu": nu},
        "solve_time_s": time.perf_counter() - start,
    }
    return Reference(x=x, t=t, u=u, attrs=attrs)
