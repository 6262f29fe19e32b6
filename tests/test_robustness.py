"""Robustness: malformed configs cost one line, a SIGKILL costs nothing, divergence loses nothing."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kanpde.cli import main

TINY = {
    "problem": {"name": "poisson"},
    "model": {"type": "kan", "width": [2, 3, 1], "grid": 3},
    "points": {"interior": 64, "boundary": 16},
    "train": {"stages": [{"optimizer": "adam", "steps": 2}]},
    "evaluate": {"every": 0, "resolution": 11},
    "output": {"plots": False},
}

# (key path, values that are never valid there)
BAD_VALUES = {
    ("model", "type"): ["kann", "", 3, None, ["kan"]],
    ("model", "width"): [[], [2], [2, 0, 1], [2, -3, 1], [2, 1.5, 1], "2,10,1", [2, True, 1], [2, 10**9, 1], None],
    ("model", "grid"): [0, -3, 1.5, "five", True, None, [], 10**9, float("nan"), float("inf")],
    ("model", "order"): [-1, 2.5, "cubic", None, 10**6],
    ("model", "grid_eps"): [-0.1, 1.5, "x", float("nan"), None],
    ("model", "grid_range"): [[1, -1], [0, 0], [0], "[-1, 1]", [float("inf"), 1], None],
    ("points", "interior"): [0, -1, 1.5, "many", None, 10**12, float("inf")],
    ("points", "boundary"): [-5, "x", 2.5, 10**12],
    ("points", "sampler"): ["sobl", "", 1, None],
    ("train", "stages"): [[], {}, "adam", [{"optimizer": "sgd", "steps": 1}], [{"optimizer": "adam"}],
                          [{"optimizer": "adam", "steps": 0}], [{"optimizer": "adam", "steps": 1, "lr": -1}],
                          [{"optimizer": "adam", "steps": 1, "lr": float("nan")}],
                          [{"optimizer": "adam", "steps": 10**12}], [{"optimizer": "lbfgs", "steps": 1, "lr": "x"}]],
    ("train", "dtype"): ["float16", "double", 64, None],
    ("train", "device"): ["gpu", "tpu", 0, None],
    ("train", "seed"): [-1, 1.5, "zero", 2**40],
    ("train", "grid_schedule"): [{-1: 10}, {10: 0}, {10: -5}, [10, 20], "10: 20", {10: 1.5}],
    ("train", "loss_weights"): [{"residual": -1.0}, {"residual": float("nan")}, {"residual": "big"},
                                {"bogus_term": 1.0}],
    ("evaluate", "every"): [-1, 1.5, "often"],
    ("evaluate", "resolution"): [0, -11, [11, 0], "fine", 10**9, [10**4, 10**4]],
    ("output", "checkpoint_every"): [-1, "sometimes", 2.5],
    ("problem", "name"): ["poison", "", 7, None, "no_such_file.py:Heat"],
    ("problem", "params"): [{"kappa": 1.0}, "x"],
}

UNKNOWN_KEYS = ["gird", "widht", "lr", "stage", "epochs", "optimiser", "sampling", "Model", "x"]

BAD_YAML = ["model: [unclosed", "model:\n  grid: 5\n grid: 6", "- just\n- a list", "key: value: other",
            "problem: {name: poisson", "\t- tab", "42", "model: !!python/object:os.system {}"]


@st.composite
def malformed_configs(draw):
    """YAML text of a config that is invalid in exactly one way."""
    kind = draw(st.sampled_from(["value", "unknown", "yaml"]))
    if kind == "yaml":
        return draw(st.sampled_from(BAD_YAML))
    data = json.loads(json.dumps(TINY))
    if kind == "unknown":
        section = draw(st.sampled_from(["model", "points", "train", "evaluate", "output", None]))
        key = draw(st.sampled_from(UNKNOWN_KEYS))
        (data.setdefault(section, {}) if section else data)[key] = draw(st.integers(-5, 5))
    else:
        section, key = draw(st.sampled_from(sorted(BAD_VALUES)))
        data.setdefault(section, {})[key] = draw(st.sampled_from(BAD_VALUES[(section, key)]))
    return yaml.safe_dump(data, allow_unicode=True)


@settings(max_examples=220, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=malformed_configs())
def test_every_malformed_config_exits_2_with_one_line(text, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("bad")
    path = folder / "config.yaml"
    path.write_text(text)
    capsys.readouterr()
    status = main(["solve", str(path), "--out", str(folder / "run"), "--quiet"])
    out, err = capsys.readouterr()
    assert status == 2, (text, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kanpde: error: "), (text, err)
    assert "Traceback" not in err
    assert not (folder / "run" / "checkpoint.pt").exists()  # no work started


def test_malformed_config_in_a_real_process_has_no_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**TINY, "model": {"type": "kan", "width": [2, 3, 1], "grid": -3}}))
    result = subprocess.run([sys.executable, "-m", "kanpde", "solve", str(path)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "kanpde: error: model.grid: must be a positive integer, got -3"


# -- checkpoints and --resume ------------------------------------------------------------------------

RESUMABLE_STEPS = 170  # 150 Adam + 20 L-BFGS: long enough to be killed mid-run, short enough for CI
RESUMABLE = ["--set", "model.width=[2,4,1]", "--set", "points.interior=256", "--set", "points.boundary=64",
             "--set", "train.stages=[{optimizer: adam, steps: 150, lr: 0.01}, {optimizer: lbfgs, steps: 20}]",
             "--set", "train.grid_schedule={60: 10}", "--set", "output.checkpoint_every=5",
             "--set", "evaluate.every=0", "--set", "evaluate.resolution=21", "--set", "output.plots=false"]


def _solve(out: Path, *extra: str, wait: bool = True):
    command = [sys.executable, "-m", "kanpde", "solve", "poisson.yaml", "--out", str(out), "--quiet", *RESUMABLE,
               *extra]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    if wait:
        return subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment)


def _final_state(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", weights_only=False)["trainer"]


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    killed = tmp_path / "killed"
    process = _solve(killed, wait=False)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if (killed / "checkpoint.pt").exists() and _final_state(killed)["step"] >= 30:
            break
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    step_at_kill = _final_state(killed)["step"]
    assert 30 <= step_at_kill < RESUMABLE_STEPS
    assert not (killed / "summary.json").exists()

    refused = _solve(killed)  # an existing run is never overwritten without --resume or --force
    assert refused.returncode == 2 and "--resume" in refused.stderr
    resumed = _solve(killed, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    straight = _solve(tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr

    summary = json.loads((killed / "summary.json").read_text())
    assert summary["steps"] == RESUMABLE_STEPS and summary["completed"] and summary["grid"] == 10
    with h5py.File(killed / "solution.h5") as f:
        assert f["prediction"].shape == (21, 21) and math.isfinite(f.attrs["rel_l2"])
    history = (killed / "history.csv").read_text().splitlines()
    assert len(history) == 1 + RESUMABLE_STEPS  # header + one row per step, none lost or repeated
    resumed_state, straight_state = _final_state(killed), _final_state(tmp_path / "straight")
    assert resumed_state["step"] == straight_state["step"] == RESUMABLE_STEPS
    for name, value in straight_state["field"].items():
        assert torch.allclose(resumed_state["field"][name], value, rtol=0, atol=1e-12), name


def test_resume_without_checkpoint_starts_from_the_beginning(tmp_path):
    out = tmp_path / "fresh"
    result = _solve(out, "--resume", "--set", "train.stages=[{optimizer: adam, steps: 3}]")
    assert result.returncode == 0
    assert "starting from the beginning" in result.stderr
    assert json.loads((out / "summary.json").read_text())["steps"] == 3


# -- divergence ----------------------------------------------------------------------------------------

DIVERGING = '''
import torch
from kanpde.problems.poisson import Poisson

class Diverging(Poisson):
    """Poisson whose residual turns to NaN after {after} evaluations, once or forever."""
    problem_name = "diverging"
    calls = 0

    def residual(self, u, x):
        type(self).calls += 1
        r = super().residual(u, x)
        if type(self).calls > {after} and ({forever} or type(self).calls == {after} + 1):
            return r * float("nan")
        return r
'''


def _diverging(tmp_path: Path, forever: bool) -> list[str]:
    module = tmp_path / "diverging.py"
    module.write_text(DIVERGING.format(after=70, forever=forever))
    config = {**TINY, "problem": {"name": f"{module}:Diverging"},
              "train": {"stages": [{"optimizer": "adam", "steps": 120, "lr": 0.01}], "max_recoveries": 2}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["solve", str(path), "--out", str(tmp_path / "run"), "--quiet"]


def test_a_nan_is_survived_with_a_lower_learning_rate(tmp_path, capsys):
    assert main(_diverging(tmp_path, forever=False)) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["recoveries"] == 1 and summary["steps"] == 120 and math.isfinite(summary["final_loss"])
    assert any("non-finite loss" in event for event in summary["events"])


def test_repeated_divergence_stops_with_status_3_and_a_complete_run_directory(tmp_path, capsys):
    assert main(_diverging(tmp_path, forever=True)) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "diverged" in err[0] and "max_recoveries" in err[0]
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert not summary["completed"] and 0 < summary["steps"] < 120
    assert math.isfinite(summary["final_loss"]) and math.isfinite(summary["rel_l2"])
    state = _final_state(run)
    assert all(torch.isfinite(value).all() for value in state["field"].values())
    assert (run / "solution.h5").exists() and (run / "history.csv").exists()


def _status(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_info:  # argparse's own errors
        return exit_info.code


@pytest.mark.parametrize("bad", [["--set"], ["--set", "model.grid"], ["--device", "tpu"], ["--bogus"]])
def test_bad_command_line_exits_2_with_one_line(bad, capsys):
    assert _status(["solve", "poisson.yaml", *bad]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
