"""Fault paths and silent no-ops (issue 22): damaged checkpoints and incompatible configs on --resume, errors in a
user's problem file, an unwritable --out, SIGTERM, --force, file modes, settings that would be ignored, shapes of
residuals and conditions, oversized configs, start-up without torch, points.seed, plots."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from kanpde import checks, plots, results
from kanpde.cli import config_description, main, problem_descriptions
from kanpde.config import ConfigError, config_from_dict, load_config
from kanpde.nets import KAN
from kanpde.solver import Evaluation, build_problem, build_sampler, builtin_problems, solve

ROOT = Path(__file__).parent.parent
TINY = textwrap.dedent("""\
    problem: {name: poisson}
    model: {type: kan, width: [2, 3, 1], grid: 3}
    points: {interior: 50, boundary: 20}
    train: {stages: [{optimizer: adam, steps: 3}]}
    evaluate: {every: 0, resolution: 11}
    output: {plots: false, checkpoint_every: 1}
    """)

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


@pytest.fixture(autouse=True)
def no_traceback_env(monkeypatch):
    monkeypatch.delenv("KANPDE_TRACEBACK", raising=False)


def call(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exit_:
        return exit_.code


def one_line(err: str, *fragments: str) -> str:
    lines = [line for line in err.strip().splitlines() if not line.startswith("kanpde: warning:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A tiny finished poisson run (3 steps), copied by the tests that damage it."""
    folder = tmp_path_factory.mktemp("finished")
    (folder / "tiny.yaml").write_text(TINY)
    assert main(["solve", str(folder / "tiny.yaml"), "--out", str(folder / "run"), "--quiet"]) == 0
    return folder


@pytest.fixture
def run_copy(finished_run, tmp_path, monkeypatch) -> Path:
    shutil.copytree(finished_run, tmp_path / "work")
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "work"


# -- --resume -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "corrupted", "empty", "not-a-checkpoint"])
def test_resume_of_a_damaged_checkpoint_exits_2_and_touches_nothing(damage, run_copy, capsys):
    checkpoint = run_copy / "run" / "checkpoint.pt"
    data = checkpoint.read_bytes()
    checkpoint.write_bytes({"truncated": data[: len(data) // 2], "corrupted": data[:200] + b"\x00" * 300 + data[500:],
                            "empty": b""}.get(damage, b""))
    if damage == "not-a-checkpoint":
        torch.save({"weights": torch.zeros(3)}, checkpoint)
    before = snapshot(run_copy / "run")
    assert call(["solve", "tiny.yaml", "--out", "run", "--resume", "--quiet",
                 "--set", "train.stages=[{optimizer: adam, steps: 6}]"]) == 2
    one_line(capsys.readouterr().err, "--resume", "checkpoint.pt")
    assert snapshot(run_copy / "run") == before


@pytest.mark.parametrize("change, fragment", [(["--set", "model.width=[2, 4, 1]"], "model.width"),
                                              (["--set", "problem.name=poisson_sin"], "problem")])
def test_resume_with_another_network_or_problem_is_refused_before_writing(change, fragment, run_copy, capsys):
    before = snapshot(run_copy / "run")
    assert call(["solve", "tiny.yaml", "--out", "run", "--resume", "--quiet", *change]) == 2
    one_line(capsys.readouterr().err, "--resume", fragment)
    assert snapshot(run_copy / "run") == before  # config.yaml included


def test_resume_with_more_steps_still_works(run_copy, capsys):
    assert call(["solve", "tiny.yaml", "--out", "run", "--resume", "--quiet",
                 "--set", "train.stages=[{optimizer: adam, steps: 5}]"]) == 0
    assert json.loads((run_copy / "run" / "summary.json").read_text())["steps"] == 5


# -- a user's problem file -------------------------------------------------------------------------------------
GOOD_PROBLEM = textwrap.dedent("""\
    import torch
    import kanpde


    class Mine(kanpde.Problem):
        box = kanpde.Box([0.0, 0.0], [1.0, 1.0], ("x", "y"))
        conditions = [kanpde.Dirichlet(0.0)]

        def residual(self, u, x):
            return RESIDUAL
    """)

BROKEN_FILES = {
    "syntax-error": (GOOD_PROBLEM.replace("RESIDUAL", "u.laplacian +"), 10, "SyntaxError"),
    "missing-import": ("import torch_not_installed\n" + GOOD_PROBLEM.replace("RESIDUAL", "u.laplacian"), 1,
                       "ModuleNotFoundError"),
    "exception-in-residual": (GOOD_PROBLEM.replace("RESIDUAL", "u.laplacian + undefined_name"), 10, "NameError"),
    "wrong-shape": (GOOD_PROBLEM.replace("RESIDUAL", "u.laplacian + u.value[:, None]"), None, "shape [50, 50]"),
}


@pytest.mark.parametrize("case", list(BROKEN_FILES))
def test_errors_in_a_user_problem_file_are_one_line_with_file_and_line(case, tmp_path, monkeypatch, capsys):
    text, line, fragment = BROKEN_FILES[case]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(text)
    (tmp_path / "tiny.yaml").write_text(TINY.replace("name: poisson", "name: mine.py:Mine"))
    assert call(["solve", "tiny.yaml", "--out", "run", "--quiet"]) == 2
    message = one_line(capsys.readouterr().err, fragment)
    if line is not None:
        assert f"mine.py:{line}:" in message
    assert not (tmp_path / "run").exists()


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(BROKEN_FILES["exception-in-residual"][0])
    (tmp_path / "tiny.yaml").write_text(TINY.replace("name: poisson", "name: mine.py:Mine"))
    with pytest.raises(ValueError, match="NameError") as caught:
        main(["solve", "tiny.yaml", "--out", "run", "--quiet", "--debug"])
    assert isinstance(caught.value.__cause__, NameError)


# -- conditions and residuals of the wrong shape, conditions without points -------------------------------------
def test_a_condition_of_the_wrong_shape_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    text = GOOD_PROBLEM.replace("RESIDUAL", "u.laplacian").replace(
        "kanpde.Dirichlet(0.0)", "kanpde.Dirichlet(lambda x: x[:, :1])")
    (tmp_path / "mine.py").write_text(text)
    (tmp_path / "tiny.yaml").write_text(TINY.replace("name: poisson", "name: mine.py:Mine"))
    assert call(["solve", "tiny.yaml", "--out", "run", "--quiet"]) == 2
    one_line(capsys.readouterr().err, "'boundary'", "[N], not [N, 1]")


def test_a_condition_on_a_time_face_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "heat.py").write_text(textwrap.dedent("""\
        import torch
        import kanpde


        class Heat(kanpde.Problem):
            box = kanpde.Box.space_time([0.0], [1.0], t0=0.0, t1=1.0, names=("x", "t"))
            derivatives = "diagonal"
            conditions = [kanpde.Dirichlet(0.0), kanpde.Neumann(0.0, faces="t=0")]

            def residual(self, u, x):
                return u.d("t") - u.d("x", "x")
        """))
    (tmp_path / "tiny.yaml").write_text(TINY.replace("name: poisson", "name: heat.py:Heat"))
    assert call(["solve", "tiny.yaml", "--out", "run", "--quiet"]) == 2
    one_line(capsys.readouterr().err, "'neumann'", "t=0", "Initial")
    assert not (tmp_path / "run").exists()


# -- --out, SIGTERM, --force, file modes ------------------------------------------------------------------------
def test_an_unwritable_out_directory_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "readonly").mkdir()
    real_mkdir = Path.mkdir

    def refuse(self, *args, **kwargs):  # as a read-only file system would (root ignores chmod)
        if "readonly" in str(self):
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert call(["solve", "tiny.yaml", "--out", "readonly/run", "--quiet"]) == 2
    one_line(capsys.readouterr().err, "--out", "readonly/run", "Permission denied")


def test_out_below_a_file_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "file").write_text("")
    assert call(["solve", "tiny.yaml", "--out", "file/run", "--quiet"]) == 2
    one_line(capsys.readouterr().err, "--out", "file/run")


def test_sigterm_writes_the_summary_and_exits_143(tmp_path):
    (tmp_path / "long.yaml").write_text(TINY.replace("steps: 3", "steps: 100000"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("KANPDE_TRACEBACK", None)
    process = subprocess.Popen([sys.executable, "-m", "kanpde", "solve", "long.yaml", "--out", "run", "--quiet"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while not (tmp_path / "run" / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=240)
    assert process.returncode == 143, err
    assert "Traceback" not in err and "SIGTERM" in err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["completed"] is False and 0 < summary["steps"] < 100000


def test_force_starts_from_an_empty_directory_and_drops_the_old_run_after_success(run_copy, capsys):
    run = run_copy / "run"
    (run / "plots" / "loss.png").write_bytes(b"old plot")
    (run / "notes.txt").write_text("mine")
    assert call(["solve", "tiny.yaml", "--out", "run", "--quiet", "--force", "--set", "train.seed=1"]) == 0
    assert not (run / "plots" / "loss.png").exists()  # output.plots is false in the new run
    assert (run / "notes.txt").read_text() == "mine"  # not the run's: left alone
    assert not list(run.glob(".replaced-*"))
    assert json.loads((run / "summary.json").read_text())["seed"] == 1


def test_force_keeps_the_old_run_aside_until_the_new_one_succeeds(run_copy):
    old = snapshot(run_copy / "run")
    directory = results.RunDirectory(run_copy / "run", force=True)
    assert not (run_copy / "run" / "summary.json").exists()
    (aside,) = list((run_copy / "run").glob(".replaced-*"))
    assert snapshot(aside) == old
    directory.finish()
    assert not aside.exists()


def test_files_follow_the_umask(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "_UMASK", 0o027)
    results.atomic_write(tmp_path / "a.txt", lambda name: Path(name).write_text("x"))
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640


def test_plots_are_written_atomically(tmp_path, monkeypatch):
    replaced = []
    real = os.replace
    monkeypatch.setattr(results.os, "replace", lambda a, b: (replaced.append(Path(b)), real(a, b)))
    rows = [{"step": 1, "loss": 1.0, "residual": 1.0, "rel_l2": 0.5}, {"step": 2, "loss": 0.5, "residual": 0.5}]
    plots.plot_history(tmp_path / "loss.png", rows, ["residual"])
    assert replaced == [tmp_path / "loss.png"] and (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]


# -- settings that would be ignored, sizes ----------------------------------------------------------------------
def config(**sections) -> object:
    data = {"problem": {"name": "poisson"}, "train": {"stages": [{"optimizer": "adam", "steps": 10}]}}
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    return config_from_dict(data)


NO_OPS = {
    "initial-without-time": ({"points": {"initial": 50}}, "points.initial"),
    "grid-schedule-on-mlp": ({"model": {"type": "mlp", "width": [2, 8, 1]}, "train": {"grid_schedule": {2: 6}}},
                             "train.grid_schedule is ignored"),
    "grid-update-on-mlp": ({"model": {"type": "mlp", "width": [2, 8, 1]},
                            "train": {"grid_update_every": 2, "grid_update_until": 5}}, "train.grid_update_every"),
    "schedule-past-the-end": ({"train": {"grid_schedule": {50: 10}}}, "step 50 is past the last step"),
    "shrinking-grid": ({"model": {"grid": 10}, "train": {"grid_schedule": {5: 5}}}, "shrinks 10 -> 5"),
    "compile-with-autograd": ({"model": {"type": "mlp", "width": [2, 8, 1]},
                               "train": {"compile": True, "derivatives": "autograd"}}, "not nested autograd"),
}


@pytest.mark.parametrize("case", list(NO_OPS))
def test_ignored_settings_are_warned_about(case):
    sections, fragment = NO_OPS[case]
    said = []
    checks.check_config(config(**sections), build_problem(config().problem), said.append)
    assert len(said) == 1 and fragment in said[0], said
    silent = []
    checks.check_config(config(), build_problem(config().problem), silent.append)
    assert silent == []


def test_resolution_beside_a_reference_grid_is_warned_about():
    class WithReference(build_problem(config().problem).__class__):
        def reference(self):
            return [np.linspace(-1, 1, 3), np.linspace(-1, 1, 3)], np.zeros((3, 3))

    said = []
    checks.check_config(config(evaluate={"resolution": 51}), WithReference(), said.append)
    assert len(said) == 1 and "evaluate.resolution is ignored" in said[0]


@pytest.mark.parametrize("key", ["train.causal_epsilon=10", "train.stages.0.causal_epsilon=auto"])
def test_causal_weighting_without_time_is_refused(key, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(TINY)
    assert call(["solve", "tiny.yaml", "--out", "run", "--quiet", "--set", key]) == 2
    one_line(capsys.readouterr().err, "causal_epsilon", "has none")
    assert not (tmp_path / "run").exists()


def test_duplicate_yaml_keys_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dup.yaml").write_text(TINY + "model: {type: mlp}\n")
    assert call(["solve", "dup.yaml", "--out", "run", "--quiet"]) == 2
    one_line(capsys.readouterr().err, "dup.yaml", "duplicate key 'model'")
    with pytest.raises(ConfigError, match="duplicate key 'steps'"):
        (tmp_path / "dup2.yaml").write_text(TINY.replace("steps: 3", "steps: 3, steps: 4"))
        load_config(tmp_path / "dup2.yaml")


@pytest.mark.parametrize("override, fragment", [
    ("points.interior=10000000", "GiB"), ("model.width=[2, 100000, 100000, 1]", "GiB"),
    ("model.grid=100000", "model.grid"),
    ("train.grid_schedule={1: 100000}", "train.grid_schedule"), ("model.order=100", "model.order"),
    ("evaluate.resolution=3000", "evaluate.resolution")])
def test_oversized_configs_are_refused_with_an_estimate(override, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(TINY.replace("{interior: 50, boundary: 20}", "{interior: 2000, boundary: 400}"))
    started = time.perf_counter()
    assert call(["solve", "tiny.yaml", "--out", "run", "--quiet", "--set", override]) == 2
    assert time.perf_counter() - started < 30
    one_line(capsys.readouterr().err, fragment)
    assert not (tmp_path / "run").exists()


def test_the_memory_estimate_grows_with_points_and_grid():
    small, _ = checks.memory_estimate(config(), build_problem(config().problem))
    more, points = checks.memory_estimate(config(points={"interior": 20000}), build_problem(config().problem))
    finer, _ = checks.memory_estimate(config(model={"grid": 50}), build_problem(config().problem))
    assert points == 20400 and 5 * small < more < 20400 / 2400 * small and finer > small


# -- evaluation in d >= 3 ---------------------------------------------------------------------------------------
def test_three_d_problems_are_evaluated_on_interior_sobol_points(tmp_path):
    sys.path.insert(0, str(tmp_path))
    (tmp_path / "cube.py").write_text(textwrap.dedent("""\
        import torch
        import kanpde


        class Cube(kanpde.Problem):
            box = kanpde.Box([0.0] * 3, [1.0] * 3)
            conditions = [kanpde.Dirichlet(0.0)]

            def residual(self, u, x):
                return u.laplacian

            def exact(self, x):
                return x.prod(-1)
        """))
    problem = build_problem(config_from_dict({"problem": {"name": f"{tmp_path / 'cube.py'}:Cube"}}).problem)
    evaluation = Evaluation.build(problem, 21, torch.float64, torch.device("cpu"))
    assert evaluation.points.shape == (441, 3) and "Sobol" in evaluation.described
    on_faces = ((evaluation.points == 0) | (evaluation.points == 1)).any(-1).float().mean()
    assert on_faces == 0  # a 21³ grid would have 27 % of its points on faces
    assert [len(a) for a in evaluation.output.axes] == [21, 21, 1]
    assert torch.allclose(evaluation.reference, evaluation.points.prod(-1))


# -- points.seed, train_seconds, extend_grid --------------------------------------------------------------------
def test_points_seed_is_shared_across_model_seeds_and_defaults_to_the_model_seed():
    problem = build_problem(config().problem)

    def interior(**points) -> torch.Tensor:
        data = config(points=points)
        sampler = build_sampler(data, problem, torch.float64, torch.device("cpu"))
        return sampler.sample(0).interior

    seed0 = config_from_dict({"problem": {"name": "poisson"}, "train": {"seed": 0}, "points": {"seed": 7}})
    seed1 = config_from_dict({"problem": {"name": "poisson"}, "train": {"seed": 1}, "points": {"seed": 7}})
    a = build_sampler(seed0, problem, torch.float64, torch.device("cpu")).sample(0).interior
    b = build_sampler(seed1, problem, torch.float64, torch.device("cpu")).sample(0).interior
    assert torch.equal(a, b)
    assert not torch.equal(interior(), interior(seed=7))
    assert torch.equal(interior(), interior(seed=0))  # null: train.seed (0)


def test_train_seconds_include_grid_extensions(tmp_path, monkeypatch):
    real = KAN.extend_grid

    def slow(self, *args, **kwargs):
        time.sleep(0.5)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(KAN, "extend_grid", slow)
    data = config(model={"width": [2, 3, 1], "grid": 3}, points={"interior": 50, "boundary": 20},
                  train={"grid_schedule": {1: 6}, "stages": [{"optimizer": "adam", "steps": 3}]},
                  evaluate={"every": 0, "resolution": 11}, output={"plots": False})
    summary = solve(data, out=tmp_path / "run", quiet=True)
    assert summary["train_seconds"] >= 0.5


def test_extend_grid_without_samples_warns_when_not_nested():
    torch.manual_seed(0)
    kan = KAN([2, 3, 1], grid=5).double()
    with pytest.warns(RuntimeWarning, match="not a refinement"):
        kan.extend_grid(8)
    kan = KAN([2, 3, 1], grid=5).double()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kan.extend_grid(10)  # nested: exact, no warning
        kan.extend_grid(13, torch.rand(64, 2, dtype=torch.float64) * 2 - 1)  # samples given


# -- start-up, list, README ------------------------------------------------------------------------------------
def test_help_version_list_and_config_errors_do_not_import_torch(tmp_path):
    (tmp_path / "bad.yaml").write_text("problem: {name: poisson}\nmodel: {grid: five}\n")
    script = textwrap.dedent("""\
        import resource, sys, time
        from kanpde.cli import main
        codes = []
        for argv in (["--version"], ["--help"], ["list"], ["solve", "bad.yaml"], ["solve", "--help"]):
            try:
                codes.append(main(argv))
            except SystemExit as exit_:
                codes.append(exit_.code)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(codes, "torch" in sys.modules, usage.ru_utime + usage.ru_stime)
        """)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    codes, torch_loaded, cpu = result.stdout.strip().splitlines()[-1].rsplit(" ", 2)
    assert codes.endswith("[0, 0, 0, 2, 0]") and torch_loaded == "False", result.stdout + result.stderr
    assert float(cpu) < 1.0


def test_list_names_every_problem_and_whole_sentences(capsys):
    assert problem_descriptions() == {name: cls.description for name, cls in builtin_problems().items()}
    assert call(["list"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for path in sorted((ROOT / "kanpde" / "problems").glob("*.yaml")):
        description = config_description(path)
        assert description.endswith(".") and " ".join(description.split()) in out
    assert "4000 fixed Sobol points (target run of docs/tables.md)." in out


def test_version(capsys):
    assert call(["--version"]) == 0
    assert re.fullmatch(r"kanpde \d+\.\d+\.\d+\n", capsys.readouterr().out)


def test_readme_set_examples_survive_a_shell():
    """A --set value with braces, brackets or spaces must be quoted: bash splits {100: 10}, zsh globs [2,64,1]."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unquoted = [value for value in re.findall(r"--set ([^'\"\s]\S*)", readme) if re.search(r"[{\[]", value)]
    assert unquoted == []


# -- plots --------------------------------------------------------------------------------------------------------
@pytest.fixture
def figures(monkeypatch):
    kept = []
    monkeypatch.setattr(plots, "save", lambda fig, path, **options: kept.append(fig))
    return kept


def test_loss_plot_has_a_y_label_and_marks_stages_and_grid_extensions(figures):
    rows = [{"step": s, "loss": 1.0 / s, "residual": 1.0 / s} for s in range(1, 11)]
    plots.plot_history(Path("loss.png"), rows, ["residual"], ["step 4: grid 5 -> 10, fit error 1e-15"], [6])
    (ax,) = figures[0].axes
    assert ax.get_ylabel()
    assert sorted(line.get_xdata()[0] for line in ax.lines if len(set(line.get_xdata())) == 1) == [4, 6]
    assert {text.get_text() for text in ax.texts} == {"G=10", "stage"}


def test_kan_edge_curves_are_labelled_and_distinguishable(figures):
    torch.manual_seed(0)
    plots.plot_kan_edges(Path("edges.png"), KAN([2, 10, 1], grid=5).double())
    first = figures[0].axes[0]
    styles = {(tuple(line.get_color()), line.get_linestyle()) for line in first.lines}
    labels = [text.get_text() for text in first.get_legend().get_texts()]
    assert len(first.lines) == 20 and len(styles) == 20 and len(set(labels)) == 20 and "φ0[1→9]" in labels


def test_solution_plot_shares_the_colour_scale_of_prediction_and_reference(figures):
    axes = [np.linspace(0, 1, 5), np.linspace(0, 1, 6)]
    prediction, reference = np.random.default_rng(0).random((5, 6)), 3 * np.random.default_rng(1).random((5, 6))
    plots.plot_solution(Path("s.png"), ("x", "y"), axes, prediction, reference, "t")
    meshes = [ax.collections[0] for ax in figures[0].axes if ax.collections][:2]
    assert meshes[0].get_clim() == meshes[1].get_clim() == (prediction.min(), reference.max())


def test_ci_installs_with_the_readme_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```bash\n(pip install [^\n]*?) &&", readme).group(1)
    assert "download.pytorch.org/whl/cpu" in first
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"python3 -m {first}" in ci


def test_compare_shares_one_set_of_points_and_drops_grid_keys_for_other_models(tmp_path, capsys):
    from kanpde.compare import compare

    data = config(model={"width": [2, 3, 1], "grid": 3}, points={"interior": 40, "boundary": 16},
                  train={"grid_schedule": {1: 6}, "stages": [{"optimizer": "adam", "steps": 2}], "seed": 5},
                  evaluate={"every": 0, "resolution": 9}, output={"plots": False})
    compare(data, ["kan", "mlp"], seeds=2, out=tmp_path, quiet=True)
    configs = {(m, k): load_config(tmp_path / m / f"seed{k}" / "config.yaml") for m in ("kan", "mlp") for k in (0, 1)}
    assert {c.points.seed for c in configs.values()} == {5}
    assert [configs["kan", k].train.seed for k in (0, 1)] == [5, 6]
    assert configs["mlp", 0].train.grid_schedule == {} and configs["kan", 0].train.grid_schedule == {1: 6}
    assert "warning" not in capsys.readouterr().err
