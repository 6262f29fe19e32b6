"""The GPU path (issue 19): jets, the trainer and a whole solve on CUDA agree with the CPU and stay on the device.
Skipped on machines without CUDA; scripts/gpu_check.sh runs this file on a GPU."""

from __future__ import annotations

import pytest
import torch

from kanpde import KAN, MLP
from kanpde.config import config_from_dict
from kanpde.jet import Jet
from kanpde.solver import build_field, build_problem, build_sampler, solve
from kanpde.train import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


@pytest.mark.parametrize("net", [MLP([2, 16, 16, 1], "tanh"), KAN([2, 5, 1], grid=5)], ids=["mlp", "kan"])
@pytest.mark.parametrize("mode", ["none", "trace", "diagonal", "full", "diagonal:0"])
def test_jets_on_cuda_match_the_cpu(net, mode):
    net = net.double()
    x = torch.rand(64, 2, dtype=torch.float64) * 2 - 1
    cpu = net.jet_forward(Jet.seed(x, mode, scale=torch.tensor([1.0, 2.0], dtype=torch.float64))).stack
    gpu_net = net.to(CUDA)
    gpu = gpu_net.jet_forward(Jet.seed(x.to(CUDA), mode, scale=torch.tensor([1.0, 2.0], dtype=torch.float64,
                                                                                device=CUDA))).stack
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, rtol=1e-10, atol=1e-12)


MODELS = [{"type": "mlp", "width": [2, 8, 8, 1]}, {"type": "kan", "width": [2, 4, 1], "grid": 4}]


@pytest.mark.parametrize("model", MODELS, ids=["mlp", "kan"])
@pytest.mark.parametrize("problem", ["burgers", "poisson"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_trainer_on_cuda(model, problem, dtype):
    """Adam then L-BFGS (grid extension for the KAN) on the device: finite history, parameters stay there."""
    train = {"dtype": dtype,
             "stages": [{"optimizer": "adam", "steps": 10, "lr": 1e-2}, {"optimizer": "lbfgs", "steps": 3}]}
    if model["type"] == "kan":
        train["grid_schedule"] = {10: 8}
    params = {"hard": False} if problem == "burgers" else {}
    config = config_from_dict({"problem": {"name": problem, "params": params}, "model": model,
                               "points": {"interior": 200, "boundary": 40, "initial": 40}, "train": train})
    problem_ = build_problem(config.problem)
    field = build_field(config, problem_, CUDA)
    trainer = Trainer(field, build_sampler(config, problem_, getattr(torch, dtype), CUDA), config.train, progress=False)
    history = trainer.run()
    assert len(history.rows) == 13 and all(torch.isfinite(torch.tensor(row["loss"])) for row in history.rows)
    assert all(p.device.type == "cuda" for p in field.parameters())


def test_solve_on_cuda(tmp_path):
    summary = solve(
        {"problem": {"name": "poisson"}, "model": {"type": "kan", "width": [2, 5, 1], "grid": 5},
         "points": {"interior": 300, "boundary": 80}, "train": {"stages": [{"optimizer": "adam", "steps": 20}]},
         "evaluate": {"every": 10, "resolution": 21}, "output": {"plots": False}},
        out=tmp_path / "run", device="cuda", quiet=True)
    assert summary["device"].startswith("cuda") and summary["rel_l2"] < 2


def test_compiled_kan_layers_on_cuda_match_the_cpu():
    """``train.compile``'s fused KAN kernels (Triton on CUDA): the jet and the parameter gradients of the eager
    CPU layers, float64."""
    from kanpde.nets import fused_kan

    torch.manual_seed(0)
    net = KAN([2, 4, 3], grid=5).double()
    x = torch.rand(64, 2, dtype=torch.float64) * 2 - 1

    def jet_and_gradients(model, points):
        stack = model.jet_forward(Jet.seed(points, "diagonal")).stack
        grads = torch.autograd.grad(stack.square().sum(), list(model.parameters()))
        return stack.detach().cpu(), [g.cpu() for g in grads]

    cpu, cpu_grads = jet_and_gradients(net, x)
    gpu_net = net.to(CUDA)
    with fused_kan.enabled():
        gpu, gpu_grads = jet_and_gradients(gpu_net, x.to(CUDA))
    assert not fused_kan._FAILED
    assert torch.allclose(gpu, cpu, rtol=1e-10, atol=1e-12)
    for g, c in zip(gpu_grads, cpu_grads):
        assert torch.allclose(g, c, rtol=1e-9, atol=1e-12 * c.abs().max())
