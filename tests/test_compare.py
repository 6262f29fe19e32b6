"""kanpde.compare and scripts/reproduce_tables.py, end to end on tiny budgets (seconds)."""

from __future__ import annotations

import importlib.util
import json
import math
import statistics
import sys
from pathlib import Path

import pytest

from kanpde.compare import DEFAULT_VARIANTS, compare, model_configs
from kanpde.config import load_config

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = ["train.stages=[{optimizer: adam, steps: 2}]", "points.interior=48", "points.boundary=16",
        "evaluate.every=0", "evaluate.resolution=9", "output.plots=false"]
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reproduce_tables.py"


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    config = load_config("darcy", TINY)
    small = {"mlp": ["model.width=[2, 16, 16, 1]"], "siren": {"model.width": [2, 16, 1]},
             "fourier_mlp": ["model.width=[2, 16, 1]", "model.features=8"]}
    return out, compare(config, ["kan", "mlp", "siren", "fourier_mlp"], 2, out, small, quiet=True)


def test_compare_writes_table_json_and_figure(compared, capsys):
    out, result = compared
    assert [row["model"] for row in result["rows"]] == ["kan", "mlp", "siren", "fourier_mlp"]
    table = json.loads((out / "table.json").read_text())
    assert table["seeds"] == 2 and table["problem"] == "darcy"
    markdown = (out / "table.md").read_text()
    assert markdown == result["markdown"]
    for row, stored in zip(result["rows"], table["rows"]):
        assert stored["model"] == row["model"] and len(stored["per_seed"]) == 2
        values = [seed["rel_l2"] for seed in stored["per_seed"]]
        assert all(math.isfinite(v) and v > 0 for v in values)
        assert stored["rel_l2_mean"] == pytest.approx(statistics.fmean(values))
        assert stored["rel_l2_std"] == pytest.approx(statistics.stdev(values))
        assert stored["steps"] == 2 and stored["params"] > 0 and stored["device"] == "cpu"
        assert stored["seconds_per_step"] > 0 and stored["train_seconds_mean"] > 0
        assert [seed["seed"] for seed in stored["per_seed"]] == [0, 1]  # model seeds vary
        for run_dir in stored["run_dirs"]:
            assert (Path(run_dir) / "summary.json").exists()
        line = next(line for line in markdown.splitlines() if line.startswith(f"| {row['model']} |"))
        assert f"{row['rel_l2_mean']:.2e} ± {row['rel_l2_std']:.2e}" in line and str(row["params"]) in line
    widths = {row["model"]: row["width"] for row in table["rows"]}
    assert widths == {"kan": [2, 100, 1], "mlp": [2, 16, 16, 1], "siren": [2, 16, 1], "fourier_mlp": [2, 16, 1]}
    assert (out / "comparison.png").stat().st_size > 1000


def test_compare_shares_points_and_varies_model_seeds(compared):
    out, _ = compared
    seed0 = load_config(out / "kan" / "seed0" / "config.yaml")
    seed1 = load_config(out / "kan" / "seed1" / "config.yaml")
    assert (seed0.train.seed, seed1.train.seed) == (0, 1)
    if hasattr(seed0.points, "seed"):  # the points' own seed, where kanpde has one
        assert seed0.points.seed == seed1.points.seed


def test_model_configs_defaults_and_overrides():
    config = load_config("allen_cahn_periodic")
    variants = model_configs(config, ["kan", "mlp", "siren", "fourier_mlp", "wide"],
                             {"wide": {"model": {"type": "mlp", "width": [3, 256, 1]}}, "mlp": ["model.grid=7"]})
    assert variants["kan"].model == config.model  # the config's own model for its own type
    assert variants["mlp"].model.width == (3, 128, 128, 128, 1)  # periodic problem: 3 inputs
    assert variants["mlp"].train.stages[0].lr == DEFAULT_VARIANTS["mlp"]["adam_lr"]
    assert variants["siren"].model.type == "siren" and variants["fourier_mlp"].model.features == 64
    assert variants["wide"].model.width == (3, 256, 1)
    assert variants["kan"].train.causal_epsilon == config.train.causal_epsilon  # shared protocol


@pytest.mark.parametrize("models, overrides, message", [
    (["unknown"], None, "unknown model"),
    (["kan"], {"mlp": []}, "not among the models"),
    (["kan", "kan"], None, "twice"),
    (["mlp"], {"mlp": ["model.width=[3, 8, 1]"]}, "first size"),
    (["mlp"], {"mlp": ["model.nope=1"]}, "unknown key"),
])
def test_compare_rejects_bad_input_before_training(tmp_path, models, overrides, message):
    with pytest.raises(ValueError, match=message):
        compare(load_config("darcy", TINY), models, 1, tmp_path / "out", overrides)
    assert not (tmp_path / "out").exists()


def _script():
    if "reproduce_tables" not in sys.modules:  # registered first: its dataclasses look their module up
        spec = importlib.util.spec_from_file_location("reproduce_tables", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["reproduce_tables"]


@pytest.mark.parametrize("table", ["darcy", "allen_cahn"])
def test_reproduce_tables_tiny(tmp_path, table, capsys):
    script = _script()  # sets 1 thread (--threads), as the module's single_thread fixture does and undoes
    assert script.main(["--table", table, "--budget", "tiny", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "reproduced.json").read_text())
    rows = script.TABLES[table]["rows"]
    assert [r["row"] for r in report["rows"]] == [row.name for row in rows]
    compared = {r["model"]: r for r in json.loads((tmp_path / "table.json").read_text())["rows"]}
    for row, stored in zip(rows, report["rows"]):
        assert stored["published_rel_l2"] == row.published and stored["published_seconds"] == row.published_seconds
        assert stored["rel_l2_mean"] == compared[row.label]["rel_l2_mean"] and math.isfinite(stored["rel_l2_mean"])
        assert stored["params"] == compared[row.label]["params"] > 0
        budget = script.BUDGETS["tiny"][table][row.kind]
        assert stored["steps"] == row.factor * sum(stage["steps"] for stage in budget)
        line = next(line for line in printed.splitlines() if line.startswith(f"| {row.name} |"))
        assert f"{stored['rel_l2_mean']:.2e}" in line
        if row.published is not None:
            assert f"{row.published:.2e}" in line
    assert (tmp_path / "reproduced.md").read_text() in printed
    assert "tiny budget" in printed and (tmp_path / "comparison.png").exists()
    for row in rows:  # the budget's shared overrides; Darcy's L-BFGS stage has its own, fixed points
        config = load_config(tmp_path / row.label / "seed0" / "config.yaml")
        assert config.points.interior == 64, row.label
        own = [stage.points.changes() for stage in config.train.stages if stage.points]
        expected = [{"interior": 80, "resample_every": 0}] if (table, row.kind) == ("darcy", "kan_lbfgs") else []
        assert own == expected, row.label
        if row.extend_to is not None:  # the grid is extended when the last stage starts
            summary = json.loads((tmp_path / row.label / "seed0" / "summary.json").read_text())
            assert summary["grid"] == row.extend_to and summary["events"][0].startswith("step 3: grid 5 -> 10")
    mlp = next(r for r in report["rows"] if r["label"] == "mlp")
    assert mlp["params"] == 33537  # [2,128,128,128,1]


@pytest.mark.parametrize("budget", ["tiny", "quick", "full"])
def test_reproduce_tables_ours_rows_overrides(budget):
    """The symmetric rows build the symmetry in (kan_100_g10_quintic with splines of order 5); kan_propagated adds
    the propagated residual, off (weight 0) until its last stage, on the budget's grid."""
    script = _script()
    rows = {(table, row.label): (row, script.BUDGETS[budget][table]) for table in script.TABLES
            for row in script.TABLES[table]["rows"]}
    for table, label in [("allen_cahn", "kan_propagated"), ("darcy", "kan_100_g10_symmetric"),
                         ("darcy", "kan_100_g10_quintic")]:
        row, plan = rows[table, label]
        config = load_config(script.TABLES[table]["config"], [*plan["sets"], *script.row_overrides(row, plan)])
        assert config.problem.params["symmetric"] is True, label
        assert list(config.model.width) == row.model["width"] and config.model.grid == row.model["grid"]
        assert config.model.order == (5 if label == "kan_100_g10_quintic" else 3)
        weights = [stage.loss_weights for stage in config.train.stages]
        if label == "kan_propagated":
            assert tuple(config.train.propagated_residual.grid) == ((8, 8) if budget == "tiny" else (200, 200))
            assert config.train.loss_weights == {"propagated_residual": 0}
            assert [s.optimizer for s in config.train.stages] == ["adam", "lbfgs", "lbfgs"]
            assert weights[-1] == {"propagated_residual": 1.0} and not any(weights[:-1])
            assert [s.causal_epsilon for s in config.train.stages[1:]] == [1e4, 1e4]
        else:  # the same stages as the unsymmetric (ours) row
            assert config.train.propagated_residual is None and not any(weights)
            assert row.kind == rows[table, "kan_100_g10_lbfgs"][0].kind == "kan_lbfgs"
    for (_, label), (row, plan) in rows.items():  # the other rows stay unsymmetric, without the term
        if label not in ("kan_propagated", "kan_100_g10_symmetric", "kan_100_g10_quintic"):
            overrides = " ".join(script.row_overrides(row, plan))
            assert "symmetric" not in overrides and "propagated" not in overrides, label


def test_reproduce_tables_rows_trains_only_those(tmp_path, capsys):
    """--rows: only the named rows are trained and reported; kan_propagated runs end to end on the tiny budget."""
    script = _script()
    assert script.main(["--table", "allen_cahn", "--budget", "tiny", "--out", str(tmp_path),
                        "--rows", "kan_propagated,kan"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "reproduced.json").read_text())
    assert [r["label"] for r in report["rows"]] == ["kan", "kan_propagated"]  # the table's order
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["kan", "kan_propagated"]
    assert "| KAN [2,5,5,1] G=5, symmetric, propagated residual (ours) |" in printed
    assert "Adam + L-BFGS" not in printed and "MLP" not in printed
    assert "loss weights propagated_residual 1" in printed and "problem.params.symmetric=true" in printed
    run = tmp_path / "kan_propagated" / "seed0"
    summary = json.loads((run / "summary.json").read_text())
    assert "propagated_residual" in summary["loss_terms"] and summary["steps"] == 3 + 2 + 2
    header, *lines = (run / "history.csv").read_text().splitlines()
    column = header.split(",").index("propagated_residual")
    values = [line.split(",")[column] for line in lines]
    assert values[-1] and math.isfinite(float(values[-1])) and float(values[-1]) > 0  # computed in the last stage
    assert not any(values[:5])  # weight 0 before it: not computed
    assert load_config(run / "config.yaml").problem.params["symmetric"] is True
    assert "propagated_residual" not in (tmp_path / "kan" / "seed0" / "history.csv").read_text()


@pytest.mark.parametrize("rows, named", [("mlp,nope", "'nope'"), ("kan_propagated", "'kan_propagated'"), (",", "")])
def test_reproduce_tables_rows_rejects_unknown_label(tmp_path, capsys, rows, named):
    """An unknown label (kan_propagated is an Allen–Cahn row, not a Darcy one): a one-line error naming it and
    listing the table's rows, exit status 2, before any training."""
    with pytest.raises(SystemExit) as exit_info:
        _script().main(["--table", "darcy", "--budget", "tiny", "--out", str(tmp_path / "out"), "--rows", rows])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "--rows: no " in errors[0] and named in errors[0], errors
    assert "rows: kan_10_g20, kan_100_g10, " in errors[0]
    assert errors[0].endswith("kan_100_g10_symmetric, kan_100_g10_quintic)")
    assert not (tmp_path / "out").exists()
