"""Which reference belongs to which problem: :func:`register_reference`, :func:`reference` and :func:`self_convergence`.

A solver module (``kanpde/reference/<family>.py``) registers the builder of a problem's reference beside its
definition::

    @register_reference("allen_cahn", refine=_refine_dirichlet, estimate_error=True)
    def allen_cahn_dirichlet(d=1e-3, ...) -> Reference: ...

and the problem names it (``reference_name = "allen_cahn"`` in ``kanpde/problems/allen_cahn.py``). Importing
:mod:`kanpde.reference` imports every module of the package (:func:`discover`), so a new solver module is found
without being listed anywhere.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from kanpde.reference.store import Reference, cached

__all__ = ["REFERENCES", "discover", "reference", "register_reference", "self_convergence"]

Refiner = Callable[[dict[str, Any], str], tuple[dict[str, Any], str]]
"""``refine(params, how) -> (finer params, description)``: the doubled resolution for :func:`self_convergence`."""

#: Problem name -> the builder :func:`reference` calls (the solver with the registration's fixed keywords).
#: Its defaults are the benchmark specifications.
REFERENCES: dict[str, Callable[..., Reference]] = {}
_SOLVERS: dict[str, tuple[Callable[..., Reference], Refiner | None]] = {}
_INFRASTRUCTURE = {"registry", "store"}


def register_reference(name: str, *, refine: Refiner | None = None, **fixed: Any) -> Callable:
    """Decorator: the solver is the reference of problem ``name``; :func:`reference` calls it with ``fixed``
    (e.g. ``estimate_error=True``) and the caller's parameters; ``refine`` enables :func:`self_convergence`."""

    def decorate(solver: Callable[..., Reference]) -> Callable[..., Reference]:
        if name in _SOLVERS and _SOLVERS[name][0] is not solver:
            raise ValueError(f"reference {name!r} is registered twice ({_SOLVERS[name][0].__module__} and "
                             f"{solver.__module__})")
        _SOLVERS[name] = (solver, refine)
        REFERENCES[name] = partial(solver, **fixed) if fixed else solver
        return solver

    return decorate


def discover() -> list[str]:
    """Import every solver module of :mod:`kanpde.reference` (so their registrations run); the names found."""
    package = __name__.rpartition(".")[0]
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name not in _INFRASTRUCTURE:
            importlib.import_module(f"{package}.{module.name}")
    return sorted(REFERENCES)


def reference(name: str, **params: Any) -> Reference:
    """The reference solution of the built-in problem ``name`` (see :data:`REFERENCES`), through the cache."""
    try:
        builder = REFERENCES[name]
    except KeyError:
        raise KeyError(f"unknown reference {name!r}; known: {sorted(REFERENCES)}") from None
    return cached(name, builder, **params)


def self_convergence(
    problem: str = "allen_cahn", refine: str = "default", return_references: bool = False, **params: Any
) -> float | tuple[float, Reference, Reference]:
    """Max abs difference, over all fields on the stored grid/points, between the reference of ``problem`` at
    ``params`` and at the finer resolution that its registered ``refine`` gives (``refine`` selects how, for a
    solver that offers several, e.g. ``"time"`` or ``"space"``; see each solver's refiner).

    The estimate is stored in the coarse reference's ``attrs`` (``self_convergence``, ``self_convergence_refinement``,
    ``self_convergence_resolution``); with ``return_references`` the result is ``(difference, coarse, fine)``.
    """
    solver, refiner = _SOLVERS.get(problem, (None, None))
    if solver is None or refiner is None:
        known = sorted(name for name, (_, r) in _SOLVERS.items() if r is not None)
        raise KeyError(f"unknown problem {problem!r}; known: {known}")
    params = {key: value for key, value in params.items() if key != "estimate_error"}
    fine_params, how = refiner(params, refine)
    coarse = solver(**params)
    fine = solver(**fine_params)
    if coarse.fields.keys() != fine.fields.keys() or any(
            coarse.fields[name].shape != fine.fields[name].shape for name in coarse.fields):
        raise RuntimeError("refined solution was stored on a different grid")
    difference = max(float(np.max(np.abs(coarse.fields[name] - fine.fields[name]))) for name in coarse.fields)
    if not math.isfinite(difference):
        raise FloatingPointError("non-finite self-convergence estimate")
    coarse.attrs["self_convergence"] = difference
    coarse.attrs["self_convergence_refinement"] = how
    coarse.attrs["self_convergence_resolution"] = fine.attrs["resolution"]
    return (difference, coarse, fine) if return_references else difference
