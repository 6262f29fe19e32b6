"""Chebyshev collocation: the second-derivative matrix, barycentric interpolation, and the Dirichlet Allen–Cahn
reference built on them.

``allen_cahn``: ``u_t = d u_xx + 5 (u - u^3)`` on ``[-1, 1] x [0, 1]``, ``u(x, 0) = x^2 cos(pi x)``,
``u(±1, t) = -1``, ``d = 1e-3``. Chebyshev collocation on ``N + 1`` Gauss–Lobatto points (boundary rows
eliminated, so the boundary values are exact) and the stiff Radau IIA integrator of :func:`scipy.integrate.solve_ivp`
with the analytic Jacobian; the result is moved to the stored grid by barycentric interpolation.
"""

from __future__ import annotations

import time
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike
from scipy.integrate import solve_ivp
from scipy.linalg import toeplitz

from kanpde.reference.allen_cahn import InitialCondition, default_initial_condition
from kanpde.reference.common import callable_name, defaults, time_grid
from kanpde.reference.registry import register_reference, self_convergence
from kanpde.reference.store import Reference

__all__ = ["allen_cahn_dirichlet", "barycentric_matrix", "chebyshev_d2"]


def chebyshev_d2(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Chebyshev–Gauss–Lobatto points ``x_j = cos(pi j / n)`` (j = 0..n, from 1 down to -1) and the second
    derivative matrix, built as in Weideman & Reddy's ``chebdif`` (trigonometric differences, flipping trick,
    negative-sum diagonal) for smaller rounding errors than ``D @ D``."""
    m = n + 1
    k = np.arange(m)
    x = np.sin(np.pi * (n - 2 * k) / (2 * n))  # = cos(pi k / n), exactly symmetric
    half = np.tile(k * np.pi / (2 * n), (m, 1))
    dx = 2 * np.sin(half.T + half) * np.sin(half.T - half)  # x_k - x_j
    n1 = m // 2
    dx = np.vstack([dx[:n1], -np.flipud(np.fliplr(dx[: m - n1]))])
    np.fill_diagonal(dx, 1.0)
    c = toeplitz((-1.0) ** k)
    c[[0, -1], :] *= 2
    c[:, [0, -1]] /= 2
    z = 1 / dx
    np.fill_diagonal(z, 0.0)
    d = np.eye(m)
    for ell in (1, 2):
        d = ell * z * (c * np.diag(d)[:, None] - d)
        np.fill_diagonal(d, -d.sum(axis=1))
    return x, d


def barycentric_matrix(nodes: np.ndarray, weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Matrix ``P`` with ``P @ f(nodes) = p(x)``, ``p`` the polynomial interpolant, by the (second, "true")
    barycentric formula; rows for points that coincide with a node are exact unit rows."""
    diff = np.asarray(x, dtype=float)[:, None] - nodes[None, :]
    hit = diff == 0
    rows = hit.any(axis=1)
    diff[hit] = 1.0
    p = weights / diff
    p[rows] = hit[rows]
    return p / p.sum(axis=1, keepdims=True)


def _refine_dirichlet(params: dict[str, Any], refine: str) -> tuple[dict[str, Any], str]:
    """Self-convergence of :func:`allen_cahn_dirichlet`: ``nodes`` doubled and ``rtol``, ``atol`` divided by 10
    (``refine`` must be ``"default"``)."""
    if refine != "default":
        raise ValueError("the Dirichlet solver refines only one way: refine='default'")
    cur = {**defaults(allen_cahn_dirichlet), **params}
    fine = {"nodes": 2 * cur["nodes"], "rtol": cur["rtol"] / 10, "atol": cur["atol"] / 10}
    return {**params, **fine}, "nodes doubled, rtol and atol divided by 10"


#: The registered builder also estimates its own error (``attrs["self_convergence"]``, a solve at doubled
#: resolution), which costs roughly 10 s once, before the result is cached.
@register_reference("allen_cahn", refine=_refine_dirichlet, estimate_error=True)
def allen_cahn_dirichlet(
    d: float = 1e-3,
    boundary: float = -1.0,
    nodes: int = 512,
    x: ArrayLike | None = None,
    t: ArrayLike | None = None,
    rtol: float = 1e-12,
    atol: float = 1e-13,
    initial_condition: InitialCondition = default_initial_condition,
    integrator: str = "Radau",
    symmetric: bool | None = None,
    estimate_error: bool = False,
) -> Reference:
    """Allen–Cahn ``u_t = d u_xx + 5 (u - u^3)`` on ``[-1, 1]`` with ``u(±1, t) = boundary``.

    Chebyshev collocation on ``nodes + 1`` Gauss–Lobatto points, boundary values eliminated, integrated by
    ``solve_ivp(method=integrator)`` with the analytic (dense) Jacobian and output at ``t`` (default
    ``linspace(0, 1, 101)``); evaluated at ``x`` (default ``linspace(-1, 1, 201)``) by barycentric interpolation.

    ``symmetric``: solve only for the even part (half the unknowns; exact when the initial condition is even,
    as the spec's is). ``None`` detects it from the initial condition at the nodes (to 1e-14 relative).
    ``estimate_error``: also run :func:`self_convergence` and record it in ``attrs["self_convergence"]``.
    The default ``nodes=512`` changes the stored values by about 3e-9 when doubled (interfaces of width
    ``~sqrt(2 d / 5)``); 384 nodes would give 5e-7.
    """
    if estimate_error:
        params: dict[str, Any] = dict(d=d, boundary=boundary, nodes=nodes, x=x, t=t, rtol=rtol, atol=atol)
        params.update(initial_condition=initial_condition, integrator=integrator, symmetric=symmetric)
        _, coarse, _ = cast(tuple, self_convergence("allen_cahn", return_references=True, **params))
        return coarse
    x = np.linspace(-1.0, 1.0, 201) if x is None else np.asarray(x, dtype=float)
    if x.ndim != 1 or np.any(np.abs(x) > 1):
        raise ValueError("x must be a 1-D grid in [-1, 1]")
    t = time_grid(t, np.linspace(0.0, 1.0, 101))
    n = int(nodes)
    if n < 4:
        raise ValueError("nodes must be >= 4")

    xc, d2 = chebyshev_d2(n)
    u0 = np.asarray(initial_condition(xc), dtype=float)
    if symmetric is None:
        symmetric = bool(np.max(np.abs(u0 - u0[::-1])) <= 1e-14 * max(1.0, np.max(np.abs(u0))))

    inner = np.arange(1, n)
    bc = d * boundary * (d2[inner, 0] + d2[inner, n])  # contribution of the eliminated boundary values
    if symmetric:  # even solution: unknowns u_1..u_{n//2}, u_{n-j} = u_j
        m = n // 2
        fold = np.minimum(inner, n - inner) - 1  # column j of the interior -> unknown min(j, n - j)
        a = np.zeros((m, m))
        np.add.at(a.T, fold, d * d2[1 : m + 1][:, inner].T)
        bc = bc[:m]
        unknown = np.arange(1, m + 1)
        expand = np.concatenate([[0], fold + 1, [0]])  # full nodal vector from [boundary, unknowns]
    else:
        a = d * d2[np.ix_(inner, inner)]
        unknown = inner
        expand = np.concatenate([[0], np.arange(1, n), [0]])
    diag = np.diag_indices_from(a)

    def rhs(_t: float, v: np.ndarray) -> np.ndarray:
        return a @ v + bc + 5.0 * (v - v**3)

    def jac(_t: float, v: np.ndarray) -> np.ndarray:
        j = a.copy()
        j[diag] += 5.0 - 15.0 * v**2
        return j

    start = time.perf_counter()
    sol = solve_ivp(rhs, (0.0, t[-1]), u0[unknown], method=integrator, jac=jac, t_eval=t, rtol=rtol, atol=atol)
    elapsed = time.perf_counter() - start
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")

    values = np.vstack([np.full(t.size, float(boundary)), sol.y])[expand]  # (n + 1, nt) at the nodes
    weights = (-1.0) ** np.arange(n + 1)
    weights[[0, -1]] /= 2
    u = barycentric_matrix(xc, weights, x) @ values
    attrs = {
        "problem": "allen_cahn",
        "equation": "u_t = d*u_xx + 5*(u - u**3), u(-1,t) = u(1,t) = boundary",
        "method": f"Chebyshev collocation (Gauss-Lobatto, boundary rows eliminated) + solve_ivp {integrator} "
        "with analytic Jacobian; barycentric interpolation to x",
        "resolution": {"nodes": n, "rtol": rtol, "atol": atol},
        "parameters": {"d": d, "boundary": boundary, "initial_condition": callable_name(initial_condition)},
        "symmetric_reduction": symmetric,
        "solve_time_s": elapsed,
        "nfev": int(sol.nfev),
        "njev": int(sol.njev),
        "nlu": int(sol.nlu),
    }
    return Reference(x=x, t=t, u=u, attrs=attrs)


