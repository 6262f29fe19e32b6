"""Tests for the jet-aware networks: KAN (with grid extension and update), MLP, FourierMLP and SIREN.

The closed-form jets are checked against nested autograd in float64; KAN layers are also
checked against the formula y_j = Σ_i w_b silu(x_i) + w_s Σ_m c_m B_m(x_i) with scipy's
B-splines, and grid changes against the function they must keep.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
import torch
from helpers import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.interpolate import BSpline

from kanpde import splines
from kanpde.autodiff import autograd_jet
from kanpde.jet import Jet, num_terms
from kanpde.nets import KAN, MLP, SIREN, FourierMLP
from kanpde.nets.base import silu_derivatives
from kanpde.nets.kan import _LayerJet

pytestmark = pytest.mark.usefixtures("single_thread")
DTYPE = torch.float64
MODES = ("full", "diagonal", "trace", "none", "diagonal:0", "diagonal:1")  # two inputs: u_xx only, u_tt only
JET_TOL = 1e-10
KEEP_TOL = 1e-12


def assert_jet_matches_autograd(model, x: torch.Tensor, mode: str, tol: float = JET_TOL) -> None:
    jet = model.jet(x, hessian=mode)
    reference = autograd_jet(model, x, mode)
    assert jet.mode == mode and jet.dim == x.shape[1]
    assert jet.channels == reference.channels == (model.width[-1],)
    assert_close(jet.value, reference.value, tol)
    assert_close(jet.grad, reference.grad, tol)
    if mode == "full":
        assert_close(jet.hess, reference.hess, tol)
    if mode in ("full", "diagonal"):
        assert_close(jet.hess_diag, reference.hess_diag, tol)
    if mode in ("full", "diagonal", "trace"):
        assert_close(jet.laplacian, reference.laplacian, tol)
    assert_close(jet.stack, reference.stack, tol)


def assert_all_modes_match_autograd(model, x: torch.Tensor) -> None:
    dim = x.shape[1]  # and the leanest diagonals: the last axis only, the first and third (with a gap)
    for mode in (*MODES[:4], f"diagonal:{dim - 1}", *(["diagonal:0,2"] if dim > 2 else [])):
        assert_jet_matches_autograd(model, x, mode)


@contextlib.contextmanager
def default_float64():
    """Build models in float64 from the start, so their uniform knots are uniform in float64."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(DTYPE)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def make_kan(width, grid=5, order=3, seed=0, coef_scale=None, **kwargs) -> KAN:
    torch.manual_seed(seed)
    with default_float64():
        model = KAN(list(width), grid=grid, order=order, **kwargs).double()
    if coef_scale is not None:  # larger spline coefficients than the initial noise, to exercise the splines
        with torch.no_grad():
            for layer in model.layers:
                layer.coef.normal_(0, coef_scale)
    return model


def make_smooth_kan(width, grid=5, order=3, seed=0, **kwargs) -> KAN:
    """A random KAN whose edge splines are smooth: a·sin(b·h + c) fitted on each layer's grid range."""
    model = make_kan(width, grid, order, seed, **kwargs)
    generator = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for layer in model.layers:
            shape = (layer.in_features, layer.out_features)
            a = 0.3 * (torch.rand(shape, generator=generator, dtype=DTYPE) - 0.5)
            b = 0.5 + torch.rand(shape, generator=generator, dtype=DTYPE)
            c = 2 * math.pi * torch.rand(shape, generator=generator, dtype=DTYPE)
            h = torch.cat([layer.range_samples(8), layer.range_samples(8)[:-1] + 1 / (16 * (grid + order))])
            layer.coef.copy_(splines.fit(h, a * torch.sin(b * h[..., None] + c), layer.knots, order))
    return model


def uniform_points(count: int, lo, hi, seed: int, dim: int = 2) -> torch.Tensor:
    """[count, n] random points in the box [lo, hi]: per-input bounds, or scalars for ``dim`` inputs."""
    generator = torch.Generator().manual_seed(seed)
    lo, hi = torch.as_tensor(lo, dtype=DTYPE), torch.as_tensor(hi, dtype=DTYPE)
    n = max(lo.numel(), hi.numel()) if lo.ndim or hi.ndim else dim
    return lo + (hi - lo) * torch.rand(count, n, generator=generator, dtype=DTYPE)


def layer_inputs(model: KAN, x: torch.Tensor) -> list[torch.Tensor]:
    """The input of every layer at the model inputs ``x``."""
    inputs = [x]
    for layer in model.layers[:-1]:
        inputs.append(layer(inputs[-1]))
    return inputs


def inside_grid_ranges(model: KAN, x: torch.Tensor) -> bool:
    with torch.no_grad():
        for layer, h in zip(model.layers, layer_inputs(model, x)):
            bounds = layer.grid_range()
            if not bool(((h >= bounds[:, 0]) & (h <= bounds[:, 1])).all()):
                return False
    return True


def relative_change(before: torch.Tensor, after: torch.Tensor) -> float:
    return float(torch.linalg.norm(after - before) / torch.linalg.norm(before))


def layer_probe(layer, seed: int) -> torch.Tensor:
    """The layer's own range samples and random points in its grid range: [P, n_in]."""
    bounds = layer.grid_range()
    return torch.cat([layer.range_samples(), uniform_points(300, bounds[:, 0], bounds[:, 1], seed)])


def kan_formula(layer, h: torch.Tensor) -> torch.Tensor:
    """y_j = Σ_i w_b[i,j] silu(h_i) + w_s[i,j] Σ_m c[i,m,j] B_m(h_i), with scipy's basis elements."""
    knots, coef, order = layer.knots.detach().numpy(), layer.coef.detach().numpy(), layer.order
    hs = h.detach().numpy()
    spline = np.zeros((hs.shape[0], *coef.shape[::2]))  # [P, n_in, n_out]
    for i in range(coef.shape[0]):
        for m in range(coef.shape[1]):
            element = BSpline.basis_element(knots[i, m : m + order + 2], extrapolate=False)
            values = np.nan_to_num(element(hs[:, i]), nan=0.0)
            values[hs[:, i] >= knots[i, m + order + 1]] = 0.0  # half-open support [t_m, t_{m+k+1})
            spline[:, i, :] += values[:, None] * coef[i, m]
    base = torch.nn.functional.silu(h.detach())[..., None] * layer.base_weight.detach()
    return (base + layer.spline_weight.detach() * torch.from_numpy(spline)).sum(1)


# jets against autograd -----------------------------------------------------------------------


@st.composite
def kan_cases(draw):
    d_in, d_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    hidden = draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))
    grid, order = draw(st.integers(1, 8)), draw(st.integers(1, 3))
    lo = draw(st.floats(-2.0, 0.5))
    span = draw(st.floats(0.5, 3.0))
    grid_change = draw(st.sampled_from(["none", "update", "extend", "update+extend"]))
    return [d_in, *hidden, d_out], grid, order, (lo, lo + span), grid_change, draw(st.integers(0, 2**16))


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(kan_cases())
def test_kan_jets_match_autograd(case):
    width, grid, order, grid_range, grid_change, seed = case
    model = make_kan(width, grid, order, seed, coef_scale=0.5, grid_range=grid_range)
    lo, hi = grid_range
    span, d = hi - lo, width[0]
    if "update" in grid_change:  # sample-adapted, non-uniform knots
        samples = uniform_points(64, [lo] * d, [hi] * d, seed)
        model.update_grid(samples**3 / max(abs(lo), abs(hi)) ** 2, grid_eps=0.1)
        assert grid == 1 or not splines.is_uniform(model.layers[0].knots)
    if "extend" in grid_change:
        model.extend_grid(grid + 3, uniform_points(64, [lo] * d, [hi] * d, seed + 1))
        assert model.grid == grid + 3
    # points inside and well outside the first layer's grid range
    x = torch.cat([uniform_points(6, [lo] * d, [hi] * d, seed + 2),
                   uniform_points(6, [lo - span] * d, [hi + span] * d, seed + 3)])
    assert_all_modes_match_autograd(model, x)


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("width, grid", [([2, 3, 1], 5), ([3, 2, 2, 2], 3), ([1, 4, 1], 10)])
def test_kan_jets_inside_and_outside_the_grid(width, grid, order):
    model = make_kan(width, grid, order, seed=grid + order, coef_scale=0.5)
    inside = uniform_points(15, -1.0, 1.0, seed=1, dim=width[0])
    outside = uniform_points(10, 1.0, 2.5, seed=2, dim=width[0])
    x = torch.cat([inside, outside, -outside])
    assert (x.abs() > 1).any() and (x.abs() < 1).any()
    assert_all_modes_match_autograd(model, x)


@pytest.mark.parametrize("order", [1, 3])
def test_kan_jets_after_grid_update(order):
    model = make_kan([2, 4, 2], grid=6, order=order, seed=5, coef_scale=0.5)
    x = uniform_points(100, -1.0, 1.0, seed=3)
    model.update_grid(torch.sign(x) * x.abs() ** 2, grid_eps=0.0)  # quantiles of clustered samples
    for layer in model.layers:
        assert not splines.is_uniform(layer.knots)
    probe = torch.cat([uniform_points(10, -1.0, 1.0, seed=4), uniform_points(10, -3.0, 3.0, seed=5)])
    assert_all_modes_match_autograd(model, probe)


@pytest.mark.parametrize("activation", ["tanh", "sin", "silu", "softplus"])
@pytest.mark.parametrize("width", [[1, 8, 1], [3, 16, 16, 2], [2, 3]])
def test_mlp_jets_match_autograd(width, activation):
    torch.manual_seed(len(width))
    model = MLP(width, activation=activation).double()
    x = torch.randn(12, width[0], dtype=DTYPE) * 1.5
    assert_all_modes_match_autograd(model, x)


@pytest.mark.parametrize("width, sigma, features", [([2, 16, 3], 1.5, 8), ([1, 8, 8, 1], 3.0, 4), ([3, 2], 0.5, 5)])
def test_fourier_mlp_jets_match_autograd(width, sigma, features):
    torch.manual_seed(features)
    model = FourierMLP(width, sigma=sigma, features=features).double()
    x = torch.randn(10, width[0], dtype=DTYPE)
    assert_all_modes_match_autograd(model, x)


@pytest.mark.parametrize("width, omega0", [([2, 32, 32, 1], 30.0), ([3, 16, 2], 10.0), ([1, 8, 8, 8, 3], 30.0)])
def test_siren_jets_match_autograd(width, omega0):
    torch.manual_seed(int(omega0) + len(width))
    model = SIREN(width, omega0=omega0).double()
    x = torch.rand(10, width[0], dtype=DTYPE) * 2 - 1
    assert_all_modes_match_autograd(model, x)


def test_jet_coords_and_parameter_gradients():
    """Jets carry coordinate names, and training through them gives autograd's parameter gradients."""
    model = make_kan([2, 3, 1], grid=4, order=3, seed=9, coef_scale=0.5)
    x = uniform_points(16, -1.0, 1.0, seed=9)
    jet = model.jet(x, hessian="full", coords=("x", "t"))
    assert torch.equal(jet.d("t"), jet.grad[..., 1])
    assert torch.equal(jet.d("x", "t"), jet.hess[..., 0, 1])
    for net in (model, MLP([2, 6, 1]).double(), SIREN([2, 8, 1]).double()):
        params = list(net.parameters())
        for mode in ("trace", "full"):
            closed = net.jet(x, hessian=mode)
            loss = (closed.laplacian**2).mean() + (closed.grad**2).mean()
            reference = autograd_jet(net, x, mode)
            loss_ref = (reference.laplacian**2).mean() + (reference.grad**2).mean()
            for g, g_ref in zip(torch.autograd.grad(loss, params), torch.autograd.grad(loss_ref, params)):
                assert_close(g, g_ref, JET_TOL)


@pytest.mark.parametrize("mode", MODES)
def test_kan_parameter_gradients_through_jets_match_autograd(mode):
    """Training through the jets (hand-written backward of every layer) gives nested autograd's
    parameter gradients, for a deeper KAN with points inside and outside the grid."""
    model = make_kan([2, 3, 2, 2], grid=4, order=3, seed=21, coef_scale=0.5)
    x = torch.cat([uniform_points(10, -1.0, 1.0, seed=21), uniform_points(5, 1.0, 2.0, seed=22)])
    weights = torch.randn(num_terms(mode, 2), 2, generator=torch.Generator().manual_seed(23), dtype=DTYPE)
    params = list(model.parameters())
    closed = torch.autograd.grad(((model.jet(x, mode).stack * weights) ** 2).sum(), params)
    reference = torch.autograd.grad(((autograd_jet(model, x, mode).stack * weights) ** 2).sum(), params)
    for g, g_ref in zip(closed, reference):
        assert_close(g, g_ref, JET_TOL)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order, n_out, seeded", [(3, 1, False), (3, 3, False), (2, 2, True), (1, 1, False),
                                                  (0, 2, True)])
def test_kan_layer_jet_backward_passes_gradcheck(mode, order, n_out, seeded):
    """The closed-form backward of one KAN layer's jet, w.r.t. the input jet (any values of its
    derivative terms, or a seed), the cell table and w_b, against finite differences, with
    inputs inside and outside the knots."""
    layer = make_kan([2, n_out], grid=3, order=order, seed=order + n_out, coef_scale=0.5).layers[0]
    generator = torch.Generator().manual_seed(31 + order)
    x = torch.cat([uniform_points(4, -1.0, 1.0, seed=order), uniform_points(2, 1.3, 2.0, seed=order + 1)])
    scale = torch.tensor([0.5, 2.0], dtype=DTYPE) if seeded else None
    stack = Jet.seed(x, mode, scale=scale).stack if seeded else torch.cat(
        [x[:, None], torch.randn(len(x), num_terms(mode, 2) - 1, 2, generator=generator, dtype=DTYPE)], dim=1)

    def layer_jet(stack, table, base_weight):
        return _LayerJet.apply(stack, table, base_weight, Jet(stack, 2, mode, seed_scale=scale), layer)

    inputs = (stack.requires_grad_(), layer._cell_table().detach().requires_grad_(),
              layer.base_weight.detach().clone().requires_grad_())
    assert torch.autograd.gradcheck(layer_jet, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)


def test_silu_derivatives_match_autograd():
    v = torch.linspace(-8, 8, 201, dtype=DTYPE, requires_grad=True)
    graph = [torch.nn.functional.silu(v)]
    for _ in range(3):
        graph.append(torch.autograd.grad(graph[-1].sum(), v, create_graph=True)[0])
    expected = [part.detach() for part in graph]
    for highest in (1, 2, 3):
        derivatives = silu_derivatives(v.detach(), highest)
        assert len(derivatives) == highest + 1
        for got, want in zip(derivatives, expected):
            assert_close(got, want, KEEP_TOL)
    stacked = torch.empty(4, 201, dtype=DTYPE)
    silu_derivatives(v.detach(), 3, out=stacked.unbind(0))  # written in place, e.g. into one stacked tensor
    assert_close(stacked, torch.stack(expected), KEEP_TOL)


# the KAN layer is the documented formula ----------------------------------------------------------


@pytest.mark.parametrize("order", [0, 1, 2, 3])
@pytest.mark.parametrize("adapted", [False, True])
def test_kan_layer_matches_formula(order, adapted):
    model = make_kan([2, 3, 2], grid=4, order=order, seed=11, coef_scale=0.5)
    if adapted:
        model.update_grid(uniform_points(80, -1.0, 1.0, seed=6) ** 3)
    for index, layer in enumerate(model.layers):
        bounds = layer.grid_range()
        h = uniform_points(200, bounds[:, 0] - 1, bounds[:, 1] + 1, seed=index)  # also outside the knots
        assert_close(layer(h), kan_formula(layer, h), KEEP_TOL)


@pytest.mark.parametrize("order", [0, 1, 2, 3])
@pytest.mark.parametrize("grid", [3, 5])
def test_kan_converted_to_double_matches_formula(grid, order):
    """A model built in float32 and converted with .double() evaluates its splines on its own knots,
    also right next to them (where a stale uniform-cell lookup would pick the wrong cell)."""
    torch.manual_seed(grid + order)
    model = KAN([1, 1], grid=grid, order=order).double()
    layer = model.layers[0]
    assert layer.knots.dtype == DTYPE and layer.coef.dtype == DTYPE
    knots = layer.knots[0]
    h = torch.cat([knots + 1e-9, knots - 1e-9, knots + 1e-12, knots - 1e-12, torch.linspace(-2, 2, 101, dtype=DTYPE)])
    if order > 0:  # the spline is continuous: the knots themselves are fine too
        h = torch.cat([h, knots])
    else:  # degree 0 jumps at the knots: a point within rounding of a knot may go either way
        h = h[(h[:, None] - knots).abs().amin(1) > 1e-13]
    with torch.no_grad():
        assert_close(layer(h[:, None]), kan_formula(layer, h[:, None]), KEEP_TOL)


# grid extension and update ------------------------------------------------------------------------


@pytest.mark.parametrize("order", [0, 1, 2, 3])
@pytest.mark.parametrize("grid, factor", [(3, 2), (5, 2), (4, 3), (2, 4)])
def test_nested_extension_keeps_every_layer(grid, factor, order):
    model = make_kan([2, 4, 3, 1], grid=grid, order=order, seed=grid * 10 + order, coef_scale=0.3)
    probes = [layer_probe(layer, seed) for seed, layer in enumerate(model.layers)]
    with torch.no_grad():
        before = [layer(p) for layer, p in zip(model.layers, probes)]
        old_ranges = [layer.grid_range() for layer in model.layers]
    model.extend_grid(grid * factor)
    assert model.grid == grid * factor
    with torch.no_grad():
        for layer, p, expected, old_range in zip(model.layers, probes, before, old_ranges):
            assert layer.grid == grid * factor
            assert layer.knots.shape[1] == grid * factor + 2 * order + 1
            assert torch.equal(layer.grid_range(), old_range)
            assert_close(layer(p), expected, KEEP_TOL)


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("grid, factor", [(3, 2), (5, 3)])
def test_nested_extension_keeps_the_model_inside_the_grid_ranges(grid, factor, order):
    model = make_kan([2, 5, 3, 1], grid=grid, order=order, seed=order, coef_scale=0.05)
    with torch.no_grad():  # keep the hidden activations inside [-1, 1]
        for layer in model.layers:
            layer.base_weight.mul_(0.5)
    x = uniform_points(200, -1.0, 1.0, seed=7)
    probe = model.layers[0].range_samples()  # where extend_grid measures the change without x
    assert inside_grid_ranges(model, x) and inside_grid_ranges(model, probe)
    with torch.no_grad():
        before, before_probe = model(x), model(probe)
    twin = make_kan([2, 5, 3, 1], grid=grid, order=order, seed=order, coef_scale=0.05)
    twin.load_state_dict(model.state_dict())

    change = model.extend_grid(grid * factor, x)
    assert 0 <= change < 1e-13
    with torch.no_grad():
        after = model(x)
    assert_close(after, before, KEEP_TOL)
    assert math.isclose(change, relative_change(before, after), rel_tol=1e-6, abs_tol=1e-15)

    change = twin.extend_grid(grid * factor)  # without x: measured on the first layer's range
    assert 0 <= change < 1e-13
    with torch.no_grad():
        assert_close(twin(probe), before_probe, KEEP_TOL)
        assert_close(twin(x), before, KEEP_TOL)
    assert_all_modes_match_autograd(model, x[:10])


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("new_grid", [7, 12, 4])
def test_non_nested_extension_keeps_the_model_close(new_grid, order):
    model = make_smooth_kan([2, 5, 1], grid=5, order=order, seed=new_grid)
    x = uniform_points(300, -1.0, 1.0, seed=new_grid)
    with torch.no_grad():
        before = model(x)
    change = model.extend_grid(new_grid, x)
    with torch.no_grad():
        after = model(x)
    measured = relative_change(before, after)
    assert 0 < change < 1e-2
    assert math.isclose(change, measured, rel_tol=1e-6, abs_tol=1e-15)
    assert model.grid == new_grid and all(layer.grid == new_grid for layer in model.layers)
    assert model.num_parameters() == (2 * 5 + 5 * 1) * (new_grid + order + 2)
    assert_all_modes_match_autograd(model, torch.cat([x[:8], 1.5 * x[8:12]]))

    # without x the change is measured on the first layer's grid range
    twin = make_smooth_kan([2, 5, 1], grid=5, order=order, seed=new_grid)
    probe = twin.layers[0].range_samples()
    with torch.no_grad():
        before = twin(probe)
    change = twin.extend_grid(new_grid)
    with torch.no_grad():
        measured = relative_change(before, twin(probe))
    assert 0 < change < 1e-2
    assert math.isclose(change, measured, rel_tol=1e-6, abs_tol=1e-15)


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("grid_eps", [0.0, 0.02, 1.0])
def test_update_grid_keeps_the_model_close(grid_eps, order):
    model = make_smooth_kan([2, 5, 1], grid=5, order=order, seed=order, grid_eps=grid_eps)
    x = uniform_points(400, -1.0, 1.0, seed=order) * torch.tensor([0.8, 0.5], dtype=DTYPE)
    with torch.no_grad():
        before = model(x)
    change = model.update_grid(x)
    with torch.no_grad():
        after = model(x)
        hidden = model.layers[0](x)  # the second layer's grid follows the refitted first layer
    measured = relative_change(before, after)
    assert 0 < change < 1e-2
    assert math.isclose(change, measured, rel_tol=1e-6, abs_tol=1e-15)
    assert model.grid == 5
    # the knots follow the samples: each layer's grid range is the range of its inputs
    for layer, h in ((model.layers[0], x), (model.layers[1], hidden)):
        assert_close(layer.grid_range(), torch.stack([h.min(0).values, h.max(0).values], dim=1), 1e-12)
        assert torch.all(layer.knots.diff(dim=1) > 0)
        assert splines.is_uniform(layer.knots) == (grid_eps == 1.0)
    assert_all_modes_match_autograd(model, torch.cat([x[:8], 2 * x[8:12]]))


def test_update_grid_with_explicit_grid_eps_and_repeated_samples():
    model = make_kan([2, 3, 1], grid=6, order=3, seed=2)
    x = torch.tensor([[0.5, -0.5]] * 30 + [[-0.25, 0.75]] * 30, dtype=DTYPE)
    change = model.update_grid(x, grid_eps=0.0)
    assert math.isfinite(change)
    for layer in model.layers:
        assert torch.all(layer.knots.diff(dim=1) > 0)
    assert_all_modes_match_autograd(model, x[::10])


def test_extend_to_the_same_grid_is_a_no_op():
    model = make_kan([2, 3, 1], grid=5, order=3, seed=3)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert model.extend_grid(5) == 0.0
    assert model.extend_grid(5, uniform_points(10, -1.0, 1.0, seed=0)) == 0.0
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key])


def test_nested_extension_by_a_large_factor_keeps_the_layer():
    model = make_kan([1, 1], grid=5, order=3, seed=0)
    layer = model.layers[0]
    probe = layer_probe(layer, seed=0)
    with torch.no_grad():
        before = layer(probe)
    change = model.extend_grid(50)
    with torch.no_grad():
        assert_close(layer(probe), before, KEEP_TOL)
    assert change < 1e-13


def test_nested_extension_of_an_adapted_grid_keeps_the_layer():
    model = make_kan([1, 1], grid=4, order=3, seed=0)
    model.update_grid(torch.rand(300, 1, generator=torch.Generator().manual_seed(0), dtype=DTYPE) ** 4 * 2 - 1,
                      grid_eps=0.0)
    layer = model.layers[0]
    probe = layer_probe(layer, seed=0)
    with torch.no_grad():
        before = layer(probe)
    model.extend_grid(8)
    with torch.no_grad():
        assert_close(layer(probe), before, KEEP_TOL)


def test_casting_to_the_same_dtype_keeps_an_adapted_model():
    model = make_kan([1, 1], grid=5, order=3, seed=0)
    x = uniform_points(200, -1.0, 1.0, seed=0, dim=1) ** 2
    model.update_grid(x, grid_eps=0.9999999)  # adapted, but only just not uniform
    knots = model.layers[0].knots.clone()
    with torch.no_grad():
        before = model(x)
        model.double()
        assert torch.equal(model.layers[0].knots, knots)
        assert_close(model(x), before, KEEP_TOL)


# parameters, state, repr ----------------------------------------------------------------------------


@pytest.mark.parametrize("width", [[2, 5, 1], [3, 4, 4, 2], [1, 1]])
@pytest.mark.parametrize("grid, order", [(5, 3), (1, 1), (10, 2), (3, 0)])
def test_kan_num_parameters(width, grid, order):
    model = make_kan(width, grid, order)
    expected = sum(a * b * (grid + order + 2) for a, b in zip(width[:-1], width[1:]))
    assert model.num_parameters() == expected
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())
    model.extend_grid(2 * grid)
    assert model.num_parameters() == sum(a * b * (2 * grid + order + 2) for a, b in zip(width[:-1], width[1:]))


@pytest.mark.parametrize("width", [[2, 5, 1], [3, 16, 16, 2], [1, 1]])
def test_baseline_num_parameters(width):
    standard = sum((a + 1) * b for a, b in zip(width[:-1], width[1:]))
    assert MLP(width).num_parameters() == standard
    assert SIREN(width).num_parameters() == standard
    features = 7
    fourier = FourierMLP(width, features=features)
    assert fourier.num_parameters() == sum((a + 1) * b for a, b in zip([2 * features, *width[1:-1]], width[1:]))
    for model in (MLP(width), SIREN(width), fourier):
        assert model.num_parameters() == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("source_change", ["extend", "update"])
@pytest.mark.parametrize("target_grid", [3, 12])
def test_load_state_dict_from_another_grid_size(source_change, target_grid):
    source = make_kan([2, 3, 1], grid=4, order=3, seed=1, coef_scale=0.3)
    x = uniform_points(50, -1.0, 1.0, seed=8)
    if source_change == "extend":
        source.extend_grid(8)
    else:
        source.extend_grid(8, x)
        source.update_grid(x)
    target = make_kan([2, 3, 1], grid=target_grid, order=3, seed=2)
    target.load_state_dict(source.state_dict())
    assert target.grid == source.grid == 8
    for mine, theirs in zip(target.layers, source.layers):
        assert torch.equal(mine.knots, theirs.knots) and torch.equal(mine.coef, theirs.coef)
    probe = torch.cat([x, 1.7 * x[:10]])
    with torch.no_grad():
        assert_close(target(probe), source(probe), 1e-14)
    assert target.num_parameters() == source.num_parameters()
    for mode in MODES:
        assert_close(target.jet(probe, mode).stack, source.jet(probe, mode).stack, 1e-14)
    assert_jet_matches_autograd(target, probe[:10], "full")
    # the loaded model can still change its grid
    target.extend_grid(16)
    assert target.grid == 16


def test_repr_shows_width_and_grid():
    model = make_kan([2, 5, 1], grid=7, order=3)
    text = repr(model)
    assert "[2, 5, 1]" in text and "grid=7" in text
    model.extend_grid(14)
    assert "grid=14" in repr(model)
    for baseline in (MLP([3, 8, 2]), SIREN([3, 8, 2]), FourierMLP([3, 8, 2])):
        assert "[3, 8, 2]" in repr(baseline)


def test_model_properties():
    model = make_kan([3, 4, 2], grid=6, order=2)
    assert model.width == [3, 4, 2] and model.grid == 6 and model.order == 2
    assert len(model.layers) == 2 and model.in_features == 3
    assert all(torch.equal(layer.grid_range(), torch.tensor([[-1.0, 1.0]] * layer.in_features, dtype=DTYPE))
               for layer in model.layers)
    shifted = make_kan([2, 1], grid=4, order=1, grid_range=(0.5, 2.5))
    assert torch.equal(shifted.layers[0].grid_range(), torch.tensor([[0.5, 2.5]] * 2, dtype=DTYPE))
    x = uniform_points(5, -1.0, 1.0, seed=0, dim=3)
    for net in (model, MLP([3, 4, 2]).double(), SIREN([3, 4, 2]).double(), FourierMLP([3, 4, 2]).double()):
        assert net(x).shape == (5, 2)
        assert net.jet(x).value.shape == (5, 2)


# argument checks ----------------------------------------------------------------------------------


BAD_WIDTHS = [[], [2], [2, 0, 1], [2, 2.5, 1], [2, -1, 1], [2, True, 1], [0, 1], "2,1", None, 3, [2, "4", 1]]


@pytest.mark.parametrize("width", BAD_WIDTHS, ids=repr)
@pytest.mark.parametrize("cls", [KAN, MLP, SIREN, FourierMLP])
def test_bad_width(cls, width):
    with pytest.raises(ValueError, match=r"\bwidth\b"):
        cls(width)


@pytest.mark.parametrize("grid", [0, -3, 2.5, "5", None, True, 5.0])
def test_bad_grid(grid):
    with pytest.raises(ValueError, match=r"\bgrid\b"):
        KAN([2, 1], grid=grid)


@pytest.mark.parametrize("order", [-1, 1.5, "3", None, True])
def test_bad_order(order):
    with pytest.raises(ValueError, match=r"\border\b"):
        KAN([2, 1], order=order)


@pytest.mark.parametrize(
    "grid_range", [(1, -1), (0, 0), (0, math.inf), (math.nan, 1), (-math.inf, 0), (1, 2, 3), (1,), "ab", (None, 1)],
    ids=repr,
)
def test_bad_grid_range(grid_range):
    with pytest.raises(ValueError, match="grid_range"):
        KAN([2, 1], grid_range=grid_range)


@pytest.mark.parametrize("grid_eps", [-0.1, 1.5, "0.1", None])
def test_bad_grid_eps(grid_eps):
    with pytest.raises(ValueError, match="grid_eps"):
        KAN([2, 1], grid_eps=grid_eps)


def test_bad_baseline_arguments():
    with pytest.raises(ValueError, match="activation"):
        MLP([2, 1], activation="relu")
    with pytest.raises(ValueError, match="omega0"):
        SIREN([2, 1], omega0=0)
    with pytest.raises(ValueError, match="omega0"):
        SIREN([2, 1], omega0=-30.0)
    with pytest.raises(ValueError, match="sigma"):
        FourierMLP([2, 1], sigma=0.0)
    with pytest.raises(ValueError, match="features"):
        FourierMLP([2, 1], features=0)
    with pytest.raises(ValueError, match="features"):
        FourierMLP([2, 1], features=2.5)


@pytest.mark.parametrize("new_grid", [0, -5, 2.5, "10", None])
def test_bad_new_grid(new_grid):
    model = make_kan([2, 1], grid=3)
    with pytest.raises(ValueError, match="new_grid"):
        model.extend_grid(new_grid)
    assert model.grid == 3


BAD_INPUTS = [
    torch.zeros(5, dtype=DTYPE),  # 1-D
    torch.zeros(5, 3, dtype=DTYPE),  # wrong number of inputs
    torch.zeros(5, 1, dtype=DTYPE),
    torch.zeros(5, 2, 1, dtype=DTYPE),  # 3-D
    torch.zeros(2, dtype=DTYPE)[None, None],
    [[0.0, 0.0]],  # not a tensor
]


@pytest.mark.parametrize("x", BAD_INPUTS, ids=lambda x: str(tuple(x.shape)) if isinstance(x, torch.Tensor) else "list")
@pytest.mark.parametrize("make", [lambda: make_kan([2, 3, 1]), lambda: MLP([2, 3, 1]).double(),
                                  lambda: SIREN([2, 3, 1]).double(), lambda: FourierMLP([2, 3, 1]).double()],
                         ids=["KAN", "MLP", "SIREN", "FourierMLP"])
def test_bad_input_shape(make, x):
    model = make()
    with pytest.raises(ValueError, match=r"\bx\b"):
        model(x)
    for mode in MODES:
        with pytest.raises(ValueError, match=r"\bx\b"):
            model.jet(x, hessian=mode)


def test_bad_input_shape_to_grid_methods():
    model = make_kan([2, 3, 1])
    for x in BAD_INPUTS:
        with pytest.raises(ValueError, match=r"\bx\b"):
            model.update_grid(x)
        with pytest.raises(ValueError, match=r"\bx\b"):
            model.extend_grid(7, x)
    assert model.grid == 5


@pytest.mark.parametrize("hessian", ["hess", "Full", "", None, "laplacian", "diag"])
def test_bad_hessian_mode(hessian):
    x = uniform_points(4, -1.0, 1.0, seed=0)
    for model in (make_kan([2, 3, 1]), MLP([2, 3, 1]).double(), SIREN([2, 3, 1]).double()):
        with pytest.raises(ValueError, match="hessian"):
            model.jet(x, hessian=hessian)
    with pytest.raises(ValueError, match="hessian"):
        autograd_jet(MLP([2, 1]).double(), x, hessian)


@pytest.mark.parametrize("mode", ["none", "trace", "diagonal", "full", "diagonal:1"])
@pytest.mark.parametrize("seeded", [True, False])
def test_dense_fast_path_matches_layer_by_layer(mode, seeded):
    """Sequential's term-major path for Linear/Activation runs (kanpde.nets.dense): the same values bit for
    bit, and the same parameter gradients up to the order of summation."""
    torch.manual_seed(0)
    for net in (MLP([2, 9, 9, 1], "tanh"), MLP([3, 6, 2], "silu"), SIREN([2, 8, 1]), FourierMLP([2, 7, 1], features=4)):
        net = net.double()
        d = 3 if net.width[0] == 3 else 2
        x = torch.rand(40, d, dtype=torch.float64)
        scale = torch.rand(d, dtype=torch.float64) + 0.5

        def run(fast: bool, net=net, x=x, scale=scale):
            net.zero_grad(set_to_none=True)
            u = Jet.seed(x, mode, scale=scale)
            u = u if seeded else Jet(u.stack.clone(), u.dim, u.mode)  # without seed_scale
            if fast:
                out = net.jet_forward(u)
            else:
                out = u
                for layer in net.layers:
                    out = layer.jet_forward(out)
            out.stack.sin().sum().backward()
            return out.stack.detach(), [p.grad for p in net.parameters()]

        (fast, fast_grads), (slow, slow_grads) = run(True), run(False)
        assert fast.shape == slow.shape and torch.allclose(fast, slow, rtol=0, atol=1e-15), type(net).__name__
        for a, b in zip(fast_grads, slow_grads):
            assert torch.allclose(a, b, rtol=1e-12, atol=1e-12), type(net).__name__
