"""The Trainer on a tiny Poisson problem: stages, L-BFGS progress, the KAN grid schedule and grid updates,
loss weights, evaluation, and recovery from divergence (float64, fixed seeds, a few hundred points)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import kanpde
import kanpde.train
from kanpde import DivergenceError, Field, Sampler, Trainer
from kanpde.config import config_from_dict
from kanpde.loss import loss_terms
from kanpde.nets import KAN, MLP
from kanpde.problems.poisson import Poisson
from kanpde.solver import Evaluation
from kanpde.splines import is_uniform

DTYPE = torch.float64


pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


def train_config(**train):
    """A validated TrainConfig (through the same path as YAML)."""
    return config_from_dict({"problem": {"name": "poisson"}, "train": train}).train


def make_field(net: str = "kan", grid: int = 5, seed: int = 0, problem=None) -> Field:
    torch.manual_seed(seed)
    model = KAN([2, 5, 1], grid=grid) if net == "kan" else MLP([2, 16, 1])
    return Field(model.to(DTYPE), problem or Poisson())


def make_sampler(interior: int = 200, boundary: int = 40, resample_every: int = 0) -> Sampler:
    return Sampler(Poisson.box, interior, boundary, method="sobol", seed=0, resample_every=resample_every,
                   dtype=DTYPE)


def relative(a, b) -> float:
    return abs(float(a) - float(b)) / abs(float(b))


# -- stages --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adam_then_lbfgs():
    torch.set_num_threads(1)
    field = make_field()
    config = train_config(stages=[{"optimizer": "adam", "steps": 10, "lr": 0.01}, {"optimizer": "lbfgs", "steps": 20}])
    trainer = Trainer(field, make_sampler(), config, progress=False)
    history = trainer.run()
    return trainer, history


def test_history_has_one_row_per_step_with_the_stage_lr(adam_then_lbfgs):
    trainer, history = adam_then_lbfgs
    assert trainer.total_steps == 30 and trainer.step == 30
    assert [row["step"] for row in history.rows] == list(range(1, 31))
    assert [row["lr"] for row in history.rows] == [0.01] * 10 + [1.0] * 20  # L-BFGS default lr 1
    for row in history.rows:
        assert {"step", "loss", "residual", "boundary", "grid", "lr", "elapsed", "rel_l2"} <= set(row)
        assert math.isfinite(row["loss"]) and row["grid"] == 5
        assert math.isnan(row["rel_l2"])  # no evaluate callback
    for row in history.rows[:10]:  # Adam rows: the loss is the weighted sum of the row's terms
        assert row["loss"] == pytest.approx(row["residual"] + row["boundary"], rel=1e-12)
    elapsed = [row["elapsed"] for row in history.rows]
    assert elapsed == sorted(elapsed) and elapsed[-1] == pytest.approx(trainer.train_seconds)
    assert trainer.recoveries == 0 and history.events == []
    assert isinstance(trainer.optimizer, torch.optim.LBFGS)


def test_lbfgs_decreases_the_loss_substantially(adam_then_lbfgs):
    """Regression: torch L-BFGS with max_iter=1 and the default max_eval took zero-length steps."""
    _, history = adam_then_lbfgs
    adam_end = history.rows[9]["loss"]
    lbfgs_losses = [row["loss"] for row in history.rows[10:]]
    assert len(set(lbfgs_losses)) == len(lbfgs_losses)  # every L-BFGS step moves
    final = loss_after(adam_then_lbfgs[0])
    assert final < adam_end / 10, (adam_end, final)
    assert lbfgs_losses[-1] < adam_end / 10


def test_lbfgs_rows_are_consistent(adam_then_lbfgs):
    _, history = adam_then_lbfgs
    for row in history.rows[10:]:
        assert row["loss"] == pytest.approx(row["residual"] + row["boundary"], rel=1e-12), row["step"]


def loss_after(trainer: Trainer) -> float:
    terms = loss_terms(trainer.field, trainer.sampler.sample(trainer.step))
    return float(sum(terms.values()))


def test_lr_decay_within_a_stage():
    config = train_config(stages=[{"optimizer": "adam", "steps": 6, "lr": 0.01, "decay": "step", "decay_rate": 0.5,
                                   "decay_every": 2}])
    history = Trainer(make_field("mlp"), make_sampler(50, 20), config, progress=False).run()
    assert [row["lr"] for row in history.rows] == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025])


def test_loss_weights_are_applied_and_unknown_terms_rejected():
    config = train_config(stages=[{"optimizer": "adam", "steps": 3}], loss_weights={"residual": 0.01})
    trainer = Trainer(make_field(), make_sampler(), config, progress=False)
    assert trainer.weights == {"residual": 0.01, "boundary": 1.0}
    for row in trainer.run().rows:
        assert row["loss"] == pytest.approx(0.01 * row["residual"] + row["boundary"], rel=1e-12)
    bad = train_config(stages=[{"optimizer": "adam", "steps": 3}], loss_weights={"bondary": 1.0})
    with pytest.raises(ValueError, match=r"train\.loss_weights\.bondary") as info:
        Trainer(make_field(), make_sampler(), bad, progress=False)
    assert "boundary" in str(info.value).split("bondary", 1)[1]  # lists the terms


# -- grid schedule -------------------------------------------------------------------------------


def test_grid_schedule_extends_at_the_scheduled_steps_and_rebuilds_the_optimizer():
    field = make_field()
    config = train_config(stages=[{"optimizer": "adam", "steps": 15, "lr": 0.01}], grid_schedule={5: 10, 10: 20})
    trainer = Trainer(field, make_sampler(), config, progress=False)
    history = trainer.run()
    assert [row["grid"] for row in history.rows] == [5.0] * 5 + [10.0] * 5 + [20.0] * 5
    assert field.net.grid == 20 and all(layer.grid == 20 for layer in field.net.layers)
    assert len(history.events) == 2 and "grid 5 -> 10" in history.events[0] and "grid 10 -> 20" in history.events[1]
    # the optimizer works on the current parameters (the refit replaced the spline coefficients)
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in field.parameters()}
    assert all(math.isfinite(row["loss"]) for row in history.rows)


@pytest.fixture
def built_optimizers(monkeypatch) -> list[torch.optim.Optimizer]:
    """Every optimizer the trainer builds, in order."""
    built, make = [], kanpde.train._make_optimizer

    def recording(stage, parameters):
        built.append(make(stage, parameters))
        return built[-1]

    monkeypatch.setattr(kanpde.train, "_make_optimizer", recording)
    return built


def kinds(optimizers) -> list[str]:
    return ["lbfgs" if isinstance(o, torch.optim.LBFGS) else "adam" for o in optimizers]


def test_grid_schedule_changes_the_optimizer(built_optimizers):
    built = built_optimizers
    config = train_config(stages=[{"optimizer": "adam", "steps": 12, "lr": 0.01}], grid_schedule={5: 10, 10: 20})
    trainer = Trainer(make_field(), make_sampler(), config, progress=False)
    trainer.run()
    assert len(built) == 3  # the stage's, then one after each extension
    assert trainer.optimizer is built[-1]
    coef = trainer.field.net.layers[0].coef
    assert coef.shape[1] == 20 + 3 and coef in [p for g in built[-1].param_groups for p in g["params"]]
    assert all(coef is not p for g in built[0].param_groups for p in g["params"])


def hidden_range(field: Field, points) -> tuple[float, float]:
    """The range of the second layer's inputs on all points (its grid covers [-1, 1])."""
    with torch.no_grad():
        h = field.net.layers[0](field.to_unit(torch.cat([points.interior, points.boundary])))
    return float(h.min()), float(h.max())


def test_nested_extension_keeps_the_loss():
    field, sampler = make_field(), make_sampler()
    config = train_config(stages=[{"optimizer": "adam", "steps": 10, "lr": 0.01}])
    Trainer(field, sampler, config, progress=False).run()
    points = sampler.sample(0)
    lo, hi = hidden_range(field, points)
    assert -1 <= lo and hi <= 1  # every activation lies inside the grids, where knot insertion is exact
    before = loss_terms(field, points)
    error = field.net.extend_grid(10, field.to_unit(points.interior))
    after = loss_terms(field, points)
    assert field.net.grid == 10 and 0 <= error <= 1e-12
    assert list(after) == ["residual", "boundary"]
    for name in before:
        assert relative(after[name], before[name]) <= 1e-9, name
    error = field.net.extend_grid(30, field.to_unit(points.interior))  # ×3 is nested too
    again = loss_terms(field, points)
    assert error <= 1e-12 and all(relative(again[name], before[name]) <= 1e-9 for name in before)


def test_nested_extension_keeps_the_loss_when_hidden_activations_leave_the_grid_range():
    field, sampler = make_field(), make_sampler()
    with torch.no_grad():  # push the hidden activations of some boundary points beyond the grid range [-1, 1]
        field.net.layers[0].base_weight.mul_(2.0)
    points = sampler.sample(0)
    lo, hi = hidden_range(field, points)
    assert lo < -1 or hi > 1
    before = loss_terms(field, points)
    field.net.extend_grid(10, field.to_unit(points.interior))  # as the Trainer calls it
    after = loss_terms(field, points)
    assert field.net.grid == 10
    for name in before:
        assert relative(after[name], before[name]) <= 1e-9, name


def test_non_nested_extension_changes_the_function_slightly():
    field, sampler = make_field(), make_sampler()
    points = sampler.sample(0)
    x = points.interior
    with torch.no_grad():
        values = field(x)
    before = loss_terms(field, points)
    error = field.net.extend_grid(7, field.to_unit(x))
    after = loss_terms(field, points)
    with torch.no_grad():
        change = float((field(x) - values).norm() / values.norm())
    assert field.net.grid == 7 and not all(layer.grid == 5 for layer in field.net.layers)
    assert 1e-8 < error < 0.05
    assert change == pytest.approx(error, rel=1e-6)  # the reported error is the change of the output on x
    assert 0 < relative(after["boundary"], before["boundary"]) < 0.05


def test_grid_update_every_n_steps_until_m(monkeypatch):
    field = make_field()
    kan = field.net
    initial = [layer.knots.clone() for layer in kan.layers]
    assert all(is_uniform(knots) for knots in initial)
    config = train_config(stages=[{"optimizer": "adam", "steps": 16, "lr": 0.01}], grid_update_every=5,
                          grid_update_until=11)
    trainer = Trainer(field, make_sampler(), config, progress=False)
    calls = []
    original = kan.update_grid

    def recording(x, grid_eps=None):
        calls.append(trainer.step)
        return original(x, grid_eps)

    monkeypatch.setattr(kan, "update_grid", recording)
    history = trainer.run()
    assert calls == [0, 5, 10]
    assert len(history.rows) == 16 and all(math.isfinite(row["loss"]) for row in history.rows)
    assert [row["grid"] for row in history.rows] == [5.0] * 16  # an update keeps the grid size
    for layer, knots in zip(kan.layers, initial):
        assert layer.knots.shape == knots.shape
        assert (layer.knots - knots).abs().max() > 1e-6  # the knots moved
        assert not is_uniform(layer.knots)  # adapted to the samples
        assert torch.all(layer.knots.diff(dim=1) > 0)
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in field.parameters()}


# -- evaluation ----------------------------------------------------------------------------------


def test_evaluation_every_n_steps_fills_rel_l2_there_only():
    field = make_field()
    evaluation = Evaluation.build(field.problem, 21, DTYPE, "cpu")
    calls = []

    def evaluate():
        calls.append(trainer.step)
        return evaluation.metrics(field)

    config = train_config(stages=[{"optimizer": "adam", "steps": 10, "lr": 0.01}])
    trainer = Trainer(field, make_sampler(), config, evaluate=evaluate, evaluate_every=4, progress=False)
    history = trainer.run()
    evaluated = [row["step"] for row in history.rows if not math.isnan(row["rel_l2"])]
    assert evaluated == [4, 8, 10]  # every 4 steps, and at the end
    assert calls == [4, 8, 10]
    assert all(0 < row["rel_l2"] < 10 for row in history.rows if row["step"] in evaluated)
    assert history.rows[-1]["rel_l2"] == pytest.approx(evaluation.metrics(field)["rel_l2"], rel=1e-12)
    assert history.last("rel_l2") == history.rows[-1]["rel_l2"]


# -- divergence ----------------------------------------------------------------------------------


def nan_residual(problem, fail):
    """Replace the problem's residual by one that returns NaN on the calls ``fail(call_index)`` says."""
    original = problem.residual
    calls = []

    def residual(u, x):
        if x.shape[0] == 1:  # the trainer's one-point probe for the loss terms' names
            return original(u, x)
        calls.append(len(calls))
        r = original(u, x)
        return r * math.nan if fail(len(calls) - 1) else r

    return residual, calls


def test_recovers_from_one_non_finite_loss(monkeypatch):
    field = make_field()
    residual, calls = nan_residual(field.problem, lambda call: call == 7)
    monkeypatch.setattr(field.problem, "residual", residual)
    config = train_config(stages=[{"optimizer": "adam", "steps": 12, "lr": 0.01}])
    trainer = Trainer(field, make_sampler(), config, progress=False)
    history = trainer.run()
    assert trainer.recoveries == 1
    assert trainer.step == 12 and [row["step"] for row in history.rows] == list(range(1, 13))
    assert all(math.isfinite(row["loss"]) for row in history.rows)
    # the last good state was the start (the step-0 snapshot): the whole run is redone at the lowered lr
    assert trainer.lr_scale == pytest.approx(kanpde.train.RECOVERY_FACTOR)
    assert [row["lr"] for row in history.rows] == pytest.approx([0.01 * kanpde.train.RECOVERY_FACTOR] * 12)
    assert len(calls) == 8 + 12  # 7 good steps, the failed one, then 12 steps again
    assert len(history.events) == 1 and "non-finite" in history.events[0]


def test_always_non_finite_raises_divergence_error(monkeypatch):
    field = make_field()
    start = {name: value.clone() for name, value in field.state_dict().items()}
    residual, calls = nan_residual(field.problem, lambda call: True)
    monkeypatch.setattr(field.problem, "residual", residual)
    config = train_config(stages=[{"optimizer": "adam", "steps": 5}], max_recoveries=2)
    trainer = Trainer(field, make_sampler(), config, progress=False)
    with pytest.raises(DivergenceError, match="max_recoveries"):
        trainer.run()
    assert len(calls) == 3  # the first try and max_recoveries retries
    assert trainer.recoveries == 3 and trainer.step == 0 and trainer.history.rows == []
    for name, value in field.state_dict().items():  # the last good state is kept
        assert torch.equal(value, start[name]), name
    assert issubclass(DivergenceError, RuntimeError) and kanpde.DivergenceError is DivergenceError


def test_lbfgs_restarts_when_the_points_are_redrawn(built_optimizers):
    """L-BFGS curvature pairs belong to one set of points: a redraw (points.resample_every) starts a fresh
    L-BFGS; Adam keeps its moments across redraws."""
    config = train_config(stages=[{"optimizer": "adam", "steps": 7, "lr": 0.01}, {"optimizer": "lbfgs", "steps": 8}])
    trainer = Trainer(make_field(), make_sampler(resample_every=5), config, progress=False)
    history = trainer.run()
    # Adam kept through the redraw at 5; L-BFGS built at 7, again at 10
    assert kinds(built_optimizers) == ["adam", "lbfgs", "lbfgs"]
    assert all(math.isfinite(row["loss"]) for row in history.rows) and len(history.rows) == 15


def test_lbfgs_restarts_when_its_line_search_finds_no_decrease(monkeypatch):
    """A stalled L-BFGS step (parameters unchanged) drops the history; without this a stale history
    repeats the same failed step forever."""
    make, built = kanpde.train._make_optimizer, []

    class StallsOnce(torch.optim.LBFGS):
        def step(self, closure):
            if not built[1:]:  # the first L-BFGS built: its first step does not move
                built.append("stalled")
                return closure()
            return super().step(closure)

    def making(stage, parameters):
        if stage.optimizer == "lbfgs":
            optimizer = make(stage, parameters)
            optimizer.__class__ = StallsOnce
            built.append("lbfgs")
            return optimizer
        return make(stage, parameters)

    monkeypatch.setattr(kanpde.train, "_make_optimizer", making)
    config = train_config(stages=[{"optimizer": "adam", "steps": 3, "lr": 0.01}, {"optimizer": "lbfgs", "steps": 10}])
    trainer = Trainer(make_field(), make_sampler(), config, progress=False)
    history = trainer.run()
    assert built == ["lbfgs", "stalled", "lbfgs"]
    assert history.events == ["step 4: L-BFGS made no progress, restarted without its history"]
    assert history.rows[-1]["loss"] < history.rows[4]["loss"] / 2  # the restarted L-BFGS makes progress


def test_grid_extension_on_a_periodic_problem():
    """The grid schedule feeds the network's inputs (cos πξ, sin πξ, ...), not the coordinates."""
    from tests.user_problem import PeriodicHeat

    problem = PeriodicHeat()
    torch.manual_seed(0)
    field = Field(KAN([3, 4, 1], grid=3).to(DTYPE), problem)
    sampler = Sampler(problem.box, 100, 0, 20, method="sobol", seed=0, dtype=DTYPE)
    trainer = Trainer(field, sampler, train_config(stages=[{"optimizer": "adam", "steps": 3, "lr": 0.01}],
                                                   grid_schedule={2: 6}),
                      progress=False)
    history = trainer.run()
    assert field.net.grid == 6 and history.events[0].startswith("step 2: grid 3 -> 6")
    assert float(history.events[0].rsplit(" ", 1)[1]) < 1e-12  # nested knots: the same function


# -- a stage's own points -----------------------------------------------------------------------------


def test_a_stage_can_train_on_its_own_points(built_optimizers):
    """``stages[i].points`` replaces those keys of ``points`` for that stage: "Adam on points redrawn every
    few steps, then L-BFGS on more, fixed points" is one config; the L-BFGS starts once, on its points."""
    config = train_config(stages=[{"optimizer": "adam", "steps": 4, "lr": 0.01},
                                  {"optimizer": "lbfgs", "steps": 6, "points": {"interior": 300, "resample_every": 0}}])
    trainer = Trainer(make_field(), make_sampler(resample_every=2), config, progress=False)
    assert [trainer.points(s).interior.shape[0] for s in (0, 3, 4, 9)] == [200, 200, 300, 300]
    assert [trainer.points(s).boundary.shape[0] for s in (0, 4)] == [40, 40]  # not set: inherited
    assert not torch.equal(trainer.points(0).interior, trainer.points(2).interior)  # Adam: redrawn every 2 steps
    assert torch.equal(trainer.points(4).interior, trainer.points(9).interior)  # L-BFGS: one fixed draw
    history = trainer.run()
    assert kinds(built_optimizers) == ["adam", "lbfgs"]
    assert history.rows[-1]["loss"] < history.rows[4]["loss"] / 2


def test_a_stages_points_are_checked_against_the_problem():
    config = train_config(stages=[{"optimizer": "adam", "steps": 2},
                                  {"optimizer": "adam", "steps": 2, "points": {"initial": 10}}])
    with pytest.raises(ValueError, match=r"^train\.stages\[1\]\.points\.initial: .*no time axis"):
        Trainer(make_field(), make_sampler(), config, progress=False)


def test_resuming_at_a_stage_boundary_equals_an_uninterrupted_run():
    """A checkpoint written at a stage's end holds that stage's optimizer: on resume the next stage
    starts a new one (with its own points), as an uninterrupted run does, and ends with the same parameters."""
    config = train_config(stages=[{"optimizer": "adam", "steps": 4, "lr": 0.01},
                                  {"optimizer": "lbfgs", "steps": 4, "points": {"interior": 300}}])
    whole = Trainer(make_field(), make_sampler(), config, progress=False)
    saved = []
    whole.on_checkpoint, whole.checkpoint_every = (lambda t: saved.append(copy.deepcopy(t.state_dict()))), 4
    whole.run()
    resumed = Trainer(make_field(seed=1), make_sampler(), config, progress=False)
    resumed.load_state_dict(saved[0])
    assert resumed.step == 4 and resumed.optimizer is None  # Adam's state does not go into the L-BFGS
    resumed.run()
    for a, b in zip(whole.field.parameters(), resumed.field.parameters()):
        assert torch.equal(a, b)
