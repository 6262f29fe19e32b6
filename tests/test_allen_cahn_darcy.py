"""The allen_cahn, allen_cahn_periodic and darcy problems: residuals on known solutions, exact hard
constraints, the symbolic source, and their built-in configs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import assert_close

from kanpde import Field, autograd_jet
from kanpde.config import load_config
from kanpde.jet import Jet
from kanpde.loss import loss_terms
from kanpde.nets import KAN, MLP
from kanpde.problems.allen_cahn import AllenCahn, AllenCahnPeriodic
from kanpde.problems.darcy import Darcy, permeability, source
from kanpde.solver import build_field, build_problem, solve

pytestmark = pytest.mark.usefixtures("single_thread")


def _space_time(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat([2 * torch.rand(n, 1, generator=g, dtype=torch.float64) - 1,
                      torch.rand(n, 1, generator=g, dtype=torch.float64)], dim=1)


def _field(problem, width, seed=0, net=None) -> Field:
    torch.manual_seed(seed)
    net = net if net is not None else KAN(width, grid=5)
    return Field(net.double(), problem).double()


# -- Allen–Cahn (Dirichlet) ---------------------------------------------------------------
def test_allen_cahn_hard_constraints_hold_exactly():
    field = _field(AllenCahn(), [2, 5, 5, 1])
    x = torch.linspace(-1, 1, 101, dtype=torch.float64)
    t = torch.linspace(0, 1, 51, dtype=torch.float64)
    initial = field(torch.stack([x, torch.zeros_like(x)], 1))[:, 0]
    assert_close(initial, x**2 * torch.cos(math.pi * x), 1e-15)
    for side in (-1.0, 1.0):
        wall = field(torch.stack([torch.full_like(t, side), t], 1))[:, 0]
        assert torch.equal(wall, torch.full_like(t, -1.0))
    assert AllenCahn().loss_terms() == ["residual"]


def test_allen_cahn_transform_jet_matches_autograd():
    """The closed-form jet of u = x² cos πx + t(1 − x²)N equals nested autograd of the values."""
    field = _field(AllenCahn(), [2, 5, 5, 1])
    x = _space_time(64)
    jet = field.jet(x, "diagonal")
    reference = autograd_jet(field, x, "diagonal")
    assert_close(jet.stack, reference.stack, 1e-12)


def test_symmetric_allen_cahn_is_exactly_even_in_x_with_exact_jets():
    """symmetric: true makes u(−x, t) = u(x, t) for any weights (the plain field is not), and its jets (fused
    ≤ 2 and Taylor, through both network evaluations) agree with nested autograd."""
    from kanpde.taylor import Derivatives

    field = _field(AllenCahn(symmetric=True), [2, 5, 5, 1])
    x = _space_time(64)
    mirrored = x * torch.tensor([-1.0, 1.0], dtype=torch.float64)
    assert_close(field(mirrored), field(x), 1e-14)
    plain = Field(field.net, AllenCahn()).double()
    assert (plain(mirrored) - plain(x)).abs().max() > 1e-3  # the check can fail
    assert_close(field.jet(x, "diagonal").stack, autograd_jet(field, x, "diagonal").stack, 1e-12)
    soft = Field(field.net, AllenCahn(symmetric=True, hard=False)).double()
    taylor = Derivatives.parse(["x", "t", "xx", "xxx"], soft.problem.coords)
    assert_close(soft.jet(x, taylor).stack, autograd_jet(soft, x, taylor).stack, 1e-11)
    assert soft(mirrored).sub(soft(x)).abs().max() < 1e-14
    assert field.problem.even == ("x",) and AllenCahn().even == ()
    with pytest.raises(ValueError, match="problem.params.symmetric"):
        AllenCahn(symmetric="yes")


def test_allen_cahn_soft_variant_has_the_conditions_as_loss_terms():
    problem = AllenCahn(hard=False)
    assert problem.loss_terms() == ["residual", "initial", "boundary"]
    field = _field(problem, [2, 5, 1])
    from kanpde.geometry import Sampler

    points = Sampler(problem.box, 32, 16, 16, dtype=torch.float64).sample(0)
    terms = loss_terms(field, points)
    assert set(terms) == {"residual", "initial", "boundary"} and all(torch.isfinite(v) for v in terms.values())
    x = torch.tensor([[0.3, 0.0], [1.0, 0.5]], dtype=torch.float64)
    assert not torch.allclose(field(x)[:, 0], torch.tensor([0.09 * math.cos(0.3 * math.pi), -1.0],
                                                            dtype=torch.float64))  # not built in
    with pytest.raises(ValueError, match="hard"):
        AllenCahn(boundary=-0.5)  # incompatible with the hard form
    with pytest.raises(ValueError, match="true or false"):
        AllenCahn(hard="yes")


def _fd_jet(u: np.ndarray, x: np.ndarray, t: np.ndarray, periodic: bool = False):
    """Jet (mode "diagonal", coordinates x, t) of grid values by 4th-order central differences; with the
    points where it is defined (all x when periodic, else 2 away from the edges; 2 away in t)."""
    dx, dt = x[1] - x[0], t[1] - t[0]
    up = [np.roll(u, -k, axis=0) for k in (1, 2)]  # wraps around: only used where that is right
    down = [np.roll(u, k, axis=0) for k in (1, 2)]
    xs = slice(None) if periodic else slice(2, -2)
    ux = (-up[1] + 8 * up[0] - 8 * down[0] + down[1]) / (12 * dx)
    uxx = (-up[1] + 16 * up[0] - 30 * u + 16 * down[0] - down[1]) / (12 * dx**2)
    ut = np.zeros_like(u)
    ut[:, 2:-2] = (-u[:, 4:] + 8 * u[:, 3:-1] - 8 * u[:, 1:-3] + u[:, :-4]) / (12 * dt)
    ts = slice(2, -2)
    parts = [a[xs, ts].ravel() for a in (u, ux, ut, uxx, np.zeros_like(u))]
    stack = torch.tensor(np.stack(parts, axis=1))
    grid_x, grid_t = np.meshgrid(x[xs], t[ts], indexing="ij")
    points = torch.tensor(np.stack([grid_x.ravel(), grid_t.ravel()], axis=1))
    return Jet(stack, 2, "diagonal", ("x", "t")), points, t[ts]


def test_allen_cahn_residual_vanishes_on_the_reference():
    """The problem's residual, fed the reference's derivatives by 4th-order differences on its 201 × 101 grid,
    is pure truncation error where the solution is smooth (t ≤ 0.5): < 1e-4 of the largest term (measured
    3.5e-5, as in test_reference.py), while d → 2d makes it > 100 times larger. Reads the cached reference."""
    problem = AllenCahn()
    (x, t), u = problem.reference()
    assert u.shape == (201, 101)
    jet, points, times = _fd_jet(np.asarray(u), np.asarray(x), np.asarray(t))
    residual = problem.residual(jet, points).reshape(len(x) - 4, len(times))
    scale = max(jet.d("t").abs().max(), (5 * (jet.value - jet.value**3)).abs().max())
    smooth = torch.as_tensor(times <= 0.5)
    assert residual[:, smooth].abs().max() < 1e-4 * scale
    wrong = AllenCahn(d=2e-3).residual(jet, points).reshape(residual.shape)
    assert wrong[:, smooth].abs().max() > 100 * residual[:, smooth].abs().max()


# -- Allen–Cahn (periodic) ----------------------------------------------------------------
def test_allen_cahn_periodic_hard_initial_condition_and_periodicity():
    problem = AllenCahnPeriodic()
    assert problem.input_features == 3 and problem.loss_terms() == ["residual"]
    field = _field(problem, [3, 5, 5, 1])
    x = torch.linspace(-1, 1, 101, dtype=torch.float64)
    initial = field(torch.stack([x, torch.zeros_like(x)], 1))[:, 0]
    assert_close(initial, x**2 * torch.cos(math.pi * x), 1e-15)
    t = torch.linspace(0, 1, 51, dtype=torch.float64)
    left = field.jet(torch.stack([-torch.ones_like(t), t], 1), "diagonal")
    right = field.jet(torch.stack([torch.ones_like(t), t], 1), "diagonal")
    assert (left.value - right.value).abs().max() < 1e-14  # u periodic; u_x jumps like the initial data's:
    kink = (right.first[:, 0] - left.first[:, 0])[:, 0]  # −4·e^(−10t), the lift's
    assert_close(kink, -4 * torch.exp(-10 * t), 1e-12)
    reference = autograd_jet(field, _space_time(32), "diagonal")
    assert_close(field.jet(_space_time(32), "diagonal").stack, reference.stack, 1e-12)


def test_allen_cahn_periodic_residual_on_a_short_reference():
    """The periodic residual on a short-time classical solution at the stored resolution (t ≤ 0.05, 4096 modes,
    ETDRK4 dt = 1e-5; ~3 s instead of the full reference's minutes): 4th-order differences (dx = 1/256,
    dt = 2.5e-3) leave < 1e-6 of the largest term for |x| ≤ 0.9 (measured 1.4e-8 absolute; the kink at the seam
    is narrower than dx there; with BENCHMARKS.md's 512 modes 1.8e-4, the modes beyond 512 not having decayed
    yet at t = 0.005); d → 10 d gives 7e-3."""
    from kanpde.reference import allen_cahn_periodic

    x = -1.0 + 2.0 * np.arange(512) / 512
    t = np.linspace(0.0, 0.05, 21)
    solution = allen_cahn_periodic(x=x, t=t)
    problem = AllenCahnPeriodic()
    jet, points, _ = _fd_jet(solution.u, x, t, periodic=True)
    inside = points[:, 0].abs() <= 0.9  # the kink at the seam is narrower than dx for small t
    jet, points = Jet(jet.stack[inside], 2, "diagonal", ("x", "t")), points[inside]
    residual = problem.residual(jet, points)
    scale = max(jet.d("t").abs().max(), (5 * (jet.value - jet.value**3)).abs().max())
    assert residual.abs().max() < 1e-6 * scale
    wrong = AllenCahnPeriodic(d=1e-3).residual(jet, points)
    assert wrong.abs().max() > 100 * residual.abs().max()


# -- Darcy --------------------------------------------------------------------------------
def _numpy_darcy(x: np.ndarray, y: np.ndarray):
    """a, u* typed independently of the sympy derivation."""
    a = 1 + 0.5 * np.sin(2 * np.pi * x) * np.sin(2 * np.pi * y)
    u = np.sin(np.pi * x) * np.sin(np.pi * y) + 0.1 * np.sin(4 * np.pi * x) * np.sin(4 * np.pi * y)
    return a, u


def test_darcy_residual_vanishes_on_the_exact_solution():
    problem = Darcy()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(500, 2, generator=g, dtype=torch.float64)
    u = autograd_jet(lambda p: problem.exact(p)[:, None], x, problem.derivatives, problem.coords)[0]
    residual = problem.residual(u, x)
    terms = torch.stack([permeability(x) * u.laplacian, source(x)]).abs().max()
    assert terms > 10
    assert residual.abs().max() <= 1e-12 * terms
    assert (residual + 0.01 * u.laplacian).abs().max() > 1e-4 * terms  # a wrong u would show


def test_darcy_symbolic_source_matches_finite_differences():
    """f = −∇·(a∇u*) from sympy against a conservative 2nd-order difference of the flux, with Richardson
    extrapolation (h = 1e-3, 5e-4): agreement to 1e-7 of max|f|."""
    g = np.random.default_rng(2)
    p = g.uniform(0.05, 0.95, size=(400, 2))
    x, y = p[:, 0], p[:, 1]

    def divergence(h):
        def flux_difference(dx, dy):
            a_plus, _ = _numpy_darcy(x + dx / 2, y + dy / 2)
            a_minus, _ = _numpy_darcy(x - dx / 2, y - dy / 2)
            _, u_plus = _numpy_darcy(x + dx, y + dy)
            _, u_minus = _numpy_darcy(x - dx, y - dy)
            _, u0 = _numpy_darcy(x, y)
            return (a_plus * (u_plus - u0) - a_minus * (u0 - u_minus)) / h**2
        return -(flux_difference(h, 0) + flux_difference(0, h))

    fd = (4 * divergence(5e-4) - divergence(1e-3)) / 3
    exact = source(torch.tensor(p)).numpy()
    assert np.abs(fd - exact).max() < 1e-7 * np.abs(exact).max()


def test_darcy_hard_and_soft_boundary():
    hard = _field(Darcy(), [2, 5, 1])
    s = torch.linspace(0, 1, 41, dtype=torch.float64)
    edges = torch.cat([torch.stack([s, torch.zeros_like(s)], 1), torch.stack([s, torch.ones_like(s)], 1),
                       torch.stack([torch.zeros_like(s), s], 1), torch.stack([torch.ones_like(s), s], 1)])
    assert hard(edges).abs().max() == 0
    assert Darcy().loss_terms() == ["residual"]
    soft = Darcy(hard=False)
    assert soft.loss_terms() == ["residual", "boundary"]
    assert _field(soft, [2, 5, 1])(edges).abs().max() > 0
    x = torch.rand(16, 2, dtype=torch.float64)
    assert_close(hard.jet(x, "trace").stack, autograd_jet(hard, x, "trace").stack, 1e-12)


def test_symmetric_darcy_is_exactly_invariant_under_the_point_reflection():
    """symmetric: true gives u(1 − x, 1 − y) = u(x, y) (the symmetry of a, f and u*), but not the separate
    reflections in x or in y, which the problem does not have; the jets still match nested autograd."""
    field = _field(Darcy(symmetric=True), [2, 5, 1])
    x = torch.rand(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    assert_close(field(1 - x), field(x), 1e-14)
    plain = Field(field.net, Darcy()).double()
    assert (plain(1 - x) - plain(x)).abs().max() > 1e-6  # the check can fail (u is small: D ≤ 1/16)
    flip_x = torch.stack([1 - x[:, 0], x[:, 1]], 1)
    assert (field(flip_x) - field(x)).abs().max() > 1e-6
    _, u = _numpy_darcy(x[:, 0].numpy(), x[:, 1].numpy())
    _, u_mirrored = _numpy_darcy(1 - x[:, 0].numpy(), 1 - x[:, 1].numpy())
    assert np.abs(u - u_mirrored).max() < 1e-14  # the exact solution has the symmetry built in
    assert_close(field.jet(x, "trace").stack, autograd_jet(field, x, "trace").stack, 1e-12)
    assert Darcy(symmetric=True).even == ("x", "y") and Darcy().even == ()


# -- configs ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["allen_cahn", "allen_cahn_periodic", "darcy", "darcy_mlp", "allen_cahn_lbfgs",
                                  "allen_cahn_periodic_lbfgs", "allen_cahn_periodic_target", "allen_cahn_target",
                                  "darcy_target"])
def test_builtin_configs_load_and_build(name):
    config = load_config(name)
    problem = build_problem(config.problem)
    field = build_field(config, problem, torch.device("cpu"))
    assert field.net.width[0] == problem.input_features
    if name.startswith("allen_cahn_periodic"):
        assert config.train.causal_epsilon > 0 and config.model.width[0] == 3


def test_periodic_config_trains_a_few_steps(tmp_path, monkeypatch):
    """Causal weighting and the periodic embedding through the solver, 3 Adam steps on few points, measured against
    a cheap stand-in reference (64 modes, dt = 1e-3, in a temporary cache) rather than the stored one (minutes)."""
    from functools import partial

    from kanpde.reference import REFERENCES, allen_cahn_periodic

    monkeypatch.setenv("KANPDE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(REFERENCES, "allen_cahn_periodic", partial(allen_cahn_periodic, modes=64, dt=1e-3))
    summary = solve(load_config("allen_cahn_periodic", [
        "train.stages=[{optimizer: adam, steps: 3}]", "points.interior=64", "model.width=[3, 3, 1]",
        "output.plots=false", "train.grid_schedule={}", "evaluate.every=0"]), out=tmp_path / "run", quiet=True)
    assert summary["steps"] == 3 and math.isfinite(summary["rel_l2"])
    assert summary["problem"] == "allen_cahn_periodic" and summary["params"] > 0


def test_mlp_through_the_allen_cahn_transform():
    field = _field(AllenCahn(), None, net=MLP([2, 8, 1]))
    x = _space_time(16)
    assert_close(field.jet(x, "diagonal").stack, autograd_jet(field, x, "diagonal").stack, 1e-12)
