"""Reference for the Kuramoto–Sivashinsky equation: Fourier pseudo-spectral in x, ETDRK4 in t.

u_t + u·u_x + u_xx + u_xxxx = 0 on x ∈ [0, L) periodic, u(x, 0) = cos(2πx/L)·(1 + sin(2πx/L)); with
L = 32π this is the setup of Kassam & Trefethen (2005), u(x, 0) = cos(x/16)(1 + sin(x/16)). In Fourier
space û_t = (k² − k⁴)·û − (ik/2)·(u²)^, a diagonal linear part and a nonlinear part, which the ETDRK4
integrator of :mod:`kanpde.reference.spectral` takes as they are. The spectrum of the solution decays
exponentially, so 256 modes on 32π resolve it to round-off; the registered builder reports the change
when the modes are doubled and the step halved (``attrs["self_convergence"]``).
"""

from __future__ import annotations

import math
import time
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike
from scipy import fft

from kanpde.reference.common import defaults
from kanpde.reference.registry import register_reference, self_convergence
from kanpde.reference.spectral import etdrk4_integrate
from kanpde.reference.store import Reference

__all__ = ["initial_condition", "kuramoto_sivashinsky"]


def initial_condition(x: np.ndarray, length: float = 32 * math.pi) -> np.ndarray:
    """u(x, 0) = cos(2πx/L)·(1 + sin(2πx/L))."""
    phase = 2 * np.pi * np.asarray(x, dtype=float) / length
    return np.cos(phase) * (1 + np.sin(phase))


def _refine(params: dict[str, Any], refine: str) -> tuple[dict[str, Any], str]:
    """Self-convergence of :func:`kuramoto_sivashinsky`: the modes doubled and dt halved."""
    if refine != "default":
        raise ValueError("the Kuramoto-Sivashinsky solver refines only one way: refine='default'")
    current = {**defaults(kuramoto_sivashinsky), **params}
    return {**params, "modes": 2 * current["modes"], "dt": current["dt"] / 2}, "modes doubled and dt halved"


@register_reference("kuramoto_sivashinsky", refine=_refine, estimate_error=True)
def kuramoto_sivashinsky(length: float = 32 * math.pi, t1: float = 10.0, modes: int = 256, dt: float = 5e-3,
                         x: ArrayLike | None = None, t: ArrayLike | None = None, contour_points: int = 64,
                         estimate_error: bool = False) -> Reference:
    """u on the grid ``x`` (default 257 points on [0, L], both ends) × ``t`` (default 101 times on [0, t1]);
    every output time must be a multiple of ``dt``. ``estimate_error``: also solve with the modes doubled and
    ``dt`` halved and store the max abs change (``attrs["self_convergence"]``)."""
    if estimate_error:
        params = dict(length=length, t1=t1, modes=modes, dt=dt, x=x, t=t, contour_points=contour_points)
        _, coarse, _ = cast(tuple, self_convergence("kuramoto_sivashinsky", return_references=True, **params))
        return coarse
    x = np.linspace(0.0, length, 257) if x is None else np.asarray(x, dtype=float)
    t = np.linspace(0.0, t1, 101) if t is None else np.asarray(t, dtype=float)
    steps = np.rint(t / dt).astype(np.int64)
    if t.ndim != 1 or np.any(np.diff(steps) < 0) or np.any(np.abs(steps * dt - t) > 1e-9 * np.maximum(1.0, t)):
        raise ValueError("t: output times must be increasing multiples of dt")
    grid = length * np.arange(modes) / modes
    k = 2 * np.pi / length * np.arange(modes // 2 + 1)

    def nonlinear(vhat: np.ndarray) -> np.ndarray:  # −u·u_x = −(u²)_x / 2
        u = fft.irfft(vhat, n=modes)
        return -0.5j * k * fft.rfft(u * u)

    start = time.perf_counter()
    spectra = etdrk4_integrate(fft.rfft(initial_condition(grid, length)), k**2 - k**4, nonlinear, dt, steps,
                               contour_points)
    elapsed = time.perf_counter() - start
    if not np.all(np.isfinite(spectra)):
        raise FloatingPointError("ETDRK4 diverged")
    # the trigonometric interpolant at x: Σ_k c_k e^{ikx}, rfft scaling (real part of the one-sided sum)
    weights = np.full(k.size, 2.0 / modes)
    weights[0] = 1.0 / modes
    weights[-1] = 1.0 / modes  # the Nyquist mode (modes even), a cosine
    spectra[-1] = spectra[-1].real
    u = (np.exp(1j * np.outer(x, k)) * weights) @ spectra
    return Reference(x=x, t=t, u=u.real, attrs={
        "problem": "kuramoto_sivashinsky",
        "equation": "u_t + u*u_x + u_xx + u_xxxx = 0, x in [0, L) periodic, u(x,0) = cos(2pi x/L)(1 + sin(2pi x/L))",
        "method": "Fourier pseudo-spectral (rfft, no dealiasing) + ETDRK4 (Kassam-Trefethen contour integrals)",
        "resolution": {"modes": modes, "dt": dt, "contour_points": contour_points},
        "parameters": {"length": length, "t1": t1},
        "steps": int(steps[-1]),
        "solve_time_s": elapsed,
    })

