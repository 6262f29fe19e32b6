"""scripts/fit_reference.py: the capacity probe regresses the PINN's field onto the known solution."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fit_reference.py"


def _script():
    spec = importlib.util.spec_from_file_location("fit_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regression_fits_the_exact_solution(capsys):
    assert _script().main(["poisson.yaml", "--adam", "40", "--lbfgs", "40", "--every", "40", "--pinn",
                           "--set", "evaluate.resolution=21",
                           "--set", "train.stages=[{optimizer: lbfgs, steps: 40}]"]) == 0
    printed = capsys.readouterr().out
    errors = [float(e) for e in re.findall(r"^step \d+ .*rel\. L2 ([0-9.e+-]+)", printed, re.MULTILINE)]
    assert len(errors) == 2 and errors[1] < errors[0] / 3 and errors[1] < 0.05, errors
    assert re.search(r"^PINN loss of the fit .*: residual [0-9.e+-]+, boundary [0-9.e+-]+$", printed, re.MULTILINE)
    pinn = [float(e) for e in re.findall(r"^PINN step \d+: rel\. L2 ([0-9.e+-]+)", printed, re.MULTILINE)]
    assert len(pinn) == 1 and pinn[0] < errors[1], (pinn, errors)  # the PINN loss improves this fit


def test_bad_arguments_exit_2():
    with pytest.raises(SystemExit) as exit_info:
        _script().main(["poisson.yaml", "--adam", "-1"])
    assert exit_info.value.code == 2
