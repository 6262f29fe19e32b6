"""Inverse problems: measured data (kanpde.data), unknown parameters (kanpde.unknown), their
identification (kanpde.identify) and the heat_inverse problem. Every data set is made here."""

from __future__ import annotations

import math
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import kanpde
from kanpde.autodiff import autograd_jet
from kanpde.cli import main
from kanpde.config import load_config
from kanpde.data import Observations, read_observations
from kanpde.field import Field, SystemJet
from kanpde.geometry import Sampler
from kanpde.identify import identified
from kanpde.loss import loss_terms
from kanpde.nets import KAN
from kanpde.problems.heat1d import Heat1D
from kanpde.problems.heat_inverse import HeatInverse
from kanpde.results import read_history, read_summary
from kanpde.solver import solve
from kanpde.train import Trainer

pytestmark = pytest.mark.usefixtures("single_thread")
NU = 0.1  # heat1d's true ν


def write_measurements(path, count: int = 200, seed: int = 0, noise: float = 0.0):
    """``count`` values of heat1d's exact solution at random (x, t), as CSV columns x, t, u."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (count, 2))
    u = Heat1D().exact(torch.tensor(x)).numpy() + noise * rng.standard_normal(count)
    np.savetxt(path, np.column_stack([x, u]), delimiter=",", header="x,t,u", comments="")
    return x, u


def inverse_config(data_file, stages) -> dict:
    return {"problem": {"name": "heat1d", "params": {"nu": {"unknown": True, "init": 0.05, "positive": True}}},
            "model": {"width": [2, 6, 1], "grid": 5}, "points": {"interior": 300, "boundary": 0, "initial": 0},
            "train": {"stages": stages}, "evaluate": {"every": 0, "resolution": 51}, "output": {"plots": False},
            "data": [{"file": str(data_file), "field": "u"}]}


ADAM = {"optimizer": "adam", "steps": 50, "lr": 0.01}
LBFGS = {"optimizer": "lbfgs", "steps": 20}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One straight run (Adam then L-BFGS) and the same run interrupted after Adam and resumed."""
    root = tmp_path_factory.mktemp("inverse")
    write_measurements(root / "obs.csv")
    straight = solve(inverse_config(root / "obs.csv", [ADAM, LBFGS]), out=root / "straight", quiet=True)
    solve(inverse_config(root / "obs.csv", [ADAM]), out=root / "split", quiet=True)
    resumed = solve(inverse_config(root / "obs.csv", [ADAM, LBFGS]), out=root / "split", quiet=True, resume=True)
    return root, straight, resumed


# -- recovery, history, checkpoint ----------------------------------------------------------
def test_scalar_parameter_recovered_to_one_percent_from_noise_free_data(runs):
    _, straight, _ = runs
    nu = straight["identified"]["nu"]
    assert abs(nu["value"] - NU) / NU < 0.01, nu
    assert nu["init"] == 0.05 and nu["positive"]
    assert nu["std"] is not None and 0 < nu["std"] < 0.01 * NU  # the residual pins ν down tightly
    assert straight["rel_l2"] < 1e-2  # u against e^{−νπ²t} sin(πx) with the true ν


def test_identified_value_is_recorded_at_every_step(runs):
    root, straight, _ = runs
    history = read_history(root / "straight")
    values = [row["nu"] for row in history]
    assert len(values) == straight["steps"] == 70
    assert abs(values[0] - 0.05) < 0.005  # one Adam step (lr 0.01 on softplus⁻¹ν) from the start
    assert values[-1] == pytest.approx(straight["identified"]["nu"]["value"], rel=1e-12)
    assert all(math.isfinite(v) and v > 0 for v in values)


def test_checkpoint_resume_round_trip_of_the_unknown(runs):
    root, straight, resumed = runs
    assert resumed["identified"]["nu"]["value"] == pytest.approx(straight["identified"]["nu"]["value"], abs=1e-10)
    history = read_history(root / "split")
    assert [row["nu"] for row in history] == pytest.approx([row["nu"] for row in read_history(root / "straight")],
                                                           abs=1e-10)
    state = torch.load(root / "split" / "checkpoint.pt", weights_only=False)["trainer"]["field"]
    raw = state["unknowns.nu.raw"]
    assert float(torch.nn.functional.softplus(raw)) == pytest.approx(resumed["identified"]["nu"]["value"], rel=1e-12)
    loaded = kanpde.load(root / "split")  # the trained ν comes back with the model
    assert float(loaded.problem.nu) == pytest.approx(resumed["identified"]["nu"]["value"], rel=1e-12)


def test_cli_prints_the_identified_value_on_the_final_line(tmp_path, monkeypatch, capsys):
    """Data paths are relative to the current directory."""
    monkeypatch.chdir(tmp_path)
    write_measurements(tmp_path / "obs.csv")
    code = main(["solve", "heat1d.yaml", "--out", "run", "--quiet",
                 "--set", "train.stages=[{optimizer: adam, steps: 3}]",
                 "--set", "problem.params.nu={unknown: true, init: 0.05}", "--set", "data=[{file: obs.csv, field: u}]",
                 "--set", "evaluate.resolution=11", "--set", "output.plots=false"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert lines[-1].startswith("identified: nu = ")
    summary = read_summary(tmp_path / "run")
    assert lines[-1] == f"identified: {kanpde.identify.describe(summary['identified'])}"


def test_burgers_with_an_unknown_viscosity_from_a_csv(tmp_path, monkeypatch, capsys):
    """The issue's command: burgers' reference (a function of ν) is built at the true ν, not the trained tensor."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x, t = rng.uniform(-1, 1, 50), rng.uniform(0, 1, 50)
    np.savetxt("obs.csv", np.column_stack([x, t, -np.sin(np.pi * x) * (1 - t)]), delimiter=",", header="x,t,u",
               comments="")
    code = main(["solve", "burgers.yaml", "--out", "run", "--quiet",
                 "--set", "train.stages=[{optimizer: adam, steps: 2}]", "--set", "points.interior=100",
                 "--set", "problem.params.nu={unknown: true, init: 0.05, positive: true}",
                 "--set", "data=[{file: obs.csv, field: u}]", "--set", "output.plots=false"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and lines[-1].startswith("identified: nu = ")
    summary = read_summary(tmp_path / "run")
    assert summary["identified"]["nu"]["init"] == pytest.approx(0.05)


# -- unknown parameters --------------------------------------------------------------------------
def test_unknown_reads_as_a_trainable_tensor_and_positive_stays_positive():
    problem = Heat1D(nu=kanpde.Unknown(init=0.05, positive=True))
    assert isinstance(problem.nu, torch.Tensor) and float(problem.nu) == pytest.approx(0.05, rel=1e-14)
    problem.unknowns["nu"].raw.data.fill_(-50.0)
    assert float(problem.nu) > 0
    with problem.true_values():  # exact() describes the truth, the parameter's default
        assert problem.nu == NU
    assert Heat1D().unknowns == {} and Heat1D().nu == NU


def test_own_learning_rate_is_a_parameter_group_of_its_own():
    problem = Heat1D(nu=kanpde.Unknown(init=0.05, lr=0.05))
    problem.add_observations(Observations([[0.5, 0.5]], [0.3]))
    field = Field(KAN([2, 3, 1], grid=3), problem).double()
    config = load_config("heat1d.yaml", ["train.stages=[{optimizer: adam, steps: 2, lr: 0.001}]"]).train
    trainer = Trainer(field, Sampler(problem.box, 20, 0, 0, seed=0), config, progress=False)
    trainer.run()
    groups = trainer.optimizer.param_groups
    assert len(groups) == 2 and groups[1]["params"][0] is problem.unknowns["nu"].raw
    assert groups[0]["lr"] == 0.001 and groups[1]["lr"] == 0.05
    assert float(problem.nu) != 0.05  # trained


@pytest.mark.parametrize("value, message", [
    ({"unknown": True}, "problem.params.nu.init: required key is missing"),
    ({"unknown": True, "init": 0.05, "positiv": True}, "problem.params.nu.positiv: unknown key"),
    ({"unknown": True, "init": -1.0, "positive": True}, "problem.params.nu: a positive unknown needs init > 0"),
    ({"unknown": False, "init": 0.05}, "problem.params.nu: a mapping declares an unknown parameter"),
])
def test_bad_unknown_declarations_are_one_line_errors(value, message):
    with pytest.raises(ValueError, match=message):
        Heat1D(nu=value)


def test_standard_error_is_the_gauss_newton_formula():
    """For r = u_t − ν u_xx (linear in ν) J = −u_xx, and std² = s²/(JᵀJ) with s² = Σr²/(N − 1)."""
    problem = Heat1D(nu=kanpde.Unknown(init=0.08))
    field = Field(KAN([2, 4, 1], grid=3), problem).double()
    x = Sampler(problem.box, 200, 0, 0, seed=1, dtype=torch.float64).sample(0).interior
    result = identified(field, x)["nu"]
    jet = field.jet(x, "diagonal")
    u_t, u_xx = jet.d("t")[:, 0].detach(), jet.d("x", "x")[:, 0].detach()
    r = u_t - 0.08 * u_xx
    expected = math.sqrt(float(r.square().sum()) / (len(r) - 1) / float(u_xx.square().sum()))
    assert result["value"] == pytest.approx(0.08, rel=1e-14)
    assert result["std"] == pytest.approx(expected, rel=1e-9)


# -- observations ----------------------------------------------------------------------------------
def test_observations_read_from_csv_npz_and_hdf5_agree(tmp_path):
    x, u = write_measurements(tmp_path / "obs.csv", count=10)
    np.savez(tmp_path / "obs.npz", x=x[:, 0], t=x[:, 1], u=u)
    with h5py.File(tmp_path / "obs.h5", "w") as f:
        f["x"], f["t"], f["u"] = x[:, 0], x[:, 1], u
    for name in ("obs.csv", "obs.npz", "obs.h5"):
        data = read_observations(tmp_path / name, ("x", "t"), ("u",))
        assert torch.allclose(data.x, torch.tensor(x), rtol=0, atol=1e-15) and data.name == "data_u"
        assert torch.allclose(data.values, torch.tensor(u), rtol=0, atol=1e-15)


def test_observations_are_sharded_like_collocation_points():
    data = Observations(torch.rand(11, 2), torch.rand(11))
    parts = [data.part(rank, 3) for rank in range(3)]
    assert [len(p) for p in parts] == [4, 4, 3]
    assert torch.equal(torch.cat([p.values for p in parts]), data.values)


def test_misfit_term_is_the_mean_squared_error_over_noise():
    problem = Heat1D()
    field = Field(KAN([2, 3, 1], grid=3), problem).double()
    x = torch.tensor([[0.2, 0.3], [0.7, 0.9]], dtype=torch.float64)
    problem.add_observations(Observations(x, [1.0, -1.0], noise=0.5, name="probe"))
    points = Sampler(problem.box, 10, 0, 0, seed=0, dtype=torch.float64).sample(0)
    term = loss_terms(field, points)["probe"]
    expected = ((field(x)[:, 0] - torch.tensor([1.0, -1.0], dtype=torch.float64)) / 0.5).square().mean()
    assert float(term) == pytest.approx(float(expected), rel=1e-14)


BAD_FILES = {  # file name, content -> what the one-line error must say
    "extra.csv": ("x,t,u,v\n0.5,0.5,1,2\n", "extra.csv: unknown column 'v'"),
    "missing.csv": ("x,u\n0.5,1\n", "missing.csv: missing column 't'"),
    "nan.csv": ("x,t,u\n0.5,0.5,1\n0.5,0.5,nan\n", "nan.csv: column u, row 2: not a finite number"),
    "outside.csv": ("x,t,u\n0.5,0.5,1\n1.5,0.5,1\n", "outside.csv: column x, row 2: the point"),
    "text.csv": ("x,t,u\n0.5,zero,1\n", "text.csv: column t, line 2: not a number"),
    "ragged.csv": ("x,t,u\n0.5,0.5\n", "ragged.csv: line 2 has 2 values"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_data_files_exit_2_with_one_line(name, tmp_path, monkeypatch, capsys):
    content, message = BAD_FILES[name]
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(content)
    code = main(["solve", "heat1d.yaml", "--out", "run", "--quiet", "--set", f"data=[{{file: {name}}}]"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert message in err, err
    assert not (tmp_path / "run").exists()  # nothing written


def test_unequal_lengths_and_missing_files_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "short.npz", x=np.full(3, 0.5), t=np.full(2, 0.5), u=np.zeros(3))
    for name, message in (("short.npz", "short.npz: columns differ in length: x 3, t 2, u 3"),
                          ("absent.csv", "absent.csv: data file not found"),
                          ("obs.txt", "obs.txt: unknown data format .txt")):
        (tmp_path / "obs.txt").write_text("x")
        code = main(["solve", "heat1d.yaml", "--quiet", "--set", f"data=[{{file: {name}}}]"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_data_for_an_unknown_field_is_refused(tmp_path):
    write_measurements(tmp_path / "obs.csv", count=3)
    with pytest.raises(ValueError, match="unknown field 'p'"):
        read_observations(tmp_path / "obs.csv", ("x", "t"), ("u",), field="p")


# -- heat_inverse ------------------------------------------------------------------------------------
def test_heat_inverse_truth_solves_its_equation_and_data_are_reproducible():
    problem = HeatInverse()
    x = Sampler(problem.box, 300, 0, 0, seed=3, dtype=torch.float64).sample(0).interior
    jet = autograd_jet(lambda p: problem.exact(p), x, "diagonal", problem.coords)
    assert float(problem.residual(SystemJet(jet, problem.fields), x).abs().max()) < 1e-12
    (data,) = problem.data
    assert len(data) == 2500 and data.field == "u"
    noise = data.values - problem.exact(data.x)[:, 0]
    assert 0.09 < float(noise.std()) < 0.11  # σ = 0.1
    assert torch.equal(HeatInverse().data[0].values, data.values)  # the same measurements every time
    field = Field(KAN([3, 3, 2], grid=3), problem).double()
    boundary = torch.tensor([[-1.0, 0.3, 0.5], [0.2, 1.0, 0.9]], dtype=torch.float64)
    assert torch.allclose(field(boundary)[:, 1], torch.full((2,), 2.0, dtype=torch.float64))  # a known there


@pytest.mark.slow
def test_readme_inverse_example_runs(tmp_path, monkeypatch, capsys):
    """The python block of the README's "## Inverse problems" section: ν to 1 %."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Inverse problems.*?(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Inverse problems' section"
    code = re.search(r"```python\n(.*?)```", section.group(0), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md:Inverse problems", "exec"), {"__name__": "readme_inverse"})
    line = capsys.readouterr().out.strip().splitlines()[-1]
    value = float(re.match(r"nu = ([0-9.]+) ±", line).group(1))
    assert abs(value - NU) < 0.01 * NU, line


@pytest.mark.parametrize("entry, message", [
    ({"field": "u"}, "data[0].file: required key is missing"),
    ({"file": "a.csv", "weight": -1}, "data[0].weight: must be a non-negative finite number"),
    ({"file": "a.csv", "nois": 0.1}, "data[0].nois: unknown key; did you mean 'noise'?"),
])
def test_bad_data_entries_are_config_errors(entry, message):
    with pytest.raises(kanpde.ConfigError, match=re.escape(message)):
        kanpde.config.config_from_dict({"problem": {"name": "heat1d"}, "data": [entry]})


def test_a_stage_weights_its_loss_terms_for_that_stage_only():
    """train.stages[i].loss_weights: e.g. the data term weighted up while the network is far from the data."""
    problem = Heat1D(nu=kanpde.Unknown(init=0.05, positive=True))
    problem.add_observations(Observations([[0.5, 0.5], [0.25, 0.1]], [0.3, 0.6]))
    field = Field(KAN([2, 3, 1], grid=3), problem).double()
    stages = ("train.stages=[{optimizer: adam, steps: 2, lr: 0.01, loss_weights: {data_u: 100}},"
              " {optimizer: adam, steps: 2, lr: 0.01}]")
    config = load_config("heat1d.yaml", [stages, "train.loss_weights={data_u: 3, residual: 0.5}"]).train
    trainer = Trainer(field, Sampler(problem.box, 20, 0, 0, seed=0), config, progress=False)
    trainer.run()
    first, second = trainer.weights_of(config.stages[0]), trainer.weights_of(config.stages[1])
    assert first == {"residual": 0.5, "data_u": 100}  # a term the stage does not name keeps the run's weight
    assert second == {"residual": 0.5, "data_u": 3}
    for row, weights in zip(trainer.history.rows, [first, first, second, second]):
        assert row["loss"] == pytest.approx(sum(w * row[name] for name, w in weights.items()), rel=1e-12)


@pytest.mark.parametrize("override, message", [
    ("train.stages=[{optimizer: adam, steps: 1, loss_weights: {dat_u: 2}}]",
     "train.stages[0].loss_weights.dat_u: unknown loss term of heat1d; did you mean 'data_u'?"),
    ("train.stages=[{optimizer: adam, steps: 1, loss_weights: {data_u: 2}}]",
     "train.stages[0].loss_weights: cannot be combined with train.loss_balancing"),
])
def test_bad_stage_loss_weights_are_one_line_errors(override, message):
    problem = Heat1D()
    problem.add_observations(Observations([[0.5, 0.5]], [0.3]))
    field = Field(KAN([2, 3, 1], grid=3), problem).double()
    config = load_config("heat1d.yaml", [override, "train.loss_balancing={every: 10}"] if "combined" in message
                         else [override]).train
    with pytest.raises(ValueError, match=re.escape(message)):
        Trainer(field, Sampler(problem.box, 20, 0, 0, seed=0), config, progress=False)
