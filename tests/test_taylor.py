"""Jets of any order (kanpde.taylor): closed form vs nested autograd, derivative sets, problems that read them."""

from __future__ import annotations

import functools
import importlib.util
import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import kanpde
from kanpde import cli, splines
from kanpde.field import Field
from kanpde.problems.beam import Beam
from kanpde.taylor import Derivatives, TaylorJet, trace
from kanpde.univariate import SERIES, sigmoid_series

COORDS = ("x", "y")
UP_TO_4 = Derivatives([(a, b) for a in range(5) for b in range(5) if 0 < a + b <= 4], 2, COORDS)


@pytest.fixture(autouse=True)
def _float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


@functools.cache
def _model(name: str):
    """The model ``name``, built once, in float64."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(1)
    try:
        return _models()[name]
    finally:
        torch.set_default_dtype(previous)


def _models():
    kan = kanpde.KAN([2, 3, 2], grid=4, order=5)
    adapted = kanpde.KAN([2, 3, 1], grid=5, order=7)
    adapted.update_grid(torch.rand(200, 2) * 1.6 - 0.8)  # non-uniform knots
    return {
        "kan-k5": kan,
        "kan-k7-adapted": adapted,
        "mlp-tanh": kanpde.MLP([2, 6, 6, 2], activation="tanh"),
        "mlp-silu": kanpde.MLP([2, 6, 1], activation="silu"),
        "mlp-softplus": kanpde.MLP([2, 6, 1], activation="softplus"),
        "siren": kanpde.SIREN([2, 6, 6, 1], omega0=3.0),
        "fourier": kanpde.FourierMLP([2, 6, 1], features=4),
    }


MODELS = ("kan-k5", "kan-k7-adapted", "mlp-tanh", "mlp-silu", "mlp-softplus", "siren", "fourier")


def _knot_points(model) -> torch.Tensor:
    """Points whose coordinates lie exactly on the first layer's knots (inside the grid)."""
    knots = model.layers[0].knots
    k = model.layers[0].order
    xs, ys = knots[0, k + 1 : -k - 1], knots[1, k + 1 : -k - 1]
    pairs = torch.tensor(list(itertools.product(range(len(xs)), range(len(ys)))))
    return torch.stack([xs[pairs[:, 0]], ys[pairs[:, 1]]], dim=1)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_multi_index_up_to_order_4_matches_nested_autograd(name):
    model = _model(name)
    points = [torch.rand(30, 2) * 2 - 1]
    if name.startswith("kan"):
        points.append(_knot_points(model))
    for x in points:
        jet = model.jet(x, UP_TO_4, COORDS)
        reference = kanpde.autograd_jet(model, x, UP_TO_4, COORDS)
        assert isinstance(jet, TaylorJet) and len(UP_TO_4.indices) == 15
        for alpha in UP_TO_4.indices:
            axes = [COORDS[a] for a, count in enumerate(alpha) for _ in range(count)]
            assert _relative(jet.d(*axes), reference.d(*axes)) <= 1e-10, (name, alpha)


@pytest.mark.parametrize("name", ["kan-k5", "mlp-tanh", "siren", "fourier"])
def test_parameter_gradients_of_a_fourth_order_residual(name):
    model = _model(name)
    x = torch.rand(25, 2) * 2 - 1
    wanted = Derivatives.parse(("xxxx", "xxyy", "yyyy", "x"), COORDS)

    def gradients(jet):
        u = jet[0]
        residual = u.d("x", "x", "x", "x") + 2 * u.d("x", "x", "y", "y") + u.d("y", "y", "y", "y") + u.value * u.d("x")
        return torch.autograd.grad(residual.square().mean(), list(model.parameters()))

    closed_form = gradients(model.jet(x, wanted, COORDS))
    nested = gradients(kanpde.autograd_jet(model, x, wanted, COORDS))
    for ours, theirs in zip(closed_form, nested):
        assert _relative(ours, theirs) <= 1e-10


@pytest.mark.parametrize("name", list(SERIES))
def test_univariate_series_match_autograd_to_order_7(name):
    v = torch.linspace(-3, 3, 13).requires_grad_(True)
    series = SERIES[name](v, 7)
    value = series[0]
    for k in range(1, 8):
        (value,) = torch.autograd.grad(value.sum(), v, create_graph=True)
        assert _relative(series[k], value) <= 1e-11, (name, k)
    sigma = sigmoid_series(v, 1)
    assert _relative(sigma[1], sigma[0] * (1 - sigma[0])) <= 1e-15


def test_products_and_elementwise_functions_of_jets():
    x = torch.rand(10, 2) * 2 - 1
    d = Derivatives.parse(("xxx", "xy", "yyy"), COORDS)
    f = lambda p: torch.sin(p[:, :1] * p[:, 1:]) + p[:, :1] ** 3  # noqa: E731
    g = lambda p: torch.exp(p[:, 1:]) * p[:, :1]  # noqa: E731
    jf, jg = kanpde.autograd_jet(f, x, d, COORDS), kanpde.autograd_jet(g, x, d, COORDS)
    product = kanpde.autograd_jet(lambda p: f(p) * g(p), x, d, COORDS)
    assert _relative((jf * jg).stack, product.stack) <= 1e-12
    v = jf.value
    tanh = kanpde.autograd_jet(lambda p: torch.tanh(f(p)), x, d, COORDS)
    assert _relative(jf.apply(*SERIES["tanh"](v, 3)).stack, tanh.stack) <= 1e-12
    combined = kanpde.autograd_jet(lambda p: 2 * f(p) - g(p) + 1, x, d, COORDS)
    assert _relative((2.0 * jf - jg + 1.0).stack, combined.stack) <= 1e-12


def test_derivative_sets_parse_close_and_refuse():
    d = Derivatives.parse(("t", "x", "xx", "xxxx"), ("x", "t"))
    assert [d.name(a) for a in d.indices] == ["value", "x", "t", "xx", "xxx", "xxxx"]  # closed downward
    assert d.order == 4 and d.standard_mode() is None
    assert Derivatives.parse((("x1", "x2"),), ("x1", "x2")).standard_mode() == "full"
    # the leanest second-order layout: only the pure second derivatives read ("diagonal:A")
    assert Derivatives.parse(("xx", "y"), COORDS).standard_mode() == "diagonal:0"
    assert Derivatives.parse(("yy",), COORDS).standard_mode() == "diagonal:1"
    assert Derivatives.parse(("xx", "yy"), COORDS).standard_mode() == "diagonal"
    assert Derivatives.parse(("x", "y"), COORDS).standard_mode() == "none"
    assert Derivatives([(0, 0)], 2).standard_mode() == "value"
    with pytest.raises(ValueError, match="unknown coordinate 'z'"):
        Derivatives.parse((("x", "z"),), COORDS)
    with pytest.raises(ValueError, match="cannot read 'xz'"):
        Derivatives.parse(("xz",), COORDS)
    jet = kanpde.MLP([2, 3, 1]).jet(torch.zeros(2, 2), Derivatives.parse(("xx", "xy", "xxy"), COORDS), COORDS)
    with pytest.raises(ValueError, match=r"not carried .*add it to the problem's derivatives"):
        jet.d("x", "x", "x")


def test_tracing_finds_what_a_residual_reads():
    def residual(u, x):
        return u.d("t") + u.value * u.d("x") + u.d("x", "x") + u.d("x", "x", "x", "x")

    found = trace([residual], torch.zeros(2, 2), ("x", "t"))
    assert found == Derivatives.parse(("t", "x", "xx", "xxxx"), ("x", "t"))
    assert trace([lambda u, x: u.laplacian], torch.zeros(2, 2), COORDS).standard_mode() == "diagonal"


def test_order_7_splines_are_exact_polynomials_and_extend_exactly():
    knots = splines.uniform_grid(torch.tensor([-1.0]), torch.tensor([1.0]), 4, 7)
    x = torch.rand(50, 1) * 2 - 1
    _, (values, first) = splines.local_basis(x, knots, 7, derivatives=1)
    assert torch.allclose(values.sum(-1), torch.ones(50), atol=1e-12)  # partition of unity
    assert first.sum(-1).abs().max() < 1e-9
    model = kanpde.KAN([2, 3, 1], grid=3, order=7)
    assert model.extend_grid(6) < 1e-12


class _Fourth(kanpde.Problem):
    box = kanpde.Box([0.0, 0.0], [1.0, 2.0], ("x", "t"))
    derivatives = "auto"
    periodic = ("x",)

    def residual(self, u, x):
        return u.d("t") + u.value * u.d("x") + u.d("x", "x") + u.d("x", "x", "x", "x")


def test_field_with_periodic_inputs_matches_autograd_at_fourth_order():
    problem = _Fourth()
    assert isinstance(problem.derivatives, Derivatives) and problem.derivative_order == 4
    net = kanpde.KAN([3, 4, 1], grid=4, order=5)
    x = torch.rand(20, 2) * torch.tensor([1.0, 2.0])
    ours = Field(net, problem, "jet").jet(x, problem.derivatives)
    theirs = Field(net, problem, "autograd").jet(x, problem.derivatives)
    assert _relative(ours.stack, theirs.stack) <= 1e-10


def test_a_kan_too_smooth_for_the_problem_is_refused(tmp_path, capsys):
    config = {"problem": {"name": "beam"}, "model": {"type": "kan", "width": [1, 3, 1], "order": 3},
              "train": {"stages": [{"optimizer": "adam", "steps": 1}]}}
    with pytest.raises(ValueError, match=r"model.order: beam reads derivatives of order 4,.* at least 4"):
        kanpde.solve(config, out=tmp_path / "run", quiet=True)
    status = cli.main(["solve", "beam.yaml", "--set", "model.order=3", "--out", str(tmp_path / "cli"), "--quiet"])
    error = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(error) == 1 and "set model.order to at least 4" in error[0]


def test_beam_exact_solution_satisfies_its_equation_and_conditions():
    problem = Beam()
    x = torch.rand(20, 1)
    exact = kanpde.autograd_jet(lambda p: problem.exact(p)[:, None], x, problem.derivatives, ("x",))[0]
    assert problem.residual(exact, x).abs().max() < 1e-12
    end = torch.ones(3, 1)
    exact_end = kanpde.autograd_jet(lambda p: problem.exact(p)[:, None], end, Derivatives.parse(("xxx",), ("x",)),
                                    ("x",))[0]
    for condition in problem.conditions:
        assert condition.fn(exact_end, end).abs().max() < 1e-12
    field = Field(kanpde.KAN([1, 3, 1], order=5), problem)  # hard clamp: u(0) = u'(0) = 0 for any network
    start = field.jet(torch.zeros(2, 1), problem.derivatives)
    assert start.value.abs().max() == 0 and start.d("x").abs().max() == 0


def test_readme_higher_order_example_runs(capsys):
    text = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Higher-order derivatives[^\n]*\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## Higher-order derivatives' section"
    (code,) = re.findall(r"^```python\n(.*?)^```", match.group(1), re.MULTILINE | re.DOTALL)
    exec(compile(code, "README.md:Higher-order derivatives", "exec"), {"__name__": "readme_higher_order"})
    out = capsys.readouterr().out.splitlines()
    assert float(out[0].rsplit(" ", 1)[1]) < 1e-10
    assert out[1] == "Derivatives(xxxx, xxyy, yyyy)"


def test_kuramoto_sivashinsky_reference_converges_and_the_field_matches_autograd():
    from kanpde.problems.kuramoto_sivashinsky import KuramotoSivashinsky
    from kanpde.reference import self_convergence
    from kanpde.reference.kuramoto_sivashinsky import initial_condition

    change, coarse, _ = self_convergence("kuramoto_sivashinsky", return_references=True, t1=2.0, modes=128, dt=1e-2,
                                         t=np.linspace(0.0, 2.0, 5))
    assert change < 1e-7  # 128 → 256 modes, dt 1e-2 → 5e-3
    assert np.abs(coarse.u[:, 0] - initial_condition(coarse.x)).max() < 1e-12
    assert np.abs(coarse.u[0] - coarse.u[-1]).max() < 1e-12  # periodic: x = 0 and x = L
    problem = KuramotoSivashinsky()
    assert problem.derivatives.order == 4
    net = kanpde.KAN([3, 3, 1], grid=3, order=5)
    x = torch.rand(10, 2) * torch.tensor([32 * math.pi, 10.0])
    ours, theirs = (Field(net, problem, kind).jet(x, problem.derivatives)[0] for kind in ("jet", "autograd"))
    for axes in ((), ("t",), ("x",), ("x", "x"), ("x", "x", "x", "x")):
        assert _relative(ours.d(*axes), theirs.d(*axes)) <= 1e-10, axes
    start = x.clone()
    start[:, 1] = 0.0  # the hard initial condition
    initial = Field(net, problem).jet(start, problem.derivatives)[0]
    assert _relative(initial.value, torch.as_tensor(initial_condition(start[:, 0].numpy()))) <= 1e-14


def test_error_against_time_script(tmp_path):
    spec = importlib.util.spec_from_file_location("error_vs_time", Path(__file__).parent.parent / "scripts" /
                                                  "error_vs_time.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    t = np.linspace(0, 1, 5)
    assert module.time_below(t, np.array([0.0, 1e-3, 5e-3, 2e-2, 1e-3]), 1e-2) == 0.5  # stays below until 0.5
    assert module.time_below(t, np.zeros(5), 1e-2) == 1.0
    assert module.time_below(t, np.full(5, 1.0), 1e-2) is None


@pytest.mark.parametrize("name", ["beam", "kuramoto_sivashinsky"])
def test_fourth_order_configs_load_and_build(name):
    from kanpde.config import load_config
    from kanpde.solver import build_field, build_problem

    config = load_config(name)
    problem = build_problem(config.problem)
    field = build_field(config, problem, torch.device("cpu"))
    assert problem.derivative_order == 4 and config.model.order == 5
    assert field.net.width[0] == problem.input_features
