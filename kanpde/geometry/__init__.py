"""Domains for PDEs: boxes, primitives, constructive solid geometry, space-time, and their sampling.

* :mod:`~kanpde.geometry.box` — :class:`Box` (also a space-time cylinder), the fast original domain;
* :mod:`~kanpde.geometry.primitives` — Interval, Rectangle, Ball/Disk, Ellipse, Polygon;
* :mod:`~kanpde.geometry.csg` — ``a - b``, ``a | b``, ``a & b``;
* :mod:`~kanpde.geometry.spacetime` — ``SpaceTime(domain, t0, t1)``;
* :mod:`~kanpde.geometry.distance` — R-functions and the distance function φ for hard conditions;
* :mod:`~kanpde.geometry.domain` — the :class:`Domain` interface, named parts and ``on=``;
* :mod:`~kanpde.geometry.sampling` — collocation points and the training :class:`Sampler`;
* :mod:`~kanpde.geometry.spec` — domains from YAML mappings;
* :mod:`~kanpde.geometry.meshing` — outlines and cached FEM references (imported on use).

A low layer: imports numpy, scipy and torch (and, in meshing, the FEM solver of kanpde.reference).
"""

from kanpde.geometry._random import METHODS
from kanpde.geometry.box import Box, Face
from kanpde.geometry.csg import Difference, Intersection, Union
from kanpde.geometry.domain import Domain, Piece
from kanpde.geometry.primitives import Ball, Disk, Ellipse, Interval, Polygon, Rectangle
from kanpde.geometry.sampling import (
    BoundaryPoints,
    Points,
    Sampler,
    evaluation_grid,
    sample_boundary,
    sample_initial,
    sample_interior,
)
from kanpde.geometry.spacetime import SpaceTime
from kanpde.geometry.spec import domain_from_spec

__all__ = [
    "METHODS", "Box", "Face", "Domain", "Piece", "Interval", "Rectangle", "Ball", "Disk", "Ellipse", "Polygon",
    "Difference", "Union", "Intersection", "SpaceTime", "BoundaryPoints", "Points", "Sampler",
    "sample_interior", "sample_boundary", "sample_initial", "evaluation_grid", "domain_from_spec",
]
