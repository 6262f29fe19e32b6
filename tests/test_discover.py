"""Symbolic discovery: the sparsity penalty, pruning, snapped edges (kanpde.nets.sparse, kanpde.nets.library),
the ``symbolic`` config section and the pipeline end to end on a tiny budget (kanpde.discover)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kanpde import config as config_module
from kanpde import symbolic
from kanpde.autodiff import autograd_jet
from kanpde.config import ConfigError, config_from_dict
from kanpde.nets import KAN
from kanpde.nets.library import LIBRARY, affine_derivatives, fit_function
from kanpde.nets.sparse import best_fit, prune_, snap_edge, sparsity_penalty
from kanpde.solver import load, solve
from kanpde.taylor import Derivatives


@pytest.fixture(autouse=True)
def _one_thread(single_thread):
    yield


def _kan(width=(2, 4, 1), seed=0) -> tuple[KAN, torch.Tensor]:
    torch.manual_seed(seed)
    kan = KAN(list(width), grid=4).double()
    return kan, torch.rand(64, width[0], dtype=torch.float64) * 2 - 1


def _direct_penalty(kan: KAN, x: torch.Tensor, entropy: float) -> torch.Tensor:
    """The KAN paper's regulariser written out edge by edge, from w_b·silu + w_s·spline (edge_splines)."""
    total, h = x.new_zeros(()), x
    for layer in kan.layers:
        phi = torch.nn.functional.silu(h)[..., None] * layer.base_weight + layer.spline_weight * layer.edge_splines(h)
        l1 = torch.stack([torch.stack([phi[:, i, j].abs().mean() for j in range(phi.shape[2])])
                          for i in range(phi.shape[1])])
        p = l1 / l1.sum()
        total = total + l1.sum() - entropy * (p * p.log()).sum()
        h = phi.sum(1)
    return total


def test_penalty_value_and_gradient_match_a_direct_computation():
    kan, x = _kan()
    value = sparsity_penalty(kan, x, entropy=2.0)
    direct = _direct_penalty(kan, x, 2.0)
    assert float(value) == pytest.approx(float(direct), rel=1e-12)
    grads = torch.autograd.grad(value, list(kan.parameters()))
    expected = torch.autograd.grad(direct, list(kan.parameters()))
    for g, e in zip(grads, expected):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)


def test_penalty_shares_of_two_equal_ranks_add_up_to_the_penalty():
    """Data parallel: each rank's share (here two ranks holding the same points) sums to the global penalty,
    value and gradient."""
    kan, x = _kan()
    share = sparsity_penalty(kan, x, 2.0, across_ranks=lambda t: 2 * t.detach())
    whole = sparsity_penalty(kan, x, 2.0)
    assert 2 * float(share) == pytest.approx(float(whole), rel=1e-12)
    for g, e in zip(torch.autograd.grad(share, list(kan.parameters())),
                    torch.autograd.grad(whole, list(kan.parameters()))):
        torch.testing.assert_close(2 * g, e, rtol=1e-10, atol=1e-12)


def test_pruning_zero_edges_keeps_the_function_and_shrinks_the_width():
    kan, x = _kan((2, 4, 1))
    with torch.no_grad():  # hidden node 1 feeds nothing; edge 0 -> 2 is zero
        for layer, i, j in ((kan.layers[1], 1, 0), (kan.layers[0], 0, 2)):
            layer.coef[i, :, j] = 0
            layer.base_weight[i, j] = 0
    before = kan(x)
    old, new, masked = prune_(kan, x, threshold=1e-6)
    assert (old, new, masked) == ([2, 4, 1], [2, 3, 1], 1)
    torch.testing.assert_close(kan(x), before, rtol=0, atol=1e-14)
    jet = kan.jet(x, "full")  # masked edges stay in the closed-form jets
    torch.testing.assert_close(jet.stack, autograd_jet(kan, x, "full").stack, rtol=1e-10, atol=1e-12)


def test_a_snapped_edge_equals_its_formula_in_values_and_jets():
    kan, x = _kan((2, 3, 1))
    layer = kan.layers[0]
    s = x[:, 1].numpy()
    fit = fit_function(s, 0.7 * np.sin(2.5 * s + 0.3) - 0.2, "sin")
    assert fit.q < 1e-20 and abs(fit.a) == pytest.approx(0.7) and fit.b == pytest.approx(2.5)  # c: up to a phase π
    snap_edge(layer, 1, 2, fit)
    phi = layer.edge_values(x)[:, 1, 2].detach().numpy()
    np.testing.assert_allclose(phi, fit.a * np.sin(fit.b * s + fit.c) + fit.d, rtol=0, atol=1e-14)
    torch.testing.assert_close(kan.jet(x, "full").stack, autograd_jet(kan, x, "full").stack, rtol=1e-10, atol=1e-12)
    wanted = Derivatives.parse(("xxxx", "xy"), ("x", "y"))  # jets of any order (Taylor mode)
    torch.testing.assert_close(kan.jet(x, wanted).stack, autograd_jet(kan, x, wanted).stack, rtol=1e-9, atol=1e-10)
    # the state (snaps, masks, a pruned width) loads into a freshly built network of the configured width
    fresh = KAN([2, 3, 1], grid=4).double()
    fresh.load_state_dict(kan.state_dict())
    torch.testing.assert_close(fresh(x), kan(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", list(LIBRARY))
def test_library_derivatives_are_the_derivatives(name):
    s = torch.linspace(0.1, 0.9, 7, dtype=torch.float64, requires_grad=True)
    a, b, c, d = (torch.tensor(v, dtype=torch.float64) for v in (0.7, 1.3, -0.2, 0.4))
    series = affine_derivatives(name, s, a, b, c, d, 3)
    for k in range(3):
        if not series[k].requires_grad:  # a constant (a power's last derivatives): the next one is zero
            torch.testing.assert_close(series[k + 1] * torch.ones_like(s), torch.zeros_like(s))
            continue
        (grad,) = torch.autograd.grad(series[k].sum(), s, create_graph=True)
        torch.testing.assert_close(grad, series[k + 1] * torch.ones_like(s), rtol=1e-10, atol=1e-12)


def test_best_fit_prefers_the_simplest_function_that_fits():
    s = np.linspace(-1, 1, 200)
    assert best_fit(s, 3 * s - 1, ["x", "x^2", "sin"]).name == "x"
    assert best_fit(s, np.cos(2 * s), ["x", "x^2", "cos"], tolerance=1e-8).name == "cos"


def test_config_section_is_checked_and_absent_by_default():
    base = {"problem": {"name": "poisson_sin"}}
    assert config_from_dict(base).symbolic is None
    assert config_module.SNAP_FUNCTIONS == tuple(LIBRARY)
    config = config_from_dict(base | {"symbolic": {"discover": True, "lambda": 0.01, "library": ["x", "sin"]}})
    assert config.symbolic.lambda_ == 0.01 and config.symbolic.library == ("x", "sin")
    for bad, key in (({"lamda": 1}, "symbolic.lamda"), ({"lambda": -1}, "symbolic.lambda"),
                     ({"library": ["sinh"]}, r"symbolic.library\[0\]"), ({"snap_tolerance": "x"}, "symbolic.snap")):
        with pytest.raises(ConfigError, match=key):
            config_from_dict(base | {"symbolic": bad})


@pytest.mark.slow
def test_discover_end_to_end_on_a_tiny_budget(tmp_path):
    config = {"problem": {"name": "poisson_sin"}, "model": {"width": [2, 3, 1], "grid": 3},
              "points": {"interior": 60, "boundary": 20},
              "train": {"stages": [{"optimizer": "adam", "steps": 10, "lr": 0.02}]},
              "evaluate": {"every": 0, "resolution": 11}, "output": {"plots": False},
              "symbolic": {"discover": True, "lambda": 0.01, "retrain_steps": 2, "snap_steps": 1, "final_steps": 1,
                           "snap_tolerance": 1e9, "library": ["x", "sin"]}}
    summary = solve(config, out=tmp_path / "run", quiet=True)
    events = summary["events"]
    assert any(e.startswith("step 10: pruned KAN [2, 3, 1] -> ") for e in events)
    snapped = [e for e in events if "snapped" in e]
    assert snapped  # with an unbounded tolerance every live edge is snapped
    run = load(tmp_path / "run")
    layers = run.net.layers
    assert sum(len(layer.snapped_edges()) for layer in layers) == len(snapped)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["events"] == events
    result = symbolic.export(run, mode="compact", refine=False, round=False, simplify=False, write=False,
                             resolution=11)
    snapped_fits = [f for f in result.fits if f.r2 == 1.0 and f.name in ("x", "sin")]
    assert len(snapped_fits) == len(snapped)
    assert result.verification["compact"]["max_diff_model"] < 1e-8  # every edge is its formula


def _trainer(symbolic_options: dict):
    """A trainer of a KAN [2, 4, 1] on poisson_sin (a few points), and the parsed symbolic options."""
    from kanpde.solver import build_field, build_problem, build_sampler
    from kanpde.train import Trainer

    config = config_from_dict({"problem": {"name": "poisson_sin"}, "model": {"width": [2, 4, 1], "grid": 3},
                               "points": {"interior": 40, "boundary": 16},
                               "train": {"stages": [{"optimizer": "adam", "steps": 1, "lr": 0.01}], "seed": 0},
                               "symbolic": {"discover": True} | symbolic_options})
    torch.manual_seed(0)
    problem = build_problem(config.problem)
    field = build_field(config, problem, torch.device("cpu"))
    trainer = Trainer(field, build_sampler(config, problem, torch.float64, torch.device("cpu")), config.train,
                      evaluate_every=0, progress=False)
    trainer.run()  # the configured step
    return trainer, config.symbolic


def _state(trainer) -> dict:
    return {k: v.clone() for k, v in trainer.field.state_dict().items() if v is not None}


def test_pruning_rounds_stop_and_undo_a_round_that_removes_no_edge():
    """A threshold of 0 removes nothing: the round (which trained with the penalty) is undone, bit for bit."""
    trainer, options = _trainer({"prune_rounds": 3, "prune_threshold": 0.0, "round_steps": 2, "retrain_steps": 1})
    from kanpde import discover

    before = _state(trainer)
    assert discover.prune_in_rounds(trainer, options) == 0
    assert trainer.step == 3 and trainer.sparsity is None  # it trained, then went back
    after = _state(trainer)
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert trainer.history.events == [f"step 3: pruning round 1 (λ {1e-2:.1e}) undone: it removed no edge; rounds end"]


def test_a_pruning_round_that_removes_only_a_dead_node_keeps_the_function():
    trainer, options = _trainer({"prune_rounds": 3, "lambda": 0.0, "round_steps": 0, "retrain_steps": 0,
                                 "prune_tolerance": 0.0})
    from kanpde import discover

    kan = trainer.kan
    with torch.no_grad():  # hidden node 2 feeds nothing
        kan.layers[1].coef[2] = 0
        kan.layers[1].base_weight[2] = 0
    x = torch.rand(32, 2, dtype=torch.float64)
    expected = kan(x)
    assert discover.prune_in_rounds(trainer, options) == 1  # round 2 finds nothing more to remove
    assert kan.width == [2, 3, 1]
    torch.testing.assert_close(kan(x), expected, rtol=0, atol=1e-14)
    events = trainer.history.events
    assert len(events) == 2 and events[0].startswith("step 1: pruning round 1 (λ 0.0e+00): KAN [2, 4, 1] -> [2, 3, 1]")
    assert events[1].endswith("undone: it removed no edge; rounds end")


def test_a_pruning_round_that_raises_the_loss_is_undone():
    """Threshold 0.9 keeps one hidden node and one edge per layer: without retraining the loss rises."""
    trainer, options = _trainer({"prune_rounds": 2, "lambda": 0.0, "round_steps": 0, "retrain_steps": 0,
                                 "prune_threshold": 0.9, "prune_tolerance": 0.0})
    from kanpde import discover

    before = _state(trainer)
    assert discover.prune_in_rounds(trainer, options) == 0
    assert trainer.kan.width == [2, 4, 1]
    assert all(torch.equal(_state(trainer)[k], before[k]) for k in before)
    assert "undone: it raised the loss" in trainer.history.events[0]


def test_pruning_round_options_are_checked():
    base = {"problem": {"name": "poisson_sin"}}
    options = config_from_dict(base | {"symbolic": {"discover": True}}).symbolic
    defaults = (options.prune_rounds, options.round_steps, options.lambda_growth, options.prune_tolerance)
    assert defaults == (1, 100, 10, 1)
    for bad, key in (({"prune_rounds": 0}, "symbolic.prune_rounds"), ({"prune_rounds": 1.5}, "symbolic.prune_rounds"),
                     ({"lambda_growth": 0.5}, "symbolic.lambda_growth"), ({"round_steps": -1}, "symbolic.round_steps"),
                     ({"prune_tolerance": -1}, "symbolic.prune_tolerance")):
        with pytest.raises(ConfigError, match=key):
            config_from_dict(base | {"symbolic": bad})


def test_linear_first_layer_snaps_every_first_layer_edge_to_a_line():
    trainer, options = _trainer({"linear_first_layer": True, "retrain_steps": 0})
    from kanpde import discover

    assert config_from_dict({"problem": {"name": "poisson_sin"}, "symbolic": {}}).symbolic.linear_first_layer is False
    discover.linearise_first_layer(trainer, options)
    layer = trainer.kan.layers[0]
    assert sorted(layer.snapped_edges()) == [(i, j, "x") for i in range(2) for j in range(4)]
    s = torch.linspace(-1, 1, 21, dtype=torch.float64)[:, None].expand(21, 2)
    with torch.no_grad():
        phi = layer.edge_values(s)
    assert float((phi[2:] - 2 * phi[1:-1] + phi[:-2]).abs().max()) < 1e-12  # affine in the input
    assert float((phi[-1] - phi[0]).abs().max()) > 0  # and not constant: the fitted slopes
    assert trainer.history.events[-1].startswith("step 1: first layer linear (8 edges snapped to x); loss ")
