"""Domains from YAML-style mappings, validated with one-line errors naming the key path.

One shape key per mapping, plus an optional ``name`` (the boundary part's name)::

    {rectangle: [[-0.5, -0.5], [0.5, 0.5]], name: outer}    # also box: [lo, hi], interval: [a, b]
    {disk: [[0.3, 0.3], 0.1], name: hole}                    # also ball: [center, radius]
    {ellipse: [[0, 0], [2, 1]]}                              # center, semi-axes
    {polygon: [[0, 0], [1, 0], [0, 1]]}
    {difference: [A, B, ...]}   {union: [A, B, ...]}   {intersection: [A, B, ...]}
    {space_time: [A, t0, t1]}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kanpde.config import DOMAIN_SHAPES
from kanpde.geometry.box import Box
from kanpde.geometry.csg import Difference, Intersection, Union
from kanpde.geometry.domain import Domain
from kanpde.geometry.primitives import Ball, Disk, Ellipse, Interval, Polygon, Rectangle
from kanpde.geometry.spacetime import SpaceTime

__all__ = ["domain_from_spec", "SHAPES"]


def _pair(build: Callable[..., Domain], what: str) -> Callable[[Any, str | None, str], Domain]:
    def make(args: Any, name: str | None, path: str) -> Domain:
        if not isinstance(args, (list, tuple)) or len(args) != 2:
            raise ValueError(f"{path}: must be a list {what}, got {args!r}")
        return build(args[0], args[1], name)

    return make


def _box(args, name, path):
    if not isinstance(args, (list, tuple)) or len(args) != 2:
        raise ValueError(f"{path}: must be a list [lo, hi], got {args!r}")
    return Box(args[0], args[1], name=name)


def _polygon(args, name, path):
    return Polygon(args, name)


def _compound(cls):
    def make(args, name, path):
        if name is not None:
            raise ValueError(f"{path}: a {cls.__name__.lower()} has no name of its own; name its operands")
        if not isinstance(args, (list, tuple)) or len(args) < 2:
            raise ValueError(f"{path}: must be a list of two or more domains, got {args!r}")
        return cls(*[domain_from_spec(a, f"{path}.{i}") for i, a in enumerate(args)])

    return make


def _space_time(args, name, path):
    if not isinstance(args, (list, tuple)) or len(args) != 3:
        raise ValueError(f"{path}: must be a list [domain, t0, t1], got {args!r}")
    return SpaceTime(domain_from_spec(args[0], f"{path}.0"), args[1], args[2])


SHAPES: dict[str, Callable[[Any, str | None, str], Domain]] = {
    "rectangle": _pair(Rectangle, "[lo, hi]"), "box": _box, "interval": _pair(Interval, "[a, b]"),
    "disk": _pair(Disk, "[center, radius]"), "ball": _pair(Ball, "[center, radius]"),
    "ellipse": _pair(Ellipse, "[center, [a, b]]"), "polygon": _polygon,
    "difference": _compound(Difference), "union": _compound(Union), "intersection": _compound(Intersection),
    "space_time": _space_time,
}


assert tuple(SHAPES) == DOMAIN_SHAPES, "kanpde.config.DOMAIN_SHAPES lists the shapes built here"


def domain_from_spec(spec: Any, path: str = "problem.domain") -> Domain:
    """The domain a mapping describes; ValueError ``path.key: ...`` (one line) for anything invalid."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"{path}: must be a mapping with one of {', '.join(SHAPES)}, got {spec!r}")
    shapes = [key for key in spec if key != "name"]
    if len(shapes) != 1 or shapes[0] not in SHAPES:
        unknown = [k for k in shapes if k not in SHAPES]
        what = f"unknown key {unknown[0]!r}" if unknown else f"{len(shapes)} shape keys"
        raise ValueError(f"{path}: must have exactly one of {', '.join(SHAPES)} (and optionally name), got {what}")
    key = shapes[0]
    try:
        domain = SHAPES[key](spec[key], spec.get("name"), f"{path}.{key}")
    except ValueError as error:
        message = str(error)
        raise ValueError(message if message.startswith(path) else f"{path}.{key}: {message}") from None
    domain.__dict__["spec"] = spec  # what it was built from (FEM references are keyed by it)
    return domain
