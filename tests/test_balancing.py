"""Loss balancing by gradient norms (learning-rate annealing): the update formula, the same weights on every
rank, the trainer hook and its settings."""

from __future__ import annotations

import csv

import pytest
import torch
from test_distributed import _threads_as_ranks

from kanpde import distributed
from kanpde.balancing import GradientNormBalancing
from kanpde.config import ConfigError, load_config
from kanpde.geometry import Sampler
from kanpde.loss import loss_terms
from kanpde.solver import build_field, build_problem, build_sampler, solve
from kanpde.train import Trainer

pytestmark = pytest.mark.usefixtures("single_thread")


def test_update_follows_the_annealing_formula():
    theta = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    terms = {"residual": (theta * torch.tensor([3.0, 1.0, 0.0], dtype=torch.float64)).sum() ** 2,
             "boundary": (theta**2).sum() * 0.01, "flat": theta.new_zeros(()) * 0 + 1.0}
    # ∇ residual = 2·(3·1 − 2)·[3, 1, 0] = [6, 2, 0]: max 6, weighted 2·6;  ∇ boundary = 0.02·θ: mean 0.02·3.5/3
    new = GradientNormBalancing(every=1, alpha=0.5).update({"residual": 2.0, "boundary": 1.0, "flat": 3.0},
                                                            terms, [theta])
    assert new["residual"] == 2.0 and new["flat"] == 3.0  # the reference and a term without gradient keep theirs
    assert new["boundary"] == pytest.approx(0.5 * 1.0 + 0.5 * 2 * 6 / (0.02 * 3.5 / 3), rel=1e-12)
    assert GradientNormBalancing(every=5, alpha=0.9).due(10) and not GradientNormBalancing(5, 0.9).due(11)
    with pytest.raises(ValueError, match="train.loss_balancing"):
        GradientNormBalancing(every=1, alpha=0.0)


def test_ranks_get_the_single_process_weights():
    config = load_config("poisson", ["model.width=[2, 4, 1]", "points.interior=101", "points.boundary=41"])
    problem = build_problem(config.problem)
    points = Sampler(problem.box, 101, 41, method="sobol", seed=0, dtype=torch.float64).sample(0)
    fields = [build_field(config, problem, torch.device("cpu")) for _ in range(3)]
    weights = {"residual": 0.01, "boundary": 1.0}
    balancing = GradientNormBalancing(every=1, alpha=0.9)
    expected = balancing.update(weights, loss_terms(fields[2], points), fields[2].parameters())
    shares = _threads_as_ranks(lambda world, across: balancing.update(
        weights, loss_terms(fields[world.rank], distributed.shard(points, world), across_ranks=across),
        fields[world.rank].parameters(), across))
    for result in shares:
        assert result["boundary"] == pytest.approx(expected["boundary"], rel=1e-10)
    assert expected["boundary"] != weights["boundary"]


TINY = ["model.width=[2, 3, 1]", "points.interior=64", "points.boundary=32", "evaluate.every=0",
        "train.stages=[{optimizer: adam, steps: 4, lr: 0.01}, {optimizer: lbfgs, steps: 2}]", "train.grid_schedule={}",
        "output.plots=false"]


def test_training_with_loss_balancing(tmp_path):
    summary = solve(load_config("poisson", TINY + ["train.loss_balancing={every: 2, alpha: 0.9}"]),
                    out=tmp_path / "run", quiet=True)
    assert summary["steps"] == 6
    rows = list(csv.DictReader((tmp_path / "run" / "history.csv").open()))
    boundary = [float(row["weight_boundary"]) for row in rows]
    assert all(float(row["weight_residual"]) == 0.01 for row in rows)  # poisson.yaml's residual weight
    assert boundary[0] != 1.0 and boundary[0] == boundary[1] and boundary[2] != boundary[1]  # updated at 0, 2, 4


def test_loss_balancing_settings(tmp_path):
    with pytest.raises(ConfigError, match=r"train.loss_balancing.alpha: must be a number in \(0, 1\]"):
        load_config("poisson", ["train.loss_balancing.alpha=2"])
    with pytest.raises(ConfigError, match="train.loss_balancing.method: must be one of 'gradient_norm'"):
        load_config("poisson", ["train.loss_balancing.method=softadapt"])
    with pytest.raises(ValueError, match="train.loss_balancing: burgers has no loss term besides the residual"):
        solve(load_config("burgers", ["train.loss_balancing={}"]), out=tmp_path / "b",
              quiet=True)


def test_divergence_recovery_restores_the_balanced_weights():
    """After a NaN the trainer goes back to its last good state, weights included: the retaken first step
    balances from the weights it started with, exactly as a run that never diverged."""
    config = load_config("poisson", TINY + ["train.loss_balancing={every: 2, alpha: 0.5}"])

    def trainer() -> Trainer:
        problem = build_problem(config.problem)
        sampler = build_sampler(config, problem, torch.float64, torch.device("cpu"))
        return Trainer(build_field(config, problem, torch.device("cpu")), sampler, config.train, progress=False)

    clean = trainer()
    clean.run(steps=1)
    diverging = trainer()
    diverging.run(steps=3)  # weights balanced at steps 0 and 2
    assert diverging.weights["boundary"] != clean.history.rows[0]["weight_boundary"]
    problem = diverging.field.problem

    def nan_once(u, x):
        del problem.residual  # back to the class's residual after this call
        return problem.residual(u, x) * float("nan")

    problem.residual = nan_once
    diverging.run(steps=1)  # the NaN at step 4: back to step 0, then steps 1-4 again
    assert diverging.recoveries == 1 and diverging.history.rows[0]["step"] == 1
    assert diverging.history.rows[0]["weight_boundary"] == clean.history.rows[0]["weight_boundary"]
