"""The command line end to end on tiny budgets: the run directory, reading a run back, other models, user
problems, one-line errors with exit status 2 for bad input, and the README's "Define your own PDE" example."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import kanpde
from kanpde.cli import main
from kanpde.config import load_config
from kanpde.results import read_history

TESTS = Path(__file__).parent
README = TESTS.parent / "README.md"
USER_PROBLEM = TESTS / "user_problem.py"
TINY = ["--set", "train.stages=[{optimizer: adam, steps: 5}]", "--set", "train.grid_schedule={}",
        "--set", "points.interior=200", "--set", "points.boundary=40", "--set", "evaluate.resolution=21", "--quiet"]
SUMMARY_KEYS = {"problem", "model", "width", "grid", "params", "steps", "train_seconds", "seconds_per_step",
                "final_loss", "rel_l2", "max_abs_err", "device", "dtype", "seed", "kanpde"}
RUN_FILES = ("config.yaml", "summary.json", "history.csv", "solution.h5", "checkpoint.pt")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def no_traceback_env(monkeypatch):
    monkeypatch.delenv("KANPDE_TRACEBACK", raising=False)


pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


def kanpde_process(*args: str, cwd: Path) -> subprocess.Popen:
    """``python -m kanpde ARGS`` started in ``cwd`` (not waited for)."""
    env = {k: v for k, v in os.environ.items() if k != "KANPDE_TRACEBACK"}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.Popen([sys.executable, "-m", "kanpde", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def call(args: list[str]) -> int:
    """``kanpde.cli.main`` in-process; argparse errors exit through SystemExit."""
    try:
        return main(args)
    except SystemExit as exit_:
        return exit_.code


def fingerprint(directory: Path) -> dict[str, tuple[str, int]]:
    return {str(path.relative_to(directory)): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
            for path in sorted(directory.rglob("*")) if path.is_file()}


def solution_points(f: h5py.File, names: tuple[str, ...]) -> torch.Tensor:
    mesh = np.meshgrid(*[f[name][()] for name in names], indexing="ij")
    return torch.tensor(np.stack([m.ravel() for m in mesh], axis=1), dtype=torch.float64)


def assert_one_line_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("kanpde: error: ") or lines[0].startswith("kanpde ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def check_load(run_dir: Path, problem_name: str) -> kanpde.LoadedRun:
    """``kanpde.load`` gives back the model that made solution.h5's prediction."""
    loaded = kanpde.load(run_dir)
    assert loaded.problem.name == problem_name
    with h5py.File(run_dir / "solution.h5") as f:
        names = tuple(f.attrs["coordinates"].split(","))
        assert names == loaded.problem.coords
        points = solution_points(f, names)
        stored = f["prediction"][()]
    with torch.no_grad():
        predicted = loaded.model(points)[:, 0].reshape(stored.shape).numpy()
    assert np.abs(predicted - stored).max() <= 1e-12
    assert np.abs(stored).max() > 1e-6
    return loaded


# -- real subprocesses (started together: each spends seconds importing torch) ----------------------


# a run directory already there (the files are only checked for presence)
EXISTING_RUN = {"run/config.yaml": "problem: {name: poisson}\n", "run/summary.json": "{}\n", "run/notes.txt": "mine\n"}


@pytest.fixture(scope="module")
def processes(tmp_path_factory):
    """name -> (finished process, its working directory), for independent ``python -m kanpde`` runs."""
    started = {}

    def start(name: str, *args: str, files: dict[str, str] | None = None) -> None:
        cwd = tmp_path_factory.mktemp(name)  # not the repository: built-in configs are found by name
        for file, text in (files or {}).items():
            (cwd / file).parent.mkdir(parents=True, exist_ok=True)
            (cwd / file).write_text(text)
        started[name] = (kanpde_process(*args, cwd=cwd), cwd)

    start("solve", "solve", "poisson.yaml", "--out", "run", *TINY)
    start("malformed-yaml", "solve", "bad.yaml", "--out", "run", *TINY,
          files={"bad.yaml": "problem:\n  name: poisson\nmodel: [2, 10\n"})
    start("existing-run", "solve", "poisson.yaml", "--out", "run", *TINY, files=EXISTING_RUN)
    finished = {}

    def result(name: str) -> tuple[subprocess.CompletedProcess, Path]:
        if name not in finished:
            process, cwd = started[name]
            finished[name] = (finish(process), cwd)
        return finished[name]

    yield result
    for process, _ in started.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.fixture(scope="module")
def poisson_run(processes):
    result, cwd = processes("solve")
    return result, cwd / "run"


def test_solve_writes_the_run_directory(poisson_run):
    result, run = poisson_run
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip() == ""
    assert "rel. L2 error" in result.stdout
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    for name in ("solution.png", "loss.png", "kan_edges.png"):
        assert (run / "plots" / name).read_bytes()[:8] == PNG, name
    assert not list(run.glob(".*.tmp"))  # no temporary files left behind

    summary = json.loads((run / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["problem"] == "poisson" and summary["model"] == "kan"
    assert summary["width"] == [2, 10, 1] and summary["grid"] == 5 and summary["params"] == 300
    assert summary["steps"] == 5 and summary["dtype"] == "float64" and summary["seed"] == 0
    assert summary["device"] == "cpu" or summary["device"].startswith("cuda")
    assert summary["kanpde"] == kanpde.__version__
    assert summary["train_seconds"] > 0
    assert summary["seconds_per_step"] == pytest.approx(summary["train_seconds"] / 5)
    assert math.isfinite(summary["rel_l2"])  # its value is recomputed from solution.h5 below

    history = read_history(run)
    assert [row["step"] for row in history] == [1, 2, 3, 4, 5]
    assert summary["final_loss"] == pytest.approx(history[-1]["loss"], rel=1e-12)
    assert {"loss", "residual", "boundary", "lr", "grid"} <= set(history[0])
    assert all(row["lr"] == 1e-3 for row in history)  # --set replaced the whole stage list: default Adam lr

    config = load_config(run / "config.yaml")
    assert config.problem.name == "poisson" and config.points.interior == 200
    assert [(s.optimizer, s.steps) for s in config.train.stages] == [("adam", 5)]

    with h5py.File(run / "solution.h5") as f:
        assert {"x", "y", "prediction", "reference", "error"} <= set(f)
        assert f["x"].shape == f["y"].shape == (21,)
        assert f["prediction"].shape == f["reference"].shape == f["error"].shape == (21, 21)
        assert np.array_equal(f["error"][()], f["prediction"][()] - f["reference"][()])
        assert f.attrs["problem"] == "poisson" and f.attrs["model"] == "kan"
        assert f.attrs["rel_l2"] == pytest.approx(summary["rel_l2"], rel=1e-12)
        reference = kanpde.solver.build_problem(config.problem).exact(solution_points(f, ("x", "y")))
        assert np.abs(reference.numpy().reshape(21, 21) - f["reference"][()]).max() <= 1e-14
        error = f["error"][()]
        assert np.linalg.norm(error) / np.linalg.norm(f["reference"][()]) == pytest.approx(summary["rel_l2"])
        assert np.abs(error).max() == pytest.approx(summary["max_abs_err"], rel=1e-12)


def test_load_gives_the_trained_model_back(poisson_run):
    result, run = poisson_run
    assert result.returncode == 0, result.stderr
    loaded = check_load(run, "poisson")
    assert loaded.summary == json.loads((run / "summary.json").read_text())
    assert loaded.config == load_config(run / "config.yaml")
    assert isinstance(loaded.net, kanpde.KAN) and loaded.net.grid == 5


def test_existing_run_directory_is_refused_in_a_subprocess(processes):
    result, cwd = processes("existing-run")
    assert result.returncode == 2
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "run", "already holds a run", "--force")
    for name, text in EXISTING_RUN.items():  # untouched, and nothing added
        assert (cwd / name).read_text() == text
    assert sorted(p.name for p in (cwd / "run").iterdir()) == ["config.yaml", "notes.txt", "summary.json"]


def test_malformed_yaml_in_a_subprocess(processes):
    result, cwd = processes("malformed-yaml")
    assert result.returncode == 2
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "bad.yaml", "invalid YAML at line")
    assert not (cwd / "run").exists()


def test_list_in_process(capsys):
    assert call(["list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\s+poisson\s+2-D Poisson", out, re.MULTILINE)
    assert re.search(r"^\s+poisson\.yaml\s", out, re.MULTILINE)


def test_help_in_process(capsys):
    assert call(["--help"]) == 0
    out = capsys.readouterr().out
    assert "solve" in out and "list" in out
    assert call(["solve", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--set", "--out", "--force", "--resume", "--quiet", "--device"):
        assert option in out


# -- other models and user problems, in-process ---------------------------------------------------


@pytest.mark.parametrize("model", ["mlp", "siren", "fourier_mlp"])
def test_other_models(model, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    assert call(["solve", "poisson.yaml", "--out", str(run), *TINY, "--set", f"model.type={model}"]) == 0
    assert "rel. L2 error" in capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model"] == model and summary["grid"] is None and summary["steps"] == 5
    assert all((run / name).is_file() for name in RUN_FILES)
    assert (run / "plots" / "solution.png").is_file() and (run / "plots" / "loss.png").is_file()
    assert not (run / "plots" / "kan_edges.png").exists()
    loaded = check_load(run, "poisson")
    assert type(loaded.net).__name__ == {"mlp": "MLP", "siren": "SIREN", "fourier_mlp": "FourierMLP"}[model]


def test_user_problem_from_a_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pdes").mkdir()
    shutil.copy(USER_PROBLEM, tmp_path / "pdes" / "my_heat.py")
    (tmp_path / "heat.yaml").write_text(
        "problem:\n  name: pdes/my_heat.py:Heat\n  params: {kappa: 0.2}\n"
        "model:\n  type: kan\n  width: [2, 5, 1]\n"
        "points: {interior: 200, boundary: 40, initial: 40}\n"
        "train:\n  stages: [{optimizer: adam, steps: 5}]\nevaluate: {resolution: 21}\n")
    assert call(["solve", "heat.yaml", "--out", "run", "--quiet"]) == 0
    capsys.readouterr()
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["problem"] == "heat" and summary["steps"] == 5 and summary["width"] == [2, 5, 1]
    history = read_history(run)
    assert {"residual", "boundary", "initial"} <= set(history[0])
    with h5py.File(run / "solution.h5") as f:
        assert {"x", "t", "prediction", "reference", "error"} <= set(f)
        assert f["prediction"].shape == (21, 21)
    loaded = check_load(run, "heat")
    assert loaded.problem.kappa == 0.2


def test_load_a_user_problem_run_from_another_directory(tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    (project / "pdes").mkdir(parents=True)
    shutil.copy(USER_PROBLEM, project / "pdes" / "my_heat.py")
    monkeypatch.chdir(project)
    assert call(["solve", "poisson.yaml", "--out", "run", *TINY, "--set", "problem.name=pdes/my_heat.py:Heat",
                 "--set", "points.initial=40", "--set", "output.plots=false"]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    check_load(project / "run", "heat")


# -- bad input in-process: exit status 2, one line on stderr, no traceback -------------------------


BAD_SETS = {
    "unknown-key": (["--set", "model.widht=[2, 5, 1]"], ("model.widht", "did you mean 'width'")),
    "wrong-type": (["--set", "points.interior=many"], ("points.interior",)),
    "float-for-int": (["--set", "points.interior=20.5"], ("points.interior",)),
    "out-of-range": (["--set", "model.grid_eps=2"], ("model.grid_eps",)),
    "non-positive": (["--set", "train.stages.0.steps=0"], ("train.stages[0].steps",)),
    "unknown-model": (["--set", "model.type=transformer"], ("model.type", "transformer")),
    "width-inputs": (["--set", "model.width=[3, 5, 1]"], ("model.width", "poisson")),
    "width-outputs": (["--set", "model.width=[2, 5, 2]"], ("model.width",)),
    "set-syntax": (["--set", "train.seed"], ("KEY=VALUE",)),
    "set-empty-key": (["--set", "=3"], ("KEY=VALUE",)),
    "set-yaml": (["--set", "model.width=[2, 5"], ("invalid YAML",)),
    "unknown-param": (["--set", "problem.params.alpha=1"], ("problem.params.alpha",)),
    "unknown-user-param": (["--set", f"problem.name={USER_PROBLEM}:Heat", "--set", "problem.params.kapa=1"],
                           ("problem.params.kapa", "did you mean 'kappa'")),
    "non-numeric-param": (["--set", f"problem.name={USER_PROBLEM}:Heat", "--set", "problem.params.kappa=fast"],
                          ("problem.params.kappa",)),
    "missing-user-file": (["--set", "problem.name=nowhere/pde.py:Heat"], ("problem.name", "nowhere/pde.py")),
    "missing-user-class": (["--set", f"problem.name={USER_PROBLEM}:Wave"], ("problem.name", "Wave")),
    "unknown-problem": (["--set", "problem.name=poisson3d"], ("problem.name", "poisson3d")),
    "bad-device": (["--device", "tpu"], ("--device",)),
}


@pytest.mark.parametrize("case", list(BAD_SETS))
def test_bad_input_in_process(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    extra, fragments = BAD_SETS[case]
    assert call(["solve", "poisson.yaml", "--out", "run", *TINY, *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_line_error(captured.err, *fragments)
    assert not (tmp_path / "run").exists()  # rejected before anything is written


@pytest.mark.parametrize("case", ["malformed", "unknown-key", "not-a-mapping", "missing-file", "wrong-type"])
def test_bad_config_files(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    text = {"malformed": "problem: {name: poisson\n",
            "unknown-key": "problem: {name: poisson}\nmodle: {type: kan}\n",
            "not-a-mapping": "- poisson\n",
            "wrong-type": "problem: {name: poisson}\nmodel: {grid: five}\n"}.get(case)
    expected = {"malformed": ("invalid YAML",), "unknown-key": ("modle", "did you mean 'model'"),
                "not-a-mapping": ("mapping",), "missing-file": ("file not found", "missing.yaml"),
                "wrong-type": ("model.grid",)}[case]
    if text is not None:
        (tmp_path / "config.yaml").write_text(text)
    name = "missing.yaml" if case == "missing-file" else "config.yaml"
    assert call(["solve", name, "--out", "run", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_line_error(captured.err, *expected)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["solve"], ["solve", "poisson.yaml", "--bogus"]])
def test_bad_command_lines(argv, capsys):
    assert call(argv) == 2
    captured = capsys.readouterr()
    assert_one_line_error(captured.err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_device(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert call(["solve", "poisson.yaml", "--out", "run", *TINY, "--device", "cuda"]) == 2
    assert_one_line_error(capsys.readouterr().err, "cuda")


def test_existing_run_directory_needs_force(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert call(["solve", "poisson.yaml", "--out", "run", *TINY, "--set", "output.plots=false"]) == 0
    capsys.readouterr()
    run = tmp_path / "run"
    before = fingerprint(run)
    assert call(["solve", "poisson.yaml", "--out", "run", *TINY, "--set", "train.seed=1"]) == 2
    captured = capsys.readouterr()
    assert_one_line_error(captured.err, "already holds a run", "--force")
    assert fingerprint(run) == before
    assert call(["solve", "poisson.yaml", "--out", "run", *TINY, "--set", "train.seed=1", "--force"]) == 0
    assert json.loads((run / "summary.json").read_text())["seed"] == 1


# -- the README example ------------------------------------------------------------------------


def readme_example(text: str) -> str:
    """The one ```python block of the README's "## Define your own PDE" section."""
    match = re.search(r"^## Define your own PDE[^\n]*\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## Define your own PDE' section"
    blocks = re.findall(r"^```python\n(.*?)^```", match.group(1), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, f"expected one python block in the section, found {len(blocks)}"
    return blocks[0]


def test_readme_example_runs_and_is_accurate(tmp_path, monkeypatch, capsys):
    code = readme_example(README.read_text(encoding="utf-8"))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md:Define your own PDE", "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out
    match = re.search(r"relative L2 error (\S+) in (\S+) s", out)
    assert match, out
    error = float(match.group(1))
    documented = re.search(r"It prints `relative L2 error (\S+) in", README.read_text(encoding="utf-8"))
    assert documented, "README.md no longer states what the example prints"
    # float64 and fixed seeds: other CPUs and thread counts change the last digits, not the magnitude
    assert math.isfinite(error) and error <= 2 * float(documented.group(1)), out
    assert float(match.group(2)) > 0
