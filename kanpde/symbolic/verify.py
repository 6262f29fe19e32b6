"""Verification of the model and its formulas on the evaluation grid: errors against the exact solution or
reference, distance from the model, the formula's PDE residual and condition errors."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from kanpde.field import Field
from kanpde.geometry import Points, evaluation_grid, sample_boundary, sample_initial
from kanpde.jet import Jet
from kanpde.loss import condition_error, residual
from kanpde.problem import Dirichlet, Initial, Neumann, Periodic, Problem
from kanpde.symbolic.evaluate import SymbolicField
from kanpde.symbolic.formula import Program

_MAX_POINTS = 40_000  # evaluation-grid cap for the symbolic forms (they are evaluated by numpy, not torch)


# -- verification -------------------------------------------------------------------------------
def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


class _NetworkOnly:
    """The network part of a field (no output transform), for formulas that leave the transform out."""

    def __init__(self, field: Field):
        self.field, self.problem = field, field.problem

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.field.net(self.field.net_inputs(x))


def _resolution(problem: Problem, resolution: int | Sequence[int] | None) -> int | list[int]:
    dim = problem.box.dim
    if resolution is None:
        resolution = 101
    if isinstance(resolution, int):
        return max(2, min(resolution, int(_MAX_POINTS ** (1 / dim))))
    return list(resolution)


def _evaluation(problem: Problem, resolution) -> tuple[torch.Tensor, torch.Tensor | None, list[int]]:
    grid = problem.reference()
    if grid is not None:
        axes, values = grid
        mesh = np.meshgrid(*axes, indexing="ij")
        points = torch.tensor(np.stack([m.ravel() for m in mesh], axis=1), dtype=torch.float64)
        reference = torch.as_tensor(np.asarray(values), dtype=torch.float64).reshape(points.shape[0], -1)
        return points, reference, [len(a) for a in axes]
    axes, points = evaluation_grid(problem.box, resolution, dtype=torch.float64)
    exact = problem.exact(points)
    reference = None if exact is None else exact.detach().to(torch.float64).reshape(points.shape[0], -1)
    return points, reference, [len(a) for a in axes]


def _condition_points(problem: Problem, count: int) -> Points:
    box, kw = problem.box, {"dtype": torch.float64}
    empty = torch.zeros(0, box.dim, dtype=torch.float64)
    if box.boundary_faces():
        bnd = sample_boundary(box, count, "grid", 0, **kw)
        boundary, face, normal = bnd.points, bnd.face, bnd.normal
    else:
        boundary, face, normal = empty, torch.zeros(0, dtype=torch.int64), empty
    initial = sample_initial(box, count, "grid", 0, **kw) if box.has_time else empty
    return Points(empty, boundary, face, normal, initial)


def _chunks(function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, size: int = 8192) -> torch.Tensor:
    return torch.cat([function(x[k:k + size]).detach().reshape(min(size, x.shape[0] - k), -1)
                      for k in range(0, x.shape[0], size)])


def _form_metrics(subject, model_values: torch.Tensor | None, points: torch.Tensor, reference: torch.Tensor | None,
                  condition_points: Points, with_residual: bool) -> dict[str, Any]:
    problem = subject.problem
    values = _chunks(subject, points)
    result: dict[str, Any] = {"points": int(points.shape[0])}
    if reference is not None:
        error = values - reference
        result["rel_l2"] = _finite(error.norm() / reference.norm().clamp_min(1e-300))
        result["max_abs_err"] = _finite(error.abs().max())
    if model_values is not None:
        difference = values - model_values
        result["max_diff_model"] = _finite(difference.abs().max())
        result["rel_diff_model"] = _finite(difference.norm() / model_values.norm().clamp_min(1e-300))
    if with_residual:
        r = _chunks(lambda x: residual(subject, x), points).abs()
        result["residual_mean_abs"] = _finite(r.mean())
        result["residual_max_abs"] = _finite(r.max())
        conditions = {}
        for condition in problem.conditions:
            try:
                error = condition_error(subject, condition, condition_points).detach().abs()
            except (ValueError, RuntimeError, IndexError) as failure:  # pragma: no cover - exotic conditions
                conditions[condition.name] = {"error": str(failure)}
                continue
            kind = {Dirichlet: "dirichlet", Neumann: "neumann", Periodic: "periodic", Initial: "initial"}.get(
                type(condition), type(condition).__name__.lower())  # e.g. beam's generic Condition (u'' = 0)
            conditions[condition.name] = {"kind": kind, "hard": bool(getattr(condition, "hard", False)),
                                          "max_abs_err": _finite(error.max()) if error.numel() else None,
                                          "points": int(error.numel())}
        result["conditions"] = conditions
    return result


def verify(field: Field, forms: Mapping[str, Program], resolution: int | Sequence[int] | None = None,
           includes_transform: bool = True, boundary_points: int = 400) -> dict[str, Any]:
    """Errors of the model and of each symbolic form (programs) on the evaluation grid (module docstring)."""
    problem = field.problem
    resolution = _resolution(problem, resolution)
    points, reference, shape = _evaluation(problem, resolution)
    condition_points = _condition_points(problem, boundary_points)
    model = field if includes_transform else _NetworkOnly(field)
    points = points.to(field._lo.device, field._lo.dtype)

    def model_values(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(x.to(field._lo.device, field._lo.dtype)).double().cpu()

    values = _chunks(model_values, points)
    cpu_points = points.double().cpu()
    report: dict[str, Any] = {"grid": shape, "includes_transform": includes_transform}
    if includes_transform:
        report["model"] = _form_metrics(_ModelOnCpu(field), None, cpu_points, reference, condition_points, True)
    else:
        report["model"] = _form_metrics(_ModelOnCpu(field, net_only=True), None, cpu_points, reference,
                                        condition_points, False)
    for name, program in forms.items():
        report[name] = _form_metrics(SymbolicField(program, problem), values, cpu_points, reference,
                                     condition_points, includes_transform)
    return report


class _ModelOnCpu:
    """The trained field with float64 CPU inputs and outputs (whatever its own device and dtype)."""

    def __init__(self, field: Field, net_only: bool = False):
        self.field, self.problem, self.net_only = field, field.problem, net_only

    def _in(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.field._lo.device, self.field._lo.dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            x = self._in(x)
            value = self.field.net(self.field.net_inputs(x)) if self.net_only else self.field(x)
        return value.double().cpu()

    def jet(self, x: torch.Tensor, mode: str) -> Jet:
        u = self.field.jet(self._in(x), mode)
        return u._like(u.stack.detach().double().cpu())
