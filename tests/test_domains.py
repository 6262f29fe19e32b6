"""Tests for general domains: primitives, CSG, SpaceTime, named parts, distance functions, YAML specs."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from kanpde.geometry import (
    Ball,
    Box,
    Disk,
    Ellipse,
    Polygon,
    Rectangle,
    Sampler,
    SpaceTime,
    domain_from_spec,
    sample_boundary,
    sample_initial,
    sample_interior,
)

F64 = {"dtype": torch.float64}
METHODS = ["uniform", "sobol", "halton", "lhs"]


def holes() -> Box:
    outer = Rectangle([-0.5, -0.5], [0.5, 0.5], name="outer")
    return outer - Disk([0.3, 0.3], 0.1, name="h1") - Disk([-0.3, 0.3], 0.1, name="h2") \
        - Disk([0.3, -0.3], 0.1, name="h3") - Disk([-0.3, -0.3], 0.1, name="h4")


def lshape():
    return Rectangle([-1, -1], [1, 1]) - Rectangle([0, 0], [1, 1])


LSHAPE_POLYGON = Polygon([(-1, -1), (1, -1), (1, 0), (0, 0), (0, 1), (-1, 1)])

DOMAINS = {
    "holes": holes,
    "lshape": lshape,
    "polygon": lambda: LSHAPE_POLYGON,
    "ellipse": lambda: Ellipse([0.1, -0.2], [2.0, 0.5]),
    "disk": lambda: Disk([0.0, 0.0], 1.0),
    "union": lambda: Disk([0, 0], 1.0) | Rectangle([0, -0.5], [2, 0.5]),
    "intersection": lambda: Disk([0, 0], 1.0) & Rectangle([0, -2], [2, 2]),
    "ball_minus_box": lambda: Ball([0, 0, 0], 1.0) - Box([0, 0, 0], [1, 1, 1]),
}


@functools.cache
def built(name: str):
    """Each domain once per session (domains are immutable; they cache their pieces and part measures)."""
    return DOMAINS[name]()


def _distance_to_boundary(domain, x: np.ndarray) -> np.ndarray:
    """|signed distance| (exact for the primitives used above, up to the ellipse's approximate one)."""
    return np.abs(domain._signed(x))


@pytest.mark.parametrize("name", sorted(DOMAINS))
@pytest.mark.parametrize("method", METHODS)
def test_boundary_points_on_boundary_with_unit_outward_normals(name, method) -> None:
    domain = built(name)
    b = sample_boundary(domain, 500, method, 1, **F64)
    assert b.points.shape == (500, domain.dim) and b.face.shape == (500,)
    x, n = b.points.numpy(), b.normal.numpy()
    tol = 1e-12 if name != "ellipse" else 1e-12 * 4  # the ellipse's signed function is scaled by min axis / 2
    assert _distance_to_boundary(domain, x).max() <= tol
    assert np.abs(np.linalg.norm(n, axis=1) - 1).max() <= 1e-12
    eps = 1e-6
    assert domain.contains(x - eps * n).all(), "normals must point outward: inside behind"
    assert not domain.contains(x + eps * n).any(), "normals must point outward: outside ahead"


def test_hole_points_on_their_circles_exactly() -> None:
    domain = holes()
    b = sample_boundary(domain, 4000, "sobol", 0, **F64)
    for k, centre in zip(range(4, 8), [(0.3, 0.3), (-0.3, 0.3), (0.3, -0.3), (-0.3, -0.3)]):
        x = b.points[b.face == k].numpy()
        assert len(x) > 0
        assert np.abs(np.linalg.norm(x - centre, axis=1) - 0.1).max() <= 1e-12
        normal = b.normal[b.face == k].numpy()
        assert np.abs(normal + (x - centre) / 0.1).max() <= 1e-12  # a hole's outward normal points to its centre


def test_counts_per_part_proportional_to_length() -> None:
    domain = holes()
    lengths = np.array([1, 1, 1, 1] + [2 * math.pi * 0.1] * 4)
    assert np.allclose(domain.part_measures(), lengths, rtol=1e-12)
    n = 10_000
    counts = torch.bincount(sample_boundary(domain, n, "uniform", 0).face, minlength=8).numpy()
    assert counts.sum() == n
    assert np.abs(counts - n * lengths / lengths.sum()).max() <= 1
    # the L-shape: the outer square's sides are partly removed; measured lengths from the pilot points
    measures = np.array(lshape().part_measures())
    assert abs(measures.sum() - 8.0) < 0.01


@pytest.mark.parametrize("name", sorted(DOMAINS))
@pytest.mark.parametrize("method", METHODS)
def test_interior_points_inside_exact_count(name, method) -> None:
    domain = built(name)
    x = sample_interior(domain, 777, method, 3, **F64)
    assert x.shape == (777, domain.dim)
    assert domain.contains(x).all()


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_distance_zero_on_boundary_positive_inside(name) -> None:
    domain = built(name)
    b = sample_boundary(domain, 400, "sobol", 0, **F64)
    assert domain.distance(b.points).abs().max() <= 1e-12
    inside = sample_interior(domain, 2000, "sobol", 0, **F64)
    inside = inside[torch.as_tensor(domain._signed(inside.numpy()) > 1e-6)]
    assert (domain.distance(inside) > 0).all()
    # smooth inside: finite first and second derivatives
    x = inside[:50].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(domain.distance(x).sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(grad[:, 0].sum(), x)
    assert torch.isfinite(grad).all() and torch.isfinite(second).all()


def test_distance_of_a_part_vanishes_only_there() -> None:
    domain = holes()
    b = sample_boundary(domain, 800, "sobol", 0, **F64)
    phi = domain.distance(b.points, on="h1")
    on_h1 = b.face == domain.parts_of("h1")[0]
    assert phi[on_h1].abs().max() <= 1e-12 and (phi[~on_h1] > 1e-3).all()


def test_csg_built_two_ways_agrees() -> None:
    a, b = lshape(), LSHAPE_POLYGON
    x = np.random.default_rng(0).uniform(-1.2, 1.2, (20_000, 2))
    assert (a.contains(x) == b.contains(x)).all()
    assert abs(a.measure - 3.0) < 0.01 and b.measure == 3.0
    assert abs(sum(a.part_measures()) - sum(b.part_measures())) < 0.01
    pa, pb = sample_boundary(a, 2000, "sobol", 0, **F64), sample_boundary(b, 2000, "sobol", 0, **F64)
    assert b._signed(pa.points.numpy()).__abs__().max() < 1e-12 and a._signed(pb.points.numpy()).__abs__().max() < 1e-12
    # (A - B) - C == A - (B | C)
    disks = Disk([0.2, 0.0], 0.1), Disk([-0.2, 0.0], 0.1)
    left, right = Rectangle([-1, -1], [1, 1]) - disks[0] - disks[1], Rectangle([-1, -1], [1, 1]) - (disks[0] | disks[1])
    assert (left.contains(x) == right.contains(x)).all()


def test_sampling_reproducible_by_seed() -> None:
    domain = holes()
    for method in METHODS:
        one, two = sample_interior(domain, 300, method, 5), sample_interior(domain, 300, method, 5)
        assert torch.equal(one, two)
        assert not torch.equal(one, sample_interior(domain, 300, method, 6))
        b1, b2 = sample_boundary(domain, 300, method, 5), sample_boundary(domain, 300, method, 5)
        assert torch.equal(b1.points, b2.points) and torch.equal(b1.face, b2.face)
    s1, s2 = Sampler(domain, 100, 50, seed=3), Sampler(domain, 100, 50, seed=3)
    assert torch.equal(s1.sample(0).boundary, s2.sample(0).boundary)


def test_named_parts_and_on() -> None:
    domain = holes()
    assert domain.parts_of("outer") == [0, 1, 2, 3]
    assert domain.parts_of(["h1", "h3"]) == [4, 6]
    assert domain.parts_of("x=-0.5") == [0]
    with pytest.raises(ValueError, match="did you mean 'outer'"):
        domain.parts_of("otuer")
    b = sample_boundary(domain, 200, "sobol", 0)
    mask = domain.part_mask(lambda x: x[:, 1] > 0, b.face, b.points)
    assert torch.equal(mask, b.points[:, 1] > 0)


def test_space_time_domain() -> None:
    domain = SpaceTime(Disk([0, 0], 1.0, name="rim"), 0.0, 2.0)
    assert domain.names == ("x", "y", "t") and domain.time_axis == 2 and domain.t1 == 2.0
    assert math.isclose(domain.measure, 2 * math.pi)
    b = sample_boundary(domain, 300, "sobol", 0, **F64)
    r = b.points[:, :2].norm(dim=1)
    assert (r - 1).abs().max() <= 1e-12 and (b.normal[:, 2] == 0).all()
    assert ((b.points[:, 2] >= 0) & (b.points[:, 2] <= 2)).all()
    x0 = sample_initial(domain, 100, "sobol", 0, **F64)
    assert (x0[:, 2] == 0).all() and (x0[:, :2].norm(dim=1) <= 1).all()
    assert isinstance(SpaceTime(Rectangle([0, 0], [1, 1]), 0, 1), Box)  # boxes keep the fast path
    assert SpaceTime(Rectangle([0, 0], [1, 1]), 0, 1) == Box.space_time([0, 0], [1, 1], 0, 1)


def test_sampler_with_time_on_a_disk() -> None:
    domain = SpaceTime(Disk([0, 0], 1.0), 0.0, 1.0)
    points = Sampler(domain, 200, 100, 50, seed=0, dtype=torch.float64).sample(0)
    assert points.interior.shape == (200, 3) and points.boundary.shape == (100, 3) and points.initial.shape == (50, 3)


def test_spec_builds_the_same_domain() -> None:
    spec = {"difference": [{"rectangle": [[-0.5, -0.5], [0.5, 0.5]], "name": "outer"},
                           {"disk": [[0.3, 0.3], 0.1], "name": "hole"}]}
    domain = domain_from_spec(spec)
    assert domain.parts_of("hole") == [4] and domain.parts_of("outer") == [0, 1, 2, 3]
    x = np.random.default_rng(1).uniform(-0.6, 0.6, (5000, 2))
    expected = (np.abs(x).max(1) <= 0.5) & (np.linalg.norm(x - 0.3, axis=1) >= 0.1)
    assert (domain.contains(x) == expected).all()
    st = domain_from_spec({"space_time": [{"ellipse": [[0, 0], [2, 1]]}, 0, 1]})
    assert st.names == ("x", "y", "t")


@pytest.mark.parametrize("spec, message", [
    ({"disk": [[0, 0], -0.1]}, "problem.domain.disk: radius: must be a finite number > 0"),
    ({"disk": [[0, 0], 0]}, "radius"),
    ({"polygon": [[0, 0], [1, 1], [1, 0], [0, 1]]}, "self-intersecting"),
    ({"difference": [{"disk": [[0, 0], 0.1]}, {"rectangle": [[-1, -1], [1, 1]]}]}, "empty"),
    ({"intersection": [{"disk": [[0, 0], 0.1]}, {"disk": [[5, 0], 0.1]}]}, "empty"),
    ({"circle": [[0, 0], 1]}, "exactly one of"),
    ({"difference": [{"disk": [[0, 0], 1]}]}, "two or more"),
])
def test_bad_specs_one_line(spec, message) -> None:
    with pytest.raises(ValueError, match=message) as info:
        domain_from_spec(spec)
    assert "\n" not in str(info.value)
