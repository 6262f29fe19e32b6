"""Refinement and rounding of the compact form's constants against the PDE loss (steps 5 and 6 of the
compact mode in :mod:`kanpde.symbolic`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sympy
import torch
from scipy.optimize import least_squares

from kanpde.geometry import Points, sample_boundary, sample_initial, sample_interior
from kanpde.loss import condition_error, residual
from kanpde.problem import Problem
from kanpde.symbolic.compact import CompactOptions
from kanpde.symbolic.evaluate import SymbolicField
from kanpde.symbolic.formula import Program, _output_names, _symbol


def _parametrize(exprs: Sequence[sympy.Expr]) -> tuple[list[sympy.Expr], list[sympy.Symbol], list[float]]:
    """Replace every distinct Float by a parameter symbol: (expressions, symbols, values)."""
    floats = sorted(set().union(*(e.atoms(sympy.Float) for e in exprs)), key=lambda f: (abs(float(f)), float(f)))
    symbols = [_symbol(f"_p{k}") for k in range(len(floats))]
    mapping = dict(zip(floats, symbols))
    return [e.xreplace(mapping) for e in exprs], symbols, [float(f) for f in floats]


class _Loss:
    """The training loss Σ w·mean(r²) of a parametrised formula on fixed points, as residual vector."""

    def __init__(self, problem: Problem, exprs: Sequence[sympy.Expr], params: Sequence[sympy.Symbol],
                 weights: Mapping[str, float], points: Points):
        coords = tuple(_symbol(name) for name in problem.coords)
        program = Program(coords, [], list(exprs), _output_names(problem), tuple(params))
        self.field = SymbolicField(program, problem)
        self.problem, self.points = problem, points
        self.weights = {name: float(weights.get(name, 1.0)) for name in problem.loss_terms()}

    def vector(self, values: Sequence[float]) -> np.ndarray:
        self.field.params = [float(v) for v in values]
        parts = []
        r = residual(self.field, self.points.interior).reshape(-1)
        parts.append(math.sqrt(self.weights["residual"] / max(r.numel(), 1)) * r)
        for condition in self.problem.soft_conditions:
            error = condition_error(self.field, condition, self.points).reshape(-1)
            parts.append(math.sqrt(self.weights[condition.name] / max(error.numel(), 1)) * error)
        vector = torch.cat(parts).numpy()
        return np.where(np.isfinite(vector), vector, 1e150)

    def __call__(self, values: Sequence[float]) -> float:
        vector = self.vector(values)
        return float(vector @ vector)

    def values(self, values: Sequence[float]) -> np.ndarray:
        """The formula at the interior points."""
        self.field.params = [float(v) for v in values]
        return self.field(self.points.interior).numpy().ravel()


def _loss_points(problem: Problem, count: int, seed: int) -> Points:
    box, kw = problem.box, {"dtype": torch.float64}
    interior = sample_interior(box, count, "sobol", seed + 1, **kw)
    empty = torch.zeros(0, box.dim, dtype=torch.float64)
    boundary, face, normal = empty, torch.zeros(0, dtype=torch.int64), empty
    if box.boundary_faces():
        boundary, face, normal = sample_boundary(box, max(count // 4, 4), "sobol", seed + 2, **kw)
    initial = sample_initial(box, max(count // 4, 4), "sobol", seed + 3, **kw) if box.has_time else empty
    return Points(interior, boundary, face, normal, initial)


def _round_candidates(value: float, max_denominator: int, digits: int) -> list[sympy.Expr]:
    """Simpler numbers near ``value``, simplest first: 0, p/q, p/q·π (q ≤ max_denominator, within 2%),
    then ``value`` rounded to 1 … digits significant digits."""
    out: list[sympy.Expr] = [sympy.Integer(0)]
    if value == 0 or not math.isfinite(value):
        return out
    for q in range(1, max_denominator + 1):
        for base, symbolic in ((1.0, sympy.Integer(1)), (math.pi, sympy.pi)):
            p = round(value * q / base)
            if p != 0 and abs(p * base / q - value) <= 0.02 * abs(value):
                candidate = sympy.Rational(p, q) * symbolic
                if candidate not in out:
                    out.append(candidate)
    magnitude = math.floor(math.log10(abs(value)))
    for d in range(1, digits + 1):
        rounded = round(value, d - 1 - magnitude)
        candidate = sympy.Integer(int(rounded)) if float(rounded).is_integer() else sympy.Float(f"{rounded:.{d}g}")
        if all(candidate != c for c in out):
            out.append(candidate)
    return out


def _refine_and_round(problem: Problem, exprs: list[sympy.Expr], options: CompactOptions,
                      weights: Mapping[str, float]) -> tuple[list[sympy.Expr], dict]:
    """Refine (optional) and round the constants of composed formulas against the PDE loss."""
    info: dict[str, Any] = {}
    parametrized, symbols, values = _parametrize(exprs)
    info["constants"] = len(symbols)
    if not symbols:
        return exprs, info
    points = _loss_points(problem, options.points, options.seed)
    loss = _Loss(problem, parametrized, symbols, weights, points)
    start = np.array(values)
    info["loss_fitted"] = loss(start)
    if options.refine:
        try:
            solution = least_squares(loss.vector, start, method="trf", x_scale="jac", xtol=1e-15, ftol=1e-15,
                                     gtol=1e-15, max_nfev=options.refine_evaluations)
            if np.isfinite(solution.x).all() and loss(solution.x) < info["loss_fitted"]:
                start = solution.x
        except (ValueError, np.linalg.LinAlgError) as error:  # pragma: no cover - numerical failure
            info["refine_error"] = str(error)
        info["loss_refined"] = loss(start)
    reference = loss(start)
    zero = _Loss(problem, [sympy.Integer(0)] * len(exprs), [], weights, points)([])
    floor = 1e-12 * (zero + 1e-300)  # round-off level of the loss
    chosen: list[sympy.Expr] = [sympy.Float(v) for v in start]
    current = start.copy()
    if options.round:
        limit = reference * (1 + options.loss_slack) + floor
        unrounded = loss.values(start)
        scale = float(np.linalg.norm(unrounded)) + 1e-300
        for k, value in enumerate(start):
            for candidate in _round_candidates(float(value), options.max_denominator, options.digits):
                trial = current.copy()
                trial[k] = float(candidate)
                if loss(trial) <= limit and np.linalg.norm(loss.values(trial) - unrounded) <= options.round_tol * scale:
                    chosen[k], current = candidate, trial
                    break
        info["loss_rounded"] = loss(current)
    mapping = dict(zip(symbols, chosen))
    return [e.xreplace(mapping) for e in parametrized], info
