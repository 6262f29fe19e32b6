"""Data-parallel training (torchrun, gloo on CPU) and parallel compare workers.

Two ranks must reproduce a single-process run on the same global points to round-off (float64):
Adam steps after a grid extension, then L-BFGS, in a 2-rank ``--resume`` of a single-process start.
The shares of the loss terms are checked in-process with two threads standing in for two ranks.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
import yaml
from helpers import assert_close

from kanpde import distributed
from kanpde.cli import main
from kanpde.compare import compare
from kanpde.config import load_config
from kanpde.distributed import World
from kanpde.geometry import Sampler
from kanpde.loss import loss_terms
from kanpde.solver import build_field, build_problem, solve

pytestmark = pytest.mark.usefixtures("single_thread")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reproduce_tables.py"

STAGES = [{"optimizer": "adam", "steps": 4, "lr": 0.01}, {"optimizer": "lbfgs", "steps": 5}]
CONFIG = {  # odd point counts: the two shards differ in size
    "problem": {"name": "poisson"},
    "model": {"type": "kan", "width": [2, 5, 1], "grid": 3},
    "points": {"interior": 301, "boundary": 61, "sampler": "sobol"},
    "train": {"device": "cpu", "stages": STAGES, "grid_schedule": {2: 6}},
    "evaluate": {"every": 0, "resolution": 21},
    "output": {"plots": False},
}
SPY = '''
"""Runs the kanpde command line, noting which ranks started and which wrote into the run directory."""
import os, sys
from pathlib import Path
import kanpde.results
from kanpde.cli import main

log, rank = Path(os.environ["SPY_LOG"]), os.environ["RANK"]
(log / f"started-{rank}").touch()
atomic = kanpde.results._atomic
def spied(path, write):
    (log / f"wrote-{rank}").touch()
    return atomic(path, write)
kanpde.results._atomic = spied
sys.exit(main(sys.argv[1:]))
'''


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A single-process run (Adam 4 steps with G 3 → 6 at step 2, then L-BFGS 5 steps), and the same
    run on 2 ranks: its first 2 Adam steps in this process, the rest by torchrun with ``--resume``,
    through a spy that records which ranks started and which wrote files."""
    root = tmp_path_factory.mktemp("distributed")
    config_path = root / "config.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    solve(CONFIG, out=root / "single", quiet=True)
    solve({**CONFIG, "train": {**CONFIG["train"], "stages": [{**STAGES[0], "steps": 2}]}}, out=root / "two",
          quiet=True)
    (root / "spy").mkdir()
    (root / "spy.py").write_text(SPY)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "spy.py",
               "solve", str(config_path), "--out", "two", "--resume", "--quiet"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "SPY_LOG": str(root / "spy")}
    result = subprocess.run(command, capture_output=True, text=True, cwd=root, env=environment, timeout=300)
    return root, result


def test_two_ranks_match_one_process_for_adam_and_lbfgs(runs):
    root, result = runs
    assert result.returncode == 0, result.stderr
    state = torch.load(root / "two" / "checkpoint.pt", weights_only=False)["trainer"]
    single = torch.load(root / "single" / "checkpoint.pt", weights_only=False)["trainer"]
    assert state["field"].keys() == single["field"].keys() and state["grid"] == single["grid"] == 6
    for name, value in single["field"].items():
        assert_close(state["field"][name], value, 1e-10)
    # every step's loss: the Adam steps 3-4 (after the grid extension) and L-BFGS steps 5-9 on 2 ranks
    assert [row["step"] for row in state["history"]] == list(range(1, 10))
    for row, expected in zip(state["history"], single["history"]):
        assert row["loss"] == pytest.approx(expected["loss"], rel=1e-12, abs=0)
        assert row["boundary"] == pytest.approx(expected["boundary"], rel=1e-10, abs=0)


def test_only_rank_0_writes_and_reports(runs):
    root, result = runs
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (root / "spy").iterdir()) == ["started-0", "started-1", "wrote-0"]
    assert result.stdout.count("rel. L2 error") == 1 and "on 2 ranks" in result.stdout
    summary = json.loads((root / "two" / "summary.json").read_text())
    single = json.loads((root / "single" / "summary.json").read_text())
    assert summary["world_size"] == 2 and single["world_size"] == 1
    assert summary["steps"] == 9 and summary["completed"]
    assert summary["rel_l2"] == pytest.approx(single["rel_l2"], rel=1e-10)
    assert len((root / "two" / "history.csv").read_text().splitlines()) == 1 + 9
    assert not list((root / "two").glob(".*.tmp"))


PROPAGATED = {  # Allen–Cahn with the propagated residual, causal weights frozen in L-BFGS; 11 time columns: 6 + 5
    "problem": {"name": "allen_cahn", "params": {"hard": True}},
    "model": {"type": "kan", "width": [2, 3, 1], "grid": 3},
    "points": {"interior": 301, "sampler": "sobol"},
    "train": {"device": "cpu", "causal_epsilon": 10.0, "propagated_residual": {"grid": [11, 9]},
              "loss_weights": {"propagated_residual": 5.0},
              "stages": [{"optimizer": "adam", "steps": 2, "lr": 0.01},
                         {"optimizer": "lbfgs", "steps": 5, "causal_epsilon": 1.0e4}]},
    "evaluate": {"every": 0},
    "output": {"plots": False},
}


def test_two_ranks_match_one_process_with_the_propagated_residual(tmp_path):
    """The propagated residual's grid split over 2 ranks (resumed there after the Adam steps): the same
    parameters, losses and terms as one process through L-BFGS."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(PROPAGATED))
    solve(PROPAGATED, out=tmp_path / "single", quiet=True)
    adam = {**PROPAGATED, "train": {**PROPAGATED["train"], "stages": PROPAGATED["train"]["stages"][:1]}}
    solve(adam, out=tmp_path / "two", quiet=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "kanpde",
               "solve", "config.yaml", "--out", "two", "--resume", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    two = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=False)["trainer"]
    single = torch.load(tmp_path / "single" / "checkpoint.pt", weights_only=False)["trainer"]
    for name, value in single["field"].items():
        assert_close(two["field"][name], value, 1e-10)
    assert [row["step"] for row in two["history"]] == list(range(1, 8))
    for row, expected in zip(two["history"], single["history"]):
        for term in ("loss", "residual", "propagated_residual"):
            assert row[term] == pytest.approx(expected[term], rel=1e-11, abs=0), (row["step"], term)


def _threads_as_ranks(work, size: int = 2) -> list:
    """Run ``work(world, across_ranks)`` in ``size`` threads, ``across_ranks`` summing over them."""
    barrier, slots, results = threading.Barrier(size), [None] * size, [None] * size

    def runner(rank: int) -> None:
        def across_ranks(tensor: torch.Tensor) -> torch.Tensor:
            slots[rank] = tensor.detach().clone()
            barrier.wait()
            total = sum(slots)
            barrier.wait()  # nobody overwrites a slot before everyone has summed
            return total
        results[rank] = work(World(rank, size), across_ranks)

    threads = [threading.Thread(target=runner, args=(rank,)) for rank in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("name, sets", [
    ("allen_cahn_periodic", ["train.causal_epsilon=10.0", "train.causal_chunks=8", "points.initial=31"]),
    ("allen_cahn", ["points.boundary=41", "points.initial=23"]),
])
def test_loss_shares_add_up_to_the_global_loss_and_gradient(name, sets):
    config = load_config(name, ["model.width=[3, 4, 1]" if name == "allen_cahn_periodic" else "model.width=[2, 4, 1]",
                                "points.interior=257", *sets])
    problem = build_problem(config.problem)
    sampler = Sampler(problem.box, config.points.interior, config.points.boundary if problem.box.space_dim else 0,
                      config.points.initial if problem.box.has_time else 0, method="sobol", seed=0,
                      dtype=torch.float64)
    points = sampler.sample(0)
    train = config.train

    def gradient_and_terms(field, shard_points, across_ranks=None):
        terms = loss_terms(field, shard_points, train.causal_epsilon, train.causal_chunks, across_ranks)
        sum(terms.values()).backward()
        return [p.grad for p in field.parameters()], {k: v.detach() for k, v in terms.items()}

    fields = [build_field(config, problem, torch.device("cpu")) for _ in range(3)]  # the same seed: equal
    expected_gradient, expected_terms = gradient_and_terms(fields[2], points)
    shares = _threads_as_ranks(lambda world, across: gradient_and_terms(
        fields[world.rank], distributed.shard(points, world), across))
    for name_ in expected_terms:
        assert_close(shares[0][1][name_] + shares[1][1][name_], expected_terms[name_], 1e-12)
    for expected, first, second in zip(expected_gradient, shares[0][0], shares[1][0]):
        assert_close(first + second, expected, 1e-12)


def test_shards_cover_every_point_once():
    points = Sampler(build_problem(load_config("allen_cahn").problem).box, 11, 7, 5, seed=3,
                     dtype=torch.float64).sample(0)
    parts = [distributed.shard(points, World(rank, 3)) for rank in range(3)]
    for field in ("interior", "boundary", "boundary_face", "boundary_normal", "initial"):
        joined = torch.cat([getattr(part, field) for part in parts])
        assert torch.equal(joined, getattr(points, field)), field
        sizes = [getattr(part, field).shape[0] for part in parts]
        assert max(sizes) - min(sizes) <= 1


# -- compare --workers ----------------------------------------------------------------------------

TINY = ["train.stages=[{optimizer: adam, steps: 3, lr: 0.01}]", "points.interior=48", "points.boundary=16",
        "evaluate.every=0", "evaluate.resolution=9", "output.plots=false"]


def test_workers_give_the_same_table_as_one_process(tmp_path):
    config = load_config("darcy", TINY)
    tables = {}
    for workers in (1, 2):
        compare(config, ["kan"], 2, tmp_path / f"w{workers}", quiet=True, workers=workers)
        tables[workers] = json.loads((tmp_path / f"w{workers}" / "table.json").read_text())
    same = ("model", "params", "steps", "rel_l2", "rel_l2_mean", "rel_l2_std", "seeds")
    for serial, parallel in zip(tables[1]["rows"], tables[2]["rows"], strict=True):
        assert {key: serial[key] for key in same} == {key: parallel[key] for key in same}
        assert [s["final_loss"] for s in serial["per_seed"]] == [s["final_loss"] for s in parallel["per_seed"]]
        assert all(Path(run_dir).parent.parent.name == "w2" for run_dir in parallel["run_dirs"])


@pytest.mark.parametrize("argv, message", [
    (["compare", "darcy", "--workers", "0"], "--workers: must be a positive integer, got 0"),
])
def test_bad_workers_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"kanpde: error: {message}"


def test_compare_refuses_to_run_under_torchrun(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="without torchrun"):
        compare(load_config("darcy", TINY), ["kan"], 1, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_reproduce_tables_rejects_bad_workers(capsys):
    spec = importlib.util.spec_from_file_location("reproduce_tables_cli", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script  # its dataclasses look their module up
    try:
        spec.loader.exec_module(script)
        with pytest.raises(SystemExit) as exit_:
            script.main(["--table", "darcy", "--budget", "tiny", "--workers", "0"])
    finally:
        del sys.modules[spec.name]
    assert exit_.value.code == 2
    assert "--workers: must be a positive integer" in capsys.readouterr().err
