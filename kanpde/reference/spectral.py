"""Fourier pseudo-spectral discretisation with ETDRK4 time stepping, and the periodic Allen–Cahn reference.

``allen_cahn_periodic``: ``u_t = d u_xx + 5 u - 5 u^3`` on ``[-1, 1)`` (periodic) ``x [0, 1]``,
``u(x, 0) = x^2 cos(pi x)``, ``d = 1e-4``. Fourier pseudo-spectral in ``x`` with ETDRK4 in ``t`` (Cox & Matthews
2002; the phi-functions by the contour integrals of Kassam & Trefethen 2005). The periodic extension of
``x^2 cos(pi x)`` has a kink at ``x = ±1`` (slopes -2 and 2), so interpolating it at the grid, as the usual 512-mode
benchmark data do, aliases an ``O(modes^-2)`` error into every mode (5.8e-4 at 512 modes). We start from the L2
projection instead (the exact Fourier coefficients, by an FFT on 2^20 points) with 4096 modes: doubling the modes
then changes the stored values by about 1e-12 (docs/tables.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike
from scipy import fft

from kanpde.reference.allen_cahn import InitialCondition, default_initial_condition
from kanpde.reference.common import callable_name, defaults, time_grid
from kanpde.reference.registry import register_reference, self_convergence
from kanpde.reference.store import Reference

__all__ = ["allen_cahn_periodic", "etdrk4_coefficients", "etdrk4_integrate", "fourier_evaluate", "fourier_projection"]


def etdrk4_coefficients(
    lin: np.ndarray, h: float, contour_points: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ETDRK4 coefficients for a diagonal real linear part ``lin`` and step ``h``: ``E = e^{hL}``, ``E2 = e^{hL/2}``,
    ``Q`` and ``f1, f2, f3`` of Kassam & Trefethen (2005), the phi-functions by the mean over ``contour_points``
    points on the unit circle around each ``hL`` (no cancellation for small ``hL``)."""
    hl = h * np.asarray(lin, dtype=float)
    r = np.exp(1j * np.pi * (np.arange(1, contour_points + 1) - 0.5) / contour_points)
    lr = hl[:, None] + r[None, :]
    elr = np.exp(lr)
    q = h * np.mean((np.exp(lr / 2) - 1) / lr, axis=1).real
    f1 = h * np.mean((-4 - lr + elr * (4 - 3 * lr + lr**2)) / lr**3, axis=1).real
    f2 = h * np.mean((2 + lr + elr * (lr - 2)) / lr**3, axis=1).real
    f3 = h * np.mean((-4 - 3 * lr - lr**2 + elr * (4 - lr)) / lr**3, axis=1).real
    return np.exp(hl), np.exp(hl / 2), q, f1, f2, f3


def etdrk4_integrate(v: np.ndarray, lin: np.ndarray, nonlinear: Callable[[np.ndarray], np.ndarray], dt: float,
                     steps: np.ndarray, contour_points: int = 64) -> np.ndarray:
    """Integrate v' = L·v + N(v) (L diagonal: ``lin``) from ``v`` by ETDRK4 with step ``dt`` (Cox & Matthews 2002,
    eq. 26-29); returns the states after ``steps[j]`` steps as the columns of a complex array (steps nondecreasing)."""
    e, e2, q, f1, f2, f3 = etdrk4_coefficients(lin, dt, contour_points)
    out = np.empty((v.size, len(steps)), dtype=complex)
    step = 0
    for j, target in enumerate(steps):
        while step < target:
            nv = nonlinear(v)
            a = e2 * v + q * nv
            na = nonlinear(a)
            b = e2 * v + q * na
            nb = nonlinear(b)
            c = e2 * a + q * (2.0 * nb - nv)
            nc = nonlinear(c)
            v = e * v + f1 * nv + f2 * (na + nb) * 2.0 + f3 * nc
            step += 1
        out[:, j] = v
    return out


def fourier_projection(f: InitialCondition, modes: int, points: int) -> np.ndarray:
    """rfft coefficients (``modes // 2 + 1``, scaled as ``rfft`` of ``modes`` grid values) of the truncated Fourier
    series of ``f`` on ``[-1, 1)``: the L2 projection onto the modes ``|k| < modes / 2`` (Nyquist mode zero), its
    coefficients by an FFT on ``points`` grid points (aliasing error ``~ (modes / points)^2`` for a kink)."""
    grid = -1.0 + 2.0 * np.arange(points) / points
    coeffs = fft.rfft(np.asarray(f(grid), dtype=float))[: modes // 2 + 1] * (modes / points)
    coeffs[-1] = 0.0
    return coeffs


def fourier_evaluate(coeffs: np.ndarray, modes: int, x: np.ndarray) -> np.ndarray:
    """Values at ``x`` of the real trigonometric interpolants with rfft coefficients ``coeffs`` (nk, nt) on the
    grid ``-1 + 2 j / modes``; exact sampling where ``x`` lies on that grid."""
    s = (x + 1.0) * modes / 2.0
    idx = np.rint(s)
    if np.all(np.abs(s - idx) <= 1e-9 * modes):
        return fft.irfft(coeffs, n=modes, axis=0)[idx.astype(int) % modes]
    k = np.arange(coeffs.shape[0])
    w = np.full(k.size, 2.0 / modes)
    w[0] = 1.0 / modes
    if modes % 2 == 0:
        w[-1] = 1.0 / modes
        coeffs = coeffs.copy()
        coeffs[-1] = coeffs[-1].real  # the Nyquist mode of a real grid function, as a cosine
    basis = np.exp(1j * np.pi * np.outer(x + 1.0, k)) * w
    return (basis @ coeffs).real


def _refine_periodic(params: dict[str, Any], refine: str) -> tuple[dict[str, Any], str]:
    """Self-convergence of :func:`allen_cahn_periodic`: ``refine="both"`` (= ``"default"``) doubles ``modes`` and
    halves ``dt`` (the total discretisation change); ``"time"`` only halves ``dt`` -- the error of the ETDRK4
    integration of the ``modes``-point semi-discretisation; ``"space"`` only doubles ``modes``. The spatial part
    dominates near ``x = ±1`` at early times, where the periodic extension of ``x^2 cos(pi x)`` has a kink: from
    interpolated initial data it converges only like ``modes^-2`` (5.8e-4 from 512 to 1024 modes), from the
    projected data (the default) to ~1e-12 from 4096 to 8192 modes; halving ``dt = 1e-5`` changes ~1e-10."""
    cur = {**defaults(allen_cahn_periodic), **params}
    modes, dt = cur["modes"], cur["dt"]
    if refine in ("default", "both"):
        return {**params, "modes": 2 * modes, "dt": dt / 2}, "modes doubled and dt halved"
    if refine == "time":
        return {**params, "dt": dt / 2}, "dt halved (time-integration error of the fixed-mode semi-discretisation)"
    if refine == "space":
        return {**params, "modes": 2 * modes}, "modes doubled (spatial error)"
    raise ValueError("refine must be 'default' (= 'both'), 'time' or 'space'")


#: The registered builder also estimates its own error (``attrs["self_convergence"]``): 4096 and 8192 modes,
#: 100 000 and 200 000 ETDRK4 steps, about 2.5 min of CPU (142 s measured) once, before the result is cached.
@register_reference("allen_cahn_periodic", refine=_refine_periodic, estimate_error=True)
def allen_cahn_periodic(
    d: float = 1e-4,
    modes: int = 4096,
    dt: float = 1e-5,
    x: ArrayLike | None = None,
    t: ArrayLike | None = None,
    initial_condition: InitialCondition = default_initial_condition,
    contour_points: int = 64,
    projection_points: int = 2**20,
    estimate_error: bool = False,
) -> Reference:
    """Allen–Cahn ``u_t = d u_xx + 5 u - 5 u^3``, ``x`` in ``[-1, 1)`` periodic.

    Fourier pseudo-spectral in ``x`` (``modes`` grid points ``-1 + 2 j / modes``, no dealiasing) and ETDRK4 in
    ``t`` with step ``dt`` (linear part ``-d k^2``, nonlinear part ``5 (u - u^3)``). Output at ``t`` (default
    ``linspace(0, 1, 201)``; every time must be a multiple of ``dt``) and ``x`` (default the 512-point grid
    ``-1 + 2 j / 512``: every ``modes / 512``-th grid point; off the computational grid by trigonometric
    interpolation). At ``t = 0`` the output is the initial condition itself.

    ``projection_points``: the initial Fourier coefficients are those of an FFT of the initial condition on this
    many points, truncated to ``modes`` (the L2 projection, up to aliasing ``~ (modes / projection_points)^2``);
    ``0`` interpolates the initial condition at the ``modes`` grid points instead (the classic benchmark data's
    choice, whose error decays only like ``modes^-2`` because of the kink at ``x = ±1``).
    ``estimate_error``: also run :func:`self_convergence` (modes doubled, dt halved) into
    ``attrs["self_convergence"]``.
    """
    if estimate_error:
        params: dict[str, Any] = dict(d=d, modes=modes, dt=dt, x=x, t=t, initial_condition=initial_condition)
        params.update(contour_points=contour_points, projection_points=projection_points)
        _, coarse, _ = cast(tuple, self_convergence("allen_cahn_periodic", return_references=True, **params))
        return coarse
    x = -1.0 + 2.0 * np.arange(512) / 512 if x is None else np.asarray(x, dtype=float)
    if x.ndim != 1:
        raise ValueError("x must be 1-D")
    t = time_grid(t, np.linspace(0.0, 1.0, 201))
    steps = np.rint(t / dt).astype(np.int64)
    if np.any(np.abs(steps * dt - t) > 1e-9 * np.maximum(1.0, t)):
        raise ValueError("every output time must be a multiple of dt")
    modes, projection_points = int(modes), int(projection_points)
    if projection_points and projection_points < modes:
        raise ValueError(f"projection_points must be 0 or >= modes ({modes}), got {projection_points}")

    grid = -1.0 + 2.0 * np.arange(modes) / modes
    k = np.pi * np.arange(modes // 2 + 1)  # wavenumbers for period 2
    def nonlinear(vhat: np.ndarray) -> np.ndarray:
        u = fft.irfft(vhat, n=modes)
        return fft.rfft(5.0 * u * (1.0 - u * u))

    if projection_points:
        v = fourier_projection(initial_condition, modes, projection_points)
    else:
        v = fft.rfft(np.asarray(initial_condition(grid), dtype=float))
    start = time.perf_counter()
    out = etdrk4_integrate(v, -d * k**2, nonlinear, dt, steps, contour_points)
    elapsed = time.perf_counter() - start
    if not np.all(np.isfinite(out)):
        raise FloatingPointError("ETDRK4 diverged")

    u = fourier_evaluate(out, modes, x)
    if t[0] == 0.0:  # the data themselves, not their truncated series (which differs near the kink)
        u[:, 0] = initial_condition(x)
    start_text = (f"L2 projection of the initial data (FFT on {projection_points} points)" if projection_points
                  else "initial data interpolated at the grid")
    attrs = {
        "problem": "allen_cahn_periodic",
        "equation": "u_t = d*u_xx + 5*u - 5*u**3, x in [-1, 1) periodic",
        "method": "Fourier pseudo-spectral (rfft, no dealiasing) + ETDRK4 (Kassam-Trefethen contour integrals), "
        f"from the {start_text}; output sampled from the computational grid",
        "resolution": {"modes": modes, "dt": dt, "contour_points": contour_points,
                       "projection_points": projection_points},
        "parameters": {"d": d, "initial_condition": callable_name(initial_condition)},
        "steps": int(steps[-1]),
        "solve_time_s": elapsed,
    }
    return Reference(x=x, t=t, u=u, attrs=attrs)


