"""Checks of a config against its problem before any work: settings that would be ignored,
sizes that would not fit in memory, and a first loss evaluation that catches a user's
residual or condition of the wrong shape and conditions that would never get points.

Refusals are ``ValueError`` with one line naming the key; ignored settings are warned about on
stderr (``kanpde: warning: ...``), every time.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import torch

from kanpde.config import Config, EvaluateConfig, PointsConfig
from kanpde.field import Field
from kanpde.geometry import Points
from kanpde.jet import num_terms
from kanpde.problem import Dirichlet, Initial, Neumann, Periodic, Problem

MEMORY_FRACTION = 0.8
"""A run may plan to use at most this fraction of the memory the machine (or GPU) has."""


def warn(message: str) -> None:
    """One line on stderr: a setting that has no effect, or something the user should know."""
    print(f"kanpde: warning: {message}", file=sys.stderr)


# -- settings that would be ignored -------------------------------------------------------------
def check_config(config: Config, problem: Problem, report: Callable[[str], None] = warn) -> None:
    """Refuse settings that cannot work with ``problem``; ``report`` those that would be ignored."""
    train, box = config.train, problem.box
    if not box.has_time:
        coordinates = ", ".join(problem.coords)
        epsilons = [("train.causal_epsilon", train.causal_epsilon)] + [
            (f"train.stages[{i}].causal_epsilon", stage.causal_epsilon) for i, stage in enumerate(train.stages)]
        for key, value in epsilons:
            if value is not None and value != 0:
                raise ValueError(f"{key}: causal weighting needs a time coordinate; {problem.name} has none "
                                 f"(coordinates {coordinates})")
        initial = [("points.initial", config.points.initial, PointsConfig().initial)] + [
            (f"train.stages[{i}].points.initial", stage.points.initial, None)
            for i, stage in enumerate(train.stages) if stage.points is not None]
        for key, value, default in initial:
            if value is not None and value != default and value != 0:
                report(f"{key}: {value} is ignored: {problem.name} has no time coordinate, so no initial points")
    if train.tf32 and train.dtype != "float32":
        report("train.tf32 is ignored: TensorFloat-32 applies to float32 on CUDA only (train.dtype is float64)")
    if train.compile and train.derivatives == "autograd":
        report("train.compile is ignored: it compiles the closed-form jets, not nested autograd")
    total = sum(stage.steps for stage in train.stages)
    grid_keys = {"train.grid_schedule": bool(train.grid_schedule), "train.grid_update_every": train.grid_update_every,
                 "train.grid_update_until": train.grid_update_until}
    if config.model.type != "kan":
        ignored = [key for key, value in grid_keys.items() if value]
        if ignored:
            report(f"{', '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} ignored: only KAN models have "
                   f"grids (model.type is {config.model.type})")
    else:
        grid = config.model.grid
        for step, size in train.grid_schedule.items():
            if step >= total:
                report(f"train.grid_schedule.{step} is ignored: step {step} is past the last step ({total - 1})")
                continue
            if size < grid:
                report(f"train.grid_schedule.{step}: the grid shrinks {grid} -> {size}; a coarser spline "
                       "cannot keep the fitted function (the fit error is in the run's events)")
            grid = size
        if train.grid_update_every and not train.grid_update_until:
            report("train.grid_update_every is ignored: train.grid_update_until is 0 (updates stop before step 0)")
    with problem.true_values():
        has_reference = problem.reference() is not None
    if has_reference and config.evaluate.resolution != EvaluateConfig().resolution:
        report(f"evaluate.resolution is ignored: {problem.name} is evaluated on its reference solution's grid")


# -- sizes ----------------------------------------------------------------------------------------
def _components(problem: Problem) -> int:
    """Numbers a jet carries per channel: the value, D first and the second derivatives the residual reads."""
    d = problem.box.dim
    return num_terms(problem.derivatives, d) if isinstance(problem.derivatives, str) else 1 + d + d * d


def memory_estimate(config: Config, problem: Problem) -> tuple[int, int]:
    """(bytes, points) of the largest step, an upper estimate: per point and jet component, every edge's
    output and each input's k+2 spline values (×4 for what autograd keeps and temporaries), plus the
    spline tables ((k+1) polynomial coefficients per parameter, ×8). Calibrated on poisson, KAN [2,10,1],
    40 400 points, float64 (2026-12-02): 145 MB measured (peak RSS minus a 50-point run) for G=5, 175 MB
    for G=50, against 580 MB and 590 MB estimated."""
    itemsize = 8 if config.train.dtype == "float64" else 4
    model, width = config.model, list(config.model.width)
    pairs = list(zip(width[:-1], width[1:]))
    if model.type == "kan":
        grid = max([model.grid, *config.train.grid_schedule.values()])
        per_point = sum(a * b + a * (model.order + 2) for a, b in pairs)
        tables = sum(a * b * (grid + model.order + 2) for a, b in pairs) * (model.order + 1) * 8
    else:
        per_point = sum(b for _, b in pairs) + (2 * model.features if model.type == "fourier_mlp" else 0)
        tables = 0
    points = []
    for stage in config.train.stages:
        changes = stage.points.changes() if stage.points is not None else {}
        count = changes.get("interior", config.points.interior) + changes.get("boundary", config.points.boundary)
        if problem.box.has_time:
            count += changes.get("initial", config.points.initial)
        points.append(count)
    most = max(points)
    return (most * per_point * _components(problem) * 4 + tables) * itemsize, most


def available_memory(device: torch.device) -> int | None:
    """Bytes of memory on ``device`` (the GPU's, or the machine's available RAM), None if unknown."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        try:
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None


def check_size(config: Config, problem: Problem, device: torch.device) -> None:
    """Refuse a config whose training step would not fit in memory, with the estimate."""
    need, points = memory_estimate(config, problem)
    have = available_memory(device)
    if have is not None and need > MEMORY_FRACTION * have:
        model = config.model
        grid = max([model.grid, *config.train.grid_schedule.values()])
        network = f"{model.type} {list(model.width)}" + (f" G={grid} k={model.order}" if model.type == "kan" else "")
        raise ValueError(f"points/model: a step on {points} points with {network} needs about {need / 2**30:.1f} GiB "
                         f"(estimate), more than {MEMORY_FRACTION:.0%} of the {have / 2**30:.1f} GiB available on "
                         f"{device.type}; use fewer points (points.interior) or a smaller network")


# -- a first evaluation of the loss ---------------------------------------------------------------
def _shape_ok(value: torch.Tensor, rows: int, outputs: int) -> bool:
    return isinstance(value, torch.Tensor) and (
        (value.ndim == 1 and value.shape[0] == rows) or (value.ndim == 2 and value.shape == (rows, outputs)))


def _expected(rows: int, outputs: int) -> str:
    return f"[{rows}]" + (f" or [{rows}, {outputs}]" if outputs > 1 else "")


def check_terms(field: Field, points: Points, residual_fn: Callable, condition_fn: Callable) -> None:
    """Evaluate the residual and every soft condition once on ``points``: each must be [N] (or [N, fields])
    for its N points, and every condition must get points. Catches broadcasting mistakes (an [N, 1] term
    added to an [N] one gives [N, N]) that would otherwise train silently on the wrong loss."""
    problem = field.problem
    name = type(problem).__name__
    r = residual_fn(field, points.interior)
    values = r if isinstance(r, dict) else {"residual": r}
    for key, value in values.items():
        if not _shape_ok(value, points.interior.shape[0], problem.outputs):
            shape = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{name}.residual: {key} has shape {shape} on {points.interior.shape[0]} points; "
                             f"expected {_expected(points.interior.shape[0], problem.outputs)} (a broadcast "
                             "between [N] and [N, 1] terms?)")
    for condition in problem.soft_conditions:
        if _point_count(problem, condition, points) == 0:  # before evaluating: a net on no points may fail
            raise ValueError(_no_points(problem, condition))
        error = condition_fn(field, condition, points)
        if error.numel() == 0:
            raise ValueError(_no_points(problem, condition))
        rows = error.shape[0]
        if isinstance(condition, Periodic):
            continue  # values and derivatives on matched faces, concatenated
        if error.ndim > 2 or (error.ndim == 2 and error.shape[1] != problem.outputs):
            raise ValueError(f"{name}.conditions: {condition.name!r} gives values of shape {list(error.shape)}; "
                             f"expected {_expected(rows, problem.outputs)} (its value function must return one "
                             "number per point: [N], not [N, 1])")


def _point_count(problem: Problem, condition, points: Points) -> int | None:
    """The number of points a condition is evaluated on, where it can be told without evaluating it."""
    if isinstance(condition, Initial):
        return points.initial.shape[0]
    if isinstance(condition, (Dirichlet, Neumann)):
        return int(problem.boundary_part(condition, points)[0].shape[0])
    return None


def _no_points(problem: Problem, condition) -> str:
    """Why a soft condition gets no points, and what to use instead."""
    label = f"{type(problem).__name__}.conditions: {condition.name!r}"
    if isinstance(condition, Initial):
        return f"{label} gets no points: points.initial is 0"
    faces = getattr(condition, "faces", getattr(condition, "on", None))
    box = problem.box
    if box.has_time and faces is not None and faces != "all":
        named = [faces] if isinstance(faces, str) else list(faces)
        time_faces = [face.name for face in box.faces() if face.axis == box.time_axis]
        if any(str(face) in time_faces for face in named):
            return (f"{label} is on {', '.join(map(str, named))}, a time face, which never gets boundary points "
                    "(they are drawn on the space faces only); use Initial(...) for t = t0")
    return f"{label} on {faces} gets no points: points.boundary is 0 or no boundary points fall on it"
