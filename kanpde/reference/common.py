"""Small helpers shared by the solver families: output time grids, parameter defaults, names of callables."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["callable_name", "defaults", "time_grid"]


def callable_name(f: Callable[..., Any]) -> str:
    """``module.qualname`` of ``f``: how a callable parameter is recorded in a reference's ``attrs``."""
    return f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', repr(f))}"


def time_grid(t: ArrayLike | None, default: np.ndarray) -> np.ndarray:
    """The output times ``t`` (``default`` when None), checked: non-empty, strictly increasing, ``t[0] >= 0``."""
    t = default if t is None else np.asarray(t, dtype=float)
    if t.ndim != 1 or t.size == 0 or t[0] < 0 or np.any(np.diff(t) <= 0):
        raise ValueError("t must be a non-empty, strictly increasing 1-D grid with t[0] >= 0")
    return t


def defaults(f: Callable[..., Any]) -> dict[str, Any]:
    """The default values of ``f``'s parameters (for a refiner: the resolution a call without them used)."""
    return {name: p.default for name, p in inspect.signature(f).parameters.items() if p.default is not p.empty}
