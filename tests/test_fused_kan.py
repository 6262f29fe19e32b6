"""``train.compile`` for KANs: the fused, compiled layer kernels give the eager layer's jets and gradients,
train the same way, and step aside (with one warning) when compiling fails."""

from __future__ import annotations

import pytest
import torch

from kanpde.config import config_from_dict
from kanpde.jet import Jet, num_terms
from kanpde.nets import compiled, fused_kan
from kanpde.nets.kan import KAN
from kanpde.solver import build_field, build_problem, build_sampler
from kanpde.train import Trainer

pytestmark = pytest.mark.slow  # each jet mode compiles the kernels of three kinds of layer: ~30-60 s on a CPU


def _kan(order: int) -> KAN:
    """Layers of all three kinds: points first (as wide as that takes), points last, one output."""
    torch.manual_seed(0)
    wide = fused_kan._BY_POINT_OUTPUTS
    net = KAN([2, wide, wide - 1, 1], grid=4, order=order).double()
    with torch.no_grad():  # edge functions well away from the small initial ones, w_b of both signs
        for layer in net.layers:
            layer.coef.normal_()
            layer.base_weight.normal_()
    return net


def _jet_and_gradients(net: KAN, u: Jet, fused: bool):
    if fused:
        with fused_kan.enabled():
            out = net.jet_forward(u)
    else:
        out = net.jet_forward(u)
    weights = torch.linspace(-1, 1, out.stack.numel(), dtype=out.stack.dtype).view_as(out.stack)
    inputs = list(net.parameters()) + ([u.stack] if u.stack.requires_grad else [])
    return out.stack.detach(), torch.autograd.grad((out.stack * weights).sum(), inputs, allow_unused=True)


@pytest.mark.parametrize("mode, order", [("trace", 3), ("full", 2), ("diagonal:1", 3)])
def test_the_fused_layers_give_the_eager_jet_and_gradients(mode, order):
    """A seed jet (first layer) and a general jet with second derivatives (hidden layers), points inside and
    outside the knots, uniform knots and knots a grid update moved: values and every gradient equal the
    hand-written eager layer's to round-off."""
    net = _kan(order)
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(60, 2, generator=generator, dtype=torch.float64) * 2.6 - 1.3  # some outside [-1, 1]
    general = torch.randn(60, num_terms(mode, 2), 2, generator=generator, dtype=torch.float64).requires_grad_()
    for moved in (False, True):
        if moved:  # quantile knots of other samples (the ends of a grid fitted to x would sit on points of x)
            net.update_grid(torch.rand(40, 2, generator=generator, dtype=torch.float64) * 2 - 1)
        assert all(layer.uniform != moved for layer in net.layers)
        for u in (Jet.seed(x, mode, scale=[2.0, 0.5]), Jet(general, 2, mode)):
            eager_out, eager_grads = _jet_and_gradients(net, u, fused=False)
            fused_out, fused_grads = _jet_and_gradients(net, u, fused=True)
            assert torch.allclose(fused_out, eager_out, rtol=1e-11, atol=1e-11)
            for fused, eager in zip(fused_grads, eager_grads):
                assert (fused is None) == (eager is None)
                if eager is not None:
                    assert torch.allclose(fused, eager, rtol=1e-11, atol=1e-11 * eager.abs().max())
    assert not fused_kan._FAILED


def test_values_and_one_point_stay_eager(monkeypatch):
    """Only second-order jets of several points through layers with several inputs reach the kernels (a size
    of 1 would cost a compilation of its own); one output (the output layer) does."""
    calls = []
    monkeypatch.setattr(fused_kan, "_FusedLayerJet", type("Spy", (), {"apply": lambda *args: calls.append(args)}))
    monkeypatch.setattr(fused_kan, "_CHECKED", {("diagonal", 2, 3, torch.float64, "cpu", False, one)
                                                for one in (False, True)})
    monkeypatch.setattr(fused_kan, "_FAILED", [])
    net = KAN([2, 3, 1]).double()
    with fused_kan.enabled():
        net.jet_forward(Jet.seed(torch.rand(10, 2, dtype=torch.float64), "value"))
        net.jet_forward(Jet.seed(torch.rand(1, 2, dtype=torch.float64), "diagonal"))
        assert calls == []
        net.jet_forward(Jet.seed(torch.rand(10, 2, dtype=torch.float64), "diagonal"))
    assert len(calls) == 2  # the first layer [2 → 3] and the output layer [3 → 1] (the spy returns None: each
    # then falls back to the eager layer)
    assert not fused_kan._FAILED


def test_a_failed_compilation_warns_once_and_the_layers_run_eagerly(monkeypatch, capsys):
    def broken(name, device):
        raise RuntimeError("no C++ compiler found\nmore detail")

    monkeypatch.setattr(fused_kan, "_kernel", broken)
    monkeypatch.setattr(fused_kan, "_FAILED", [])
    monkeypatch.setattr(fused_kan, "_CHECKED", set())
    net = _kan(3)
    x = torch.rand(20, 2, dtype=torch.float64)
    forward = compiled.jet_forward(net)
    first, second = forward(Jet.seed(x, "diagonal")), forward(Jet.seed(x, "diagonal"))
    eager = net.jet_forward(Jet.seed(x, "diagonal"))
    assert torch.equal(first.stack, eager.stack) and torch.equal(second.stack, eager.stack)
    assert capsys.readouterr().err.splitlines() == [
        "kanpde: warning: train.compile: compiling the KAN layer jet failed (no C++ compiler found); "
        "KAN layers run eagerly"]


def test_compiled_kan_training_follows_the_eager_run(capsys):
    """Burgers with soft conditions, a KAN [2,4,4,1]: the same losses step by step to round-off."""
    runs = []
    for compile_ in (False, True):
        config = config_from_dict({
            "problem": {"name": "burgers", "params": {"hard": False}},
            "model": {"type": "kan", "width": [2, 4, 4, 1], "grid": 5},
            "points": {"interior": 64, "boundary": 16, "initial": 16},
            "train": {"compile": compile_, "stages": [{"optimizer": "adam", "steps": 6, "lr": 1e-2}]}})
        problem = build_problem(config.problem)
        field = build_field(config, problem, torch.device("cpu"))
        trainer = Trainer(field, build_sampler(config, problem, torch.float64, torch.device("cpu")), config.train,
                          progress=False)
        runs.append([row["loss"] for row in trainer.run().rows])
    eager, fused = runs
    assert "failed" not in capsys.readouterr().err and not fused_kan._FAILED
    assert len(eager) == len(fused) == 6 and eager[-1] < eager[0]
    assert fused == pytest.approx(eager, rel=1e-9)


@pytest.mark.skipif(tuple(int(part) for part in torch.__version__.split(".")[:2]) < (2, 11),
                    reason="an older torch lacks some of the options; they are left out by design")
def test_the_kernels_cpu_options_are_known_to_this_torch():
    """The inductor options the kernels are tuned with (fused_kan._CPU_OPTIONS, measured on torch 2.13) exist in
    the installed torch: one that a release renamed would be left out silently, and the kernels would lose their
    tuning."""
    from torch._inductor import list_options

    known = set(list_options())
    assert {option for options in fused_kan._CPU_OPTIONS.values() for option in options} <= known
