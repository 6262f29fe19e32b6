"""Tests for kanpde.splines: local and dense B-spline bases against scipy, refinement, fitting, grids."""

from __future__ import annotations

import helpers
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.interpolate import BSpline

from kanpde import splines

pytestmark = pytest.mark.usefixtures("single_thread")
DTYPE = torch.float64
ORDERS = (0, 1, 2, 3)
TOL = 1e-12
FAST = settings(max_examples=30, deadline=None, derandomize=True, database=None)


def assert_close(actual, expected, tol: float = TOL) -> None:
    helpers.assert_close(actual, expected, tol)


def make_knots(kind: str, n: int, grid: int, order: int, seed: int) -> torch.Tensor:
    """[n, G + 2k + 1] strictly increasing knots: uniform on random intervals, or random gaps in [0.2, 1]·scale."""
    generator = torch.Generator().manual_seed(seed)
    lo = torch.rand(n, generator=generator, dtype=DTYPE) * 4 - 2
    width = torch.rand(n, generator=generator, dtype=DTYPE) * 3 + 0.5
    if kind == "uniform":
        return splines.uniform_grid(lo, lo + width, grid, order)
    gaps = 0.2 + 0.8 * torch.rand(n, grid + 2 * order, generator=generator, dtype=DTYPE)
    gaps = gaps * (width / gaps[:, order : order + grid].sum(1))[:, None]  # interior spans [lo, lo + width]
    start = lo[:, None] - gaps[:, :order].sum(1, keepdim=True)
    return torch.cat([start, start + gaps.cumsum(1)], dim=1)


def points_around(knots: torch.Tensor, count: int, seed: int, margin: float = 0.3) -> torch.Tensor:
    """[count, n] random points covering [t_0, t_{K−1}] and a margin outside it on both sides."""
    generator = torch.Generator().manual_seed(seed)
    first, last = knots[:, 0], knots[:, -1]
    span = last - first
    u = torch.rand(count, knots.shape[0], generator=generator, dtype=DTYPE) * (1 + 2 * margin) - margin
    return first + u * span


def points_inside_grid(knots: torch.Tensor, order: int, count: int, seed: int) -> torch.Tensor:
    """[count, n] random points in the grid range [t_k, t_{G+k}]."""
    generator = torch.Generator().manual_seed(seed)
    bounds = splines.interior(knots, order)
    lo, hi = bounds[:, 0], bounds[:, -1]
    return lo + torch.rand(count, knots.shape[0], generator=generator, dtype=DTYPE) * (hi - lo)


def scipy_basis(x: torch.Tensor, knots: torch.Tensor, order: int, nu: int) -> np.ndarray:
    """The ν-th derivative of every basis B_m, m = 0..M−1, from scipy: [N, n, M]."""
    xs, ts = x.numpy(), knots.numpy()
    count = ts.shape[1] - order - 1
    out = np.zeros((*xs.shape, count))
    for i in range(ts.shape[0]):
        for m in range(count):
            if nu > order:  # piecewise polynomial of degree k: the (k+1)-th derivative is 0 a.e.
                continue
            element = BSpline.basis_element(ts[i, m : m + order + 2], extrapolate=False)
            if nu:
                element = element.derivative(nu)
            values = np.nan_to_num(element(xs[:, i]), nan=0.0)
            values[xs[:, i] >= ts[i, m + order + 1]] = 0.0  # half-open support [t_m, t_{m+k+1})
            out[:, i, m] = values
    return out


def local_to_dense(cell: torch.Tensor, local: torch.Tensor, order: int, count: int) -> torch.Tensor:
    """Scatter local bases B[..., r] = B_{c−k+r} into dense [N, n, M], dropping indices outside 0..M−1."""
    dense = torch.zeros(*cell.shape, count, dtype=local.dtype)
    for r in range(order + 1):
        index = cell - order + r
        valid = (index >= 0) & (index < count)
        dense.scatter_add_(-1, index.clamp(0, count - 1)[..., None], (local[..., r] * valid)[..., None])
    return dense


def check_against_scipy(knots: torch.Tensor, order: int, x: torch.Tensor, uniform: bool) -> None:
    count = knots.shape[1] - order - 1
    cell, bases = splines.local_basis(x, knots, order, derivatives=2, uniform=uniform)
    assert cell.shape == x.shape and cell.dtype == torch.int64
    assert len(bases) == 3
    for values in bases:
        assert values.shape == (*x.shape, order + 1) and values.dtype == DTYPE
    # inside [t_0, t_{K−1}) the cell index brackets the point
    inside = (x >= knots[:, 0]) & (x < knots[:, -1])
    rows = torch.arange(knots.shape[0]).expand_as(cell)
    assert torch.all(knots[rows, cell][inside] <= x[inside])
    assert torch.all(x[inside] < knots[rows, cell + 1][inside])
    for nu, local in enumerate(bases):
        assert_close(local_to_dense(cell, local, order, count), torch.from_numpy(scipy_basis(x, knots, order, nu)))
    dense = splines.dense_basis(x, knots, order, uniform=uniform)
    assert_close(dense, torch.from_numpy(scipy_basis(x, knots, order, 0)))


# values and derivatives against scipy ---------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("kind", ["uniform", "random"])
def test_local_and_dense_basis_match_scipy(kind, order):
    knots = make_knots(kind, n=3, grid=6, order=order, seed=10 + order)
    x = points_around(knots, 400, seed=order)
    check_against_scipy(knots, order, x, uniform=False)
    if kind == "uniform":
        check_against_scipy(knots, order, x, uniform=True)


@FAST
@given(
    order=st.integers(0, 3),
    grid=st.integers(1, 9),
    n=st.integers(1, 3),
    kind=st.sampled_from(["uniform", "random"]),
    seed=st.integers(0, 2**16),
)
def test_basis_matches_scipy_for_random_grids(order, grid, n, kind, seed):
    knots = make_knots(kind, n, grid, order, seed)
    x = points_around(knots, 60, seed + 1)
    check_against_scipy(knots, order, x, uniform=False)
    if kind == "uniform":
        check_against_scipy(knots, order, x, uniform=True)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("uniform", [False, True])
def test_outside_the_knots_everything_is_zero(order, uniform):
    knots = make_knots("uniform", n=2, grid=4, order=order, seed=3)
    first, last = knots[:, 0], knots[:, -1]
    span = last - first
    x = torch.stack([first - 1e-9, first - 0.5 * span, first - 3 * span, last, last + 1e-9, last + 0.4 * span,
                     last + 7 * span])
    cell, bases = splines.local_basis(x, knots, order, derivatives=2, uniform=uniform)
    for values in bases:
        assert torch.count_nonzero(values) == 0
    assert torch.count_nonzero(splines.dense_basis(x, knots, order, uniform=uniform)) == 0
    assert torch.all((cell >= 0) & (cell < knots.shape[1] - 1))  # clamped to a valid cell


@pytest.mark.parametrize("order", ORDERS)
def test_local_basis_returns_only_the_derivatives_asked_for(order):
    knots = make_knots("random", n=2, grid=5, order=order, seed=4)
    x = points_inside_grid(knots, order, 20, seed=5)
    for derivatives in (0, 1, 2):
        _, bases = splines.local_basis(x, knots, order, derivatives=derivatives)
        assert len(bases) == derivatives + 1
    _, (values,) = splines.local_basis(x, knots, order)
    _, (same, _, _) = splines.local_basis(x, knots, order, derivatives=2)
    assert torch.equal(values, same)
    if order < 2:  # derivatives beyond the degree vanish
        _, bases = splines.local_basis(x, knots, order, derivatives=2)
        assert torch.count_nonzero(bases[2]) == 0
        if order == 0:
            assert torch.count_nonzero(bases[1]) == 0


# partition of unity ----------------------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("kind", ["uniform", "random"])
def test_partition_of_unity_on_the_grid_range(kind, order):
    knots = make_knots(kind, n=3, grid=5, order=order, seed=20 + order)
    x = points_inside_grid(knots, order, 300, seed=order)
    points = splines.interior(knots, order)
    if order == 0:  # degree 0 bases are half-open [t_m, t_{m+1}): include a, exclude b = t_{K−1}
        x = torch.cat([x, points[:, :-1].T])
    else:  # include the grid points a = t_k, …, b = t_{G+k} themselves
        x = torch.cat([x, points.T])
    for uniform in ([False, True] if kind == "uniform" else [False]):
        dense = splines.dense_basis(x, knots, order, uniform=uniform)
        assert torch.all(dense >= -1e-15)
        assert_close(dense.sum(-1), torch.ones_like(x))
        _, (values, first, second) = splines.local_basis(x, knots, order, derivatives=2, uniform=uniform)
        assert_close(values.sum(-1), torch.ones_like(x))
        # Σ_m B_m ≡ 1 there, so the derivatives sum to zero (relative to their size)
        for derivative in (first, second):
            scale = max(derivative.abs().max().item(), 1.0)
            assert derivative.sum(-1).abs().max().item() <= 1e-12 * scale


def test_partition_of_unity_fails_outside_the_grid_range():
    """Only [t_k, t_{G+k}] is covered by all k+1 bases: in the extension the sum drops below 1."""
    order = 3
    knots = make_knots("uniform", n=1, grid=4, order=order, seed=1)
    x = ((knots[:, 0] + knots[:, order]) / 2)[:, None]  # inside the left extension
    assert splines.dense_basis(x, knots, order).sum().item() < 1 - 1e-3


# the uniform path ------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
def test_uniform_path_equals_searchsorted_path(order):
    knots = make_knots("uniform", n=4, grid=7, order=order, seed=30 + order)
    assert splines.is_uniform(knots)
    x = points_around(knots, 500, seed=order, margin=0.5)
    cell_u, bases_u = splines.local_basis(x, knots, order, derivatives=2, uniform=True)
    cell_s, bases_s = splines.local_basis(x, knots, order, derivatives=2, uniform=False)
    inside = (x >= knots[:, 0]) & (x < knots[:, -1])
    assert torch.equal(cell_u[inside], cell_s[inside])
    for a, b in zip(bases_u, bases_s):
        assert_close(a, b)
    assert_close(splines.dense_basis(x, knots, order, uniform=True), splines.dense_basis(x, knots, order))


@pytest.mark.parametrize("order", [1, 2, 3])
def test_uniform_path_on_the_knots_themselves(order):
    """At a knot the cell lookup may round either way; the continuous derivatives must still agree."""
    knots = make_knots("uniform", n=3, grid=6, order=order, seed=40 + order)
    x = knots[:, 1:-1].T.contiguous()
    count = knots.shape[1] - order - 1
    cell_u, bases_u = splines.local_basis(x, knots, order, derivatives=2, uniform=True)
    cell_s, bases_s = splines.local_basis(x, knots, order, derivatives=2, uniform=False)
    for nu in range(order):  # B is C^{k−1}
        expected = local_to_dense(cell_s, bases_s[nu], order, count)
        assert_close(local_to_dense(cell_u, bases_u[nu], order, count), expected, tol=1e-11)


@FAST
@given(order=st.integers(0, 3), grid=st.integers(1, 12), lo=st.floats(-5, 5), width=st.floats(0.01, 20),
       seed=st.integers(0, 2**16))
def test_uniform_path_property(order, grid, lo, width, seed):
    knots = splines.uniform_grid(torch.tensor([lo], dtype=DTYPE), torch.tensor([lo + width], dtype=DTYPE), grid, order)
    x = points_around(knots, 50, seed)
    for a, b in zip(splines.local_basis(x, knots, order, 2, uniform=True)[1],
                    splines.local_basis(x, knots, order, 2, uniform=False)[1]):
        assert_close(a, b, tol=1e-11)


@pytest.mark.parametrize("kind", ["uniform", "random"])
def test_locate_gives_the_cell_and_the_offset_from_its_knot(kind):
    """locate = find_cells plus s = x − t_c; on a uniform grid from one division (not a knot lookup)."""
    knots = make_knots(kind, n=3, grid=6, order=3, seed=50)
    x = torch.cat([points_around(knots, 400, seed=51, margin=0.5), knots[:, 1:-1].T])  # also on the knots
    uniform = kind == "uniform"
    cell, inside, s = splines.locate(x, knots, uniform)
    expected_cell, expected_inside = splines.find_cells(x, knots, uniform)
    assert torch.equal(cell, expected_cell) and torch.equal(inside, expected_inside)
    start = torch.gather(knots.T, 0, cell)  # t_c of every point
    assert_close(s, x - start, tol=1e-13)
    spacing = knots.diff(dim=1).max()
    assert bool(((s[inside] >= -1e-12 * spacing) & (s[inside] <= spacing * (1 + 1e-12))).all())


# grids: uniform_grid, extend_knots, interior, is_uniform, refine -------------------------------


def test_uniform_grid_and_interior():
    lo, hi = torch.tensor([-1.0, 0.0], dtype=DTYPE), torch.tensor([1.0, 3.0], dtype=DTYPE)
    knots = splines.uniform_grid(lo, hi, 4, 2)
    assert knots.shape == (2, 4 + 2 * 2 + 1)
    assert_close(knots[0], torch.linspace(-2, 2, 9, dtype=DTYPE))
    assert_close(knots[1], torch.linspace(-1.5, 4.5, 9, dtype=DTYPE))
    assert_close(splines.interior(knots, 2), torch.stack([torch.linspace(-1, 1, 5, dtype=DTYPE),
                                                          torch.linspace(0, 3, 5, dtype=DTYPE)]))
    assert splines.is_uniform(knots)
    assert not splines.is_uniform(make_knots("random", 2, 4, 2, seed=0))
    assert_close(splines.extend_knots(splines.interior(knots, 2), 2), knots)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("factor", [1, 2, 3, 5])
@pytest.mark.parametrize("kind", ["uniform", "random"])
def test_refine_contains_the_old_knots(kind, factor, order):
    grid = 4
    knots = make_knots(kind, n=3, grid=grid, order=order, seed=factor)
    fine = splines.refine(knots, order, factor)
    assert fine.shape == (3, grid * factor + 2 * order + 1)
    assert torch.all(fine.diff(dim=1) > 0)
    old, new = splines.interior(knots, order), splines.interior(fine, order)
    assert torch.equal(new[:, ::factor], old)  # every old grid point, exactly, and a, b unchanged
    # each old interval is split into `factor` equal parts
    parts = new.diff(dim=1).reshape(3, grid, factor)
    assert_close(parts, (old.diff(dim=1) / factor)[..., None].expand_as(parts))
    for row in range(3):  # knot insertion: every old knot, the outer ones included, is a new knot
        assert torch.isin(knots[row], fine[row]).all()
    if kind == "uniform":
        assert splines.is_uniform(new)
        assert_close(new, splines.interior(splines.uniform_grid(old[:, 0], old[:, -1], grid * factor, order), order))


# fitting -----------------------------------------------------------------------------------------


def fit_samples(knots: torch.Tensor, order: int, seed: int) -> torch.Tensor:
    """Points on the grid range: every grid cell gets 3 points, plus random ones ([P, n])."""
    points = splines.interior(knots, order)
    fractions = torch.tensor([0.1, 0.5, 0.9], dtype=DTYPE)
    per_cell = (points[:, :-1, None] + fractions * points.diff(dim=1)[..., None]).reshape(points.shape[0], -1).T
    return torch.cat([per_cell, points.T, points_inside_grid(knots, order, 40, seed)])


def spline(x: torch.Tensor, knots: torch.Tensor, order: int, coef: torch.Tensor) -> torch.Tensor:
    """Σ_m c[i, m, j] B_m(x_i): [P, n, m]."""
    return torch.einsum("pim,imj->pij", splines.dense_basis(x, knots, order), coef)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("kind", ["uniform", "random"])
def test_fit_recovers_a_spline_of_the_space(kind, order):
    grid, n, m = 5, 3, 2
    knots = make_knots(kind, n, grid, order, seed=50 + order)
    generator = torch.Generator().manual_seed(order)
    coef = torch.randn(n, grid + order, m, generator=generator, dtype=DTYPE)
    x = fit_samples(knots, order, seed=order)
    fitted = splines.fit(x, spline(x, knots, order, coef), knots, order)
    assert fitted.shape == coef.shape
    assert_close(fitted, coef, tol=1e-10)
    test = points_inside_grid(knots, order, 200, seed=order + 7)
    assert_close(spline(test, knots, order, fitted), spline(test, knots, order, coef))


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("kind", ["uniform", "random"])
@pytest.mark.parametrize("factor", [2, 3])
def test_fit_on_refined_knots_reproduces_the_spline_on_the_grid_range(kind, factor, order):
    grid, n, m = 4, 2, 3
    knots = make_knots(kind, n, grid, order, seed=60 + order)
    generator = torch.Generator().manual_seed(order + 100)
    coef = torch.randn(n, grid + order, m, generator=generator, dtype=DTYPE)
    fine = splines.refine(knots, order, factor)
    x = fit_samples(fine, order, seed=order)
    fitted = splines.fit(x, spline(x, knots, order, coef), fine, order)
    assert fitted.shape == (n, grid * factor + order, m)
    test = points_inside_grid(knots, order, 300, seed=order + 9)
    assert_close(spline(test, fine, order, fitted), spline(test, knots, order, coef))


def test_fit_with_ridge_keeps_bases_without_samples_at_zero():
    order, grid = 3, 8
    knots = make_knots("uniform", 2, grid, order, seed=70)
    points = splines.interior(knots, order)
    middle = points[:, grid // 2]
    x = points[:, 0] + torch.linspace(0, 1, 80, dtype=DTYPE)[:, None] * (middle - points[:, 0]) * 0.5  # left quarter
    y = torch.sin(3 * x)[..., None]
    coef = splines.fit(x, y, knots, order, ridge=1e-8)
    dense = splines.dense_basis(x, knots, order)
    unsampled = dense.abs().amax(0) == 0  # [n, M]: bases that vanish at every sample
    assert unsampled.any() and (~unsampled).any()
    assert torch.count_nonzero(coef[unsampled]) == 0
    # and the samples are still fitted (the ridge only biases the fit slightly)
    assert_close(spline(x, knots, order, coef), y, tol=1e-2)


# grids from samples ------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("grid_eps", [0.0, 0.02, 1.0])
def test_grid_from_samples_is_strictly_increasing_with_repeated_samples(grid_eps, order):
    generator = torch.Generator().manual_seed(80)
    repeated = torch.randint(0, 3, (200, 2), generator=generator).to(DTYPE)  # only three distinct values
    constant = torch.full((50, 1), 0.7, dtype=DTYPE)
    clustered = torch.cat([torch.zeros(190, 1, dtype=DTYPE), torch.rand(10, 1, generator=generator, dtype=DTYPE)])
    for samples in (repeated, constant, clustered):
        for grid in (1, 5, 10):
            knots = splines.grid_from_samples(samples, grid, order, grid_eps)
            assert knots.shape == (samples.shape[1], grid + 2 * order + 1)
            assert knots.dtype == DTYPE
            assert torch.all(knots.diff(dim=1) > 0), knots
            # the knots are usable: the bases are finite and sum to one on the samples
            values = splines.dense_basis(samples, knots, order)
            assert torch.isfinite(values).all()


@pytest.mark.parametrize("order", [1, 3])
def test_grid_from_samples_limits(order):
    generator = torch.Generator().manual_seed(81)
    samples = torch.randn(101, 3, generator=generator, dtype=DTYPE) ** 3
    lo, hi = samples.min(0).values, samples.max(0).values
    grid = 5
    # grid_eps = 1: uniform on [min, max]
    uniform = splines.grid_from_samples(samples, grid, order, 1.0)
    assert_close(uniform, splines.uniform_grid(lo, hi, grid, order))
    # grid_eps = 0: quantiles of the samples, ends at min and max
    adaptive = splines.grid_from_samples(samples, grid, order, 0.0)
    points = splines.interior(adaptive, order)
    ordered = torch.sort(samples, dim=0).values
    assert_close(points, ordered[[0, 20, 40, 60, 80, 100]].T)
    assert torch.all(adaptive.diff(dim=1) > 0)
    # every sample lies in the grid range, so the bases are a partition of unity there
    assert_close(splines.dense_basis(samples, adaptive, order).sum(-1), torch.ones_like(samples))
    # the extension continues with spacing (b − a)/G
    spacing = ((hi - lo) / grid)[:, None]
    assert_close(adaptive[:, : order + 1].diff(dim=1), spacing.expand(3, order))
    assert_close(adaptive[:, -order - 1 :].diff(dim=1), spacing.expand(3, order))
