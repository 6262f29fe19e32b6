"""Residual-adaptive points (RAD): the distribution, reproducibility by seed, points inside the domain, more
points where the residual is large, the same choice on every rank, and the trainer/config hooks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_distributed import _threads_as_ranks

from kanpde.adaptive import ResidualAdaptive, rad_probabilities
from kanpde.config import ConfigError, load_config
from kanpde.distributed import World
from kanpde.geometry import Box, Sampler
from kanpde.solver import solve

pytestmark = pytest.mark.usefixtures("single_thread")

BOX = Box.space_time([-1.0], [1.0], t0=0.0, t1=1.0, names=("x", "t"))


def _peak(x: torch.Tensor) -> torch.Tensor:
    """A residual concentrated near x = 0.3 (a stand-in for a shock)."""
    return torch.exp(-(((x[:, 0] - 0.3) / 0.05) ** 2))


def _adaptive(seed=0, k=2.0, c=0.0, residual=_peak, **kw) -> ResidualAdaptive:
    return ResidualAdaptive(every=10, pool=4000, k=k, c=c, seed=seed, residual=residual, **kw)


def _sampler(n=500) -> Sampler:
    return Sampler(BOX, n, method="sobol", seed=0, dtype=torch.float64)


def test_rad_probabilities():
    r = np.array([0.0, 1.0, 2.0, 3.0])
    assert np.allclose(rad_probabilities(r, 0.0, 1.0), 0.25)  # k = 0: uniform
    p = rad_probabilities(r, 2.0, 0.0)
    assert np.allclose(p, r**2 / (r**2).sum())
    p = rad_probabilities(r, 1.0, 1.0)  # |r|/mean|r| + c = [1, 5/3, 7/3, 3]
    assert np.allclose(p, np.array([1, 5 / 3, 7 / 3, 3]) / 8)
    assert np.allclose(rad_probabilities(np.zeros(5), 1.0, 0.0), 0.2)  # no residual anywhere: uniform


def test_rad_points_are_reproducible_inside_the_box_and_follow_the_residual():
    sampler = _sampler(200)  # the pool holds 400 candidates with |x - 0.3| < 0.1
    base = sampler.sample(0)
    first, again, other = (_adaptive(seed).points(base, sampler, 25) for seed in (0, 0, 1))
    assert torch.equal(first.interior, again.interior)
    assert not torch.equal(first.interior, other.interior)
    assert torch.equal(_adaptive().points(base, sampler, 5).interior, base.interior)  # before `every`: unchanged
    x = first.interior
    assert x.shape == base.interior.shape and x.dtype == torch.float64
    lo, hi = torch.tensor(BOX.lo, dtype=x.dtype), torch.tensor(BOX.hi, dtype=x.dtype)
    assert bool(((x >= lo) & (x <= hi)).all())
    near = ((x[:, 0] - 0.3).abs() < 0.1).double().mean()
    assert near > 0.9  # uniform points would put 10% there
    assert torch.unique(x, dim=0).shape[0] == x.shape[0]  # drawn without replacement
    uniform = _adaptive(k=0.0, c=1.0).points(base, sampler, 25).interior
    assert ((uniform[:, 0] - 0.3).abs() < 0.1).double().mean() < 0.15
    # the draw is kept until the next multiple of `every`, then replaced
    adaptive = _adaptive()
    kept = adaptive.points(base, sampler, 20).interior
    assert torch.equal(adaptive.points(base, sampler, 29).interior, kept)
    assert not torch.equal(adaptive.points(base, sampler, 30).interior, kept)
    # with `until`, the last draw not after it stays in use
    last = _adaptive(until=25)
    assert [last.draw_step(step) for step in (9, 10, 19, 20, 25, 30, 1000)] == [0, 10, 10, 20, 20, 20, 20]
    assert torch.equal(last.points(base, sampler, 1000).interior, kept)


def test_ranks_choose_the_same_points_as_one_process():
    """Two ranks each evaluate half the pool; summing gives every rank the single-process choice."""
    sampler = _sampler(300)
    base = sampler.sample(0)
    expected = _adaptive(k=1.0, c=0.5).points(base, sampler, 10).interior
    calls = []

    def work(world: World, across):
        def residual(x):
            calls.append((world.rank, x.shape[0]))
            return _peak(x)
        return _adaptive(k=1.0, c=0.5, residual=residual, world=world, across_ranks=across).points(
            base, sampler, 10).interior

    results = _threads_as_ranks(work)
    assert torch.equal(results[0], expected) and torch.equal(results[1], expected)
    assert sorted(calls) == [(0, 2000), (1, 2000)]  # each rank evaluated its half of the pool


TINY = ["points.interior=64", "points.adaptive.every=2", "points.adaptive.pool=256", "model.width=[2, 3, 1]",
        "train.stages=[{optimizer: adam, steps: 3, lr: 0.01}, {optimizer: lbfgs, steps: 2}]", "evaluate.every=0",
        "output.plots=false"]


def test_solve_with_adaptive_points_and_resume(tmp_path):
    """Through the solver: a run with RAD equals its own resume from a mid-draw checkpoint (the chosen points
    are in the checkpoint), and differs from a run without RAD."""
    full = solve(load_config("burgers", TINY), out=tmp_path / "full", quiet=True)
    head = ["train.stages=[{optimizer: adam, steps: 3, lr: 0.01}]"]
    solve(load_config("burgers", TINY + head), out=tmp_path / "resumed", quiet=True)
    resumed = solve(load_config("burgers", TINY), out=tmp_path / "resumed", quiet=True, resume=True)
    plain = solve(load_config("burgers", TINY + ["points.adaptive=null"]), out=tmp_path / "plain", quiet=True)
    assert full["rel_l2"] == resumed["rel_l2"] and math.isfinite(full["rel_l2"])
    assert full["final_loss"] != plain["final_loss"]


def test_adaptive_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"points.adaptive.k: must be a non-negative"):
        load_config("burgers", ["points.adaptive.k=-1"])
    with pytest.raises(ConfigError, match=r"points.adaptive.every: must be a positive integer"):
        load_config("burgers", ["points.adaptive.every=0"])
    with pytest.raises(ValueError, match=r"points.adaptive.until: must be at least every \(2\)"):
        solve(load_config("burgers", TINY + ["points.adaptive.until=1"]), out=tmp_path / "u", quiet=True)
    with pytest.raises(ValueError, match=r"points.adaptive.pool: must be at least points.interior \(64\)"):
        solve(load_config("burgers", TINY + ["points.adaptive.pool=10"]), out=tmp_path / "a", quiet=True)
    with pytest.raises(ValueError, match=r"points.adaptive: cannot be combined with train.time_windows"):
        solve(load_config("burgers", TINY + ["train.time_windows=2"]), out=tmp_path / "b", quiet=True)


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    """The python block after the README's "Shocks and sharp layers" paragraph: RAD points and arc-length knots
    on the Poisson quick start, 200 steps."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = text.index("**Shocks and sharp layers**")
    code = re.search(r"^```python\n(.*?)^```", text[start:], re.MULTILINE | re.DOTALL).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md:Shocks and sharp layers", "exec"), {"__name__": "readme_example"})
    error = float(re.search(r"relative L2 error (\S+) in", capsys.readouterr().out).group(1))
    assert error < 3e-2
