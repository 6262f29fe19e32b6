"""The Allen–Cahn benchmarks' data shared by their two reference solvers.

* Dirichlet (``allen_cahn``, :func:`kanpde.reference.chebyshev.allen_cahn_dirichlet`):
  ``u_t = d u_xx + 5 (u - u^3)`` on ``[-1, 1] x [0, 1]``, ``u(±1, t) = -1``, ``d = 1e-3``.
* Periodic (``allen_cahn_periodic``, :func:`kanpde.reference.spectral.allen_cahn_periodic`):
  ``u_t = d u_xx + 5 u - 5 u^3`` on ``[-1, 1)`` (periodic) ``x [0, 1]``, ``d = 1e-4``.

Both start from ``u(x, 0) = x^2 cos(pi x)``. (The function lives here, under this module's name, because its
``module.qualname`` is part of the cache key and of the stored ``attrs`` of both references.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["InitialCondition", "default_initial_condition"]

InitialCondition = Callable[[np.ndarray], np.ndarray]


def default_initial_condition(x: np.ndarray) -> np.ndarray:
    """``u(x, 0) = x^2 cos(pi x)`` (both benchmarks)."""
    x = np.asarray(x, dtype=float)
    return x**2 * np.cos(np.pi * x)
