"""Time marching (``train.time_windows``): the window schedule, the points squeezed into the
current window, causal chunks spanning the window, the events, and training on the heat equation."""

from __future__ import annotations

import math

import pytest
import torch

from kanpde import Field, Initial, Sampler, Trainer
from kanpde.config import config_from_dict
from kanpde.loss import causal_mean, loss_terms
from kanpde.nets import KAN
from kanpde.problems.poisson import Poisson
from kanpde.solver import Evaluation
from tests.user_problem import Heat


class HardHeat(Heat):
    conditions = [Heat.conditions[0], Initial(Heat.conditions[1].value, hard=True)]


DTYPE = torch.float64


pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


def heat_trainer(stages, problem=None, interior: int = 200, **train) -> Trainer:
    problem = problem or Heat()
    config = config_from_dict({"problem": {"name": "poisson"}, "train": {"stages": stages, **train}}).train
    torch.manual_seed(0)
    field = Field(KAN([2, 5, 1], grid=5).to(DTYPE), problem)
    sampler = Sampler(problem.box, interior, 40, 40 if problem.box.has_time else 0, method="sobol", seed=0,
                      dtype=DTYPE)
    return Trainer(field, sampler, config, progress=False)


ADAM_100 = [{"optimizer": "adam", "steps": 100, "lr": 0.01}]


def test_windows_grow_evenly_until_the_given_step():
    trainer = heat_trainer(ADAM_100 + [{"optimizer": "lbfgs", "steps": 10}], time_windows=4)
    ends = [trainer.time_window_end(step) for step in range(110)]
    t1 = Heat.box.t1
    assert ends[:25] == [t1 / 4] * 25 and ends[25:50] == [t1 / 2] * 25
    assert ends[75:100] == [t1] * 25  # the last window is the whole interval, still under Adam
    assert ends[100:] == [None] * 10  # default: marching ends with the first stage
    later = heat_trainer(ADAM_100 + [{"optimizer": "lbfgs", "steps": 10}], time_windows=2, time_windows_until=110)
    assert later.time_window_end(54) == t1 / 2 and later.time_window_end(55) == t1
    assert heat_trainer(ADAM_100).time_window_end(0) is None  # one window: plain training


def test_points_are_squeezed_into_the_window():
    trainer = heat_trainer(ADAM_100, time_windows=4)
    full, windowed = trainer.sampler.sample(0), trainer.points(0)
    t1 = Heat.box.t1
    for part in ("interior", "boundary"):
        a, b = getattr(full, part), getattr(windowed, part)
        assert torch.equal(a[:, 0], b[:, 0])  # space untouched
        torch.testing.assert_close(b[:, 1], a[:, 1] / 4, rtol=0, atol=1e-15)
        assert float(b[:, 1].max()) <= t1 / 4 and float(a[:, 1].max()) > t1 / 2
    assert torch.equal(windowed.initial, full.initial) and torch.equal(windowed.boundary_face, full.boundary_face)
    assert torch.equal(trainer.points(100).interior, full.interior)  # after marching: the sampler's points


def test_causal_chunks_span_the_window():
    """Squeezing the times into [0, t1/4] and the chunks with them leaves the causal mean unchanged."""
    generator = torch.Generator().manual_seed(0)
    squared, t = torch.rand(500, generator=generator, dtype=DTYPE), torch.rand(500, generator=generator, dtype=DTYPE)
    whole = causal_mean(squared, t, 0.0, 1.0, 5.0, 8)
    assert float(causal_mean(squared, t / 4, 0.0, 0.25, 5.0, 8)) == pytest.approx(float(whole), rel=1e-14)
    assert float(causal_mean(squared, t / 4, 0.0, 1.0, 5.0, 8)) != pytest.approx(float(whole), rel=1e-3)
    trainer = heat_trainer(ADAM_100, time_windows=4)
    points = trainer.points(0)
    windowed = loss_terms(trainer.field, points, 5.0, 8, time_end=trainer.time_window_end(0))["residual"]
    over_t1 = loss_terms(trainer.field, points, 5.0, 8)["residual"]
    assert float(windowed) != pytest.approx(float(over_t1), rel=1e-3)  # the chunks moved with the points


def test_causal_weights_can_be_frozen_for_a_line_search():
    generator = torch.Generator().manual_seed(1)
    squared, t = torch.rand(400, generator=generator, dtype=DTYPE), torch.rand(400, generator=generator, dtype=DTYPE)
    frozen = {}
    first = causal_mean(squared, t, 0.0, 1.0, 2.0, 8, frozen=frozen)
    assert float(first) == float(causal_mean(squared, t, 0.0, 1.0, 2.0, 8))
    weights = frozen["causal_weights"]
    assert weights[0] == 1 and bool((weights[1:] < weights[:-1]).all())  # later slices weigh less
    moved = squared * torch.linspace(0.5, 2.0, 400, dtype=DTYPE)  # another trial point of the line search
    index = (t * 8).floor().long()
    means = torch.stack([moved[index == i].mean() for i in range(8)])
    assert float(causal_mean(moved, t, 0.0, 1.0, 2.0, 8, frozen=frozen)) == pytest.approx(
        float((weights * means).mean()), rel=1e-14)
    assert float(causal_mean(moved, t, 0.0, 1.0, 2.0, 8)) != pytest.approx(float((weights * means).mean()), rel=1e-3)


@pytest.mark.parametrize("epsilon", [100.0, "auto"])
def test_a_stage_can_set_its_own_causal_epsilon(epsilon):
    stages = [{"optimizer": "adam", "steps": 2, "lr": 0.01},
              {"optimizer": "lbfgs", "steps": 1, "causal_epsilon": epsilon}]
    trainer = heat_trainer(stages, problem=HardHeat(), causal_epsilon=0.0, causal_min_weight=0.01)
    at_stage_end = {}

    def look(trainer: Trainer) -> None:
        if trainer.step == 2:
            points = trainer.points(2)
            at_stage_end.update({e: float(loss_terms(trainer.field, points, e, 16, causal_min_weight=0.01)["residual"])
                                 for e in (0.0, epsilon)})

    trainer.on_checkpoint, trainer.checkpoint_every = look, 2
    rows = trainer.run().rows
    assert at_stage_end[epsilon] < at_stage_end[0.0] / 2  # the weights matter at this state
    assert rows[2]["residual"] == pytest.approx(at_stage_end[epsilon], rel=1e-12)
    first = loss_terms(heat_trainer(stages, problem=HardHeat()).field, trainer.points(0))["residual"]
    assert rows[0]["residual"] == pytest.approx(float(first), rel=1e-12)  # Adam: train.causal_epsilon (0)


def test_marching_trains_the_early_window_first_then_the_whole_interval():
    trainer = heat_trainer([{"optimizer": "adam", "steps": 300, "lr": 0.02}, {"optimizer": "lbfgs", "steps": 60}],
                           time_windows=3)
    at_step_100 = {}

    def look(trainer: Trainer) -> None:  # the end of the first window [0, t1/3]
        if trainer.step == 100:
            full = trainer.sampler.sample(0)
            at_step_100["window"] = float(loss_terms(trainer.field, trainer.points(0))["residual"])
            at_step_100["whole"] = float(loss_terms(trainer.field, full)["residual"])

    trainer.on_checkpoint, trainer.checkpoint_every = look, 100
    history = trainer.run()
    assert at_step_100["window"] < at_step_100["whole"] / 3, at_step_100
    assert trainer.history.events == ["step 0: time window [0, 0.166667]", "step 100: time window [0, 0.333333]",
                                      "step 200: time window [0, 0.5]"]
    assert isinstance(trainer.optimizer, torch.optim.LBFGS) and len(history.rows) == 360
    error = Evaluation.build(Heat(), 41, DTYPE, torch.device("cpu")).metrics(trainer.field)["rel_l2"]
    assert error < 1e-2, error


def test_time_windows_need_a_time_coordinate_and_a_step_inside_the_run():
    with pytest.raises(ValueError, match=r"^train\.time_windows: .*poisson has no time coordinate"):
        heat_trainer(ADAM_100, problem=Poisson(), time_windows=2)
    with pytest.raises(ValueError, match=r"^train\.time_windows_until: 101 is past the last step \(100\)"):
        heat_trainer(ADAM_100, time_windows=2, time_windows_until=101)


def test_auto_epsilon_is_the_fixed_epsilon_that_gives_the_last_slice_min_weight():
    """ε = "auto": ε = −ln(w)/Σ_{k<last} L_k at every step, so the weights do not depend on the scale
    of the losses (a fixed ε fades as they fall); an exactly zero residual gives weights 1, not NaN."""
    generator = torch.Generator().manual_seed(2)
    squared, t = torch.rand(400, generator=generator, dtype=DTYPE), torch.rand(400, generator=generator, dtype=DTYPE)
    index = (t * 8).floor().long()
    means = torch.stack([squared[index == i].mean() for i in range(8)])
    epsilon = -math.log(0.01) / float(means[:-1].sum())
    for scale in (1.0, 1e-6):
        frozen = {}
        auto = causal_mean(squared * scale, t, 0.0, 1.0, "auto", 8, frozen=frozen, min_weight=0.01)
        fixed = causal_mean(squared * scale, t, 0.0, 1.0, epsilon / scale, 8)
        assert float(auto) == pytest.approx(float(fixed), rel=1e-12)
        assert float(frozen["causal_weights"][0]) == 1 and float(frozen["causal_weights"][-1]) == pytest.approx(0.01)
    frozen = {}
    assert float(causal_mean(squared * 0, t, 0.0, 1.0, "auto", 8, frozen=frozen)) == 0
    assert torch.equal(frozen["causal_weights"], torch.ones(8, dtype=DTYPE))

