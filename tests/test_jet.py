"""Tests for kanpde.jet.Jet: construction, views, derivative access, mode errors and the jet algebra.

Every algebraic operation is checked against ``autograd_jet`` (nested reverse-mode autograd)
of the same composed function, in float64, in every mode that carries derivatives.
"""

from __future__ import annotations

import helpers
import pytest
import torch

from kanpde.autodiff import autograd_jet
from kanpde.jet import MODES, Jet, curved_axes, diagonal_mode, num_terms

pytestmark = pytest.mark.usefixtures("single_thread")
DTYPE = torch.float64
DERIVATIVE_MODES = ("full", "diagonal", "trace", "none", "diagonal:1", "diagonal:0,2")  # D = 3: a middle axis, a gap
TOL = 1e-12
N, D, C = 7, 3, 4


def assert_close(actual, expected, tol: float = TOL) -> None:
    helpers.assert_close(actual, expected, tol)


def assert_jets_close(jet: Jet, reference: Jet, tol: float = TOL) -> None:
    """Compare everything the mode carries: value, grad, and the second-order views."""
    assert jet.mode == reference.mode
    assert jet.dim == reference.dim
    assert jet.channels == reference.channels
    assert jet.stack.shape == reference.stack.shape
    assert_close(jet.value, reference.value, tol)
    assert_close(jet.grad, reference.grad, tol)
    if jet.mode == "full":
        assert_close(jet.hess, reference.hess, tol)
    if jet.mode in ("full", "diagonal"):
        assert_close(jet.hess_diag, reference.hess_diag, tol)
    if jet.mode in ("full", "diagonal", "trace"):
        assert_close(jet.laplacian, reference.laplacian, tol)
    for a in curved_axes(jet.mode, jet.dim) or ():
        assert_close(jet.d(a, a), reference.d(a, a), tol)
    assert_close(jet.stack, reference.stack, tol)


@pytest.fixture
def x() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1234)
    return torch.randn(N, D, generator=generator, dtype=DTYPE)


@pytest.fixture
def params() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(99)

    def rand(*shape):
        return torch.randn(*shape, generator=generator, dtype=DTYPE)

    return {"W1": rand(C, D), "b1": rand(C), "W2": rand(C, D), "b2": rand(C), "W3": rand(6, D), "b3": rand(6)}


# closed-form jets and the same functions as plain torch code --------------------------------


def sin_jet(u: Jet) -> Jet:
    v = u.value
    return u.apply(torch.sin(v), torch.cos(v), -torch.sin(v))


def tanh_jet(u: Jet) -> Jet:
    t = torch.tanh(u.value)
    return u.apply(t, 1 - t * t, -2 * t * (1 - t * t))


def exp_jet(u: Jet) -> Jet:
    e = torch.exp(u.value)
    return u.apply(e, e, e)


def f_jet(x, p, mode):  # sin(W1 x + b1), channels (C,)
    return sin_jet(Jet.seed(x, mode).linear(p["W1"], p["b1"]))


def f_torch(x, p):
    return torch.sin(x @ p["W1"].T + p["b1"])


def g_jet(x, p, mode):  # tanh(W2 x + b2), channels (C,)
    return tanh_jet(Jet.seed(x, mode).linear(p["W2"], p["b2"]))


def g_torch(x, p):
    return torch.tanh(x @ p["W2"].T + p["b2"])


def h_jet(x, p, mode):  # exp(0.3 (W3 x + b3)) with the channels reshaped to (2, 3)
    u = exp_jet(Jet.seed(x, mode).linear(0.3 * p["W3"], 0.3 * p["b3"]))
    return Jet(u.stack.reshape(x.shape[0], u.stack.shape[1], 2, 3), u.dim, u.mode, u.coords)


def h_torch(x, p):
    return torch.exp(0.3 * (x @ p["W3"].T + p["b3"])).reshape(x.shape[0], 2, 3)


# the reference itself ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", DERIVATIVE_MODES)
def test_autograd_reference_matches_analytic_derivatives(x, mode):
    """u = (x0² x1 + sin x2, exp(x0 − x2)) has known derivatives; the reference must get them."""

    def u(z):
        return torch.stack([z[:, 0] ** 2 * z[:, 1] + torch.sin(z[:, 2]), torch.exp(z[:, 0] - z[:, 2])], dim=1)

    x0, x1, x2 = x.unbind(1)
    e = torch.exp(x0 - x2)
    zero = torch.zeros_like(x0)
    grad = torch.stack([torch.stack([2 * x0 * x1, x0**2, torch.cos(x2)], -1), torch.stack([e, zero, -e], -1)], 1)
    hess = torch.stack(
        [
            torch.stack([torch.stack([2 * x1, 2 * x0, zero], -1), torch.stack([2 * x0, zero, zero], -1),
                         torch.stack([zero, zero, -torch.sin(x2)], -1)], -2),
            torch.stack([torch.stack([e, zero, -e], -1), torch.stack([zero, zero, zero], -1),
                         torch.stack([-e, zero, e], -1)], -2),
        ],
        1,
    )
    reference = autograd_jet(u, x, mode)
    assert reference.mode == mode
    assert_close(reference.value, u(x))
    assert_close(reference.grad, grad)
    if mode == "full":
        assert_close(reference.hess, hess)
    if mode in ("full", "diagonal"):
        assert_close(reference.hess_diag, torch.diagonal(hess, dim1=-2, dim2=-1))
    if mode in ("full", "diagonal", "trace"):
        assert_close(reference.laplacian, torch.diagonal(hess, dim1=-2, dim2=-1).sum(-1))
    for a in curved_axes(mode, D) or ():
        assert_close(reference.d(a, a), hess[..., a, a])


# construction, layout and views --------------------------------------------------------------


def test_num_terms():
    assert [num_terms(mode, 3) for mode in MODES] == [1, 4, 5, 7, 13]
    assert [num_terms(mode, 1) for mode in MODES] == [1, 2, 3, 3, 3]
    with pytest.raises(ValueError, match="hessian"):
        num_terms("hessian", 2)
    assert [num_terms(mode, 3) for mode in ("diagonal:0", "diagonal:1,2", "diagonal:0,1,2")] == [5, 6, 7]
    assert diagonal_mode([2, 0], 3) == "diagonal:0,2" and diagonal_mode([1, 0, 2], 3) == "diagonal"
    for bad in ("diagonal:", "diagonal:3", "diagonal:1,0", "diagonal:1,1", "diagonal:x", "diagonal:-1"):
        with pytest.raises(ValueError, match=f"hessian: '{bad}' must list distinct axes below 3"):
            num_terms(bad, 3)


@pytest.mark.parametrize("mode", MODES)
def test_seed_is_the_identity_jet(x, mode):
    jet = Jet.seed(x, mode, coords=("a", "b", "c"))
    assert jet.mode == mode and jet.dim == D and jet.channels == (D,) and jet.coords == ("a", "b", "c")
    assert jet.stack.shape == (N, num_terms(mode, D), D)
    assert jet.stack.dtype == DTYPE
    assert torch.equal(jet.value, x)
    if mode == "value":
        with pytest.raises(ValueError):
            _ = jet.grad
        return
    assert torch.equal(jet.grad, torch.eye(D, dtype=DTYPE).expand(N, D, D))
    assert torch.count_nonzero(jet.second) == 0
    assert jet.second.shape[1] == {"none": 0, "trace": 1, "diagonal": D, "full": D * D}[mode]
    if mode != "none":
        assert torch.equal(jet.laplacian, torch.zeros(N, D, dtype=DTYPE))
    # through a nonlinearity the seed gives the chain rule: sin(x) has grad diag(cos x)
    assert_jets_close(sin_jet(jet), autograd_jet(torch.sin, x, mode))


@pytest.mark.parametrize("mode", DERIVATIVE_MODES)
def test_autograd_reference_of_an_affine_function(x, mode):
    """A parameter-free affine map has a constant gradient that does not require grad: Hessian 0."""
    reference = autograd_jet(lambda z: 2 * z + 1, x, mode)
    assert_jets_close(reference, Jet.seed(x, mode) * 2 + 1)


def test_seed_rejects_bad_arguments(x):
    with pytest.raises(ValueError, match=r"\bx\b"):
        Jet.seed(x[:, 0])
    with pytest.raises(ValueError, match=r"\bx\b"):
        Jet.seed(x[None])
    with pytest.raises(ValueError, match="hessian"):
        Jet.seed(x, "hessian")


def test_constructor_checks_the_number_of_terms(x):
    stack = torch.zeros(N, num_terms("full", D), dtype=DTYPE)
    Jet(stack, D, "full")
    with pytest.raises(ValueError, match="terms"):
        Jet(stack, D, "diagonal")
    with pytest.raises(ValueError, match="terms"):
        Jet(stack[:, :-1], D, "full")


@pytest.mark.parametrize(
    "channels, make",
    [((), lambda x, p, m: f_jet(x, p, m)[1]), ((C,), f_jet), ((2, 3), h_jet)],
    ids=["scalar", "vector", "matrix"],
)
def test_view_shapes(x, params, channels, make):
    full = make(x, params, "full")
    assert full.channels == channels
    assert full.value.shape == (N, *channels)
    assert full.grad.shape == (N, *channels, D)
    assert full.hess.shape == (N, *channels, D, D)
    assert full.hess_diag.shape == (N, *channels, D)
    assert full.laplacian.shape == (N, *channels)
    diagonal, trace, none = (make(x, params, mode) for mode in ("diagonal", "trace", "none"))
    assert diagonal.hess_diag.shape == (N, *channels, D)
    assert diagonal.laplacian.shape == (N, *channels)
    assert trace.laplacian.shape == (N, *channels)
    assert none.grad.shape == (N, *channels, D)
    # the views read the right terms of the stack, and agree across modes
    for a in range(D):
        assert torch.equal(full.grad[..., a], full.stack[:, 1 + a])
        for b in range(D):
            assert torch.equal(full.hess[..., a, b], full.stack[:, 1 + D + a * D + b])
        assert torch.equal(diagonal.hess_diag[..., a], diagonal.stack[:, 1 + D + a])
    assert torch.equal(trace.laplacian, trace.stack[:, 1 + D])
    assert_close(full.hess_diag, torch.diagonal(full.hess, dim1=-2, dim2=-1))
    assert_close(full.laplacian, full.hess_diag.sum(-1))
    assert_close(diagonal.hess_diag, full.hess_diag)
    assert_close(trace.laplacian, full.laplacian)
    assert_close(none.grad, full.grad)
    # the Hessian of a smooth function is symmetric
    assert_close(full.hess, full.hess.transpose(-1, -2))


def test_layout_of_a_synthetic_stack():
    """With all-distinct entries (not a symmetric Hessian) every view must read its own terms:
    grad[..., a] = term 1 + a, hess[..., a, b] = term 1 + D + a·D + b, in channel-first order."""
    d, c = 3, 2
    stack = torch.arange(N * num_terms("full", d) * c, dtype=DTYPE).reshape(N, -1, c)
    jet = Jet(stack, d, "full", coords=("x", "y", "t"))
    for a in range(d):
        assert torch.equal(jet.grad[:, :, a], stack[:, 1 + a])
        assert torch.equal(jet.d(a), stack[:, 1 + a])
        for b in range(d):
            assert torch.equal(jet.hess[:, :, a, b], stack[:, 1 + d + a * d + b])
            assert torch.equal(jet.d(a, b), stack[:, 1 + d + a * d + b])
        assert torch.equal(jet.hess_diag[:, :, a], stack[:, 1 + d + a * d + a])
    assert torch.equal(jet.d("y", "t"), stack[:, 1 + d + 1 * d + 2])
    assert torch.equal(jet.d("t", "y"), stack[:, 1 + d + 2 * d + 1])
    assert torch.equal(jet.laplacian, stack[:, 1 + d] + stack[:, 1 + d + d + 1] + stack[:, 1 + d + 2 * d + 2])
    diagonal = Jet(stack[:, : 1 + 2 * d], d, "diagonal")
    assert torch.equal(diagonal.hess_diag, stack[:, 1 + d : 1 + 2 * d].transpose(1, 2))
    assert torch.equal(diagonal.d(1, 1), stack[:, 1 + d + 1])
    trace = Jet(stack[:, : 2 + d], d, "trace")
    assert torch.equal(trace.laplacian, stack[:, 1 + d])


def test_views_share_the_stack_memory(x, params):
    jet = f_jet(x, params, "full")
    base = jet.stack.untyped_storage().data_ptr()
    for view in (jet.value, jet.grad, jet.hess, jet.hess_diag):
        assert view.untyped_storage().data_ptr() == base


@pytest.mark.parametrize("mode", DERIVATIVE_MODES)
def test_composed_function_matches_autograd(x, params, mode):
    assert_jets_close(f_jet(x, params, mode), autograd_jet(lambda z: f_torch(z, params), x, mode))
    assert_jets_close(h_jet(x, params, mode), autograd_jet(lambda z: h_torch(z, params), x, mode))


# derivative access: d() ----------------------------------------------------------------------


def test_d_by_name_and_index(x, params):
    coords = ("x", "y", "t")
    full = f_jet(x, params, "full")
    full.coords = coords
    reference = autograd_jet(lambda z: f_torch(z, params), x, "full", coords=coords)
    assert reference.coords == coords
    for a, name in enumerate(coords):
        assert torch.equal(full.d(name), full.d(a))
        assert torch.equal(full.d(name), full.grad[..., a])
        assert_close(full.d(name), reference.d(name))
        for b, other in enumerate(coords):
            assert torch.equal(full.d(name, other), full.d(a, b))
            assert torch.equal(full.d(name, other), full.hess[..., a, b])
            assert_close(full.d(name, other), reference.d(name, other))
    assert_close(full.d("x", "t"), full.d("t", "x"))
    # mixed names and indices
    assert torch.equal(full.d("y", 2), full.hess[..., 1, 2])
    diagonal = f_jet(x, params, "diagonal")
    diagonal.coords = coords
    for a, name in enumerate(coords):
        assert torch.equal(diagonal.d(name, name), diagonal.hess_diag[..., a])
        assert_close(diagonal.d(name, name), full.d(name, name))
        assert_close(diagonal.d(a), full.d(a))


def test_d_errors(x, params):
    full = f_jet(x, params, "full")
    with pytest.raises(ValueError, match="coordinate"):  # no coords set
        full.d("x")
    full.coords = ("x", "y", "t")
    with pytest.raises(ValueError, match="'z'"):
        full.d("z")
    with pytest.raises(ValueError, match="out of range"):
        full.d(D)
    with pytest.raises(ValueError, match="out of range"):
        full.d(-1)
    with pytest.raises(ValueError, match="order"):
        full.d("x", "y", "t")
    with pytest.raises(ValueError, match="order"):
        full.d()
    diagonal = Jet(f_jet(x, params, "diagonal").stack, D, "diagonal", ("x", "y", "t"))
    with pytest.raises(ValueError, match="mixed"):
        diagonal.d("x", "y")
    trace = Jet(f_jet(x, params, "trace").stack, D, "trace", ("x", "y", "t"))
    with pytest.raises(ValueError, match="full"):
        trace.d("x", "x")
    none = Jet(f_jet(x, params, "none").stack, D, "none", ("x", "y", "t"))
    with pytest.raises(ValueError):
        none.d("y", "y")
    lean = Jet(f_jet(x, params, "diagonal:0,2").stack, D, "diagonal:0,2", ("x", "y", "t"))
    assert torch.equal(lean.d("t", "t"), lean.second[:, 1])
    with pytest.raises(ValueError, match=r"\(.y., .y.\) is not carried .*diagonal:0,2.*add it to the problem"):
        lean.d("y", "y")
    value = Jet.seed(x, "value", ("x", "y", "t"))
    with pytest.raises(ValueError, match="value"):
        value.d("x")


# mode errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, view",
    [
        ("trace", "hess"),
        ("diagonal", "hess"),
        ("none", "hess"),
        ("value", "hess"),
        ("trace", "hess_diag"),
        ("none", "hess_diag"),
        ("value", "hess_diag"),
        ("none", "laplacian"),
        ("value", "laplacian"),
        ("value", "grad"),
        ("diagonal:0,2", "hess"),
        ("diagonal:0,2", "hess_diag"),
        ("diagonal:0,2", "laplacian"),
    ],
)
def test_views_not_carried_by_the_mode_raise(x, params, mode, view):
    jet = Jet.seed(x, mode).linear(params["W1"])
    with pytest.raises(ValueError, match=repr(mode)):
        getattr(jet, view)


def test_hess_from_trace_jet_names_the_modes(x):
    with pytest.raises(ValueError, match="'full'.*'trace'"):
        _ = Jet.seed(x, "trace").hess


# algebra -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", DERIVATIVE_MODES)
def test_product_rule(x, params, mode):
    u, w = f_jet(x, params, mode), g_jet(x, params, mode)
    expected = autograd_jet(lambda z: f_torch(z, params) * g_torch(z, params), x, mode)
    assert_jets_close(u * w, expected)
    assert_jets_close(w * u, expected)
    assert_jets_close(u * u, autograd_jet(lambda z: f_torch(z, params) ** 2, x, mode))
    # channel-selected scalar jets, and a product of three
    assert_jets_close(u[0] * w[2], autograd_jet(lambda z: f_torch(z, params)[:, 0] * g_torch(z, params)[:, 2], x, mode))
    assert_jets_close(
        u * w * u, autograd_jet(lambda z: f_torch(z, params) ** 2 * g_torch(z, params), x, mode)
    )


def test_product_in_value_mode(x, params):
    u, w = f_jet(x, params, "value"), g_jet(x, params, "value")
    product = u * w
    assert product.mode == "value" and product.stack.shape == (N, 1, C)
    assert_close(product.value, f_torch(x, params) * g_torch(x, params))


@pytest.mark.parametrize("mode", DERIVATIVE_MODES)
def test_sum_and_difference(x, params, mode):
    u, w = f_jet(x, params, mode), g_jet(x, params, mode)
    f, g = (lambda z: f_torch(z, params)), (lambda z: g_torch(z, params))
    assert_jets_close(u + w, autograd_jet(lambda z: f(z) + g(z), x, mode))
    assert_jets_close(u - w, autograd_jet(lambda z: f(z) - g(z), x, mode))
    assert_jets_close(w - u, autograd_jet(lambda z: g(z) - f(z), x, mode))
    assert_jets_close(-u, autograd_jet(lambda z: -f(z), x, mode))
    assert_jets_close(u + 2.5, autograd_jet(lambda z: f(z) + 2.5, x, mode))
    assert_jets_close(2.5 + u, autograd_jet(lambda z: 2.5 + f(z), x, mode))
    assert_jets_close(u - 2.5, autograd_jet(lambda z: f(z) - 2.5, x, mode))
    assert_jets_close(2.5 - u, autograd_jet(lambda z: 2.5 - f(z), x, mode))
    shift = torch.arange(C, dtype=DTYPE)  # a per-channel constant broadcasts over the points
    assert_jets_close(u + shift, autograd_jet(lambda z: f(z) + shift, x, mode))
    assert_jets_close(u - shift, autograd_jet(lambda z: f(z) - shift, x, mode))
    # adding a constant changes only the value
    assert torch.equal((u + 2.5).stack[:, 1:], u.stack[:, 1:])


@pytest.mark.parametrize("mode", DERIVATIVE_MODES)
def test_sum_with_a_pointwise_tensor(x, params, mode):
    """Data g(x) shaped like the value [N, *C] (e.g. u − g on a boundary) is a constant added to the value."""
    u = f_jet(x, params, mode)
    boundary = torch.cos(x[:, :1]) * torch.arange(1, C + 1, dtype=DTYPE)  # [N, C]
    assert_jets_close(u - boundary, autograd_jet(lambda z: f_torch(z, params) - boundary, x, mode))
    assert_jets_close(boundary + u, autograd_jet(lambda z: boundary + f_torch(z, params), x, mode))
    assert_jets_close(boundary - u, autograd_jet(lambda z: boundary - f_torch(z, params), x, mode))
    assert_jets_close(u[0] + boundary[:, 0], autograd_jet(lambda z: f_torch(z, params)[:, 0] + boundary[:, 0], x, mode))
    assert torch.equal((u - boundary).stack[:, 1:], u.stack[:, 1:])
    v = h_jet(x, params, mode)  # two channel axes: [N, 2, 3] data, and a [3] per-channel constant
    data = torch.sin(x[:, :1, None]) * torch.ones(N, 2, 3, dtype=DTYPE)
    row = torch.tensor([1.0, -2.0, 0.5], dtype=DTYPE)
    assert_jets_close(v - data + row, autograd_jet(lambda z: h_torch(z, params) - data + row, x, mode))


@pytest.mark.parametrize("mode", DERIVATIVE_MODES)
def test_multiplication_by_constants(x, params, mode):
    u = f_jet(x, params, mode)
    f = lambda z: f_torch(z, params)  # noqa: E731
    assert_jets_close(3.0 * u, autograd_jet(lambda z: 3.0 * f(z), x, mode))
    assert_jets_close(u * -0.5, autograd_jet(lambda z: -0.5 * f(z), x, mode))
    assert_jets_close(u * 2, autograd_jet(lambda z: 2 * f(z), x, mode))
    assert_jets_close(u * torch.tensor(1.5, dtype=DTYPE), autograd_jet(lambda z: 1.5 * f(z), x, mode))
    # a tensor of the value's shape [N, *C] is a per-point constant: it scales every term of its point
    weights = torch.linspace(-2, 2, N * C, dtype=DTYPE).reshape(N, C)
    assert_jets_close(u * weights, autograd_jet(lambda z: weights * f(z), x, mode))
    assert_jets_close(weights * u, autograd_jet(lambda z: weights * f(z), x, mode))
    per_channel = torch.tensor([2.0, -1.0, 0.5, 3.0], dtype=DTYPE)  # [C]: broadcasts over the points
    assert_jets_close(u * per_channel, autograd_jet(lambda z: per_channel * f(z), x, mode))
    assert_jets_close(per_channel * u, autograd_jet(lambda z: per_channel * f(z), x, mode))
    column = torch.linspace(1, 2, N, dtype=DTYPE)
    assert_jets_close(u[1] * column, autograd_jet(lambda z: column * f(z)[:, 1], x, mode))
    # the constant is not differentiated: (c u)' = c u'
    assert torch.equal((u * weights).stack, u.stack * weights[:, None])


@pytest.mark.parametrize("mode", DERIVATIVE_MODES)
def test_apply_composes_elementwise_functions(x, params, mode):
    u = f_jet(x, params, mode)
    composed = exp_jet(tanh_jet(u))
    assert_jets_close(composed, autograd_jet(lambda z: torch.exp(torch.tanh(f_torch(z, params))), x, mode))
    # apply on a jet with two channel axes
    v = h_jet(x, params, mode)
    assert_jets_close(sin_jet(v), autograd_jet(lambda z: torch.sin(h_torch(z, params)), x, mode))
    # a PDE-like expression: u² + sin(u)·w − 1
    w = g_jet(x, params, mode)
    expected = autograd_jet(
        lambda z: f_torch(z, params) ** 2 + torch.sin(f_torch(z, params)) * g_torch(z, params) - 1, x, mode
    )
    assert_jets_close(u * u + sin_jet(u) * w - 1, expected)


def test_apply_without_second_derivative_in_none_mode(x, params):
    u = f_jet(x, params, "none")
    v = u.value
    assert_jets_close(u.apply(torch.sin(v), torch.cos(v)), autograd_jet(lambda z: torch.sin(f_torch(z, params)), x,
                                                                       "none"))


@pytest.mark.parametrize("mode", DERIVATIVE_MODES)
def test_cat(x, params, mode):
    u, w = f_jet(x, params, mode), g_jet(x, params, mode)
    f, g = (lambda z: f_torch(z, params)), (lambda z: g_torch(z, params))
    joined = Jet.cat([u, w])
    assert joined.channels == (2 * C,)
    assert_jets_close(joined, autograd_jet(lambda z: torch.cat([f(z), g(z)], dim=-1), x, mode))
    assert_jets_close(Jet.cat([w, u, w], axis=0), autograd_jet(lambda z: torch.cat([g(z), f(z), g(z)], 1), x, mode))
    # two channel axes: (2, 3) and (2, 3) along either axis
    v = h_jet(x, params, mode)
    h = lambda z: h_torch(z, params)  # noqa: E731
    assert_jets_close(Jet.cat([v, sin_jet(v)], axis=0),
                      autograd_jet(lambda z: torch.cat([h(z), torch.sin(h(z))], dim=1), x, mode))
    assert_jets_close(Jet.cat([v, sin_jet(v)], axis=1),
                      autograd_jet(lambda z: torch.cat([h(z), torch.sin(h(z))], dim=2), x, mode))
    assert_jets_close(Jet.cat([v, v], axis=-1), autograd_jet(lambda z: torch.cat([h(z), h(z)], dim=-1), x, mode))
    assert Jet.cat([v, v], axis=0).channels == (4, 3)
    assert Jet.cat([v, v], axis=-1).channels == (2, 6)


@pytest.mark.parametrize("mode", DERIVATIVE_MODES)
def test_getitem_selects_channels(x, params, mode):
    u = f_jet(x, params, mode)
    f = lambda z: f_torch(z, params)  # noqa: E731
    for c in range(C):
        assert u[c].channels == ()
        assert_jets_close(u[c], autograd_jet(lambda z, c=c: f(z)[:, c], x, mode))
    assert u[1:3].channels == (2,)
    assert_jets_close(u[1:3], autograd_jet(lambda z: f(z)[:, 1:3], x, mode))
    assert_jets_close(u[-1], autograd_jet(lambda z: f(z)[:, -1], x, mode))
    v = h_jet(x, params, mode)
    assert v[1].channels == (3,)
    assert_jets_close(v[1], autograd_jet(lambda z: h_torch(z, params)[:, 1], x, mode))
    assert_jets_close(v[1][2], autograd_jet(lambda z: h_torch(z, params)[:, 1, 2], x, mode))


def test_selection_keeps_mode_and_coords(x, params):
    u = Jet(f_jet(x, params, "diagonal").stack, D, "diagonal", ("x", "y", "t"))
    for derived in (u[0], u * u, u + 1, -u, 2 * u, Jet.cat([u, u]), sin_jet(u)):
        assert derived.mode == "diagonal" and derived.coords == ("x", "y", "t") and derived.dim == D


def test_laplacian_of_known_function_in_every_mode(x):
    """u = Σ_a x_a² ⇒ ∇u = 2x, Δu = 2D, built only from seed, products and channel selection."""
    for mode in DERIVATIVE_MODES:
        seed = Jet.seed(x, mode)
        u = seed[0] * seed[0] + seed[1] * seed[1] + seed[2] * seed[2]
        assert_close(u.value, (x * x).sum(1))
        assert_close(u.grad, 2 * x)
        if mode in ("full", "diagonal", "trace"):
            assert_close(u.laplacian, torch.full((N,), 2.0 * D, dtype=DTYPE))
        for a in curved_axes(mode, D) or ():
            assert_close(u.d(a, a), torch.full((N,), 2.0, dtype=DTYPE))
        if mode == "full":
            assert_close(u.hess, 2 * torch.eye(D, dtype=DTYPE).expand(N, D, D))
