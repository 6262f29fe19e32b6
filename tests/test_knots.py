"""Knots that follow the solution (kanpde.nets.knots): the knots equidistribute the monitor, concentrate where
the edge function is steep, keep the function and the closed-form jets exact, and are configurable."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close

from kanpde import Field, autograd_jet, splines
from kanpde.config import ConfigError, load_config
from kanpde.nets import KAN, KANLayer
from kanpde.nets.knots import equidistributed_knots
from kanpde.problems.burgers import Burgers
from kanpde.solver import solve

pytestmark = pytest.mark.usefixtures("single_thread")


def _steep_layer(grid: int = 12) -> KANLayer:
    """A 1 -> 2 layer on ``grid`` uniform intervals whose edge functions are spline fits of tanh(8s) and
    0.5·tanh(8s) + s (no silu part), so they are steep near s = 0 and flat near ±1."""
    torch.manual_seed(0)
    layer = KANLayer(1, 2, grid=grid).double()
    s = torch.linspace(-1, 1, 2001, dtype=torch.float64)[:, None]
    target = torch.stack([torch.tanh(8 * s[:, 0]), 0.5 * torch.tanh(8 * s[:, 0]) + s[:, 0]], 1)[:, None, :]
    with torch.no_grad():
        layer.base_weight.zero_()
        layer.spline_weight.fill_(1.0)
        layer.coef.copy_(splines.fit(s, target, layer.knots, layer.order))
    return layer


def _autograd_monitor(layer: KANLayer, s: torch.Tensor, kind: str, scale: float | None = None) -> torch.Tensor:
    """The monitor of the module docstring (grid_eps = 0, up to a constant factor), from autograd derivatives of
    the layer's output (for one input the outputs are the edge functions); ``scale``: mean of Σ_j φ_j^(order)²
    over the whole range (default: over ``s``)."""
    s = s.clone().requires_grad_(True)
    y = layer(s[:, None])
    order = 1 if kind == "arclength" else 2
    derivatives = []
    for j in range(y.shape[1]):
        d = torch.autograd.grad(y[:, j].sum(), s, create_graph=True)[0]
        if order == 2:
            d = torch.autograd.grad(d.sum(), s, create_graph=True)[0]
        derivatives.append(d.detach())
    size = torch.stack(derivatives, 1).square().sum(1)
    return (1 + size / (size.mean() if scale is None else scale)).pow(0.5 if kind == "arclength" else 0.25)


@pytest.mark.parametrize("kind", ["arclength", "curvature"])
def test_knots_equidistribute_the_monitor(kind):
    layer = _steep_layer()
    samples = torch.linspace(-1, 1, 401, dtype=torch.float64)[:, None]
    knots = equidistributed_knots(layer, samples, kind, grid_eps=0.0)
    grid = knots[0, layer.order : knots.shape[1] - layer.order]  # the G + 1 interior knots
    assert grid.shape[0] == 13 and grid[0] == -1 and grid[-1] == 1 and bool((grid.diff() > 0).all())
    # ∫ m over every knot interval, by a fine independent quadrature (Simpson on each interval)
    everywhere = torch.linspace(-1, 1, 4001, dtype=torch.float64)
    power = 2 if kind == "arclength" else 4
    scale = float((_autograd_monitor(layer, everywhere, kind, 1.0) ** power - 1).mean())
    shares = []
    for a, b in zip(grid[:-1], grid[1:]):
        s = torch.linspace(float(a), float(b), 201, dtype=torch.float64)
        m = _autograd_monitor(layer, s, kind, scale)
        h = (b - a) / 200
        shares.append(float(h / 3 * (m[0] + m[-1] + 4 * m[1:-1:2].sum() + 2 * m[2:-1:2].sum())))
    shares = torch.tensor(shares)
    assert float(shares.max() / shares.min() - 1) < 0.01, shares
    widths = grid.diff()
    # steep (arclength) or bent (curvature) near 0: the knots crowd there (measured ratios 2.6 and 1.5)
    assert widths.max() / widths.min() > (2 if kind == "arclength" else 1.4)
    assert widths[len(widths) // 2] < 0.8 * widths[0]


def test_uniform_share_and_flat_functions_give_uniform_knots():
    layer = _steep_layer()
    samples = torch.linspace(-0.5, 1.5, 101, dtype=torch.float64)[:, None]
    knots = equidistributed_knots(layer, samples, "arclength", grid_eps=1.0)
    grid = knots[0, layer.order : knots.shape[1] - layer.order]
    assert_close(grid, torch.linspace(-0.5, 1.5, 13, dtype=torch.float64), 1e-12)


def test_update_grid_with_a_monitor_keeps_the_function_and_exact_jets():
    torch.manual_seed(1)
    net = KAN([2, 5, 5, 1], grid=8, grid_monitor="arclength").double()
    x = torch.rand(2000, 2, dtype=torch.float64) * 2 - 1
    before = net(x)
    change = net.update_grid(x)
    assert change < 0.05 and net.grid == 8
    assert not net.layers[0].uniform  # the knots moved
    assert_close(net(x), before, 0.1)
    field = Field(net, Burgers()).double()
    probe = torch.rand(64, 2, dtype=torch.float64) * torch.tensor([2.0, 1.0], dtype=torch.float64) \
        - torch.tensor([1.0, 0.0], dtype=torch.float64)
    assert_close(field.jet(probe, "diagonal").stack, autograd_jet(field, probe, "diagonal").stack, 1e-11)


def test_grid_monitor_settings(tmp_path):
    with pytest.raises(ConfigError, match="model.grid_monitor: must be one of"):
        load_config("burgers", ["model.grid_monitor=spline"])
    with pytest.raises(ValueError, match="grid_monitor: must be one of"):
        KAN([2, 1], grid_monitor="spline")
    tiny = ["points.interior=64", "points.adaptive=null", "model.width=[2, 3, 1]", "evaluate.every=0",
            "train.stages=[{optimizer: adam, steps: 3, lr: 0.01}]", "output.plots=false",
            "model.grid_monitor=curvature", "train.grid_update_every=0", "train.grid_schedule={}"]
    with pytest.raises(ValueError, match="model.grid_monitor: 'curvature' acts only in grid updates"):
        solve(load_config("burgers", tiny), out=tmp_path / "a", quiet=True)
    summary = solve(load_config("burgers", tiny + ["train.grid_update_every=2"]), out=tmp_path / "b", quiet=True)
    assert summary["steps"] == 3
