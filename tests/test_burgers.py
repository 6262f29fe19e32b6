"""The burgers problem and its Cole–Hopf reference: quadrature convergence, the PDE by finite differences,
agreement with an independent finite-difference solve, exact hard constraints and closed-form jets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import assert_close
from scipy.integrate import solve_ivp
from scipy.sparse import diags_array

from kanpde import Field, autograd_jet
from kanpde.config import load_config
from kanpde.nets import KAN
from kanpde.problem import Problem
from kanpde.problems.burgers import Burgers
from kanpde.reference.burgers import BURGERS_NU, burgers_cole_hopf, cole_hopf
from kanpde.solver import build_field, build_problem

pytestmark = pytest.mark.usefixtures("single_thread")


def test_cole_hopf_quadrature_is_converged():
    """Doubling the Gauss–Hermite nodes changes the default solution by ≤ 1e-8 (measured: ~5e-15), on a grid
    through the shock; too few nodes are visibly wrong (so the check can fail)."""
    x, t = np.linspace(-1, 1, 257), np.linspace(0, 1, 21)
    ref = burgers_cole_hopf(x=x, t=t, estimate_error=True)
    assert ref.attrs["self_convergence"] <= 1e-8
    assert burgers_cole_hopf(nodes=20, x=x, t=t, estimate_error=True).attrs["self_convergence"] > 1e-2
    assert_close(torch.from_numpy(ref.u[:, 0]), torch.from_numpy(-np.sin(np.pi * x)), 1e-15)
    assert np.abs(ref.u[[0, -1]]).max() <= 1e-14  # u(±1, t) = 0


def test_cole_hopf_satisfies_burgers_by_finite_differences_away_from_the_shock():
    """Fourth-order central differences of the quadrature solution: the residual u_t + u u_x − ν u_xx is ≤ 1e-6
    for |x| ≥ 0.2, while the terms themselves are O(1) to O(100)."""
    x = np.linspace(-0.9, 0.9, 37)
    x = x[np.abs(x) >= 0.2]
    h = 1e-3
    worst, scale = 0.0, 0.0
    for t in (0.1, 0.4, 0.7, 1.0 - 2 * h):
        def u(dx, dt, t=t):
            return cole_hopf(x + dx, t + dt)
        u_x = (-u(2 * h, 0) + 8 * u(h, 0) - 8 * u(-h, 0) + u(-2 * h, 0)) / (12 * h)
        u_xx = (-u(2 * h, 0) + 16 * u(h, 0) - 30 * u(0, 0) + 16 * u(-h, 0) - u(-2 * h, 0)) / (12 * h * h)
        u_t = (-u(0, 2 * h) + 8 * u(0, h) - 8 * u(0, -h) + u(0, -2 * h)) / (12 * h)
        worst = max(worst, np.abs(u_t + u(0, 0) * u_x - BURGERS_NU * u_xx).max())
        scale = max(scale, np.abs(u_t).max())
    assert worst <= 1e-6 and scale > 0.1, (worst, scale)


def _finite_differences(cells: int, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An independent solve: second-order central differences on ``cells`` intervals (advection in the
    energy-conserving skew-symmetric form (u²)_x/3 + u u_x/3), stiff BDF in time."""
    x = np.linspace(-1, 1, cells + 1)
    dx = x[1] - x[0]

    def rhs(_t, interior):
        v = np.concatenate([[0.0], interior, [0.0]])
        advection = ((v[2:] ** 2 - v[:-2] ** 2) + v[1:-1] * (v[2:] - v[:-2])) / (6 * dx)
        return -advection + BURGERS_NU * (v[2:] - 2 * v[1:-1] + v[:-2]) / dx**2

    sparsity = diags_array([1.0, 1.0, 1.0], offsets=[-1, 0, 1], shape=(cells - 1, cells - 1))
    solution = solve_ivp(rhs, (0, times[-1]), -np.sin(np.pi * x[1:-1]), method="BDF", t_eval=times,
                         rtol=1e-10, atol=1e-12, jac_sparsity=sparsity)
    assert solution.success
    zeros = np.zeros((1, times.size))
    return x, np.vstack([zeros, solution.y, zeros])


def test_cole_hopf_matches_a_fine_finite_difference_solve():
    """Through the shock (t = 0.5, 1): the finite-difference error against Cole–Hopf falls by 4 when the grid is
    halved (second order, so the two solutions share their limit), and is ≤ 3e-4 (max) on 4000 cells."""
    times = np.array([0.25, 0.5, 1.0])
    errors = []
    for cells in (2000, 4000):
        x, u = _finite_differences(cells, times)
        exact = np.stack([cole_hopf(x, t) for t in times], axis=1)
        errors.append(np.abs(u - exact).max())
    assert errors[1] <= 3e-4, errors
    assert 3.5 <= errors[0] / errors[1] <= 4.5, errors


def _field(seed=0) -> Field:
    torch.manual_seed(seed)
    return Field(KAN([2, 5, 5, 1], grid=5).double(), Burgers()).double()


def test_burgers_hard_constraints_hold_exactly():
    field = _field()
    x = torch.linspace(-1, 1, 101, dtype=torch.float64)
    t = torch.linspace(0, 1, 51, dtype=torch.float64)
    assert_close(field(torch.stack([x, torch.zeros_like(x)], 1))[:, 0], -torch.sin(math.pi * x), 1e-15)
    for side in (-1.0, 1.0):
        wall = field(torch.stack([torch.full_like(t, side), t], 1))[:, 0]
        assert wall.abs().max() <= 1e-15
    assert Burgers().loss_terms() == ["residual"]
    assert Burgers(hard=False).loss_terms() == ["residual", "initial", "boundary"]


def test_burgers_transform_jet_matches_autograd():
    field = _field()
    x = torch.rand(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * torch.tensor(
        [2.0, 1.0], dtype=torch.float64) - torch.tensor([1.0, 0.0], dtype=torch.float64)
    assert_close(field.jet(x, "diagonal").stack, autograd_jet(field, x, "diagonal").stack, 1e-12)


def test_symmetric_burgers_is_exactly_odd_in_x_with_exact_jets():
    """symmetric: true makes u(−x, t) = −u(x, t) for any weights (the plain field is not), and its jets of any
    kind (fused ≤ 2 and Taylor) agree with nested autograd through both network evaluations."""
    from kanpde.taylor import Derivatives

    torch.manual_seed(0)
    field = Field(KAN([2, 5, 5, 1], grid=5).double(), Burgers(symmetric=True)).double()
    x = torch.rand(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * torch.tensor(
        [2.0, 1.0], dtype=torch.float64) - torch.tensor([1.0, 0.0], dtype=torch.float64)
    mirrored = x * torch.tensor([-1.0, 1.0], dtype=torch.float64)
    assert_close(field(mirrored), -field(x), 1e-14)
    plain = Field(field.net, Burgers()).double()
    assert (plain(mirrored) + plain(x)).abs().max() > 1e-3  # the check can fail
    assert_close(field.jet(x, "diagonal").stack, autograd_jet(field, x, "diagonal").stack, 1e-12)
    taylor = Derivatives.parse(["x", "t", "xx", "xxx"], field.problem.coords)  # soft conditions: N itself
    soft = Field(field.net, Burgers(symmetric=True, hard=False)).double()
    assert_close(soft.jet(x, taylor).stack, autograd_jet(soft, x, taylor).stack, 1e-11)
    assert field.problem.odd == ("x",) and Burgers().odd == ()


def test_burgers_residual_vanishes_on_the_exact_solution():
    """The problem's residual applied to the jet of the Cole–Hopf solution (derivatives by finite differences)."""
    from kanpde.jet import Jet

    problem = Burgers()
    x = np.array([-0.6, -0.3, 0.4, 0.8])
    t, h = 0.5, 1e-4
    value = cole_hopf(x, t)
    u_x = (cole_hopf(x + h, t) - cole_hopf(x - h, t)) / (2 * h)
    u_xx = (cole_hopf(x + h, t) - 2 * value + cole_hopf(x - h, t)) / h**2
    u_t = (cole_hopf(x, t + h) - cole_hopf(x, t - h)) / (2 * h)
    points = torch.tensor(np.stack([x, np.full_like(x, t)], 1))
    stack = torch.tensor(np.stack([value, u_x, u_t, u_xx, 0 * x], 1))[:, :, None]  # diagonal: u, u_x, u_t, u_xx, u_tt
    assert torch.abs(problem.residual(Jet(stack, 2, "diagonal", problem.coords)[0], points)).max() <= 1e-5
    seed = Jet.seed(points, "diagonal", problem.coords)
    assert torch.abs(problem.residual(seed[0], points)).max() > 0.1  # u = x is no solution


def test_burgers_config_loads_and_builds():
    config = load_config("burgers")
    problem = build_problem(config.problem)
    field = build_field(config, problem, torch.device("cpu"))
    assert field.net.width[0] == 2 and problem.nu == pytest.approx(0.01 / math.pi)
    with pytest.raises(ValueError, match="problem.params.nu"):
        Burgers(nu=0.0)


def test_reference_at_scattered_points_is_cole_hopf_not_the_interpolated_grid():
    """Measurements for the inverse problem come from ``reference_at``: at scattered (x, t) it equals the
    Cole–Hopf solution evaluated one time at a time (to round-off), while linear interpolation of the
    reference grid is off by more than 1e-3 near the shock (the bias that moved the identified ν)."""
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(-0.02, 0.02, 200), rng.uniform(0.4, 1.0, 200)])
    values = Burgers().reference_at(points)
    one_by_one = np.array([cole_hopf(np.array([x]), t)[0] for x, t in points])
    assert np.abs(values - one_by_one).max() <= 1e-13
    interpolated = Problem.reference_at(Burgers(), points)  # the generic grid interpolation
    assert np.abs(interpolated - values).max() > 1e-3
    assert_close(torch.from_numpy(Burgers().reference_at(np.array([[0.3, 0.0]]))),
                 torch.tensor([-math.sin(0.3 * math.pi)], dtype=torch.float64), 1e-15)


def test_reference_at_uses_the_exact_solution_when_there_is_one():
    """A problem with ``exact`` gives it at the points; one with neither exact nor reference says so."""
    from kanpde.problems.heat1d import Heat1D

    problem = Heat1D()
    points = np.array([[0.25, 0.1], [0.5, 0.3]])
    expected = problem.exact(torch.as_tensor(points)).numpy().reshape(-1)
    assert np.array_equal(problem.reference_at(points), expected)

    class Bare(Problem):
        box = Burgers.box

        def residual(self, u, x):
            return u.d("t")

    with pytest.raises(ValueError, match="neither an exact nor a reference"):
        Bare().reference_at(points)
