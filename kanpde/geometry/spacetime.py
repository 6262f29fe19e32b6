"""Space-time cylinders Ω × [t0, t1] over any spatial domain.

Time is the last coordinate. The boundary (where boundary conditions apply) is ∂Ω × [t0, t1],
with the spatial domain's parts and normals (time component 0); the initial face is Ω × {t0}.
``SpaceTime(box, t0, t1)`` gives the same :class:`Box` as ``Box.space_time``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from kanpde.geometry.box import Box
from kanpde.geometry.domain import Domain, On, Piece

__all__ = ["SpaceTime"]


def _times(t0: float, t1: float) -> tuple[float, float]:
    try:
        a, b = float(t0), float(t1)
    except (TypeError, ValueError):
        raise ValueError(f"t0, t1: must be numbers, got {t0!r}, {t1!r}") from None
    if not (math.isfinite(a) and math.isfinite(b) and a < b):
        raise ValueError(f"t1: must be a finite number greater than t0, got t0={t0!r}, t1={t1!r}")
    return a, b


class SpaceTime(Domain):
    """Ω × [t0, t1] for a spatial domain Ω; coordinates ``(*Ω.names, time)``."""

    def __new__(cls, domain: Domain, t0: float, t1: float, time: str = "t"):
        if isinstance(domain, Box) and not domain.has_time:
            a, b = _times(t0, t1)
            return Box((*domain.lo, a), (*domain.hi, b), (*domain.names, time), time_axis=domain.dim,
                       name=domain.name)
        return super().__new__(cls)

    def __init__(self, domain: Domain, t0: float, t1: float, time: str = "t") -> None:
        if not isinstance(domain, Domain) or domain.has_time:
            raise ValueError(f"domain: must be a spatial kanpde domain, got {domain!r}")
        if not isinstance(time, str) or not time or time in domain.names:
            raise ValueError(f"time: must be a new coordinate name, got {time!r}")
        self.space = domain
        a, b = _times(t0, t1)
        self.names = (*domain.names, time)
        self.lo, self.hi = (*domain.lo, a), (*domain.hi, b)
        self.time_axis = domain.dim

    def __getnewargs__(self):
        return self.space, self.lo[-1], self.hi[-1], self.names[-1]

    @property
    def _trimmed(self) -> bool:
        return self.space._trimmed

    @property
    def t0(self) -> float:
        return self.lo[-1]

    @property
    def t1(self) -> float:
        return self.hi[-1]

    @property
    def measure(self) -> float:
        return self.space.measure * (self.t1 - self.t0)

    def _signed(self, x: np.ndarray) -> np.ndarray:
        t = x[:, -1]
        return np.minimum(self.space._signed(x[:, :-1]), np.minimum(t - self.t0, self.t1 - t))

    def level(self, x: torch.Tensor) -> torch.Tensor:
        return self.space.level(x[:, :-1])

    def pieces(self) -> tuple[Piece, ...]:
        return self.space.pieces()

    def part_labels(self) -> list[tuple[str, ...]]:
        return self.space.part_labels()

    def boundary_parts(self) -> list[int]:
        return self.space.boundary_parts()

    def _match_part(self, name: str) -> list[int]:
        return self.space._match_part(name)

    def part_measures(self) -> list[float]:
        return self.space.part_measures()

    def distance(self, x: torch.Tensor, on: On = "all") -> torch.Tensor:
        """The spatial domain's φ (constant in time)."""
        return self.space.distance(x[:, :-1], on)

    def _boundary(self, n: int, method: str, rng: np.random.Generator, extra: int = 0):
        x, part, normal, u = self.space._boundary(n, method, rng, extra + 1)
        t = self.t0 + u[:, :1] * (self.t1 - self.t0)
        return np.hstack([x, t]), part, np.hstack([normal, np.zeros_like(t)]), u[:, 1:]

    def _initial(self, n: int, method: str, rng: np.random.Generator) -> np.ndarray:
        x = self.space._interior(n, method, rng)
        return np.hstack([x, np.full((len(x), 1), self.t0)])

    def __repr__(self) -> str:
        return f"SpaceTime({self.space!r}, {self.t0:g}, {self.t1:g})"
