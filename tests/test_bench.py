"""scripts/bench.py: the smoke run's JSON structure, the pykan skip, and that every contender's
Laplacian is the same quantity. No timing assertions: timings depend on the machine and its load."""

import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import kanpde
from kanpde.nets import fused_kan

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bench.py"
KAN_SHAPES = [([2, 10, 1], 10), ([2, 10, 1], 20), ([2, 5, 5, 1], 5), ([2, 100, 1], 10), ([2, 10, 10, 10, 10, 1], 5)]
MLP_WIDTH = [2, 128, 128, 128, 1]


def load_bench():
    spec = importlib.util.spec_from_file_location("kanpde_bench_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run_bench(tmp_path, *args, env=None):
    out = tmp_path / "bench.json"
    # one thread: on a loaded 2-core machine two OpenMP threads per process oversubscribe the cores
    # and the smoke run gets many times slower; the structure does not depend on it
    result = subprocess.run([sys.executable, str(SCRIPT), *args, "--threads", "1", "--json", str(out)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text()), result


def check_row(row, dtype="float64"):
    assert row["median_s"] > 0 and row["min_s"] > 0
    assert row["min_s"] <= row["median_s"] <= row["max_s"]
    assert row["repeats"] == len(row["samples_s"]) == len(row["cpu_samples_s"]) >= 1
    assert 0 < row["cpu_min_s"] <= row["cpu_median_s"]
    assert row["steps_per_sample"] >= 1 and row["parameters"] > 0
    assert row["memory_bytes"] > 0 and row["memory_kind"] == "saved_tensors" and row["memory_note"]
    assert row["memory_bytes_per_point"] == pytest.approx(row["memory_bytes"] / row["points"])
    assert (row["dtype"], row["device"], row["threads"]) == (dtype, "cpu", 1)


@pytest.mark.slow
def test_quick_run_structure(tmp_path):
    data, result = run_bench(tmp_path, "--quick", "--no-pykan")
    meta, rows, derived = data["metadata"], data["rows"], data["derived"]

    for key in ("date", "command", "python_version", "torch_version", "kanpde_version", "device", "dtype", "threads"):
        assert meta[key] not in (None, ""), key
    assert meta["machine"]["cpu_model"] and meta["machine"]["cores"] >= 1
    assert meta["quick"] is True and meta["pykan_used"] is False and meta["threads"] == 1

    keys = [(r["group"], r["contender"], tuple(r["shape"]), r["grid"], r["points"]) for r in rows]
    assert len(keys) == len(set(keys))
    expected = {("main", c, tuple(shape), grid, 1000) for shape, grid in KAN_SHAPES
                for c in ("kanpde-jet", "kanpde-autograd")}
    expected |= {("main", c, tuple(MLP_WIDTH), None, 1000) for c in ("mlp-autograd", "mlp-jet")}
    expected |= {("points", "kanpde-jet", (2, 10, 1), 10, n) for n in (1000, 10_000)}
    expected |= {("points", "mlp-autograd", tuple(MLP_WIDTH), None, n) for n in (1000, 10_000)}
    expected |= {("grid", "kanpde-jet", (2, 10, 1), g, 1000) for g in (5, 10, 20, 50, 100, 200)}
    assert set(keys) == expected
    for row in rows:
        check_row(row)

    shapes = {f"[{','.join(map(str, shape))}] G={grid}" for shape, grid in KAN_SHAPES}
    for name in ("jet_vs_autograd", "jet_vs_mlp_autograd", "jet_vs_autograd_cpu", "jet_vs_mlp_autograd_cpu"):
        assert set(derived[name]) == shapes and all(v > 0 for v in derived[name].values())
    for name in ("jet_vs_pykan", "jet_vs_pykan_cpu"):
        assert set(derived[name]) == shapes and all(v is None for v in derived[name].values())
    assert derived["mlp_jet_vs_mlp_autograd"] > 0
    assert derived["grid_ratio_over_G5"]["G=5"] == pytest.approx(1.0) and derived["grid_ratio_over_G5"]["G=200"] > 0
    assert len(derived["targets"]) == 4 + len(KAN_SHAPES)
    assert all(t["met"] in (True, False, None) for t in derived["targets"])
    assert "median ms" in result.stdout and "Targets" in result.stdout


def test_shapes_option_selects_the_main_table(tmp_path):
    data, _ = run_bench(tmp_path, "--groups", "main", "--shapes", "2,3,1:4;2,2,2,1:3", "--points", "64",
                        "--repeats", "1", "--min-time", "0", "--no-pykan")
    kan_rows = {(tuple(row["shape"]), row["grid"]) for row in data["rows"] if row["contender"].startswith("kanpde")}
    assert kan_rows == {((2, 3, 1), 4), ((2, 2, 2, 1), 3)}
    derived = data["derived"]
    assert derived["jet_vs_autograd"]["[2,10,1] G=10"] is None  # protocol shapes not run: no ratio
    assert derived["targets"][0]["met"] is None


@pytest.mark.parametrize("shapes", ["2,10,1", "2,x,1:10", "2:10", "2,10,1:0", ";"])
def test_bad_shapes_option_is_a_one_line_error(tmp_path, shapes, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_bench().parse_args(["--shapes", shapes, "--json", str(tmp_path / "b.json")])
    assert exit_info.value.code == 2
    assert "--shapes" in capsys.readouterr().err.strip().splitlines()[-1]


def test_unimportable_pykan_is_skipped_once(tmp_path):
    fake = tmp_path / "fake"
    (fake / "kan").mkdir(parents=True)
    (fake / "kan" / "__init__.py").write_text("raise ImportError('simulated: no pykan here')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")])}
    data, result = run_bench(tmp_path, "--groups", "main", "--points", "64", "--repeats", "1", "--min-time", "0",
                             env=env)
    assert result.stderr.count("pykan is not importable") == 1
    assert "simulated" in data["metadata"]["pykan_skipped_reason"] and data["metadata"]["pykan_used"] is False
    contenders = {row["contender"] for row in data["rows"]}
    assert contenders == {"kanpde-jet", "kanpde-autograd", "mlp-autograd", "mlp-jet"}
    for row in data["rows"]:
        check_row(row)
    assert not (tmp_path / "model").exists()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("kan") is None, reason="pykan (the 'bench' extra) is not installed")
def test_pykan_rows(tmp_path):
    data, _ = run_bench(tmp_path, "--groups", "main", "--points", "32", "--repeats", "1", "--min-time", "0",
                        "--dtype", "float32")
    pykan = [row for row in data["rows"] if row["contender"] == "pykan"]
    assert [(row["shape"], row["grid"]) for row in pykan] == KAN_SHAPES
    for row in pykan:
        check_row(row, dtype="float32")
    assert all(v > 0 for v in data["derived"]["jet_vs_pykan"].values())
    assert not (tmp_path / "model").exists()  # pykan's checkpoints stay out of the working directory


@pytest.fixture
def keep_rng_state():
    """The script seeds torch per model, and pykan also seeds numpy and random: restore them all."""
    states = random.getstate(), np.random.get_state()
    with torch.random.fork_rng():
        yield
    random.setstate(states[0])
    np.random.set_state(states[1])


def test_contenders_compute_the_same_laplacian(single_thread, keep_rng_state):
    bench = load_bench()
    x = bench.interior_points(50, torch.float64, torch.device("cpu"))
    kan = bench.build_model("kanpde-jet", [2, 5, 1], 7, torch.float64, torch.device("cpu"))
    reference = bench.nested_grad_laplacian(kan, x).reshape(-1)
    for name in ("kanpde-jet", "kanpde-autograd"):
        assert torch.allclose(bench.LAPLACIANS[name](kan, x).reshape(-1), reference, rtol=1e-9, atol=1e-9), name
    mlp = bench.build_model("mlp-autograd", [2, 16, 16, 1], None, torch.float64, torch.device("cpu"))
    assert torch.allclose(bench.nested_grad_laplacian(mlp, x).reshape(-1),
                          kanpde.autograd_jet(mlp, x, "trace").laplacian.reshape(-1), rtol=1e-9, atol=1e-9)
    if importlib.util.find_spec("kan") is not None:
        module, reason = bench.import_pykan()
        assert module is not None, reason
        model = bench.build_model("pykan", [2, 3, 1], 5, torch.float64, torch.device("cpu"), module)
        assert next(model.parameters()).dtype == torch.float64
        assert torch.allclose(bench.pykan_laplacian(model, x).reshape(-1),
                              bench.nested_grad_laplacian(model, x).reshape(-1), rtol=1e-9, atol=1e-9)


@pytest.mark.slow
def test_fourth_order_group(tmp_path):
    """The u_xxxx workload (``--groups fourth``): both contenders' rows, the ratio and its target."""
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parent.parent)}  # this checkout's kanpde
    data, _ = run_bench(tmp_path, "--quick", "--no-pykan", "--groups", "fourth", "--points", "200",
                        "--repeats", "1", env=env)
    rows, derived = data["rows"], data["derived"]
    assert {(r["group"], r["contender"], tuple(r["shape"]), r["grid"]) for r in rows} == {
        ("fourth", c, (2, 10, 10, 1), 10) for c in ("kanpde-jet-d4", "kanpde-autograd-d4")}
    for row in rows:
        check_row(row)
    ratio = derived["fourth_jet_vs_autograd"]
    assert ratio > 0
    (target,) = [t for t in derived["targets"] if t["target"].startswith("u_xxxx step")]
    assert target["value"] == ratio and target["met"] == (ratio >= 5)


# -- the trainer and DeepXDE groups (scripts/bench_pinn.py) ---------------------------------------------------------
TINY_POINTS = {"burgers": {"num_domain": 40, "num_boundary": 8, "num_initial": 8},
               "poisson": {"num_domain": 40, "num_boundary": 8, "num_initial": 0}}


def check_steps_train(problem, contenders, dde=None):
    """Every contender takes steps that change its parameters, in its own precision."""
    pinn = load_bench().bench_pinn
    for contender in contenders:
        model, step = pinn.step_case(contender, problem, torch.float64, torch.device("cpu"), dde)
        before = [p.detach().clone() for p in model.parameters()]
        step()
        step()
        assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters())), contender
        expected = torch.float32 if contender.endswith("f32") else torch.float64
        assert next(model.parameters()).dtype == expected, contender


@pytest.mark.parametrize("problem", ["burgers", "poisson"])
def test_trainer_steps_train(problem, single_thread, keep_rng_state, monkeypatch):
    """kanpde's trainer step contenders, with as many residual points as DeepXDE uses (domain + boundary +
    initial)."""
    pinn = load_bench().bench_pinn
    monkeypatch.setattr(pinn, "DEEPXDE_POINTS", TINY_POINTS)
    # tests/test_compiled.py and tests/test_fused_kan.py compile for real; here the kernels run uncompiled
    monkeypatch.setattr(torch, "compile", lambda function, **options: function)
    for name, fresh in (("_KERNELS", {}), ("_CHECKED", set()), ("_FAILED", [])):
        monkeypatch.setattr(fused_kan, name, fresh)
    assert pinn.kanpde_points(problem)["interior"] == sum(TINY_POINTS[problem].values())
    check_steps_train(problem, [c for c in pinn.STEP_CONTENDERS if c.startswith("kanpde")])
    for contender in ("kanpde-mlp-compiled-trainer", "kanpde-kan-compiled-trainer"):
        field, step = pinn.step_case(contender, problem, torch.float64, torch.device("cpu"))
        assert field.compile and step.setup_seconds > 0  # the first (compiling) step is timed on its own
    assert not fused_kan._FAILED  # the hidden layers run points first, the output layer points last
    assert {name for name, _ in fused_kan._KERNELS} == {"forward_by_point", "table_by_point", "forward", "table",
                                                        "terms", "base"}


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("deepxde") is None, reason="DeepXDE (the 'bench' extra) is not installed")
def test_deepxde_steps_train(single_thread, keep_rng_state, monkeypatch):
    """DeepXDE's own steps (float64 and float32) on both problems; its import alone takes seconds."""
    pinn = load_bench().bench_pinn
    monkeypatch.setattr(pinn, "DEEPXDE_POINTS", TINY_POINTS)
    dde, reason = pinn.import_deepxde()
    assert dde is not None, reason
    default = torch.get_default_dtype()
    for problem in ("burgers", "poisson"):
        check_steps_train(problem, [c for c in pinn.STEP_CONTENDERS if c.startswith("deepxde")], dde)
    assert torch.get_default_dtype() == default  # DeepXDE's set_default_float is undone


def test_deepxde_missing_is_skipped_once(tmp_path):
    fake = tmp_path / "fake"
    (fake / "deepxde").mkdir(parents=True)
    (fake / "deepxde" / "__init__.py").write_text("raise ImportError('simulated: no deepxde here')\n")
    pinn = load_bench().bench_pinn
    env = os.environ.get("PYTHONPATH")
    sys.path.insert(0, str(fake))
    saved = sys.modules.pop("deepxde", None)
    try:
        dde, reason = pinn.import_deepxde()
    finally:
        sys.path.remove(str(fake))
        sys.modules.pop("deepxde", None)
        if saved is not None:
            sys.modules["deepxde"] = saved
    assert dde is None and "simulated" in reason and env == os.environ.get("PYTHONPATH")


def test_time_to_accuracy_ratio_and_its_bounds():
    pinn = load_bench().bench_pinn

    def result(contender, seconds, budget=100.0, ran=None):  # ran: training seconds of a run that ended early
        return {"problem": "burgers", "contender": contender, "budget_s": budget,
                "train_wall_s": budget if ran is None else ran,
                "reached": {"0.01": None if seconds is None else {"wall_s": seconds}, "0.001": None}}

    def target(kan, deepxde, kan_ran=None, deepxde_ran=None):
        derived = pinn.derive_accuracy([result("kanpde-kan", kan, ran=kan_ran),
                                        result("deepxde-stock", deepxde, ran=deepxde_ran)])
        (item,) = derived["accuracy_targets"]
        return item["value"], item["met"], item["note"]

    assert target(10.0, 30.0) == (3.0, True, "measured")
    assert target(20.0, 30.0)[:2] == (1.5, False)
    assert target(None, 30.0)[:2] == (0.3, False)  # kanpde's time is over the budget: at most 0.3
    assert target(None, 300.0)[1] is None  # DeepXDE took 300 s, kanpde more than 100: undecided
    assert target(10.0, None)[:2] == (10.0, True)  # DeepXDE over the budget: at least 10
    assert target(80.0, None)[1] is None
    assert target(None, None)[:2] == (None, None)
    # a run that ended (its whole recipe) before the budget without reaching 1e-2 never reaches it
    assert target(10.0, None, deepxde_ran=50.0)[:2] == (None, True)
    assert target(None, 30.0, kan_ran=50.0)[:2] == (None, False)
    assert target(None, None, kan_ran=50.0, deepxde_ran=60.0)[:2] == (None, False)
    # DeepXDE's recipe in float64 beside its stock run: a target each, the CPU ratio where both reached 1e-2
    kan, stock, f64 = result("kanpde-kan", 10.0), result("deepxde-stock", None, ran=50.0), result("deepxde-f64", 40.0)
    kan["reached"]["0.01"]["cpu_s"], f64["reached"]["0.01"]["cpu_s"] = 4.0, 20.0
    derived = pinn.derive_accuracy([kan, stock, f64])
    assert derived["burgers_time_to_1e-2_deepxde_f64_over_kan"] == {"value": 4.0, "kind": "measured", "cpu_value": 5.0}
    assert [item["met"] for item in derived["accuracy_targets"]] == [True, True]


def test_deepxde_is_no_dependency_of_kanpde():
    sources = (ROOT / "kanpde").rglob("*.py")
    assert not [path for path in sources if "deepxde" in path.read_text().lower()]
