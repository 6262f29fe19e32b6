"""``train.propagated_residual``: the residual integrated in time with the problem's growth rate
(kanpde.propagation), an estimate of the error it causes, as a loss term.

On a pure reaction equation u_t = λ(x, t)·u (u* = 0) the error of a trial function is the trial function itself,
so the term must give it back: to second order in the time step, by both of its integration paths. Then the
split over ranks, the wiring through loss_terms (the problem's growth_rate, the hard initial condition), weight 0
not computed, and one-line errors for settings a problem cannot take."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import kanpde
import kanpde.propagation
from kanpde import Field, Jet, Problem
from kanpde.config import ConfigError, config_from_dict
from kanpde.geometry import Box
from kanpde.loss import loss_terms
from kanpde.nets import KAN
from kanpde.propagation import PropagatedResidual
from kanpde.solver import solve

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py

PI = math.pi


def rate(x):  # a growth rate varying in space and time, positive and negative
    return 3.0 * torch.cos(PI * x[:, 0]) + 2.0 * x[:, 1]


def trial(x):  # δ = t²·sin(πx)·(1 + x): zero at t = 0
    return x[:, 1] ** 2 * torch.sin(PI * x[:, 0]) * (1 + x[:, 0])


def trial_residual(x):  # r = δ_t − λδ, the residual of δ in u_t = λu
    return 2 * x[:, 1] * torch.sin(PI * x[:, 0]) * (1 + x[:, 0]) - rate(x) * trial(x)


def estimate_error(steps: int) -> float:
    """max |E − δ| at the ends of the cells on a grid with ``steps`` cells in t (t ∈ [0, 1.5])."""
    term = PropagatedResidual([0.0, 0.0], [1.0, 1.5], [7, steps], time_axis=1)
    x = term.points
    e = term.errors(trial_residual(x), rate(x))
    ends = x + torch.tensor([0.0, 0.75 / steps], dtype=x.dtype)
    return float((e - trial(ends).reshape(e.shape)).abs().max())


def test_on_a_reaction_equation_the_term_is_the_error_to_second_order():
    coarse, fine = estimate_error(100), estimate_error(200)  # max |δ| = 3.3 on this grid
    assert coarse < 5e-3 and fine < 1.2e-3
    assert 3.6 < coarse / fine < 4.4  # second order in the time step
    term = PropagatedResidual([0.0, 0.0], [1.0, 1.5], [7, 400], time_axis=1)
    x = term.points
    size = float(trial(x + torch.tensor([0.0, 0.75 / 400], dtype=x.dtype)).square().mean())  # at the cells' ends
    assert float(term.mean_square(trial_residual(x), rate(x))) == pytest.approx(size, rel=1e-3)


def test_the_step_by_step_path_agrees_and_stays_finite_where_the_sum_would_overflow(monkeypatch):
    term = PropagatedResidual([0.0, 0.0], [1.0, 1.5], [5, 60], time_axis=1)
    x = term.points
    summed = term.errors(trial_residual(x), rate(x))
    monkeypatch.setattr(kanpde.propagation, "_SAFE_EXPONENT", 0.0)
    stepped = term.errors(trial_residual(x), rate(x))
    assert torch.allclose(stepped, summed, rtol=1e-12, atol=1e-15)
    monkeypatch.undo()
    decay = torch.full_like(x[:, 0], -2000.0)  # |Λ| = 3000: exp(±Λ) overflows, the recursion does not
    e = term.errors(torch.ones_like(x[:, 0]), decay)
    assert torch.isfinite(e).all()
    assert float(e[:, -1].mean()) == pytest.approx((1 - math.exp(-2000 * 0.025)) / 2000 * math.exp(-25), rel=1e-2)


def test_time_may_be_any_axis_and_ranks_split_whole_time_columns():
    """The grid's time columns (here t first) are split over ranks: the parts hold the whole grid once, and the
    shares add up to the term and to its gradient."""
    weight = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)

    def swap(x):
        return x[:, [1, 0]]

    whole = PropagatedResidual([0.0, -1.0], [2.0, 1.0], [30, 11], time_axis=0)
    assert torch.equal(whole.points[:30, 1], torch.full((30,), whole.points[0, 1].item(), dtype=torch.float64))

    def term(p):
        x = swap(p.points)
        return p.mean_square(weight * trial_residual(x), rate(x))

    parts = [PropagatedResidual([0.0, -1.0], [2.0, 1.0], [30, 11], time_axis=0, part=(rank, 3)) for rank in range(3)]
    gathered = torch.cat([p.points for p in parts]).tolist()
    assert sorted(map(tuple, gathered)) == sorted(map(tuple, whole.points.tolist()))
    total = term(whole)
    (expected,) = torch.autograd.grad(total, weight)
    shares = [term(p) for p in parts]
    assert float(sum(shares)) == pytest.approx(float(total), rel=1e-12)
    assert float(sum(torch.autograd.grad(s, weight)[0] for s in shares)) == pytest.approx(float(expected), rel=1e-12)


# -- through the loss and the trainer --------------------------------------------------------------------------------


class Reaction(Problem):
    """u_t = λ(x, t)·u, u(x, 0) = 0 (hard: u = t·N): u* = 0, so the error is the field itself."""

    box = Box.space_time([0.0], [1.0], t0=0.0, t1=1.5, names=("x", "t"))
    derivatives = "diagonal"

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return u.d("t") - rate(x) * u.value

    def growth_rate(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        return rate(x)

    def output_transform(self, u: Jet, x: torch.Tensor) -> Jet:
        t = Jet.seed(x, u.mode, u.coords)[1:2]
        return t * u

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x[:, 0])


def test_the_loss_term_estimates_a_trained_fields_error():
    """loss_terms with the grid term: the problem's growth_rate and residual at the grid give back mean u²."""
    torch.manual_seed(0)
    field = Field(KAN([2, 4, 1], grid=5).double(), Reaction()).double()
    term = PropagatedResidual([0.0, 0.0], [1.0, 1.5], [9, 300], time_axis=1)
    sampler = kanpde.Sampler(Reaction.box, 32, 0, 0, seed=0, dtype=torch.float64)
    terms = loss_terms(field, sampler.sample(), grid_terms={"propagated_residual": term})
    ends = term.points + torch.tensor([0.0, 0.75 / 300], dtype=torch.float64)
    truth = field(ends).square().mean()
    assert float(terms["propagated_residual"]) == pytest.approx(float(truth), rel=1e-3)
    assert float(terms["propagated_residual"]) > 1e-8
    no_rate = Field(field.net, type("NoRate", (Reaction,), {"growth_rate": Problem.growth_rate})()).double()
    plain = loss_terms(no_rate, sampler.sample(), grid_terms={"propagated_residual": term})["propagated_residual"]
    assert abs(float(plain) / float(truth) - 1) > 0.05  # the default rate 0 is another estimate


TINY = {"problem": {"name": "allen_cahn"}, "model": {"type": "kan", "width": [2, 3, 1], "grid": 5},
        "points": {"interior": 64}, "evaluate": {"every": 0}, "output": {"plots": False},
        "train": {"causal_epsilon": 10.0, "causal_chunks": 4,
                  "stages": [{"optimizer": "adam", "steps": 3, "lr": 0.01}, {"optimizer": "lbfgs", "steps": 2}]}}


def test_weight_zero_changes_nothing_and_a_stage_weight_turns_it_on(tmp_path, monkeypatch):
    calls = []
    original = PropagatedResidual.mean_square
    monkeypatch.setattr(PropagatedResidual, "mean_square",
                        lambda self, *a: calls.append(1) or original(self, *a))
    plain = solve(TINY, out=tmp_path / "plain", quiet=True)
    zero = copy.deepcopy(TINY)
    zero["train"].update(propagated_residual={"grid": [20, 16]}, loss_weights={"propagated_residual": 0})
    assert solve(zero, out=tmp_path / "zero", quiet=True)["final_loss"] == plain["final_loss"] and not calls
    on = copy.deepcopy(zero)
    on["train"]["stages"][1]["loss_weights"] = {"propagated_residual": 100}
    summary = solve(on, out=tmp_path / "on", quiet=True)
    assert calls and summary["final_loss"] != plain["final_loss"]
    assert summary["loss_terms"] == ["residual", "propagated_residual"]


@pytest.mark.parametrize("problem, train, expected", [
    ("allen_cahn", {"propagated_residual": {"grid": 1}}, "train.propagated_residual.grid: must be an integer in "
                                                         "[2, 10000], or a list"),
    ("allen_cahn", {"propagated_residual": {"modes": 3}}, "train.propagated_residual.modes: unknown key"),
    ("allen_cahn", {"propagated_residual": {"grid": [3, 4, 5]}}, "train.propagated_residual.grid: must be one "
                                                                 "integer, or one per coordinate (2)"),
    ("allen_cahn", {"propagated_residual": {}, "time_windows": 2}, "train.propagated_residual: cannot be combined "
                                                                   "with train.time_windows"),
    ("poisson", {"propagated_residual": {}}, "train.propagated_residual: needs a time coordinate"),
    ("allen_cahn", {"loss_weights": {"propagated_residual": 1}}, "train.loss_weights.propagated_residual: unknown "
                                                                 "loss term"),
])
def test_settings_the_problem_cannot_take_are_one_line_errors(tmp_path, problem, train, expected):
    config = copy.deepcopy(TINY)
    config["problem"] = {"name": problem}
    config["train"].update(train)
    if problem == "poisson":
        config["train"]["causal_epsilon"] = 0.0
    with pytest.raises((ValueError, ConfigError)) as info:
        solve(config_from_dict(config) if "grid" in str(train) else config, out=tmp_path / "run", quiet=True)
    assert str(info.value).startswith(expected) and len(str(info.value).splitlines()) == 1
    assert not (tmp_path / "run" / "history.csv").exists()


def test_the_term_name_is_reserved():
    assert kanpde.propagation.TERM in kanpde.problem.RESERVED
