"""Fuzzing the command line: mutated configs through ``kanpde solve`` in-process. Every outcome must be exit status
0 (trained), 2 (one line naming the problem) or 3 (diverged), never a traceback. Tiny budgets: most mutations are
invalid and rejected before training; the valid ones train for at most 3 steps on 30 points."""

from __future__ import annotations

import contextlib
import io
import math
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kanpde.cli import main

BASE = yaml.safe_load(textwrap.dedent("""\
    problem: {name: poisson, params: {}}
    model: {type: kan, width: [2, 3, 1], grid: 3, order: 3}
    points: {interior: 24, boundary: 8, sampler: sobol, resample_every: 0}
    train:
      stages: [{optimizer: adam, steps: 2, lr: 0.01}, {optimizer: adam, steps: 1}]
      grid_schedule: {1: 4}
      loss_weights: {residual: 1.0}
      seed: 0
    evaluate: {every: 0, resolution: 7}
    output: {plots: false, checkpoint_every: 1}
    """))

KEYS = ["problem.name", "problem.params", "problem.params.alpha", "model.type", "model.width", "model.grid",
        "model.order", "model.grid_range", "model.grid_eps", "model.activation", "model.omega0", "model.sigma",
        "model.features", "points.interior", "points.boundary", "points.initial", "points.sampler",
        "points.resample_every", "points.seed", "train.stages", "train.stages.0.steps", "train.stages.0.lr",
        "train.stages.0.optimizer", "train.stages.0.decay", "train.stages.1.points", "train.stages.1.causal_epsilon",
        "train.grid_schedule", "train.grid_update_every", "train.grid_update_until", "train.loss_weights",
        "train.loss_weights.boundary", "train.seed", "train.dtype", "train.device", "train.derivatives",
        "train.causal_epsilon", "train.time_windows", "train.max_recoveries", "evaluate.every",
        "evaluate.resolution", "output.checkpoint_every", "output.plots", "model", "train", "nonsense",
        "model.widht"]

VALUES = st.sampled_from([
    None, True, False, 0, 1, 2, 3, -1, 10**12, 0.5, -1.0, 1e300, math.nan, math.inf, "", "abc", "auto", "kan", "mlp",
    "siren", "fourier_mlp", "lbfgs", "adam", "sobol", "grid", "float32", "poisson", "poisson_sin", "cuda", "1e-3",
    [], [2], [2, 1], [2, 4, 1], [3, 4, 1], [2, 0, 1], [-1, 1], [1, -1], ["a"], {}, {"a": 1}, {1: 3}, {0: 5, 1: 2},
    [{"optimizer": "adam", "steps": 1}], [{"optimizer": "sgd"}], {"interior": 0}, {"interior": 16, "boundary": 0},
])


OUTCOMES: list[int] = []


def mutate(data: dict, key: str, value, delete: bool) -> None:
    node, parts = data, key.split(".")
    for part in parts[:-1]:
        index = int(part) if part.isdigit() else part
        try:
            node = node[index]
        except (KeyError, IndexError, TypeError):
            return
        if not isinstance(node, (dict, list)):
            return
    last = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    try:
        if delete:
            del node[last]
        else:
            node[last] = value
    except (KeyError, IndexError, TypeError):
        pass


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.lists(st.tuples(st.sampled_from(KEYS), VALUES, st.booleans()), min_size=1, max_size=3))
def test_mutated_configs_exit_0_2_or_3_without_a_traceback(folder, single_thread, mutations):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    for key, value, delete in mutations:
        mutate(data, key, value, delete and value is None)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(["solve", str(path), "--out", str(folder / "run"), "--quiet", "--force"])
        except SystemExit as exit_:
            status = exit_.code
    text = err.getvalue()
    OUTCOMES.append(status)
    assert status in (0, 2, 3), (mutations, text)
    assert "Traceback" not in text, (mutations, text)
    if status == 2:
        errors = [line for line in text.splitlines() if line.startswith("kanpde: error:")]
        assert len(errors) == 1, (mutations, text)


def test_the_fuzzing_reached_training_and_rejection():
    """Both kinds of outcome were exercised (runs after the fuzz test, in file order)."""
    if len(OUTCOMES) < 200:
        pytest.skip("the fuzz test did not run first")
    assert OUTCOMES.count(0) >= 5 and OUTCOMES.count(2) >= 100, {s: OUTCOMES.count(s) for s in set(OUTCOMES)}
