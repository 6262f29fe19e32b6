"""Constructive solid geometry: ``a - b`` (:class:`Difference`), ``a | b`` (:class:`Union`), ``a & b``
(:class:`Intersection`).

The result's boundary is made of its operands' pieces, each kept where it is boundary of the
result: a piece of ``a`` in ``a - b`` where it is outside ``b``, a piece of ``b`` where it is
inside ``a`` (with normals flipped). Sampling draws on the whole pieces and keeps points that
have the domain behind and not ahead of them; the distance function trims each piece with
R-functions of the other operands' levels (Sukumar & Srivastava 2022, §3–4).
"""

from __future__ import annotations

import math
from functools import reduce

import numpy as np
import torch

from kanpde.geometry._random import UnitStream
from kanpde.geometry.distance import r_and, r_or
from kanpde.geometry.domain import Domain, Piece
from kanpde.geometry.primitives import Ball

__all__ = ["Difference", "Union", "Intersection"]


class _Compound(Domain):
    """Common part of the three operations: operands, bounding box, measure estimate, pieces."""

    _trimmed = True
    _op = ""

    def __init__(self, *operands: Domain) -> None:
        if len(operands) < 2:
            raise ValueError(f"{self._op}: needs at least two domains, got {len(operands)}")
        for operand in operands:
            if not isinstance(operand, Domain):
                raise ValueError(f"{self._op}: operands must be kanpde domains, got {type(operand).__name__}")
            if operand.has_time:
                raise ValueError(f"{self._op}: {operand!r} has a time axis; combine spatial domains, then SpaceTime")
            if operand.dim != operands[0].dim:
                raise ValueError(f"{self._op}: all domains need the same dimension, got {operands[0].dim} and "
                                 f"{operand.dim}")
        self.operands = self._flatten(operands)
        self.names = operands[0].names
        self.lo, self.hi = self._bounds()
        if self._fraction(2**12) == 0 and self._fraction(2**16) == 0:
            raise ValueError(f"{self._op}: the resulting domain is empty (or below 1e-5 of its bounding box)")

    def _flatten(self, operands):
        out = []
        for operand in operands:
            out.extend(operand.operands if type(operand) is type(self) else [operand])
        return tuple(out)

    def _bounds(self):
        los = np.array([o.lo for o in self.operands])
        his = np.array([o.hi for o in self.operands])
        return tuple(los.min(0)), tuple(his.max(0))

    def _fraction(self, n: int) -> float:
        """The fraction of n scrambled Sobol' points (fixed seed) in the bounding box that lie inside."""
        if not all(b > a for a, b in zip(self.lo, self.hi)):
            return 0.0
        lo, hi = np.array(self.lo), np.array(self.hi)
        x = lo + UnitStream(self.dim, "sobol", np.random.default_rng(0)).draw(n) * (hi - lo)
        return float((self._signed(x) >= 0).mean())

    @property
    def measure(self) -> float:
        """Estimated from 2^16 scrambled Sobol' points in the bounding box (fixed seed): relative error ~1e-3."""
        return self.cached("measure", lambda: self._fraction(2**16) * math.prod(self.widths))

    def _keep(self, index: int) -> tuple[tuple[Domain, bool], ...]:
        raise NotImplementedError

    def pieces(self) -> tuple[Piece, ...]:
        def build():
            out = []
            for i, operand in enumerate(self.operands):
                flip = isinstance(self, Difference) and i > 0
                for piece in operand.pieces():
                    out.append(piece.kept_by(keeps=piece.keeps + self._keep(i), flip=piece.flip != flip))
            return tuple(out)

        return self.cached("pieces", build)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(o) for o in self.operands)})"


class Difference(_Compound):
    """``base - hole - …``: points of the first domain in none of the others."""

    _op = "difference"

    def _flatten(self, operands):
        base, *holes = operands
        if type(base) is Difference:
            return (*base.operands, *holes)
        return (base, *holes)

    def _bounds(self):
        return self.operands[0].lo, self.operands[0].hi

    def _signed(self, x: np.ndarray) -> np.ndarray:
        balls = [o for o in self.operands[1:] if isinstance(o, Ball)]
        others = [o for o in self.operands[1:] if not isinstance(o, Ball)]
        signed = reduce(np.minimum, [-o._signed(x) for o in others], self.operands[0]._signed(x))
        if balls:  # all round holes at once: min_k (|x − c_k| − r_k)
            centres = np.array([b.center for b in balls])
            squared = sum((x[:, None, i] - centres[None, :, i]) ** 2 for i in range(x.shape[1]))
            signed = np.minimum(signed, (np.sqrt(squared) - np.array([b.radius for b in balls])).min(1))
        return signed

    def level(self, x: torch.Tensor) -> torch.Tensor:
        return reduce(r_and, [-o.level(x) for o in self.operands[1:]], self.operands[0].level(x))

    def _keep(self, index: int):
        others = [(o, False) for j, o in enumerate(self.operands[1:], 1) if j != index]
        return tuple(others) if index == 0 else ((self.operands[0], True), *others)


class Union(_Compound):
    """``a | b | …``: points in any of the domains."""

    _op = "union"

    def _signed(self, x: np.ndarray) -> np.ndarray:
        return reduce(np.maximum, [o._signed(x) for o in self.operands])

    def level(self, x: torch.Tensor) -> torch.Tensor:
        return reduce(r_or, [o.level(x) for o in self.operands])

    def _keep(self, index: int):
        return tuple((o, False) for j, o in enumerate(self.operands) if j != index)


class Intersection(_Compound):
    """``a & b & …``: points in all of the domains."""

    _op = "intersection"

    def _bounds(self):
        los = np.array([o.lo for o in self.operands])
        his = np.array([o.hi for o in self.operands])
        return tuple(los.max(0)), tuple(his.min(0))

    def _signed(self, x: np.ndarray) -> np.ndarray:
        return reduce(np.minimum, [o._signed(x) for o in self.operands])

    def level(self, x: torch.Tensor) -> torch.Tensor:
        return reduce(r_and, [o.level(x) for o in self.operands])

    def _keep(self, index: int):
        return tuple((o, True) for j, o in enumerate(self.operands) if j != index)


# The operators of every domain (here, not in domain.py, which csg builds on: no import cycle).
Domain.__sub__ = lambda self, other: Difference(self, other)
Domain.__or__ = lambda self, other: Union(self, other)
Domain.__and__ = lambda self, other: Intersection(self, other)
