"""``train.residual_modes``: the residual's sine coefficients on a midpoint grid (kanpde.modes) as a loss term.

The projection against exact sine coefficients; its split over ranks; weight 0 costs nothing and changes
nothing (bit for bit); the term's column in history.csv; a resume from a run without the key (the term at
weight 0 so far) equals the run from scratch; one-line errors for bad settings."""

from __future__ import annotations

import copy
import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import kanpde
import kanpde.modes
from kanpde import Field, Sampler, Trainer
from kanpde.config import ConfigError, config_from_dict
from kanpde.modes import SineModes
from kanpde.nets import KAN
from kanpde.problems.wave import Wave
from kanpde.solver import solve

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py

PI = math.pi


# -- the projection ------------------------------------------------------------------------------------------------


def test_one_sine_mode_gives_its_coefficient_and_no_other():
    modes = SineModes([0.0, 0.0], [1.0, 1.0], [8, 24], [200, 200])
    x = modes.points
    assert x.shape == (40000, 2) and float(x.min()) == pytest.approx(1 / 400) and float(x.max()) < 1
    c = modes.coefficients(torch.sin(3 * PI * x[:, 0]) * torch.sin(2 * PI * x[:, 1]))
    assert c.shape == (8, 24)
    assert float(c[2, 1]) == pytest.approx(1.0, abs=1e-12)  # k = 3 in x, l = 2 in t
    others = c.clone()
    others[2, 1] = 0
    assert float(others.abs().max()) < 1e-12
    assert float(modes.mean_square(torch.sin(3 * PI * x[:, 0]) * torch.sin(2 * PI * x[:, 1]))) == pytest.approx(
        1 / (8 * 24), rel=1e-12)


def test_coefficients_of_a_smooth_function_on_a_shifted_box_match_the_sine_series():
    """r = (x − a)(b − x)·(t − c) on [a, b] × [c, d]: ĉ_kl = 2/L ∫ (x − a)(b − x) sin(kπ(x − a)/L) dx ·
    2/T ∫ (t − c) sin(lπ(t − c)/T) dt = [8L²/(kπ)³ for odd k, else 0]·[2T(−1)^(l+1)/(lπ)] (closed forms)."""
    a, b, c0, d = -1.0, 2.0, 0.5, 1.5
    big_l, big_t = b - a, d - c0
    modes = SineModes([a, c0], [b, d], 5, [400, 300])
    x = modes.points
    c = modes.coefficients((x[:, 0] - a) * (b - x[:, 0]) * (x[:, 1] - c0))
    for k in range(1, 6):
        for m in range(1, 6):
            in_x = 8 * big_l**2 / (k * PI) ** 3 if k % 2 else 0.0
            in_t = 2 * big_t * (-1) ** (m + 1) / (m * PI)
            assert float(c[k - 1, m - 1]) == pytest.approx(in_x * in_t, abs=2e-4), (k, m)


def test_several_columns_and_one_dimension():
    modes = SineModes([0.0], [2.0], 4, 50)
    s = modes.points[:, 0]
    c = modes.coefficients(torch.stack([torch.sin(PI * s), torch.sin(2 * PI * s)], dim=1))
    assert c.shape == (2, 4)
    assert torch.allclose(c, torch.tensor([[0.0, 1, 0, 0], [0, 0, 0, 1]], dtype=c.dtype), atol=1e-12)


def test_ranks_shares_add_up_to_the_term_and_its_gradient():
    """Three ranks' parts of the grid: their coefficients add up to the whole grid's, and each rank's share of
    mean ĉ² (given the coefficients summed over ranks) adds up to the term, its gradient to the term's."""
    weight = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)

    def values(x):
        return torch.exp(weight * x[:, 0]) * x[:, 1] ** 2 - weight * torch.sin(5 * x[:, 1])

    whole = SineModes([0.0, 0.0], [1.0, 2.0], [4, 6], [30, 40])
    term = whole.mean_square(values(whole.points))
    (expected,) = torch.autograd.grad(term, weight)
    parts = [SineModes([0.0, 0.0], [1.0, 2.0], [4, 6], [30, 40], part=(rank, 3)) for rank in range(3)]
    assert sum(len(p.points) for p in parts) == len(whole.points)
    summed = sum(p.coefficients(values(p.points)).detach() for p in parts)
    assert torch.allclose(summed, whole.coefficients(values(whole.points)), atol=1e-13)
    total = torch.cat([summed.reshape(-1), summed.new_tensor([3.0])])
    shares = [p.mean_square(values(p.points), lambda t: total.clone()) for p in parts]
    assert float(sum(shares)) == pytest.approx(float(term), rel=1e-12)
    gradient = sum(torch.autograd.grad(share, weight)[0] for share in shares)
    assert float(gradient) == pytest.approx(float(expected), rel=1e-10)


# -- in training ------------------------------------------------------------------------------------------------------


def train_config(**train):
    return config_from_dict({"problem": {"name": "wave"}, "train": train}).train


STAGES = [{"optimizer": "adam", "steps": 3, "lr": 0.01}, {"optimizer": "lbfgs", "steps": 3}]
MODES = {"modes": [3, 4], "grid": [12, 16]}


def run(monkeypatch, stages=STAGES, **train) -> tuple[Trainer, int]:
    """A tiny wave run; returns the trainer and how often the term was computed."""
    calls = []
    original = SineModes.mean_square
    monkeypatch.setattr(SineModes, "mean_square", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    torch.manual_seed(0)
    field = Field(KAN([2, 3, 1], grid=5).to(torch.float64), Wave())
    sampler = Sampler(Wave.box, 64, 0, 0, method="sobol", seed=0, dtype=torch.float64)
    trainer = Trainer(field, sampler, train_config(stages=stages, causal_epsilon="auto", **train), progress=False)
    trainer.run()
    return trainer, len(calls)


def test_weight_zero_is_not_computed_and_changes_nothing(monkeypatch):
    plain, _ = run(monkeypatch)
    zero, calls = run(monkeypatch, residual_modes=MODES, loss_weights={"residual_modes": 0})
    assert calls == 0
    assert [row["loss"] for row in zero.history.rows] == [row["loss"] for row in plain.history.rows]
    assert all("residual_modes" not in row for row in zero.history.rows)
    for a, b in zip(zero.field.parameters(), plain.field.parameters()):
        assert torch.equal(a, b)
    assert zero.terms_until(6) == ["residual"] and list(zero.weights) == ["residual", "residual_modes"]


def test_a_stage_weight_turns_the_term_on_for_that_stage(monkeypatch):
    stages = [STAGES[0], {**STAGES[1], "loss_weights": {"residual_modes": 10}}]
    trainer, calls = run(monkeypatch, stages, residual_modes=MODES, loss_weights={"residual_modes": 0})
    rows = trainer.history.rows
    assert calls >= 3 and all("residual_modes" not in row for row in rows[:3])
    assert all(row["residual_modes"] > 0 for row in rows[3:])
    for row in rows[3:]:  # the row's loss is the weighted sum of the state the step started from
        assert row["loss"] == pytest.approx(row["residual"] + 10 * row["residual_modes"], rel=1e-12)
    assert trainer.terms_until(3) == ["residual"] and trainer.terms_until(4) == ["residual", "residual_modes"]
    plain, _ = run(monkeypatch, stages=STAGES)
    assert rows[2]["loss"] == plain.history.rows[2]["loss"] and rows[5]["loss"] != plain.history.rows[5]["loss"]


# -- through the solver: history.csv, --resume -------------------------------------------------------------------------

TINY = {"problem": {"name": "wave"}, "model": {"type": "kan", "width": [2, 3, 1], "grid": 5},
        "points": {"interior": 64}, "evaluate": {"every": 0}, "output": {"plots": False},
        "train": {"causal_epsilon": "auto", "stages": STAGES}}


def with_modes(stages, weights=None):
    config = copy.deepcopy(TINY)
    config["train"].update(stages=stages, residual_modes=MODES, loss_weights=weights or {"residual_modes": 0})
    return config


def test_history_column_and_resume_from_a_run_without_the_term(tmp_path):
    """The shipped wave.yaml's pattern: a run without the key, resumed with it (weight 0 so far, then 10),
    equals the same config run from scratch; a checkpoint that used the term refuses a config without it."""
    stages = [*STAGES, {"optimizer": "lbfgs", "steps": 2, "loss_weights": {"residual_modes": 10}}]
    full = solve(with_modes(stages), out=tmp_path / "full", quiet=True)
    solve(TINY, out=tmp_path / "resumed", quiet=True)  # no residual_modes key: steps 1-6
    resumed = solve(with_modes(stages), out=tmp_path / "resumed", quiet=True, resume=True)
    assert full["final_loss"] == resumed["final_loss"] and full["rel_l2"] == resumed["rel_l2"]
    with open(tmp_path / "full" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["residual_modes"] for row in rows[:6]] == [""] * 6 and float(rows[7]["residual_modes"]) > 0
    assert full["loss_terms"] == ["residual", "residual_modes"]
    with pytest.raises(ValueError, match="loss terms"):
        solve({**TINY, "train": {**TINY["train"], "stages": stages[:2] + [STAGES[1]]}}, out=tmp_path / "full",
              quiet=True, resume=True)


# -- bad settings ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ({"modes": 0}, "train.residual_modes.modes: must be a positive integer <= 10000, or a list of them"),
    ({"modes": [8, -1]}, "train.residual_modes.modes[1]: must be a positive integer, got -1"),
    ({"modes": 2.5}, "train.residual_modes.modes: must be a positive integer"),
    ({"modes": 4, "grid": 1}, "train.residual_modes.grid: must be an integer in [2, 10000], or a list"),
    ({"modes": 4, "grid": [10, True]}, "train.residual_modes.grid[1]: must be an integer >= 2, got true"),
    ({"grid": 10}, "train.residual_modes.modes: required key is missing"),
    ({"modes": 4, "points": 10}, "train.residual_modes.points: unknown key"),
    (3, "train.residual_modes: must be a mapping with keys modes, grid"),
])
def test_bad_config_values_are_one_line_errors(value, expected):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"problem": {"name": "wave"}, "train": {"residual_modes": value}})
    assert str(info.value).startswith(expected) and len(str(info.value).splitlines()) == 1


@pytest.mark.parametrize("change, expected", [
    ({"train": {"residual_modes": {"modes": [3, 4, 5]}}}, "train.residual_modes.modes: must be one integer, or one "
                                                          "per coordinate (2)"),
    ({"train": {"residual_modes": {"modes": [3, 20], "grid": 20}}}, "train.residual_modes: axis 1 has 20 modes on "
                                                                    "20 grid points"),
    ({"train": {"loss_weights": {"residual_modes": 1}}}, "train.loss_weights.residual_modes: unknown loss term"),
    ({"train": {"residual_modes": {"modes": 3}, "time_windows": 2}}, "train.residual_modes: cannot be combined "
                                                                     "with train.time_windows"),
    ({"problem": {"name": "heat_disk"}, "train": {"residual_modes": {"modes": 3}}},
     "train.residual_modes: needs a box domain"),
    ({"problem": {"name": "cavity"}, "train": {"residual_modes": {"modes": 3}}},
     "train.residual_modes: cavity is a system of named residuals"),
])
def test_settings_the_problem_cannot_take_are_refused_before_training(tmp_path, change, expected):
    config = copy.deepcopy(TINY)
    for section, values in change.items():
        config[section] = {**config[section], **values} if section == "train" else values
    if "problem" in change:
        config["model"] = {"width": {"heat_disk": [3, 3, 1], "cavity": [2, 3, 3]}[change["problem"]["name"]]}
        config["train"]["causal_epsilon"] = 0.0 if change["problem"]["name"] == "cavity" else "auto"
    with pytest.raises(ValueError) as info:
        solve(config, out=tmp_path / "run", quiet=True)
    assert str(info.value).startswith(expected) and len(str(info.value).splitlines()) == 1
    assert not (tmp_path / "run" / "history.csv").exists()


def test_the_term_name_is_reserved():
    assert kanpde.modes.TERM in kanpde.problem.RESERVED


def test_two_ranks_split_the_grid_and_match_one_process(tmp_path):
    """Under torchrun each rank projects its part of the grid (204 points: 102 each); losses, the term and the
    parameters after Adam and L-BFGS steps with the term on equal a single-process run's to round-off."""
    config = with_modes([{**STAGES[0], "loss_weights": {"residual_modes": 5}},
                         {"optimizer": "lbfgs", "steps": 4, "loss_weights": {"residual_modes": 10}}])
    config["train"]["residual_modes"] = {"modes": [3, 4], "grid": [12, 17]}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    solve(config, out=tmp_path / "single", quiet=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "kanpde",
               "solve", "tiny.yaml", "--out", "two", "--quiet"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(kanpde.__file__).parents[1])}
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr
    single, two = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=False)["trainer"]
                   for run in ("single", "two"))
    assert [row["step"] for row in two["history"]] == list(range(1, 8))
    for a, b in zip(single["history"], two["history"]):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-9, abs=0)
        assert b["residual_modes"] == pytest.approx(a["residual_modes"], rel=1e-9, abs=0)
    for name, value in single["field"].items():
        assert torch.allclose(two["field"][name], value, rtol=0, atol=1e-9)
