"""The compact form: prune edges, fit each kept edge (:mod:`~kanpde.symbolic.fit`), compose the layers, and the
algebraic tidying afterwards (dropping redundant |·|, expansion, ``sympy.simplify``)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import sympy
import torch

from kanpde.field import Field
from kanpde.geometry import evaluation_grid, sample_boundary, sample_interior
from kanpde.problem import Problem
from kanpde.symbolic.fit import EdgeFit, _library, fit_edge
from kanpde.symbolic.formula import _check_kan, _lambdify, _net_inputs, _points, _symbol, symbolic_output_transform


# -- compact mode: the network's edges, composed ------------------------------------------------
@dataclass
class CompactOptions:
    """Options of the compact mode (``export(..., mode="compact", **options)``)."""

    prune: float = 1e-2  # relative edge score below which an edge is removed
    r2_tol: float = 1e-5  # accept a candidate when 1 − R² ≤ r2_tol
    complexity_weight: float = 1.0  # fallback score log10(1 − R²) + weight·complexity
    functions: Any = None  # FUNCTIONS, a list of its names, or a mapping name -> (sympy, numpy, complexity)
    samples: int = 2048  # points of the box whose activations sample the edges
    points: int = 1024  # interior points of the PDE loss (refine, rounding); boundary/initial: a quarter
    seed: int = 0
    refine: bool = True  # fit all constants jointly to the PDE loss (False: the edge fits as they are)
    refine_evaluations: int = 200  # least-squares function evaluations (Jacobians included) for refine
    round: bool = True
    max_denominator: int = 12
    digits: int = 6
    loss_slack: float = 0.1  # a rounding may raise the PDE loss by this fraction of the unrounded one
    round_tol: float = 1e-2  # ... and move the formula by at most this relative L2 distance
    simplify: bool = True
    loss_weights: Mapping[str, float] | None = None  # default: the run's train.loss_weights (else 1)

    @classmethod
    def build(cls, options: Mapping[str, Any]) -> CompactOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"export: unknown option(s) {', '.join(unknown)}; options: {', '.join(sorted(known))}")
        result = cls(**options)
        for name in ("prune", "r2_tol", "complexity_weight", "loss_slack", "round_tol"):
            value = getattr(result, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name}: must be a non-negative number, got {value!r}")
        for name in ("samples", "points", "refine_evaluations", "max_denominator", "digits"):
            value = getattr(result, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be a positive integer, got {value!r}")
        return result


@torch.no_grad()
def _edge_samples(field: Field, count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per layer: (inputs [N, n_in], edge outputs [N, n_in, n_out]) on interior and boundary points."""
    box = field.problem.box
    dtype = field._lo.dtype
    x = sample_interior(box, count, "sobol", seed, dtype=dtype)
    if box.boundary_faces():
        x = torch.cat([x, sample_boundary(box, max(count // 8, 8), "grid", seed, dtype=dtype).points])
    h = field.net_inputs(x.to(field._lo.device))
    result = []
    for layer in field.net.layers:
        phi = layer.edge_values(h)  # w_b·silu + w_s·spline, or the snapped function (symbolic discovery)
        result.append((h.double().cpu().numpy(), phi.double().cpu().numpy()))
        h = phi.sum(1)
    return result


def _prune(samples: list[tuple[np.ndarray, np.ndarray]], threshold: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Relative scores [n_in, n_out] per layer and the kept-edge masks (dead hidden nodes removed)."""
    scores, keep = [], []
    for _, phi in samples:
        l1 = np.abs(phi).mean(0)
        top = l1.max()
        relative = l1 / top if top > 0 else np.zeros_like(l1)
        scores.append(relative)
        keep.append(relative >= threshold)
    for index in range(len(keep) - 2, -1, -1):  # a hidden node that feeds nothing needs no inputs
        dead = ~keep[index + 1].any(1)
        keep[index][:, dead] = False
    return scores, keep


def compact_program(field: Field, options: CompactOptions | None = None
                    ) -> tuple[list[sympy.Expr], list[EdgeFit], bool]:
    """Prune and fit every edge, compose: (output formulas in the coordinates, edge fits, whether
    the output transform is included). No refinement or rounding (see :func:`export`)."""
    options = options or CompactOptions()
    net = _check_kan(field)
    library = _library(options.functions)
    problem = field.problem
    coords = [_symbol(name) for name in problem.coords]
    samples = _edge_samples(field, options.samples, options.seed)
    scores, keep = _prune(samples, options.prune)
    snaps = {(index, i, j): (name, [float(v) for v in layer.snap_affine[i, j].detach()])
             for index, layer in enumerate(net.layers) for i, j, name in layer.snapped_edges()}
    current: list[sympy.Expr] = _net_inputs(problem, coords)
    fits: list[EdgeFit] = []
    for index, (layer, (h, phi)) in enumerate(zip(net.layers, samples), start=1):
        sums: list[sympy.Expr] = []
        for j in range(layer.out_features):
            terms = []
            for i in range(layer.in_features):
                snapped = snaps.get((index - 1, i, j))
                if snapped is not None:  # trained as a library function: read it off the network
                    fit = EdgeFit(index, i, j, snapped[0], *snapped[1], r2=1.0, score=float(scores[index - 1][i, j]))
                elif not keep[index - 1][i, j]:
                    fit = EdgeFit(index, i, j, "0", score=float(scores[index - 1][i, j]))
                else:
                    fit = fit_edge(h[:, i], phi[:, i, j], library, options.r2_tol, options.complexity_weight)
                    fit.layer, fit.i, fit.j, fit.score = index, i, j, float(scores[index - 1][i, j])
                fits.append(fit)
                terms.append(fit.expression(current[i], library))
            sums.append(sympy.Add(*terms))
        current = sums
    transformed = symbolic_output_transform(problem, current, coords)
    if transformed is None:
        warnings.warn(f"{problem.name}: the output transform cannot be written symbolically; the formula is the "
                      "network's output N(ξ(x)) without it", stacklevel=2)
        return current, fits, False
    return transformed, fits, True


def _domain_samples(problem: Problem, count: int = 2000) -> np.ndarray:
    """Points of the closed box (grid with corners and faces, plus Sobol points) to test signs on."""
    box = problem.box
    per_axis = max(2, int(round(min(count, 4000) ** (1 / box.dim))))
    _, grid = evaluation_grid(box, per_axis, dtype=torch.float64)
    inside = sample_interior(box, count, "sobol", 7, dtype=torch.float64)
    return torch.cat([grid, inside]).numpy()


def _drop_abs(exprs: list[sympy.Expr], coords: Sequence[sympy.Symbol], samples: np.ndarray) -> list[sympy.Expr]:
    """|g| → ±g where g keeps one sign on the domain (a kink the fit put outside the box)."""
    out = []
    for expr in exprs:
        for _ in range(20):
            changed = False
            for atom in sorted(expr.atoms(sympy.Abs), key=sympy.count_ops):
                argument = atom.args[0]
                if not argument.free_symbols <= set(coords):
                    continue
                with np.errstate(all="ignore"):
                    values = _points(_lambdify(coords, argument)(*samples.T), len(samples))
                sign = 1 if np.all(values > 0) else -1 if np.all(values < 0) else 0
                if sign:
                    expr = expr.xreplace({atom: sign * argument})
                    changed = True
                    break
            if not changed:
                break
        out.append(expr)
    return out


def _tidy(expr: sympy.Expr) -> sympy.Expr:
    """Expand products and function arguments, unless that makes the expression much larger."""
    try:
        expanded = sympy.expand(expr, deep=True, power_exp=False, power_base=False, log=False)
    except (RecursionError, MemoryError):  # pragma: no cover - pathological inputs
        return expr
    return expanded if sympy.count_ops(expanded) <= 3 * sympy.count_ops(expr) + 50 else expr


def _simplify(exprs: list[sympy.Expr], coords: Sequence[sympy.Symbol], max_ops: int = 200) -> list[sympy.Expr]:
    """``sympy.simplify`` each small formula; keep the result only if it is no longer, brings in no new
    decimal constants, and is numerically the same."""
    rng = np.random.default_rng(0)
    probe = rng.uniform(-1, 1, (64, len(coords)))
    out = []
    for expr in exprs:
        if sympy.count_ops(expr) > max_ops:
            out.append(expr)
            continue
        simpler = sympy.simplify(expr)
        new_decimals = not simpler.atoms(sympy.Float) <= expr.atoms(sympy.Float)  # e.g. 7/9 -> 0.777…
        if new_decimals or sympy.count_ops(simpler) > sympy.count_ops(expr):
            out.append(expr)
            continue
        with np.errstate(all="ignore"):
            before = _points(_lambdify(coords, expr)(*probe.T), len(probe))
            after = _points(_lambdify(coords, simpler)(*probe.T), len(probe))
        finite = np.isfinite(before)
        same = np.array_equal(finite, np.isfinite(after)) and np.allclose(after[finite], before[finite], rtol=1e-9,
                                                                         atol=1e-12 * (np.abs(before[finite]).max(
                                                                             initial=0) + 1))
        out.append(simpler if same else expr)
    return out
