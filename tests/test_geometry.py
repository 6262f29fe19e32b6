"""Tests for kanpde.geometry: boxes, the unit map, collocation sampling and evaluation grids."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import qmc

from kanpde.geometry import (
    METHODS,
    Box,
    Points,
    Sampler,
    evaluation_grid,
    sample_boundary,
    sample_initial,
    sample_interior,
)

RANDOM_METHODS = [m for m in METHODS if m != "grid"]


@st.composite
def boxes(draw, min_dim: int = 1, max_dim: int = 4, time: bool | None = None) -> Box:
    """Random boxes with widths from 1e-2 to 1e2, optionally with a time axis at a random index."""
    dim = draw(st.integers(min_dim, max_dim))
    lo = draw(st.lists(st.floats(-100, 100), min_size=dim, max_size=dim))
    width = draw(st.lists(st.floats(1e-2, 100), min_size=dim, max_size=dim))
    has_time = draw(st.booleans()) if time is None else time
    time_axis = draw(st.integers(0, dim - 1)) if has_time else None
    names = [f"a{i}" for i in range(dim)]
    return Box(lo, [a + w for a, w in zip(lo, width)], names, time_axis=time_axis)


def _on_own_face(box: Box, points: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """Whether each point's coordinate along its face's axis equals that face's bound (in the points' dtype)."""
    lo = torch.tensor(box.lo, dtype=points.dtype)
    hi = torch.tensor(box.hi, dtype=points.dtype)
    axis, is_hi = face // 2, (face % 2).bool()
    rows = torch.arange(len(face))
    return points[rows, axis] == torch.where(is_hi, hi[axis], lo[axis])


# ----------------------------------------------------------------------------- Box


def test_box_basics_and_faces() -> None:
    box = Box([-1, 0], [1, 2], ("x", "y"))
    assert box.dim == 2 and box.lo == (-1.0, 0.0) and box.hi == (1.0, 2.0) and box.names == ("x", "y")
    assert box.time_axis is None and box.space_axes == (0, 1)
    assert box.scale == (1.0, 1.0) and box.measure == 4.0
    assert [tuple(f) for f in box.faces()] == [(0, "lo", "x=-1"), (0, "hi", "x=1"), (1, "lo", "y=0"), (1, "hi", "y=2")]
    assert [f.sign for f in box.faces()] == [-1, 1, -1, 1]
    assert box.face_index("y=2.0") == 3 and box.face_index("x.lo") == 0 and box.face_index(1) == 1
    assert box.normal("y=0").tolist() == [0.0, -1.0]
    with pytest.raises(ValueError, match="face"):
        box.face_index("x=3")


def test_space_time_box() -> None:
    box = Box.space_time([-1], [1], 0.0, 0.5)
    assert box.names == ("x", "t") and box.time_axis == 1 and box.t0 == 0.0 and box.t1 == 0.5
    assert box.boundary_faces() == [0, 1] and box.initial_face() == 2
    assert Box([0, 0], [1, 1], ("t", "x"), time_axis="t").space_axes == (1,)
    with pytest.raises(ValueError, match="time axis"):
        _ = Box([0], [1]).t0


@pytest.mark.parametrize(
    "args, arg",
    [
        (([0, 0], [1], ("x", "y")), "hi"),
        (([0, 1], [1, 1], ("x", "y")), "hi"),
        (([0, math.nan], [1, 1], ("x", "y")), "lo"),
        (([0, 0], [1, math.inf], ("x", "y")), "hi"),
        (([0, 0], [1, 1], ("x", "x")), "names"),
        (([0, 0], [1, 1], ("x", "")), "names"),
        (([0, 0], [1, 1], ("x",)), "names"),
        ((["a"], [1], ("x",)), "lo"),
    ],
)
def test_box_validation(args: tuple, arg: str) -> None:
    with pytest.raises(ValueError, match=rf"^{arg}:"):
        Box(*args)


def test_box_validation_time() -> None:
    with pytest.raises(ValueError, match="^time_axis:"):
        Box([0, 0], [1, 1], ("x", "y"), time_axis="t")
    with pytest.raises(ValueError, match="^time_axis:"):
        Box([0, 0], [1, 1], ("x", "y"), time_axis=2)
    with pytest.raises(ValueError, match="^t1:"):
        Box.space_time([0], [1], 1.0, 1.0)


@settings(max_examples=60, deadline=None)
@given(box=boxes(), seed=st.integers(0, 2**32))
def test_unit_map_round_trip(box: Box, seed: int) -> None:
    lo = torch.tensor(box.lo, dtype=torch.float64)
    hi = torch.tensor(box.hi, dtype=torch.float64)
    assert torch.all(box.to_unit(lo) == -1) and torch.all(box.to_unit(hi) == 1)
    assert torch.equal(box.from_unit(-torch.ones(box.dim, dtype=torch.float64)), lo)
    assert torch.equal(box.from_unit(torch.ones(box.dim, dtype=torch.float64)), hi)
    x = sample_interior(box, 64, "uniform", seed, dtype=torch.float64)
    z = box.to_unit(x)
    assert z.abs().max() <= 1
    torch.testing.assert_close(box.from_unit(z), x, rtol=1e-12, atol=1e-12 * max(map(abs, box.hi + box.lo)))
    # d/dx = scale * d/dz: the unit map stretches axis i by scale[i]
    eps = 1e-3 * torch.tensor(box.widths, dtype=torch.float64)
    torch.testing.assert_close(
        (box.to_unit(x + eps) - z) / eps, torch.tensor(box.scale, dtype=torch.float64).expand_as(x), rtol=1e-6, atol=0
    )


# ----------------------------------------------------------------------------- sampling


@settings(max_examples=40, deadline=None)
@given(box=boxes(), n=st.integers(0, 200), method=st.sampled_from(METHODS), seed=st.integers(0, 2**32))
def test_interior_points_in_box(box: Box, n: int, method: str, seed: int) -> None:
    x = sample_interior(box, n, method, seed, dtype=torch.float32)
    assert x.dtype == torch.float32 and x.shape[1] == box.dim
    assert bool(box.contains(x).all())
    if method == "grid":
        assert x.shape[0] >= n
    else:
        assert x.shape[0] == n


@settings(max_examples=40, deadline=None)
@given(box=boxes(), n=st.integers(1, 200), method=st.sampled_from(METHODS), seed=st.integers(0, 2**32))
def test_boundary_points_on_spatial_faces(box: Box, n: int, method: str, seed: int) -> None:
    if box.space_dim == 0:
        return
    x, face, normal = sample_boundary(box, n, method, seed, dtype=torch.float32)
    assert face.dtype == torch.int64 and bool(box.contains(x).all())
    assert bool(_on_own_face(box, x, face).all())
    assert set(face.tolist()) <= set(box.boundary_faces())  # never a time face
    expected = torch.zeros_like(x)
    expected[torch.arange(len(face)), face // 2] = (face % 2).float() * 2 - 1
    assert torch.equal(normal, expected)
    if method != "grid":
        assert len(x) == n
    # faces receive points in proportion to their measure (largest-remainder split, so within 1)
    faces = box.boundary_faces()
    measure = [box.measure / box.widths[k // 2] for k in faces]
    if method != "grid" and box.dim > 1:
        for k, m in zip(faces, measure):
            assert abs(int((face == k).sum()) - n * m / sum(measure)) < 1 + 1e-9


def test_boundary_face_counts_rectangle() -> None:
    box = Box([0, 0], [3, 1], ("x", "y"))  # x faces have length 1, y faces length 3
    x, face, _ = sample_boundary(box, 800, "sobol", 0)
    assert torch.bincount(face, minlength=4).tolist() == [100, 100, 300, 300]
    assert torch.all(x[face == 2][:, 1] == 0) and torch.all(x[face == 3][:, 1] == 1)
    # by_face groups the same points
    groups = sample_boundary(box, 800, "sobol", 0).by_face()
    assert sorted(groups) == [0, 1, 2, 3] and torch.equal(groups[1], x[face == 1])


def test_boundary_1d_space_time_splits_over_time() -> None:
    box = Box.space_time([-1], [1], 0.0, 2.0)
    x, face, normal = sample_boundary(box, 100, "uniform", 3, dtype=torch.float64)
    assert torch.bincount(face).tolist() == [50, 50]
    assert torch.all(x[face == 0, 0] == -1) and torch.all(x[face == 1, 0] == 1)
    assert torch.equal(normal[:, 0], torch.where(face == 0, -1.0, 1.0).double())
    t = x[:, 1]
    assert t.min() >= 0 and t.max() <= 2 and len(torch.unique(t)) == 100  # spread over time, not piled at one t
    assert (t < 0.5).any() and (t > 1.5).any()
    assert not torch.any(t == 0) and not torch.any(t == 2)


@pytest.mark.parametrize("method", METHODS)
def test_no_boundary_points_on_time_faces(method: str) -> None:
    box = Box([0, -1, 0], [1, 1, 2], ("t", "x", "y"), time_axis=0)
    x, face, normal = sample_boundary(box, 300, method, 1)
    assert not torch.any(face // 2 == 0) and torch.all(normal[:, 0] == 0)
    on_space_face = (x[:, 1:] == torch.tensor(box.lo[1:])) | (x[:, 1:] == torch.tensor(box.hi[1:]))
    assert bool(on_space_face.any(dim=1).all())


@settings(max_examples=30, deadline=None)
@given(box=boxes(time=True), n=st.integers(1, 100), method=st.sampled_from(METHODS), seed=st.integers(0, 2**32))
def test_initial_points_at_t0(box: Box, n: int, method: str, seed: int) -> None:
    x = sample_initial(box, n, method, seed, dtype=torch.float32)
    assert bool(box.contains(x).all())
    assert torch.all(x[:, box.time_axis] == torch.tensor(box.t0, dtype=torch.float32))
    assert len(x) == n if method != "grid" else len(x) >= 1


def test_initial_requires_time_axis() -> None:
    with pytest.raises(ValueError, match="time axis"):
        sample_initial(Box([0], [1]), 10)
    with pytest.raises(ValueError, match="no spatial faces"):
        sample_boundary(Box([0], [1], ("t",), time_axis=0), 10)


@pytest.mark.parametrize("method", ["sobol", "halton", "lhs"])
def test_quasi_random_has_lower_discrepancy(method: str) -> None:
    box = Box([-2, 0, 1], [2, 1, 4], ("x", "y", "z"))
    n = 300  # not a power of 2 on purpose: no balance warning either
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        qmc_d = [
            qmc.discrepancy(((box.to_unit(sample_interior(box, n, method, s, dtype=torch.float64)) + 1) / 2).numpy())
            for s in range(4)
        ]
    iid_d = [
        qmc.discrepancy(((box.to_unit(sample_interior(box, n, "uniform", s, dtype=torch.float64)) + 1) / 2).numpy())
        for s in range(4)
    ]
    assert max(qmc_d) < min(iid_d)


def test_boundary_sobol_lower_discrepancy_per_face() -> None:
    box = Box.space_time([0, 0], [1, 1], 0, 1)
    for face in box.boundary_faces():
        free = [i for i in range(3) if i != face // 2]
        d_sobol = [
            qmc.discrepancy(sample_boundary(box, 512, "sobol", s).by_face()[face][:, free].double().numpy())
            for s in range(3)
        ]
        d_iid = [
            qmc.discrepancy(sample_boundary(box, 512, "uniform", s).by_face()[face][:, free].double().numpy())
            for s in range(3)
        ]
        assert max(d_sobol) < min(d_iid)


@pytest.mark.parametrize("method", RANDOM_METHODS)
def test_reproducible_with_seed(method: str) -> None:
    box = Box.space_time([-1, -1], [1, 1], 0, 1)
    for fn in (sample_interior, sample_initial):
        assert torch.equal(fn(box, 50, method, 7), fn(box, 50, method, 7))
        assert not torch.equal(fn(box, 50, method, 7), fn(box, 50, method, 8))
        a, b = fn(box, 50, method, np.random.default_rng(5)), fn(box, 50, method, np.random.default_rng(5))
        assert torch.equal(a, b)
    b1, b2, b3 = (sample_boundary(box, 50, method, s) for s in (7, 7, 8))
    assert all(torch.equal(u, v) for u, v in zip(b1, b2))
    assert not torch.equal(b1.points, b3.points)
    gen = np.random.default_rng(0)  # a shared generator advances: two draws differ
    assert not torch.equal(sample_interior(box, 20, method, gen), sample_interior(box, 20, method, gen))


@pytest.mark.parametrize(
    "box, n, shape",
    [
        (Box([0], [1]), 10, (10, 1)),
        (Box([0, 0], [1, 1]), 16, (16, 2)),
        (Box([0, 0], [1, 1]), 17, (25, 2)),
        (Box([0, 0, 0], [1, 1, 1]), 27, (27, 3)),
        (Box([0, 0, 0], [10, 10, 10]), 27, (27, 3)),  # (1000/27)^(1/3) rounds up: ceil must not give 4
        (Box([0, 0], [4, 1]), 4, (4, 2)),  # spacing equal on both axes: 4 × 1
        (Box([0, 0], [4, 1]), 16, (16, 2)),  # 8 × 2 cells
    ],
)
def test_grid_interior_shapes(box: Box, n: int, shape: tuple[int, int]) -> None:
    x = sample_interior(box, n, "grid")
    assert tuple(x.shape) == shape
    assert len(torch.unique(x, dim=0)) == shape[0] and bool(box.contains(x).all())
    # cell centres: every axis holds equally spaced values, none on the boundary
    for i in range(box.dim):
        v = torch.unique(x[:, i]).double()
        assert v.min() > box.lo[i] and v.max() < box.hi[i]
        assert torch.allclose(v.diff(), v.diff()[0].expand(len(v) - 1)) if len(v) > 1 else True
    assert torch.equal(x, sample_interior(box, n, "grid", 123))  # the grid ignores the seed


def test_grid_boundary_shapes() -> None:
    box = Box([0, 0], [1, 1], ("x", "y"))
    x, face, _ = sample_boundary(box, 40, "grid")
    assert torch.bincount(face).tolist() == [10, 10, 10, 10]
    assert len(torch.unique(x, dim=0)) == 40  # corners are not duplicated
    st_box = Box.space_time([0, 0], [1, 1], 0, 1)
    x, face, _ = sample_boundary(st_box, 400, "grid")
    assert torch.bincount(face).tolist() == [100] * 4  # a 10 × 10 grid on each side face
    assert len(torch.unique(x[face == 0], dim=0)) == 100
    assert tuple(sample_initial(st_box, 100, "grid").shape) == (100, 3)


@pytest.mark.parametrize(
    "call, arg",
    [
        (lambda b: sample_interior(b, 10, "sobl"), "method"),
        (lambda b: sample_interior(b, -1), "n"),
        (lambda b: sample_boundary(b, 2.5), "n"),
        (lambda b: sample_interior(b, 10, rng="seed"), "rng"),
        (lambda b: Sampler(b, 10, method="sobl"), "points.method"),
        (lambda b: Sampler(b, -3), "points.interior"),
        (lambda b: Sampler(b, 10, boundary=True), "points.boundary"),
        (lambda b: Sampler(b, 10, initial=5), "points.initial"),
        (lambda b: Sampler(b, 10, resample_every=-1, name="train.points"), "train.points.resample_every"),
        (lambda b: evaluation_grid(b, 1), "resolution"),
        (lambda b: evaluation_grid(b, [3, 3, 3]), "resolution"),
    ],
)
def test_value_errors_name_the_argument(call, arg: str) -> None:
    box = Box([-1, -1], [1, 1], ("x", "y"))
    with pytest.raises(ValueError, match=rf"^{arg}:"):
        call(box)


def test_method_error_message() -> None:
    with pytest.raises(ValueError) as err:
        Sampler(Box([0], [1]), 10, method="sobl")
    assert str(err.value) == "points.method: must be one of uniform, sobol, halton, lhs, grid, got 'sobl'"


# ----------------------------------------------------------------------------- Sampler


def _equal(p: Points, q: Points) -> bool:
    return all(
        torch.equal(getattr(p, f), getattr(q, f))
        for f in ("interior", "boundary", "boundary_face", "boundary_normal", "initial")
    )


def test_sampler_resample_every() -> None:
    box = Box.space_time([-1], [1], 0, 1)
    s = Sampler(box, 64, 16, 8, "sobol", seed=3, resample_every=10)
    p0 = s.sample(0)
    assert p0.interior.shape == (64, 2) and p0.boundary.shape == (16, 2) and p0.initial.shape == (8, 2)
    assert p0.boundary_face.shape == (16,) and p0.boundary_normal.shape == (16, 2)
    assert all(s.sample(k) is p0 for k in range(1, 10))  # no new draw between multiples
    p10 = s.sample(10)
    assert p10 is not p0 and not torch.equal(p10.interior, p0.interior)
    assert s.sample(19) is p10 and s.sample(20) is not p10
    # a second run with the same seed, called at other steps (as after a restart), sees the same points
    t = Sampler(box, 64, 16, 8, "sobol", seed=3, resample_every=10)
    assert _equal(t.sample(15), p10) and _equal(t.sample(0), p0)
    assert not torch.equal(Sampler(box, 64, 16, 8, "sobol", seed=4, resample_every=10).sample(0).interior, p0.interior)
    # parts use independent streams: the same seed must not give the initial points the interior's x values
    u = Sampler(box, 64, 16, 8, "uniform", seed=3).sample(0)
    assert not torch.isin(u.initial[:, 0], u.interior[:, 0]).any()
    # counts of one part do not change the points of another
    assert torch.equal(Sampler(box, 64, 0, 0, "sobol", seed=3, resample_every=10).sample(10).interior, p10.interior)


def test_sampler_never_resamples_with_zero() -> None:
    box = Box([0, 0], [1, 1])
    s = Sampler(box, 32, 8, method="uniform", seed=0, resample_every=0)
    p = s.sample(0)
    assert s.sample(1) is p and s.sample(1000) is p
    assert p.initial.shape == (0, 2) and p.boundary.dtype == torch.get_default_dtype()
    assert s.counts == {"interior": 32, "boundary": 8, "initial": 0}
    seeded = Sampler(box, 32, seed=None)  # a fresh seed is chosen and recorded
    assert isinstance(seeded.seed, int) and torch.equal(
        Sampler(box, 32, seed=seeded.seed).sample().interior, seeded.sample().interior
    )


def test_derived_sampler_changes_only_what_it_is_told() -> None:
    box = Box.space_time([-1], [1], 0, 1)
    s = Sampler(box, 64, 16, 8, "halton", seed=3, resample_every=10, dtype=torch.float64)
    d = s.derive("train.stages[1].points", interior=128, resample_every=0)
    assert d.counts == {"interior": 128, "boundary": 16, "initial": 8} and d.resample_every == 0
    assert (d.method, d.seed, d.dtype) == ("halton", 3, torch.float64)
    assert torch.equal(d.sample(15).boundary, s.sample(0).boundary)  # same seed, one fixed draw
    with pytest.raises(ValueError, match=r"^train\.stages\[1\]\.points\.interior: "):
        s.derive("train.stages[1].points", interior=-1)
    with pytest.raises(ValueError, match=r"^x: unknown setting 'method'"):
        s.derive("x", method="sobol")


# ----------------------------------------------------------------------------- evaluation grid


def test_evaluation_grid_ij_order() -> None:
    box = Box.space_time([-1, 0], [1, 2], 0.0, 0.5)
    axes, x = evaluation_grid(box, [5, 3, 4], dtype=torch.float64)
    assert [len(a) for a in axes] == [5, 3, 4] and x.shape == (60, 3)
    for a, lo, hi in zip(axes, box.lo, box.hi):
        assert a[0] == lo and a[-1] == hi and np.allclose(np.diff(a), np.diff(a)[0])
    mesh = np.meshgrid(*axes, indexing="ij")
    for i in range(3):
        assert np.array_equal(x[:, i].numpy().reshape(5, 3, 4), mesh[i])
    values = x[:, 0] + 10 * x[:, 1] + 100 * x[:, 2]
    assert np.allclose(values.numpy().reshape(5, 3, 4), mesh[0] + 10 * mesh[1] + 100 * mesh[2])
    axes, x = evaluation_grid(Box([0], [1]), 11)
    assert x.shape == (11, 1) and x.dtype == torch.get_default_dtype() and np.allclose(axes[0], np.arange(11) / 10)
