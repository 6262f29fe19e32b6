"""``train.compile``: the compiled dense jet gives the eager jet's numbers and trains the same way."""

from __future__ import annotations

import pytest
import torch

from kanpde.config import config_from_dict
from kanpde.field import Field
from kanpde.nets import compiled
from kanpde.nets.kan import KAN
from kanpde.nets.mlp import MLP
from kanpde.solver import build_field, build_problem, build_sampler
from kanpde.train import Trainer

pytestmark = pytest.mark.slow  # one torch.compile of a small MLP jet: ~10-30 s on a CPU


def _config(compile_: bool, steps: int = 6):
    return config_from_dict({
        "problem": {"name": "burgers", "params": {"hard": False}},
        "model": {"type": "mlp", "width": [2, 6, 6, 1]},
        "points": {"interior": 64, "boundary": 16, "initial": 16},
        "train": {"compile": compile_, "stages": [{"optimizer": "adam", "steps": steps, "lr": 1e-2}]}})


def test_compiled_training_follows_the_eager_run(capsys):
    """Same network, points and steps: the compiled run's losses are the eager run's to round-off (the fused
    loops sum in another order), and every step goes through the compiled jet (no fallback)."""
    runs = []
    for compile_ in (False, True):
        config = _config(compile_)
        problem = build_problem(config.problem)
        field = build_field(config, problem, torch.device("cpu"))
        assert field.compile is compile_
        trainer = Trainer(field, build_sampler(config, problem, torch.float64, torch.device("cpu")), config.train,
                          progress=False)
        runs.append([row["loss"] for row in trainer.run().rows])
        if compile_:
            forward = compiled.jet_forward(field.net)
            x = torch.rand(50, 2, dtype=torch.float64)  # another number of points: a second (dynamic) compile
            assert torch.allclose(field.jet(x, "diagonal").stack,
                                  Field(field.net, problem).jet(x, "diagonal").stack, rtol=1e-12, atol=1e-14)
            assert forward is compiled.jet_forward(field.net)  # one per network
    eager, fused = runs
    assert "torch.compile failed" not in capsys.readouterr().err
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # it compiled, not fell back
    assert len(eager) == len(fused) == 6
    assert eager[-1] < eager[0]
    assert fused == pytest.approx(eager, rel=1e-9)


def test_a_failed_compilation_warns_once_and_continues_eagerly(monkeypatch, capsys):
    net = MLP([2, 4, 1]).double()

    def broken(function):
        def fails(*args):
            raise RuntimeError("no C++ compiler found\nmore detail")
        return fails

    monkeypatch.setattr(torch, "compile", broken)
    problem = build_problem(_config(True).problem)
    field = Field(net, problem, compile=True)
    x = torch.rand(20, 2, dtype=torch.float64)
    first, second = field.jet(x, "diagonal"), field.jet(x, "diagonal")
    eager = Field(net, problem).jet(x, "diagonal")
    assert torch.equal(first.stack, eager.stack) and torch.equal(second.stack, eager.stack)
    said = capsys.readouterr().err.splitlines()
    assert said == ["kanpde: warning: train.compile: torch.compile failed (no C++ compiler found); "
                    "training continues eagerly"]


def test_nested_autograd_is_never_compiled():
    problem = build_problem(_config(True).problem)
    assert not Field(MLP([2, 3, 1]), problem, "autograd", compile=True).compile
    assert Field(MLP([2, 3, 1]), problem, compile=True).compile
    assert Field(KAN([2, 3, 1]), problem, compile=True).compile  # its layers' fused kernels: tests/test_fused_kan.py
