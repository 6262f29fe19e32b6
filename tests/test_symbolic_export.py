"""Tests for the symbolic export (kanpde.symbolic.pipeline).

export(): arguments are checked; the command line rejects bad input with one line and status 2. The
slow end-to-end test trains the poisson_sin config and recovers u = sin(πx)·sin(πy) from the network,
sympy-equal to the exact solution.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
import torch

import kanpde
from kanpde import symbolic
from kanpde.problems.poisson_sin import PoissonSin
from tests.symbolic_cases import (
    TOL,
    assert_compiles_as_math,
    float64_single_thread,  # noqa: F401 (autouse fixture)
    import_file,
    random_field,
)


def test_export_arguments_are_checked():
    field = random_field(PoissonSin(), [2, 1], grid=3, order=1)
    with pytest.raises(ValueError, match="mode"):
        symbolic.export(field, mode="bogus")
    with pytest.raises(ValueError, match="format"):
        symbolic.export(field, format="pdf")
    with pytest.raises(ValueError, match="unknown option"):
        symbolic.export(field, mode="compact", prun=0.1)
    with pytest.raises(ValueError, match="compact only"):
        symbolic.export(field, mode="exact", refine=True)
    with pytest.raises(TypeError, match="source"):
        symbolic.export(42)


def cli_error(argv: list[str], capsys) -> str:
    """``python -m kanpde ARGV`` in process: exit status 2 and one line on stderr (returned), no traceback."""
    from kanpde.cli import main

    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse errors
        status = exit_.code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "Traceback" not in captured.err, (status, captured.err)
    return lines[0]


def test_export_command_line_bad_input(tmp_path, capsys, monkeypatch):
    from kanpde.config import load_config
    from kanpde.solver import solve

    monkeypatch.delenv("KANPDE_TRACEBACK", raising=False)
    assert "run_dir" in cli_error(["export", str(tmp_path / "missing")], capsys)
    mlp = tmp_path / "mlp"
    tiny = ["model.type=mlp", "train.stages=[{optimizer: adam, steps: 2}]", "points.interior=50",
            "points.boundary=20", "evaluate.resolution=11", "output.plots=false"]
    solve(load_config("poisson_sin.yaml", tiny), out=mlp, quiet=True)
    capsys.readouterr()  # the solve's own warnings (grid keys of the KAN config on an MLP) are not the export's
    for mode in ("exact", "compact"):
        assert "needs a KAN" in cli_error(["export", str(mlp), "--mode", mode], capsys)
    assert "--mode" in cli_error(["export", str(mlp), "--mode", "bogus"], capsys)
    assert "--format" in cli_error(["export", str(mlp), "--format", "pdf"], capsys)
    assert not (mlp / "symbolic").exists()


# -- end to end: train poisson_sin briefly, recover sin(πx)·sin(πy) ------------------------------------
@pytest.fixture(scope="module")
def poisson_sin_run(tmp_path_factory):
    from kanpde.config import load_config
    from kanpde.solver import solve

    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("poisson_sin") / "run"
    summary = solve(load_config("poisson_sin.yaml", ["output.plots=false"]), out=out, quiet=True)
    return out, summary


@pytest.mark.slow
def test_poisson_sin_compact_export_recovers_the_solution(poisson_sin_run):
    run_dir, summary = poisson_sin_run
    torch.set_num_threads(2)
    result = symbolic.export(run_dir, mode="compact", refine=True)
    x, y = sympy.symbols("x y", real=True)
    exact = sympy.sin(sympy.pi * x) * sympy.sin(sympy.pi * y)
    verification = result.verification["compact"]
    assert sympy.simplify(result.expression - exact) == 0, (result.expression, verification)  # as exported
    assert verification["rel_l2"] <= 1e-6 < summary["rel_l2"]  # better than the network it came from
    assert verification["residual_max_abs"] <= 1e-6
    assert verification["conditions"]["boundary"]["max_abs_err"] <= 1e-6
    for kind in ("sympy", "latex", "python", "json"):
        assert result.paths[kind].exists() and result.paths[kind].parent == run_dir / "symbolic"
    module = import_file(result.paths["python"])
    grid = np.linspace(-1, 1, 11)
    np.testing.assert_allclose(module.u(grid[:, None], grid[None, :]),
                               np.sin(np.pi * grid[:, None]) * np.sin(np.pi * grid[None, :]), atol=1e-6)
    parsed = symbolic.parse_text(result.paths["sympy"].read_text())["u"]
    assert parsed == result.expression
    latex = result.paths["latex"].read_text()
    assert_compiles_as_math(latex)
    # LaTeX-free round trip: the .tex is sympy's printing of the formula read back from the .txt
    assert latex == symbolic.render._program_latex(symbolic.Program(result.program.coords, [], [parsed], ["u"]))
    report = symbolic.format_report(result)
    assert "u(x, y) = " in report and "compact" in report and "rel. L2" in report


@pytest.mark.slow
def test_exact_export_of_a_run_directory(poisson_sin_run):
    import json

    run_dir, summary = poisson_sin_run
    result = kanpde.export(run_dir, mode="exact", format="python")  # the package-level name
    assert result.text == (run_dir / "symbolic" / "exact.py").read_text()
    stored = json.loads((run_dir / "symbolic" / "symbolic.json").read_text())
    assert {"model", "exact"} <= set(stored)
    assert stored["exact"]["max_diff_model"] <= TOL
    assert math.isclose(stored["model"]["rel_l2"], summary["rel_l2"], rel_tol=0.05)
    report = symbolic.format_report(symbolic.export(run_dir, mode="exact"), max_chars=600)
    assert "characters omitted" in report and len(report) < 2500
