"""From domains to what the FEM reference solver needs: boundary outlines for the mesher, Dirichlet
predicates from part names, evaluation points, and cached references of built-in Poisson problems.

Supported domains: a primitive (rectangle, polygon, disk, ellipse), a difference of one with holes
(primitives) that lie strictly inside it and apart from each other, or any CSG of rectangles and
polygons (resolved exactly by shapely, imported only here).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch

from kanpde.geometry.box import Box
from kanpde.geometry.csg import Difference, Intersection, Union
from kanpde.geometry.domain import Domain
from kanpde.geometry.primitives import Ball, Ellipse, Polygon
from kanpde.geometry.spec import domain_from_spec
from kanpde.reference.fem import converged_poisson
from kanpde.reference.registry import register_reference
from kanpde.reference.store import Reference, cached

__all__ = ["outline", "on_parts", "grid_points", "spec_reference", "problem_reference", "register_fem"]


def _subdivide(corners: np.ndarray, h: float) -> np.ndarray:
    """A closed polygon with each edge cut into pieces of length ≤ h (the corners kept exactly)."""
    out = []
    for p, q in zip(corners, np.roll(corners, -1, axis=0)):
        n = max(1, math.ceil(np.hypot(*(q - p)) / h))
        out.append(p + np.arange(n)[:, None] / n * (q - p))
    return np.concatenate(out)


def _polygonal(shape: Domain) -> bool:
    return (isinstance(shape, Box) and shape.dim == 2 and not shape.has_time) or isinstance(shape, Polygon)


def _loop(shape: Domain, h: float) -> np.ndarray:
    """Vertices of a closed polygon approximating the boundary of a primitive, edges ≈ h, on the curve."""
    if isinstance(shape, Box) and _polygonal(shape):
        (x0, y0), (x1, y1) = shape.lo, shape.hi
        return _subdivide(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), h)
    if isinstance(shape, Polygon):
        return _subdivide(shape.vertices, h)
    if isinstance(shape, (Ball, Ellipse)) and shape.dim == 2:
        piece = shape.pieces()[0]
        n = max(8, math.ceil(piece.measure / h))
        return piece.point(np.arange(n)[:, None] / n)[0]
    raise ValueError(f"reference: the FEM mesher supports rectangles, polygons, disks and ellipses, got {shape!r}")


def _shapely(domain: Domain):
    """The shapely polygon of a CSG tree of rectangles and polygons (exact: no curves)."""
    import shapely

    if _polygonal(domain):
        corners = _subdivide(domain.vertices, np.inf) if isinstance(domain, Polygon) else _loop(domain, np.inf)
        return shapely.Polygon(corners)
    if isinstance(domain, (Difference, Union, Intersection)):
        parts = [_shapely(o) for o in domain.operands]
        op = {Difference: shapely.difference, Union: shapely.union, Intersection: shapely.intersection}[type(domain)]
        out = parts[0]
        for part in parts[1:]:
            out = op(out, part)
        return out
    raise ValueError(f"reference: the FEM mesher handles CSG of rectangles and polygons, or one shape minus holes "
                     f"strictly inside it, got {domain!r}")


def outline(domain: Domain, h: float) -> tuple[list[np.ndarray], list[np.ndarray], list[tuple[Callable, Callable]]]:
    """(closed loops of boundary vertices, one point inside each hole, (signed distance, projection) of each
    curved boundary): what kanpde.reference.fem meshes."""
    operands = domain.operands if isinstance(domain, Difference) else [domain]
    outer, holes = operands[0], list(operands[1:])
    simple = not isinstance(outer, (Difference, Union, Intersection))
    for i, hole in enumerate(holes):
        x = _loop(hole, hole.diameter / 64) if simple else None
        if x is None or np.any(outer._signed(x) <= 0) or any(np.any(o._signed(x) >= 0) for o in holes[:i]):
            simple = False
    if simple:
        loops = [_loop(shape, h) for shape in operands]
        inside = [hole._interior(1, "uniform", np.random.default_rng(0))[0] for hole in holes]
        curved = [(s._signed, partial(_project, s)) for s in operands if isinstance(s, (Ball, Ellipse))]
        return loops, inside, curved
    import shapely

    polygon = _shapely(domain)
    if not isinstance(polygon, shapely.Polygon) or polygon.is_empty:
        raise ValueError(f"reference: the FEM mesher needs one connected polygon, got {polygon.geom_type}")
    rings = [polygon.exterior, *polygon.interiors]
    loops = [_subdivide(np.asarray(ring.coords)[:-1], h) for ring in rings]
    inside = [np.asarray(shapely.Polygon(ring).representative_point().coords[0]) for ring in polygon.interiors]
    return loops, inside, []


def _project(shape: Ball | Ellipse, x: np.ndarray) -> np.ndarray:
    """Radial projection onto a circle / an ellipse (the mid-edge nodes of a chord)."""
    if isinstance(shape, Ball):
        d = x - shape.center
        return shape.center + shape.radius * d / np.linalg.norm(d, axis=1, keepdims=True)
    z = (x - shape.center) / shape.axes
    return shape.center + shape.axes * z / np.linalg.norm(z, axis=1, keepdims=True)


def on_parts(domain: Domain, parts: list[int]) -> Callable[[np.ndarray, float], np.ndarray]:
    """A predicate for FEM boundary nodes: within 1e-3·h of one of the parts (nodes of curved cells lie
    within O(h³) of their curve)."""
    pieces = domain.pieces()

    def predicate(x: np.ndarray, h: float) -> np.ndarray:
        with torch.no_grad():
            t = torch.as_tensor(x, dtype=torch.float64)
            return np.min([pieces[k].distance(t).numpy() for k in parts], axis=0) < 1e-3 * h

    return predicate


def grid_points(domain: Domain, resolution: int) -> np.ndarray:
    """The points of a resolution × resolution grid over the bounding box that lie in the domain."""
    axes = [np.linspace(a, b, resolution) for a, b in zip(domain.lo, domain.hi)]
    points = np.stack([m.ravel() for m in np.meshgrid(*axes, indexing="ij")], axis=1)
    return points[domain.contains(points)]


def spec_reference(spec: str, source: float, dirichlet: str, h: float = 0.02, levels: int = 3, order: int = 3,
                   resolution: int = 101) -> Reference:
    """The converged FEM solution of −Δu = ``source`` on the domain of a YAML spec (JSON text), with
    ``dirichlet`` a JSON list of [value, on] pairs, at the grid points inside the domain. All arguments
    are plain values, so that :func:`kanpde.reference.store.cached` can key the cache by them."""
    domain = domain_from_spec(json.loads(spec))
    conditions = [(float(value), on_parts(domain, domain.parts_of(on))) for value, on in json.loads(dirichlet)]
    return converged_poisson(partial(outline, domain), source, conditions, grid_points(domain, resolution), h,
                             levels, order)


def _fem_arguments(domain: Domain, source: float, dirichlet: list, options: dict[str, Any]) -> dict[str, Any]:
    """The plain-valued arguments of :func:`spec_reference` for a domain built from a spec."""
    return {"spec": json.dumps(domain.__dict__["spec"], sort_keys=True), "source": float(source),
            "dirichlet": json.dumps(dirichlet), **options}


def register_fem(name: str, domain: Domain, source: float, dirichlet: list, **options: Any) -> None:
    """Register the FEM reference of the built-in problem ``name`` on its own ``domain`` (built from a spec) in
    :mod:`kanpde.reference`'s registry: ``kanpde.reference.reference(name)`` then builds or reads it (the same
    cache file as :func:`problem_reference`)."""
    register_reference(name, **_fem_arguments(domain, source, dirichlet, options))(spec_reference)


def problem_reference(name: str, domain: Domain, source: float, dirichlet: list, **options: Any) -> Reference | None:
    """The cached FEM reference of a built-in Poisson problem on ``domain``, if that domain came from a spec;
    ``options`` (h, levels, order, resolution) go to :func:`spec_reference`."""
    if domain.__dict__.get("spec") is None:
        return None
    return cached(name, spec_reference, **_fem_arguments(domain, source, dirichlet, options))
