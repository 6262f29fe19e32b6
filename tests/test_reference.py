"""Classical Allen–Cahn reference solvers (kanpde.reference.chebyshev, .spectral): convergence, cross-method agreement,
structure. Storage, cache and registry: tests/test_reference_store.py."""


import numpy as np
import pytest
from scipy import fft, sparse
from scipy.integrate import solve_ivp

from kanpde.reference import (
    Reference,
    allen_cahn_dirichlet,
    allen_cahn_periodic,
    default_initial_condition,
    self_convergence,
)
from kanpde.reference.chebyshev import barycentric_matrix, chebyshev_d2
from kanpde.reference.spectral import etdrk4_coefficients, fourier_projection

X_DIR = np.linspace(-1.0, 1.0, 201)
T_DIR = np.linspace(0.0, 1.0, 101)
X_PER = -1.0 + 2.0 * np.arange(512) / 512
T_PER = np.linspace(0.0, 1.0, 201)


@pytest.fixture(scope="module")
def dirichlet() -> Reference:
    """The full stored Dirichlet reference (nodes=512, ~1-3 s)."""
    return allen_cahn_dirichlet()


@pytest.fixture(scope="module")
def periodic() -> Reference:
    """The periodic solver over the full horizon at 512 modes (dt=1e-5: 100 000 ETDRK4 steps, ~9 s); the stored
    reference uses 4096 modes (~40 s), whose convergence is tested on a short horizon below."""
    return allen_cahn_periodic(modes=512)


# ---------------------------------------------------------------------------------------------------------------
# building blocks


def test_chebyshev_d2_is_exact_for_polynomials():
    x, d2 = chebyshev_d2(24)
    assert np.allclose(x, np.cos(np.pi * np.arange(25) / 24), atol=1e-15, rtol=0)
    p = x**7 - 3 * x**4 + x  # degree <= N: differentiated exactly
    assert np.max(np.abs(d2 @ p - (42 * x**5 - 36 * x**2))) < 1e-10


def test_barycentric_interpolation_matches_scipy_and_hits_nodes():
    from scipy.interpolate import BarycentricInterpolator

    n = 40
    nodes = np.cos(np.pi * np.arange(n + 1) / n)
    w = (-1.0) ** np.arange(n + 1)
    w[[0, -1]] /= 2
    f = np.exp(np.sin(3 * nodes))
    xs = np.concatenate([np.linspace(-1, 1, 57), nodes[:3]])
    ours = barycentric_matrix(nodes, w, xs) @ f
    assert np.max(np.abs(ours - BarycentricInterpolator(nodes, f)(xs))) < 1e-12
    assert np.array_equal(ours[-3:], f[:3])  # exact at the nodes
    assert np.max(np.abs(ours - np.exp(np.sin(3 * xs)))) < 1e-10  # spectral accuracy


def test_etdrk4_coefficients_match_closed_forms():
    h = 0.1
    lin = np.array([-50.0, -3.0, -0.5])  # |hL| large enough for the closed forms to be accurate
    e, e2, q, f1, f2, f3 = etdrk4_coefficients(lin, h, contour_points=64)
    z = h * lin
    assert np.allclose(e, np.exp(z)) and np.allclose(e2, np.exp(z / 2))
    assert np.allclose(q, h * (np.exp(z / 2) - 1) / z, rtol=1e-12)
    assert np.allclose(f1, h * (-4 - z + np.exp(z) * (4 - 3 * z + z**2)) / z**3, rtol=1e-10)
    assert np.allclose(f2, h * (2 + z + np.exp(z) * (z - 2)) / z**3, rtol=1e-10)
    assert np.allclose(f3, h * (-4 - 3 * z - z**2 + np.exp(z) * (4 - z)) / z**3, rtol=1e-10)
    # L -> 0 limits (where the closed forms cancel catastrophically): h/2, h/6, h/6, h/6
    _, _, q0, g1, g2, g3 = etdrk4_coefficients(np.array([0.0]), h)
    assert np.allclose([q0[0], g1[0], g2[0], g3[0]], [h / 2, h / 6, h / 6, h / 6], rtol=1e-13)


# ---------------------------------------------------------------------------------------------------------------
# Dirichlet: structure of the stored reference


def test_dirichlet_grid_boundary_and_initial_condition(dirichlet):
    assert np.array_equal(dirichlet.x, X_DIR) and np.array_equal(dirichlet.t, T_DIR)
    assert dirichlet.u.shape == (201, 101)
    assert np.all(dirichlet.u[0] == -1.0) and np.all(dirichlet.u[-1] == -1.0)  # exactly
    assert np.max(np.abs(dirichlet.u[:, 0] - X_DIR**2 * np.cos(np.pi * X_DIR))) < 1e-13
    attrs = dirichlet.attrs
    assert attrs["resolution"]["nodes"] == 512 and attrs["parameters"]["d"] == 1e-3
    assert "Chebyshev" in attrs["method"] and attrs["symmetric_reduction"] is True


def test_dirichlet_maximum_principle_and_symmetry(dirichlet):
    assert np.max(np.abs(dirichlet.u)) <= 1.0 + 1e-10
    assert np.max(np.abs(dirichlet.u - dirichlet.u[::-1])) < 1e-13  # even initial data, equal boundary values
    # the dynamics: the reaction drives the solution to +-1 away from two interfaces near x = +-0.5
    final = dirichlet.u[:, -1]
    crossings = X_DIR[np.nonzero(np.diff(np.sign(final)))[0]]
    assert crossings.size == 2 and np.allclose(np.abs(crossings), 0.5, atol=0.02)
    assert final[100] > 0.25 and final[100] < final[80]


def _fd_residual_4th(u, x, t, d):
    """u_t - d u_xx - 5 (u - u^3) with fourth-order central differences in t and x (interior points)."""
    dx, dt = x[1] - x[0], t[1] - t[0]
    ut = (-u[2:-2, 4:] + 8 * u[2:-2, 3:-1] - 8 * u[2:-2, 1:-3] + u[2:-2, :-4]) / (12 * dt)
    uxx = (-u[4:, 2:-2] + 16 * u[3:-1, 2:-2] - 30 * u[2:-2, 2:-2] + 16 * u[1:-3, 2:-2] - u[:-4, 2:-2]) / (12 * dx**2)
    uc = u[2:-2, 2:-2]
    reaction = 5 * (uc - uc**3)
    scale = max(np.abs(ut).max(), np.abs(d * uxx).max(), np.abs(reaction).max())
    return ut - d * uxx - reaction, scale


def test_dirichlet_pde_residual_on_the_stored_grid(dirichlet):
    """The residual by 4th-order differences on the 201 x 101 grid is pure truncation error.

    Tolerances: the truncation error is ~ d dx^4 u^(6) / 90 + dt^4 u^(5)_t / 30. While the solution is smooth
    (t <= 0.5) that is ~1e-5 of the largest term (measured 1.7e-5 absolute); near t = 1 the interfaces are only
    ~sqrt(2 d / 5) = 0.02 = 2 dx wide and u^(6) ~ 1/w^6 lifts it to ~1.4% (measured 2.7e-2 vs terms of size
    1.9). A wrong coefficient (d -> 2 d) must give a far larger residual on the smooth part.
    """
    u, x, t, d = dirichlet.u, dirichlet.x, dirichlet.t, 1e-3
    res, scale = _fd_residual_4th(u, x, t, d)
    assert 1.0 < scale < 3.0
    smooth = t[2:-2] <= 0.5
    assert np.max(np.abs(res[:, smooth])) < 1e-4 * scale
    assert np.max(np.abs(res)) < 3e-2 * scale
    wrong, _ = _fd_residual_4th(u, x, t, 2 * d)
    assert np.max(np.abs(wrong[:, smooth])) > 100 * np.max(np.abs(res[:, smooth]))


# ---------------------------------------------------------------------------------------------------------------
# Dirichlet: convergence and an independent method


@pytest.mark.slow
def test_dirichlet_self_convergence_on_the_full_grid(dirichlet):
    """nodes 512 -> 1024 and tolerances / 10 change the stored values by < 1e-8 (measured 2.9e-9; ~5 s)."""
    fine = allen_cahn_dirichlet(nodes=1024, rtol=1e-13, atol=1e-14)
    assert np.max(np.abs(dirichlet.u - fine.u)) < 1e-8
    # ... while fewer nodes are visibly under-resolved (the interfaces are ~0.02 wide; measured 9.6e-5)
    assert np.max(np.abs(allen_cahn_dirichlet(nodes=256).u - fine.u)) > 1e-6


def test_self_convergence_refines_as_documented():
    t = np.linspace(0.0, 0.1, 3)
    difference, coarse, fine = self_convergence("allen_cahn", nodes=48, t=t, rtol=1e-9, return_references=True)
    assert fine.attrs["resolution"] == {"nodes": 96, "rtol": 1e-10, "atol": 1e-14}
    assert coarse.attrs["self_convergence"] == difference == np.max(np.abs(coarse.u - fine.u))
    assert coarse.attrs["self_convergence_resolution"] == fine.attrs["resolution"]
    assert 0 < difference < 1e-6
    with_estimate = allen_cahn_dirichlet(nodes=48, t=t, rtol=1e-9, estimate_error=True)
    assert with_estimate.attrs["self_convergence"] == difference
    _, _, fine = self_convergence("allen_cahn_periodic", t=t, modes=64, dt=1e-3, return_references=True)
    assert fine.attrs["resolution"]["modes"] == 128 and fine.attrs["resolution"]["dt"] == 5e-4
    with pytest.raises(ValueError):
        self_convergence("allen_cahn", refine="time")


def test_dirichlet_symmetric_reduction_matches_full_system():
    t = np.linspace(0.0, 0.3, 7)
    half = allen_cahn_dirichlet(nodes=128, t=t)
    full = allen_cahn_dirichlet(nodes=128, t=t, symmetric=False)
    assert half.attrs["symmetric_reduction"] and not full.attrs["symmetric_reduction"]
    assert np.max(np.abs(half.u - full.u)) < 1e-11
    # an odd initial perturbation switches the reduction off automatically, and breaks the symmetry
    skew = allen_cahn_dirichlet(nodes=128, t=t, initial_condition=_skewed_initial_condition)
    assert not skew.attrs["symmetric_reduction"]
    assert np.max(np.abs(skew.u - skew.u[::-1])) > 1e-3


def _skewed_initial_condition(x):
    return default_initial_condition(x) + 0.05 * np.sin(np.pi * x)


def _dirichlet_fd(m, t, d=1e-3, boundary=-1.0):
    """Second-order finite-difference method of lines on m + 1 equispaced points, Radau with a sparse Jacobian."""
    xg = np.linspace(-1.0, 1.0, m + 1)
    h = xg[1] - xg[0]
    lap = sparse.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(m - 1, m - 1), format="csc") * (d / h**2)
    bc = np.zeros(m - 1)
    bc[[0, -1]] = d * boundary / h**2

    def rhs(_t, v):
        return lap @ v + bc + 5 * (v - v**3)

    def jac(_t, v):
        return (lap + sparse.diags(5 - 15 * v**2)).tocsc()

    sol = solve_ivp(
        rhs,
        (0.0, t[-1]),
        default_initial_condition(xg[1:-1]),
        method="Radau",
        jac=jac,
        t_eval=t,
        rtol=1e-10,
        atol=1e-12,
    )
    assert sol.success
    return np.vstack([np.full(t.size, boundary), sol.y, np.full(t.size, boundary)])[:: m // 200]


def test_dirichlet_chebyshev_agrees_with_finite_differences():
    """On t in [0, 0.25] the FD error must be O(h^2): measured 3.4e-6 (h = 0.005), 8.7e-7 (h = 0.0025), ratio 3.9;
    the Richardson extrapolation (4th order) must then agree with the Chebyshev solution much better (7e-8)."""
    t = np.linspace(0.0, 0.25, 11)
    cheb = allen_cahn_dirichlet(t=t, nodes=128)  # still smooth here: within 1e-11 of nodes=512
    fd_coarse, fd_fine = _dirichlet_fd(400, t), _dirichlet_fd(800, t)
    err_coarse = np.max(np.abs(fd_coarse - cheb.u))
    err_fine = np.max(np.abs(fd_fine - cheb.u))
    assert err_fine < 2e-6
    assert 3.6 < err_coarse / err_fine < 4.4
    err_richardson = np.max(np.abs((4 * fd_fine - fd_coarse) / 3 - cheb.u))
    assert err_richardson < 2e-7 and err_richardson < err_fine / 5


# ---------------------------------------------------------------------------------------------------------------
# periodic


def test_periodic_structure(periodic):
    assert np.array_equal(periodic.x, X_PER) and np.array_equal(periodic.t, T_PER)
    assert periodic.u.shape == (512, 201)
    assert np.max(np.abs(periodic.u[:, 0] - default_initial_condition(X_PER))) < 1e-14
    assert np.max(np.abs(periodic.u)) <= 1.0 + 1e-10
    mirror = (-np.arange(512)) % 512  # x -> -x on the periodic grid
    assert np.max(np.abs(periodic.u - periodic.u[mirror])) < 1e-10
    assert periodic.attrs["resolution"] == {"modes": 512, "dt": 1e-5, "contour_points": 64,
                                            "projection_points": 2**20}
    assert periodic.attrs["steps"] == 100_000
    # the known shape at t = 1: -1 near x = +-1, +1 on both sides of x = +-0.5 ... +-0.1, interfaces near
    # x = +-0.5, and a slowly growing value at the unstable point x = 0 (u0 = 0 there, u0'' > 0)
    final = periodic.u[:, -1]
    assert final[0] < -0.99 and np.max(final) > 0.98
    crossings = X_PER[np.nonzero(np.diff(np.sign(final)))[0]]
    assert crossings.size == 2 and np.allclose(np.abs(crossings), 0.5, atol=0.02)
    centre = periodic.u[256]
    assert 0.0 < centre[-1] < 0.1 and np.all(np.diff(centre) >= 0)


def _exact_initial_coefficients(modes):
    """rfft-scaled coefficients of the truncated Fourier series of x^2 cos(pi x) on [-1, 1], in closed form:
    a_k = int x^2 cos(pi x) cos(k pi x) dx = (I(k - 1) + I(k + 1)) / 2 with I(m) = int_{-1}^{1} x^2 cos(m pi x) dx
    = 4 (-1)^m / (m pi)^2 (m != 0), 2/3 (m = 0); the grid -1 + 2j/N turns cos(k pi x) into (-1)^k cos(2 pi j k / N)."""
    def integral(m):
        m = np.abs(m).astype(float)
        return np.where(m == 0, 2.0 / 3.0, 4.0 * (-1.0) ** m / (np.pi * np.maximum(m, 1.0)) ** 2)

    k = np.arange(modes // 2 + 1)
    a = (integral(k - 1) + integral(k + 1)) / 2
    coeffs = modes / 2 * (-1.0) ** k * a
    coeffs[0] = modes * a[0] / 2
    coeffs[-1] = 0.0
    return coeffs


def test_initial_projection_matches_the_closed_form_coefficients():
    for modes in (64, 4096):
        exact = _exact_initial_coefficients(modes)
        assert np.max(np.abs(fourier_projection(default_initial_condition, modes, 2**20) - exact)) < 1e-9 * modes
    # interpolation at the grid instead aliases the kink's slowly decaying coefficients (~k^-2) into every mode
    # (measured: each coefficient off by 1.6e-4 to 2.8e-4 of the grid's scale)
    aliased = fft.rfft(default_initial_condition(-1.0 + 2.0 * np.arange(64) / 64))
    assert np.min(np.abs(aliased - _exact_initial_coefficients(64))[:-1]) > 1e-4 * 64


def _fourier_mol(t, modes=512, d=1e-4):
    """Independent integrator for the same semi-discretisation: Fourier method of lines, DOP853 (not stiff here:
    d k_max^2 ~ 65), from the closed-form projection of the initial data."""
    k2 = (np.pi * np.arange(modes // 2 + 1)) ** 2

    def rhs(_t, u):
        return fft.irfft(-d * k2 * fft.rfft(u), n=modes) + 5 * (u - u**3)

    u0 = fft.irfft(_exact_initial_coefficients(modes), n=modes)
    sol = solve_ivp(rhs, (0.0, t[-1]), u0, method="DOP853", t_eval=t, rtol=1e-12, atol=1e-13)
    assert sol.success
    return sol.y


def test_periodic_etdrk4_agrees_with_method_of_lines(periodic):
    """ETDRK4 (dt = 1e-5) and adaptive DOP853 (rtol 1e-12) on the full horizon (t > 0: at t = 0 the solver returns
    the initial data, not their truncated series): measured 6.5e-11."""
    assert np.max(np.abs(_fourier_mol(T_PER)[:, 1:] - periodic.u[:, 1:])) < 1e-9


def test_periodic_self_convergence_in_time_short_horizon():
    """Halving dt = 1e-5 on t in [0, 0.05] changes nothing beyond rounding (measured ~1e-12; full horizon 1.5e-10)."""
    t = np.linspace(0.0, 0.05, 11)
    assert self_convergence("allen_cahn_periodic", refine="time", t=t, modes=512) < 1e-8
    # ... while coarse steps show ETDRK4's 4th order (measured 1.4e-8 and 8.6e-10 at dt = 0.01 and 0.005)
    fine = allen_cahn_periodic(dt=1e-5, t=t, modes=512).u[:, -1]
    err = [np.max(np.abs(allen_cahn_periodic(dt=dt, t=t[[0, -1]], modes=512).u[:, -1] - fine)) for dt in (1e-2, 5e-3)]
    assert err[0] > 1e-9 and 12 < err[0] / err[1] < 20


def test_periodic_converges_in_modes_from_the_projected_initial_data():
    """The stored resolution (4096 modes) on t <= 0.01, where the kink at x = +-1 is still sharp (the largest changes
    over the full horizon are at t = 0.005 too; docs/tables.md): doubling 2048 -> 4096 modes changes the solution by
    1.7e-7, 4096 -> 8192 by < 1e-8 (measured 2e-12). From interpolated initial data (projection_points=0, the
    classic benchmark data's start) the same doubling still changes it by ~1e-4 at x = +-1 (algebraic convergence)."""
    t = np.array([0.0, 0.005, 0.01])
    coarse = self_convergence("allen_cahn_periodic", refine="space", t=t, modes=2048)
    difference, stored, fine = self_convergence("allen_cahn_periodic", refine="space", t=t, return_references=True)
    assert stored.attrs["resolution"]["modes"] == 4096 and fine.attrs["resolution"]["modes"] == 8192
    assert difference < 1e-8 < coarse
    interpolated, first, _ = self_convergence("allen_cahn_periodic", refine="space", t=t, projection_points=0,
                                              return_references=True)
    assert interpolated > 1e-5
    change = np.max(np.abs(first.u - stored.u), axis=1)  # interpolated vs projected start: wrong only at the seam
    assert np.argmax(change) in (0, 511) and np.max(change[np.abs(np.abs(X_PER) - 1) > 0.1]) < 1e-2 * change.max()


def test_periodic_off_grid_evaluation_is_trigonometric_interpolation():
    t = np.array([0.01])  # t > 0: at t = 0 the solver returns the initial data themselves
    on = allen_cahn_periodic(t=t, modes=512)
    xs = np.array([-0.3, 0.123456, 0.77])
    off = allen_cahn_periodic(t=t, x=xs, modes=512)
    coeffs = np.fft.fft(on.u, axis=0) / 512
    k = np.fft.fftfreq(512, d=1 / 512)  # -256 .. 255
    direct = np.real(np.exp(1j * np.pi * np.outer(xs + 1, k)) @ coeffs)
    # the Nyquist term as a cosine (the real interpolant of least degree) instead of exp(-256 i pi (x + 1))
    nyquist = np.cos(256 * np.pi * (xs + 1)) - np.exp(-256j * np.pi * (xs + 1))
    direct += np.real(nyquist[:, None] * coeffs[256][None, :])
    assert np.max(np.abs(off.u - direct)) < 1e-12
    start = allen_cahn_periodic(t=[0.0], x=xs, modes=512)
    assert np.array_equal(start.u[:, 0], default_initial_condition(xs))


def test_periodic_rejects_times_off_the_step_grid():
    with pytest.raises(ValueError, match="multiple of dt"):
        allen_cahn_periodic(t=[0.0, 1.5e-5])
