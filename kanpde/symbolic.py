"""Symbolic export of trained KANs: formulas u(x, y, ...) in the problem's own coordinates, checked.

Two modes turn a trained :class:`~kanpde.nets.KAN` (inside its :class:`~kanpde.Field`) into sympy:

``exact``
    Every edge φ_ji(s) = w_b·s/(1 + e^(−s)) + Piecewise(the order-k polynomial in s − t_c on each
    knot cell t_c ≤ s < t_{c+1}, 0 outside the knots' span): the per-cell coefficients are those the
    network itself evaluates (``KANLayer.cell_basis`` contracted with w_s·coef). Layers are summed
    node by node and composed with the box map ξ = 2(x − lo)/(hi − lo) − 1 and, when it can be
    written symbolically, the problem's output transform (none, or the generic hard Dirichlet /
    Initial one with constant targets; a problem may define ``symbolic_output_transform(n, coords)``
    for its own). The formula equals the network to round-off (≤ 1e-10). Kept as a straight-line
    :class:`Program` (ξ, hidden nodes, output) so that huge networks stay printable; ``exact.py`` is
    a standalone numpy module (searchsorted + per-cell coefficient tables) with the same function.

``compact``
    1. *Prune*: an edge's score is the mean |φ_ji| over samples of its input (the activations of
       points of the box), relative to the largest score in its layer; edges below ``prune``
       (default 1e-2) become 0, and so do edges into hidden nodes that no longer feed anything.
    2. *Fit*: every kept edge, sampled as (s_n, y_n), is fitted by each candidate f of
       :data:`FUNCTIONS` as a·f(b·s + c) + d. (a, d) enter linearly and are eliminated (variable
       projection); (b, c) start from the best points of a grid of scales and shifts of the
       standardised input and are polished by ``scipy.optimize.least_squares``. Redundant
       parameters are then dropped (b → ±1 or c → 0 when the fit does not get worse) and
       parity/periodicity are used to make (a, b, c) canonical (b > 0, sin/cos phases in (−π/2, π/2]).
    3. *Select* (the rule): let q = 1 − R² be the fraction of the edge's variance a candidate
       leaves unexplained. Candidates with q ≤ ``r2_tol`` (default 1e-5: an rms misfit of 0.3 % of
       the edge's spread, about what a PINN-trained edge carries) are *accepted*; the edge takes
       the accepted candidate of least complexity. If none is accepted it takes the candidate
       minimising log10(q) + ``complexity_weight``·complexity (default weight 1: one unit of
       complexity must buy a tenfold smaller unexplained variance) among those that explain at
       least half of the variance (q ≤ 0.5). Ties (q within a factor 2, or
       scores within log10 2) go to the smallest phase |c|, then to the function listed first in
       FUNCTIONS (so cos(s) is cos, not sin(s + π/2)). An edge without variance, or one that no
       candidate explains half of (q > 0.5), is the constant "const" (its mean).
    4. *Compose* the edge formulas through the layers, the box map and the output transform, and
       expand (when that does not blow the expression up) so that every constant appears once.
    5. *Refine* (``refine=True``, the default): all floating constants are fitted jointly to the PDE — the
       training loss Σ_terms w·mean(residual² / condition error²) on fresh points, with the run's
       loss weights — by ``least_squares``; kept only if the loss decreases.
    6. *Round*: each constant in turn is replaced by the first of 0, small rationals p/q and
       rational multiples of π (q ≤ ``max_denominator``), then 1, 2, … ``digits`` significant
       digits, whose formula has a PDE loss ≤ (1 + ``loss_slack``)·(loss before rounding) + a
       round-off floor, and which moves the formula by at most ``round_tol`` (1 %, relative L2 on
       the loss points); exact constants therefore survive whenever they solve the PDE as well.
       Finally ``sympy.simplify`` (for small formulas), kept only if no longer, free of new decimals and
       numerically identical.

Verification (``symbolic.json``), for the model and each form, on the evaluation grid: relative
L2 and max error against ``problem.exact``/``reference``, the max and relative difference from the
trained model, the PDE residual of the formula itself (mean and max |r|), and the max error of
every boundary/initial condition. The formula's derivatives come from ``sympy.diff``
(:class:`SymbolicField` packs them into a :class:`~kanpde.Jet` in the problem's derivative mode,
so ``problem.residual`` and the library's own loss code evaluate it exactly as for the network).

Entry points: :func:`export` (what ``python -m kanpde export RUN_DIR`` calls) and
:func:`format_report`. This module sits at the solver level: it imports the lower layers and
``kanpde.solver``, and nothing in the library imports it except the CLI.
"""

from __future__ import annotations

import json
import math
import os
import pprint
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import sympy
import torch
from scipy.optimize import least_squares
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.printing.numpy import NumPyPrinter

from kanpde.field import Field
from kanpde.geometry import Points, evaluation_grid, sample_boundary, sample_initial, sample_interior
from kanpde.jet import Jet
from kanpde.loss import condition_error, residual
from kanpde.nets.kan import KAN, KANLayer
from kanpde.problem import Dirichlet, Initial, Neumann, Periodic, Problem

__all__ = [
    "FUNCTIONS", "SymbolicFunction", "Program", "SymbolicField", "EdgeFit", "CompactOptions", "ExportResult",
    "export", "format_report", "exact_program", "compact_program", "fit_edge", "verify", "parse_text",
    "exact_module_source", "compact_module_source", "MODES", "FORMATS",
]

MODES = ("exact", "compact")
FORMATS = ("sympy", "latex", "python")
_EXTENSIONS = {"sympy": "txt", "latex": "tex", "python": "py"}
_MAX_POINTS = 40_000  # evaluation-grid cap for the symbolic forms (they are evaluated by numpy, not torch)


# -- the function library --------------------------------------------------------------------
class SymbolicFunction(NamedTuple):
    """A candidate edge function: sympy form, numpy form, complexity (a small integer)."""

    sympy: Callable[[sympy.Expr], sympy.Expr]
    numpy: Callable[[np.ndarray], np.ndarray]
    complexity: int


FUNCTIONS: dict[str, SymbolicFunction] = {
    "x": SymbolicFunction(lambda z: z, lambda z: z, 1),
    "x^2": SymbolicFunction(lambda z: z**2, np.square, 2),
    "x^3": SymbolicFunction(lambda z: z**3, lambda z: z**3, 3),
    "x^4": SymbolicFunction(lambda z: z**4, lambda z: z**4, 3),
    "sin": SymbolicFunction(sympy.sin, np.sin, 2),
    "cos": SymbolicFunction(sympy.cos, np.cos, 2),
    "exp": SymbolicFunction(sympy.exp, np.exp, 2),
    "1/x": SymbolicFunction(lambda z: 1 / z, lambda z: 1 / z, 2),
    "sqrt": SymbolicFunction(sympy.sqrt, np.sqrt, 2),
    "log": SymbolicFunction(sympy.log, np.log, 2),
    "tanh": SymbolicFunction(sympy.tanh, np.tanh, 3),
    "abs": SymbolicFunction(sympy.Abs, np.abs, 3),
    "gaussian": SymbolicFunction(lambda z: sympy.exp(-(z**2)), lambda z: np.exp(-(z**2)), 3),
    "arctan": SymbolicFunction(sympy.atan, np.arctan, 4),
}
"""Candidate edge functions by name: (sympy function, numpy function, complexity). Users may add
entries (a plain 3-tuple works), e.g. ``FUNCTIONS["sinh"] = (sympy.sinh, numpy.sinh, 3)``; the
order breaks ties between equally simple, equally good candidates."""


def _library(functions: Mapping[str, Any] | Iterable[str] | None) -> dict[str, SymbolicFunction]:
    """The candidate library: FUNCTIONS, a subset of its names, or a user mapping."""
    if functions is None:
        functions = FUNCTIONS
    if isinstance(functions, Mapping):
        items = functions.items()
    else:
        names = list(functions)
        unknown = [name for name in names if name not in FUNCTIONS]
        if unknown:
            raise ValueError(f"functions: unknown names {unknown}; known: {', '.join(FUNCTIONS)}")
        items = [(name, FUNCTIONS[name]) for name in names]
    library = {}
    for name, entry in items:
        if not (isinstance(entry, Sequence) and len(entry) >= 3 and callable(entry[0]) and callable(entry[1])):
            raise ValueError(f"functions.{name}: must be (sympy function, numpy function, complexity), got {entry!r}")
        library[str(name)] = SymbolicFunction(entry[0], entry[1], int(entry[2]))
    if not library:
        raise ValueError("functions: the library is empty")
    return library


# -- straight-line programs and their jets ------------------------------------------------------
@dataclass
class Program:
    """Straight-line symbolic code: ``steps`` assign expressions to new symbols in order, and the
    ``outputs`` (one per field component, named ``names``) use the coordinates and those symbols.
    ``params`` are extra symbols that are numbers at evaluation time (for refining constants)."""

    coords: tuple[sympy.Symbol, ...]
    steps: list[tuple[sympy.Symbol, sympy.Expr]]
    outputs: list[sympy.Expr]
    names: list[str]
    params: tuple[sympy.Symbol, ...] = ()

    def expressions(self) -> list[sympy.Expr]:
        """The outputs with every step substituted: expressions of the coordinates (and params) only."""
        values: dict[sympy.Basic, sympy.Basic] = {}
        cache: dict[sympy.Basic, sympy.Basic] = {}
        for symbol, expr in self.steps:
            values[symbol] = _substitute(expr, values, cache)
        return [_substitute(expr, values, cache) for expr in self.outputs]

    @classmethod
    def from_expressions(cls, exprs: Sequence[sympy.Expr], coords: Sequence[sympy.Symbol], names: Sequence[str],
                         params: Sequence[sympy.Symbol] = (), max_ops: int = 4000) -> Program:
        """One step per output when small (so derivatives are ``sympy.diff`` of the whole formula),
        else the common subexpressions of ``sympy.cse`` as steps."""
        exprs = [sympy.sympify(e) for e in exprs]
        if sum(sympy.count_ops(e) for e in exprs) <= max_ops:
            return cls(tuple(coords), [], exprs, list(names), tuple(params))
        replacements, reduced = sympy.cse(exprs, symbols=sympy.numbered_symbols("_c", real=True), order="none")
        return cls(tuple(coords), list(replacements), list(reduced), list(names), tuple(params))

    def count_ops(self) -> int:
        return sum(sympy.count_ops(e) for _, e in self.steps) + sum(sympy.count_ops(e) for e in self.outputs)


def _substitute(expr: sympy.Basic, mapping: Mapping[sympy.Basic, sympy.Basic],
                cache: dict[sympy.Basic, sympy.Basic]) -> sympy.Basic:
    """``expr.xreplace(mapping)``, memoised over shared subtrees, building Piecewise conditions as
    they are: sympy would otherwise fold a Piecewise inside a condition into nested Piecewise
    (exponentially many branches for composed KAN layers)."""
    if expr in mapping:
        return mapping[expr]
    if not expr.args:
        return expr
    if expr in cache:
        return cache[expr]
    args = [_substitute(arg, mapping, cache) for arg in expr.args]
    if all(new is old for new, old in zip(args, expr.args)):
        result = expr
    elif isinstance(expr, ExprCondPair):
        result = sympy.Tuple.__new__(ExprCondPair, *args)
    elif isinstance(expr, sympy.Piecewise):
        result = _raw_piecewise(arg.args for arg in args)
    elif isinstance(expr, (sympy.core.relational.Relational, sympy.logic.boolalg.BooleanFunction)):
        result = expr.func(*args, evaluate=False)
    else:
        result = expr.func(*args)
    cache[expr] = result
    return result


def _symbol(name: str) -> sympy.Symbol:
    """Coordinates, nodes and constants are real: derivatives of |s|, √s … stay free of re/im."""
    return sympy.Symbol(name, real=True)


class _NumPyPrinter(NumPyPrinter):
    """NumPyPrinter that writes floats as Python does (exact round trip, and much faster than mpmath)."""

    def _print_Float(self, expr: sympy.Float) -> str:
        return repr(float(expr))


class _StrPrinter(sympy.printing.str.StrPrinter):
    """Fast, unsorted sympy text for huge exact formulas, floats with all 17 digits."""

    def _print_Float(self, expr: sympy.Float) -> str:
        return repr(float(expr))


def _lambdify(args: Sequence[sympy.Symbol], expr: sympy.Expr) -> Callable:
    printer = _NumPyPrinter({"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True,
                             "user_functions": {}})
    return sympy.lambdify(list(args), expr, modules="numpy", printer=printer, cse=False)


def _raw_piecewise(pairs: Iterable[tuple[sympy.Basic, sympy.Basic]]) -> sympy.Piecewise:
    """A Piecewise built as given (no condition folding or collapsing, which is slow and unneeded here)."""
    return sympy.Basic.__new__(sympy.Piecewise, *(sympy.Tuple.__new__(ExprCondPair, e, c) for e, c in pairs))


def _diff(expr: sympy.Expr, symbol: sympy.Symbol) -> sympy.Expr:
    """∂expr/∂symbol pointwise, by ``sympy.diff``: a Piecewise is differentiated branch by branch
    (its conditions kept as they are), Dirac deltas (from |s|, sign) are 0 away from their kinks."""
    if symbol not in expr.free_symbols:
        return sympy.Integer(0)
    if isinstance(expr, sympy.Piecewise):
        return _raw_piecewise((_diff(e, symbol), c) for e, c in expr.args)
    if expr.has(sympy.Piecewise) and isinstance(expr, (sympy.Add, sympy.Mul)):
        if isinstance(expr, sympy.Add):
            return sympy.Add(*(_diff(arg, symbol) for arg in expr.args))
        args = expr.args
        return sympy.Add(*(sympy.Mul(*args[:k], _diff(arg, symbol), *args[k + 1:]) for k, arg in enumerate(args)))
    derivative = sympy.diff(expr, symbol)
    if derivative.has(sympy.DiracDelta):
        derivative = derivative.replace(sympy.DiracDelta, lambda *args: sympy.Integer(0))
    if derivative.has(sympy.Derivative):
        raise ValueError(f"symbolic export: sympy cannot differentiate {expr} with respect to {symbol}")
    return derivative


def _points(value: Any, n: int) -> np.ndarray:
    """A lambdified result (array or scalar) as a float64 array [n]."""
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (n,))


class _Compiled:
    """A program's value and derivative formulas, lambdified once for one derivative order.

    Each step v = e(deps) stores ∂e/∂d and ∂²e/∂d∂d' by ``sympy.diff``; :meth:`run` applies the
    chain rule numerically: ∇v = Σ_d e_d ∇d and ∂²v = Σ_d e_d ∂²d + Σ_{d,d'} e_dd' ∇d ⊗ ∇d'.
    """

    def __init__(self, program: Program, order: int, full: bool):
        self.dim, self.order, self.full = len(program.coords), order, full
        variables: list[sympy.Symbol] = list(program.coords)
        self.nodes = []
        params = list(program.params)
        for symbol, expr in [*program.steps, *((None, e) for e in program.outputs)]:
            expr = sympy.sympify(expr)
            free = expr.free_symbols
            deps = [k for k, v in enumerate(variables) if v in free]
            args = [variables[k] for k in deps] + params
            firsts, seconds = [], []
            if order >= 1:
                for a, k in enumerate(deps):
                    first = _diff(expr, variables[k])
                    if first == 0:
                        continue
                    firsts.append((k, _lambdify(args, first)))
                    if order < 2:
                        continue
                    for b in range(a, len(deps)):
                        other = deps[b]
                        if other != k and not full and k < self.dim and other < self.dim:
                            continue  # distinct coordinates: no contribution to ∂²/∂x_a²
                        if variables[other] not in first.free_symbols:
                            continue
                        second = _diff(first, variables[other])
                        if second != 0:
                            seconds.append((k, other, _lambdify(args, second)))
            self.nodes.append((deps, _lambdify(args, expr), firsts, seconds))
            if symbol is not None:
                variables.append(symbol)
        self.outputs = len(program.outputs)

    def run(self, x: np.ndarray, params: Sequence[float] = ()) -> list[tuple[np.ndarray, Any, Any]]:
        """(value [N], gradient [N, D], second [N, D] diagonal or [N, D, D] full) per output."""
        n, dim = x.shape
        values: list[np.ndarray] = [x[:, a] for a in range(dim)]
        grads: list[Any] = [np.eye(dim)[a][None, :] for a in range(dim)]
        seconds_of: list[Any] = [None] * dim
        results = []
        with np.errstate(all="ignore"):
            for deps, value_fn, firsts, second_fns in self.nodes:
                args = [values[k] for k in deps] + list(params)
                value = _points(value_fn(*args), n)
                grad, second = np.zeros((1, dim)), None
                for k, fn in firsts:
                    derivative = _points(fn(*args), n)
                    grad = grad + derivative[:, None] * grads[k]
                    if self.order >= 2 and seconds_of[k] is not None:
                        weight = derivative[:, None, None] if self.full else derivative[:, None]
                        second = weight * seconds_of[k] if second is None else second + weight * seconds_of[k]
                for k, other, fn in second_fns:
                    curvature = _points(fn(*args), n)
                    gk, go = np.broadcast_to(grads[k], (n, dim)), np.broadcast_to(grads[other], (n, dim))
                    if self.full:
                        term = gk[:, :, None] * go[:, None, :]
                        if other != k:
                            term = term + term.transpose(0, 2, 1)
                        term = curvature[:, None, None] * term
                    else:
                        term = curvature[:, None] * gk * go * (1.0 if other == k else 2.0)
                    second = term if second is None else second + term
                values.append(value)
                grads.append(grad)
                seconds_of.append(second)
                results.append((value, grad, second))
        shape = (n, dim, dim) if self.full else (n, dim)
        return [(value, np.broadcast_to(grad, (n, dim)), np.zeros(shape) if second is None
                 else np.broadcast_to(second, shape)) for value, grad, second in results[-self.outputs:]]


class SymbolicField:
    """A sympy formula that behaves like a :class:`~kanpde.Field` for the loss code: ``field(x)``
    gives values [N, outputs] and ``field.jet(x, mode)`` a :class:`~kanpde.Jet` whose derivatives
    come from ``sympy.diff`` of the formula (lambdified with numpy), in the layout of ``mode``."""

    def __init__(self, program: Program, problem: Problem, params: Sequence[float] = ()):
        self.program, self.problem = program, problem
        self.params = [float(v) for v in params]
        self._compiled: dict[tuple[int, bool], _Compiled] = {}

    def _compile(self, order: int, full: bool) -> _Compiled:
        for (have_order, have_full), compiled in self._compiled.items():  # a richer one will do
            if have_order >= order and have_full == full or have_order >= order and order < 2:
                return compiled
        self._compiled[order, full] = _Compiled(self.program, order, full)
        return self._compiled[order, full]

    def jet(self, x: torch.Tensor, mode: str) -> Jet:
        order = {"value": 0, "none": 1}.get(mode, 2)
        compiled = self._compile(order, mode == "full")
        points = x.detach().to("cpu", torch.float64).numpy()
        n, dim = points.shape
        columns = []
        for value, grad, second in compiled.run(points, self.params):
            parts = [value[:, None]]
            if mode != "value":
                parts.append(grad)
            if mode == "trace":
                parts.append(second.sum(1, keepdims=True))
            elif mode == "diagonal":
                parts.append(second)
            elif mode == "full":
                parts.append(second.reshape(n, dim * dim))
            columns.append(np.concatenate(parts, axis=1))
        stack = torch.as_tensor(np.stack(columns, axis=-1), dtype=x.dtype, device=x.device)
        return Jet(stack, dim, mode, self.problem.coords)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.jet(x, "value").value


# -- exact mode ---------------------------------------------------------------------------------
def _number(value: float) -> sympy.Expr:
    """A user-given decimal (box bounds, condition values) as the exact rational it spells."""
    return sympy.nsimplify(sympy.Rational(repr(float(value))))


def _box_map(problem: Problem, coords: Sequence[sympy.Symbol]) -> list[sympy.Expr]:
    """ξ_a = 2(x_a − lo_a)/(hi_a − lo_a) − 1, with the box's decimals as exact rationals."""
    box = problem.box
    return [2 * (x - _number(lo)) / (_number(hi) - _number(lo)) - 1 for x, lo, hi in zip(coords, box.lo, box.hi)]


def _embedding(problem: Problem, name: str, xi: sympy.Expr) -> list[sympy.Expr]:
    """The network's inputs for one coordinate: ξ, or (cos πξ, sin πξ) for a periodic one (as in Field)."""
    return [sympy.cos(sympy.pi * xi), sympy.sin(sympy.pi * xi)] if name in problem.periodic else [xi]


def _net_inputs(problem: Problem, coords: Sequence[sympy.Symbol]) -> list[sympy.Expr]:
    """The network's inputs as expressions in the coordinates."""
    return [e for name, xi in zip(problem.coords, _box_map(problem, coords)) for e in _embedding(problem, name, xi)]


def symbolic_output_transform(problem: Problem, outputs: Sequence[sympy.Expr],
                              coords: Sequence[sympy.Symbol]) -> list[sympy.Expr] | None:
    """The problem's output transform applied to network outputs, or None when it cannot be written.

    Handles no hard condition (identity) and the generic g + D·N of one hard Dirichlet/Initial
    condition with a constant g; a problem with its own transform may define
    ``symbolic_output_transform(outputs, coords) -> list of sympy expressions``.
    """
    hook = getattr(problem, "symbolic_output_transform", None)
    if callable(hook):
        return list(hook(list(outputs), list(coords)))
    if type(problem).output_transform is not Problem.output_transform:
        return None
    hard = [c for c in problem.conditions if getattr(c, "hard", False)]
    if not hard:
        return list(outputs)
    condition = hard[0]
    if callable(condition.value):
        return None
    lift = _number(condition.value)
    box = problem.box
    if isinstance(condition, Initial):
        axis = box.time_axis
        distance = (coords[axis] - _number(box.lo[axis])) / (_number(box.hi[axis]) - _number(box.lo[axis]))
    else:
        distance = sympy.Integer(1)
        for index in problem.faces_of(condition):
            face = box.faces()[index]
            lo, hi = _number(box.lo[face.axis]), _number(box.hi[face.axis])
            gap = coords[face.axis] - lo if face.side == "lo" else hi - coords[face.axis]
            distance = distance * gap / (hi - lo)
    return [lift + distance * n for n in outputs]


def edge_tables(layer: KANLayer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A layer's edges as numbers (float64): knots [n_in, K], per-cell polynomial coefficients
    [n_in, K−1 cells, k+1 powers, n_out] of (s − t_c)^p including w_s, and w_b [n_in, n_out]."""
    with torch.no_grad():
        table = layer.cell_coefficients((layer.spline_weight[:, None, :] * layer.coef).double())
    return (layer.knots.detach().double().cpu().numpy(), table.cpu().numpy(),
            layer.base_weight.detach().double().cpu().numpy())


def _silu(s: sympy.Expr) -> sympy.Expr:
    return s / (1 + sympy.exp(-s))


def spline_piecewise(s: sympy.Expr, knots: np.ndarray, cells: np.ndarray) -> sympy.Expr:
    """Σ_p cells[c, p]·(s − t_c)^p on t_c ≤ s < t_{c+1}, 0 outside [t_0, t_{K−1}): a Piecewise whose
    first true condition wins, exactly the network's cell lookup."""
    if not np.any(cells):
        return sympy.Integer(0)
    pieces = [(sympy.Integer(0), s < sympy.Float(knots[0]))]
    for c in range(cells.shape[0]):
        shift = s - sympy.Float(knots[c])
        value = sum((sympy.Float(a) * shift**p for p, a in enumerate(cells[c]) if a != 0), sympy.Integer(0))
        pieces.append((value, s < sympy.Float(knots[c + 1])))
    pieces.append((sympy.Integer(0), True))
    return sympy.Piecewise(*pieces)


def edge_expression(s: sympy.Expr, knots: np.ndarray, cells: np.ndarray, base: float) -> sympy.Expr:
    """φ(s) = w_b·s/(1 + e^(−s)) + spline(s) for one edge."""
    spline = spline_piecewise(s, knots, cells)
    return spline + (sympy.Float(base) * _silu(s) if base != 0 else 0)


def _check_kan(field: Field) -> KAN:
    if not isinstance(field, Field):
        raise TypeError(f"source: expected a run directory, a LoadedRun or a kanpde.Field, got {type(field).__name__}")
    if not isinstance(field.net, KAN):
        raise TypeError(f"symbolic export needs a KAN; this run's network is {type(field.net).__name__}")
    return field.net


def _output_names(problem: Problem) -> list[str]:
    return ["u"] if problem.outputs == 1 else [f"u_{k}" for k in range(problem.outputs)]


def _identifier(name: str, index: int) -> str:
    return name if re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name) else str(index)


def exact_program(field: Field) -> tuple[Program, bool]:
    """The network as a straight-line program ξ → hidden nodes → outputs (→ transform), and whether
    the problem's output transform is included (see :func:`symbolic_output_transform`)."""
    net = _check_kan(field)
    problem = field.problem
    coords = [_symbol(name) for name in problem.coords]
    taken = set(problem.coords)

    def fresh(name: str) -> sympy.Symbol:
        while name in taken:
            name = "_" + name
        taken.add(name)
        return _symbol(name)

    steps: list[tuple[sympy.Symbol, sympy.Expr]] = []
    current = []
    for a, (name, xi) in enumerate(zip(problem.coords, _box_map(problem, coords))):
        symbol = fresh(f"xi_{_identifier(name, a)}")
        steps.append((symbol, xi))
        embedded = _embedding(problem, name, symbol)
        if len(embedded) == 1:
            current.append(symbol)
            continue
        for part, expression in zip(("cos", "sin"), embedded):
            steps.append((fresh(f"{part}_{_identifier(name, a)}"), expression))
            current.append(steps[-1][0])
    layers = list(net.layers)
    sums: list[sympy.Expr] = []
    for index, layer in enumerate(layers, start=1):
        knots, table, base = edge_tables(layer)
        sums = []
        for j in range(layer.out_features):
            terms = [edge_expression(current[i], knots[i], table[i, :, :, j], float(base[i, j]))
                     for i in range(layer.in_features)]
            sums.append(sympy.Add(*terms))
        if index < len(layers):
            current = [fresh(f"h{index}_{j}") for j in range(layer.out_features)]
            steps.extend(zip(current, sums))
    transformed = symbolic_output_transform(problem, [_symbol(f"__n{k}") for k in range(len(sums))], coords)
    if transformed is None:
        warnings.warn(f"{problem.name}: the output transform cannot be written symbolically; the formula is the "
                      "network's output N(ξ(x)) without it", stacklevel=2)
        return Program(tuple(coords), steps, sums, _output_names(problem)), False
    if all(t == _symbol(f"__n{k}") for k, t in enumerate(transformed)):
        return Program(tuple(coords), steps, sums, _output_names(problem)), True
    outputs = [fresh(f"n_{k}") for k in range(len(sums))]
    steps.extend(zip(outputs, sums))
    final = [t.xreplace({_symbol(f"__n{k}"): outputs[k] for k in range(len(sums))}) for t in transformed]
    return Program(tuple(coords), steps, final, _output_names(problem)), True


# -- compact mode: fitting edges --------------------------------------------------------------
@dataclass
class EdgeFit:
    """One edge's symbolic fit: φ(s) ≈ a·f(b·s + c) + d with f = FUNCTIONS[name] ("0": pruned,
    "const": φ ≈ d). ``score``: mean |φ| relative to the layer's largest; ``r2`` = 1 − q."""

    layer: int
    i: int
    j: int
    name: str
    a: float = 0.0
    b: float = 1.0
    c: float = 0.0
    d: float = 0.0
    r2: float = 1.0
    complexity: int = 0
    score: float = 1.0
    candidates: dict[str, float] = field(default_factory=dict)
    function: Any = field(default=None, repr=False, compare=False)  # the library entry used

    def _function(self, functions: Mapping[str, Any] | None) -> Any:
        if functions is not None and self.name in functions:
            return functions[self.name]
        return self.function if self.function is not None else FUNCTIONS[self.name]

    def expression(self, s: sympy.Expr, functions: Mapping[str, Any] | None = None) -> sympy.Expr:
        """a·f(b·s + c) + d as sympy, with ``s`` (any expression) as the edge's input."""
        if self.name == "0":
            return sympy.Integer(0)
        if self.name == "const":
            return sympy.Float(self.d)
        inner = (s if self.b == 1 else sympy.Float(self.b) * s) + (sympy.Float(self.c) if self.c != 0 else 0)
        outer = sympy.Float(self.a) * self._function(functions)[0](inner)
        return outer + sympy.Float(self.d) if self.d != 0 else outer

    def evaluate(self, s: np.ndarray, functions: Mapping[str, Any] | None = None) -> np.ndarray:
        """The fitted edge at numbers ``s``."""
        if self.name == "0":
            return np.zeros_like(s)
        if self.name == "const":
            return np.full_like(s, self.d)
        with np.errstate(all="ignore"):
            return self.a * self._function(functions)[1](self.b * s + self.c) + self.d

    def describe(self) -> str:
        """E.g. ``0.7*sin(2*s + 0.1) + 0.3``: the fitted edge, constants to 6 significant digits."""
        expr = self.expression(_symbol("s"))
        return sympy.sstr(expr.xreplace({f: sympy.Float(f"{float(f):.6g}") for f in expr.atoms(sympy.Float)}))

    def as_dict(self) -> dict:
        return {"layer": self.layer, "i": self.i, "j": self.j, "function": self.name, "a": self.a, "b": self.b,
                "c": self.c, "d": self.d, "r2": self.r2, "complexity": self.complexity, "score": self.score}


_SCALES = np.array([0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.5, 8.0, 10.0])
_BETA_BOUNDS = (0.5, 12.0)  # |β| of a free fit: the argument must turn ≥ 1 over the sampled range, so that
_GAMMA_BOUND = 6.0  # nothing mimics a line by a sliver of its curve (sin(0.01 s), (s + 100)²)
_GRID_BETA = np.concatenate([-_SCALES[::-1], _SCALES])
_GRID_GAMMA = np.linspace(-3.0, 3.0, 13)


class _Candidate(NamedTuple):
    q: float
    beta: float
    gamma: float
    a: float
    d: float


def _projection(g: np.ndarray, yc: np.ndarray, ss: float) -> tuple[float, float, np.ndarray]:
    """Best a for y − ȳ ≈ a·(g − ḡ): (q, a, residual)."""
    with np.errstate(all="ignore"):
        gc = g - g.mean()
        norm = float(gc @ gc)
        a = float(gc @ yc) / norm if 0 < norm < math.inf else 0.0
        r = yc - a * gc
        return float(r @ r) / ss, a, r


def _fit_candidate(function: Callable, z: np.ndarray, y: np.ndarray, starts: int = 3,
                   fixed_beta: float | None = None, fixed_gamma: float | None = None,
                   start_points: Sequence[tuple[float, float]] = ()) -> _Candidate | None:
    """Least-squares a·f(β z + γ) + d on standardised z, (a, d) eliminated; None if f is invalid there."""
    ybar = float(y.mean())
    yc = y - ybar
    ss = float(yc @ yc)
    betas = _GRID_BETA if fixed_beta is None else np.array([fixed_beta])
    gammas = _GRID_GAMMA if fixed_gamma is None else np.array([fixed_gamma])
    with np.errstate(all="ignore"):
        grid = np.stack(np.meshgrid(betas, gammas, indexing="ij"), -1).reshape(-1, 2)
        if start_points:
            grid = np.concatenate([np.asarray(start_points, dtype=float), grid])
        g = function(grid[:, :1] * z[None, :] + grid[:, 1:])
        g = np.asarray(g, dtype=np.float64) * np.ones_like(z)
        ok = np.isfinite(g).all(1)
        if not ok.any():
            return None
        g, grid = g[ok], grid[ok]
        gc = g - g.mean(1, keepdims=True)
        norm = np.einsum("kn,kn->k", gc, gc)
        corr = np.where(norm > 0, (gc @ yc) ** 2 / np.where(norm > 0, norm, 1.0) / ss, 0.0)
    order = np.argsort(-corr)
    chosen: list[np.ndarray] = []
    for k in order:
        if all(np.abs(grid[k] - p).max() > 0.3 for p in chosen):
            chosen.append(grid[k])
        if len(chosen) == starts:
            break
    free = [fixed_beta is None, fixed_gamma is None]
    penalty = np.sqrt(ss / len(y)) * 10 + 1.0

    def unpack(theta: np.ndarray) -> tuple[float, float]:
        values = iter(theta)
        beta = next(values) if free[0] else fixed_beta
        gamma = next(values) if free[1] else fixed_gamma
        return float(beta), float(gamma)

    def residuals(theta: np.ndarray) -> np.ndarray:
        beta, gamma = unpack(theta)
        with np.errstate(all="ignore"):
            g = np.asarray(function(beta * z + gamma), dtype=np.float64) * np.ones_like(z)
        if not np.isfinite(g).all():
            return np.full_like(z, penalty)
        return _projection(g, yc, ss)[2]

    best: _Candidate | None = None
    for start in chosen:
        theta0 = np.array([v for v, is_free in zip(start, free) if is_free])
        beta, gamma = unpack(theta0)
        if theta0.size:
            if all(free):  # a free fit stays in a box: no degenerate slivers of the function
                sign = 1.0 if theta0[0] > 0 else -1.0
                lower = np.array([_BETA_BOUNDS[0] if sign > 0 else -_BETA_BOUNDS[1], -_GAMMA_BOUND])
                upper = np.array([_BETA_BOUNDS[1] if sign > 0 else -_BETA_BOUNDS[0], _GAMMA_BOUND])
                theta0 = np.clip(theta0, lower, upper)
                method, bounds = "trf", (lower, upper)
            else:
                method, bounds = "lm", (-np.inf, np.inf)
            try:
                solution = least_squares(residuals, theta0, method=method, bounds=bounds, xtol=1e-13, ftol=1e-13,
                                         gtol=1e-13, max_nfev=200)
                if np.isfinite(solution.x).all():
                    beta, gamma = unpack(solution.x)
            except (ValueError, np.linalg.LinAlgError):
                pass
        with np.errstate(all="ignore"):
            g = np.asarray(function(beta * z + gamma), dtype=np.float64) * np.ones_like(z)
        if not np.isfinite(g).all():
            continue
        q, a, _ = _projection(g, yc, ss)
        if best is None or q < best.q:
            best = _Candidate(q, beta, gamma, a, ybar - a * float(g.mean()))
    return best


def _symmetries(function: Callable) -> tuple[int, bool]:
    """(parity: +1 even, −1 odd, 0 neither; whether f(z + π) = −f(z) with period 2π), numerically."""
    z = np.array([0.31, 0.77, 1.23, 0.05])
    with np.errstate(all="ignore"):
        f, f_minus, f_shift = (np.asarray(function(v), dtype=float) * np.ones(4) for v in (z, -z, z + np.pi))
    if not (np.isfinite(f).all() and np.isfinite(f_minus).all()):
        return 0, False
    scale = np.abs(f).max() + 1e-300
    parity = 1 if np.abs(f_minus - f).max() <= 1e-12 * scale else -1 if np.abs(f_minus + f).max() <= 1e-12 * scale \
        else 0
    antiperiodic = bool(np.isfinite(f_shift).all() and np.abs(f_shift + f).max() <= 1e-12 * scale)
    return parity, antiperiodic


def _canonical(function: Callable, a: float, b: float, c: float) -> tuple[float, float, float]:
    """Use parity and anti-periodicity to make b > 0 and the phase c ∈ (−π/2, π/2] (a may change sign)."""
    parity, antiperiodic = _symmetries(function)
    if b < 0 and parity != 0:
        b, c = -b, -c
        a = -a if parity < 0 else a
    if antiperiodic:  # f(z + π) = −f(z)
        turns = math.ceil((c - math.pi / 2) / math.pi)
        c -= turns * math.pi
        a = -a if turns % 2 else a
    return a, b, c


def fit_edge(s: np.ndarray, y: np.ndarray, functions: Mapping[str, Any] | Iterable[str] | None = None,
             r2_tol: float = 1e-5, complexity_weight: float = 1.0, max_points: int = 1024) -> EdgeFit:
    """Fit samples (s, y) of one edge with every candidate and select one (module docstring: the rule).

    Returns an :class:`EdgeFit` (layer/i/j set to 0) with ``candidates`` = {name: R²} for all of them.
    """
    library = _library(functions)
    s, y = np.asarray(s, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if s.shape != y.shape or s.size < 4:
        raise ValueError(f"s, y: need two arrays of the same size (at least 4 samples), got {s.shape} and {y.shape}")
    order = np.argsort(s)
    if s.size > max_points:
        order = order[np.linspace(0, s.size - 1, max_points).round().astype(int)]
    s, y = s[order], y[order]
    ybar = float(y.mean())
    ss = float(((y - ybar) ** 2).sum())
    lo, hi = float(s[0]), float(s[-1])
    width = (hi - lo) / 2
    if ss <= (1e-12 * (abs(ybar) + 1e-300)) ** 2 * s.size or width <= 1e-12 * (abs(lo) + abs(hi) + 1e-300):
        return EdgeFit(0, 0, 0, "const", d=ybar, r2=1.0, complexity=0, candidates={"const": 1.0})
    middle = (hi + lo) / 2
    z = (s - middle) / width
    fitted: dict[str, _Candidate] = {}
    for name, function in library.items():
        candidate = _fit_candidate(function.numpy, z, y)
        if candidate is not None:
            fitted[name] = candidate
    candidates = {name: 1.0 - f.q for name, f in fitted.items()}
    if not fitted:
        return EdgeFit(0, 0, 0, "const", d=ybar, r2=0.0, complexity=0, candidates={"const": 0.0})
    def phase(n: str) -> float:  # |c| of the canonical parameters, for breaking ties
        f = fitted[n]
        return round(abs(_canonical(library[n].numpy, 1.0, f.beta / width, f.gamma - f.beta * middle / width)[2]), 6)

    accepted = [n for n in fitted if fitted[n].q <= r2_tol]
    if accepted:
        simplest = min(library[n].complexity for n in accepted)
        tier = [n for n in accepted if library[n].complexity == simplest]
        best_q = min(fitted[n].q for n in tier)
        ties = [n for n in tier if fitted[n].q <= 2 * best_q + 1e-20]
    else:
        def score(n: str) -> float:
            return math.log10(max(fitted[n].q, 1e-16)) + complexity_weight * library[n].complexity
        useful = [n for n in fitted if fitted[n].q <= 0.5]  # explains at least half of the variance
        if not useful:
            return EdgeFit(0, 0, 0, "const", d=ybar, r2=0.0, complexity=0, candidates=candidates)
        lowest = min(score(n) for n in useful)
        ties = [n for n in useful if score(n) <= lowest + math.log10(2)]
    name = min(ties, key=lambda n: (phase(n), ties.index(n)))
    function, best = library[name], fitted[name]
    # drop redundant parameters when the fit does not get worse: b = ±1 and c = 0, b = ±1, or c = 0
    sign = 1.0 if best.beta >= 0 else -1.0
    unit = sign * width  # the β of b = β/width = ±1
    b, c = best.beta / width, best.gamma - best.beta * middle / width
    for kind in ("b and c", "b", "c"):
        if kind == "b and c":
            reduced = _fit_candidate(function.numpy, z, y, 1, unit, unit * middle / width)
        elif kind == "b":
            reduced = _fit_candidate(function.numpy, z, y, 1, unit, None, [(unit, best.gamma)])
        else:
            reduced = _fit_zero_shift(function.numpy, z, y, middle / width, best.beta)
        if reduced is not None and reduced.q <= 1.01 * best.q + 1e-24:
            b = sign if "b" in kind else reduced.beta / width
            c = 0.0 if "c" in kind else reduced.gamma - reduced.beta * middle / width
            break
    a, b, c = _canonical(function.numpy, 1.0, b, c)
    with np.errstate(all="ignore"):  # (a, d) for the parameters reported
        g = np.asarray(function.numpy(b * s + c), dtype=np.float64) * np.ones_like(s)
    q, a, _ = _projection(g, y - ybar, ss)
    return EdgeFit(0, 0, 0, name, a, b, c, ybar - a * float(g.mean()), r2=1.0 - q, complexity=function.complexity,
                   candidates=candidates, function=function)


def _fit_zero_shift(function: Callable, z: np.ndarray, y: np.ndarray, ratio: float, beta0: float) -> _Candidate | None:
    """Fit with γ = β·ratio (i.e. c = 0 in the original variable): one free parameter β."""
    ybar = float(y.mean())
    yc = y - ybar
    ss = float(yc @ yc)
    penalty = np.sqrt(ss / len(y)) * 10 + 1.0

    def g_of(beta: float) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(function(beta * (z + ratio)), dtype=np.float64) * np.ones_like(z)

    def residuals(theta: np.ndarray) -> np.ndarray:
        g = g_of(float(theta[0]))
        return _projection(g, yc, ss)[2] if np.isfinite(g).all() else np.full_like(z, penalty)

    try:
        beta = float(least_squares(residuals, [beta0], method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15,
                                   max_nfev=200).x[0])
    except (ValueError, np.linalg.LinAlgError):
        beta = beta0
    g = g_of(beta)
    if not np.isfinite(g).all():
        return None
    q, a, _ = _projection(g, yc, ss)
    return _Candidate(q, beta, beta * ratio, a, ybar - a * float(g.mean()))


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
        phi = (h * torch.sigmoid(h))[..., None] * layer.base_weight + layer.spline_weight * layer.edge_splines(h)
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
    current: list[sympy.Expr] = _net_inputs(problem, coords)
    fits: list[EdgeFit] = []
    for index, (layer, (h, phi)) in enumerate(zip(net.layers, samples), start=1):
        sums: list[sympy.Expr] = []
        for j in range(layer.out_features):
            terms = []
            for i in range(layer.in_features):
                if not keep[index - 1][i, j]:
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


# -- text formats -----------------------------------------------------------------------------
def _latex_name(symbol: sympy.Symbol) -> str:
    name = symbol.name
    match = re.fullmatch(r"xi_(\w+)", name)
    if match:
        return rf"\xi_{{{match.group(1)}}}"
    match = re.fullmatch(r"h(\d+)_(\d+)", name)
    if match:
        return rf"h^{{({match.group(1)})}}_{{{match.group(2)}}}"
    match = re.fullmatch(r"n_(\d+)", name)
    if match:
        return rf"N_{{{match.group(1)}}}"
    return sympy.latex(symbol)


def _program_text(program: Program, header: str, exact: bool = False) -> str:
    """``name = expression`` lines (sympy syntax), read back by :func:`parse_text`; ``exact``: floats
    with all 17 digits and terms unsorted (fast for huge formulas)."""
    printer = _StrPrinter({"order": "none"}).doprint if exact else sympy.sstr
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{symbol} = {printer(expr)}" for symbol, expr in program.steps]
    lines += [f"{name} = {printer(expr)}" for name, expr in zip(program.names, program.outputs)]
    return "\n".join(lines) + "\n"


def parse_text(text: str) -> dict[str, sympy.Expr]:
    """Read a ``.txt`` export back: every assigned name → its expression with earlier names substituted."""
    values: dict[str, sympy.Expr] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, body = line.partition(" = ")
        if not sep:
            raise ValueError(f"parse_text: expected 'name = expression', got {line[:60]!r}")
        expr = sympy.sympify(body, locals={"Piecewise": sympy.Piecewise})
        expr = expr.xreplace({s: _symbol(s.name) for s in expr.free_symbols if isinstance(s, sympy.Symbol)})
        values[name.strip()] = _substitute(expr, {_symbol(k): v for k, v in values.items()}, {})
    return values


def _program_latex(program: Program) -> str:
    names = {symbol: _latex_name(symbol) for symbol, _ in program.steps}
    rows = [rf"{names[symbol]} &= {sympy.latex(expr, symbol_names=names)}" for symbol, expr in program.steps]
    rows += [rf"{sympy.latex(sympy.Symbol(name))} &= {sympy.latex(expr, symbol_names=names)}"
             for name, expr in zip(program.names, program.outputs)]
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}\n"


def _numpy_code(expr: sympy.Expr) -> str:
    return _NumPyPrinter({"fully_qualified_modules": True}).doprint(expr).replace("numpy.", "np.")


def _array(value: np.ndarray) -> str:
    return "np.array(" + pprint.pformat(np.asarray(value).tolist(), width=110, compact=True) + ")"


def exact_module_source(field: Field, title: str = "") -> str:
    """A standalone numpy module ``u(*coords)`` that evaluates the KAN exactly (no torch, no kanpde)."""
    net = _check_kan(field)
    problem = field.problem
    coords = [_symbol(name) for name in problem.coords]
    args = [_identifier(name, a) if _identifier(name, a) == name else f"x{a}" for a, name in enumerate(problem.coords)]
    n_symbols = [_symbol(f"n{k}") for k in range(problem.outputs)]
    transformed = symbolic_output_transform(problem, n_symbols, coords)
    included = transformed is not None
    transformed = transformed if included else n_symbols
    arg_symbols = {c: _symbol(a) for c, a in zip(coords, args)}
    lo = np.array(problem.box.lo)
    scale = np.array(problem.box.scale)
    parts = [
        f'"""{title or "u(" + ", ".join(args) + "): a trained KAN, exactly"}',
        "",
        "Generated by kanpde.symbolic (mode exact); needs only numpy. Coordinates map to",
        "xi = (x - LO) * SCALE - 1 (a PERIODIC one enters as cos(pi xi), sin(pi xi)), then every layer",
        "computes y_j = sum_i phi_ji(h_i) with",
        "phi_ji(s) = BASE[i, j] * silu(s) + sum_p POLY[i, c, p, j] * (s - KNOTS[i, c])**p on the knot cell",
        "KNOTS[i, c] <= s < KNOTS[i, c + 1] (zero outside the knots)" + ("" if included else
                                                                           "; the problem's output transform is "
                                                                           "NOT included") + ".",
        '"""',
        "",
        "import numpy as np",
        "",
        f"COORDS = {tuple(problem.coords)!r}",
        f"LO = {_array(lo)}",
        f"SCALE = {_array(scale)}",
        f"PERIODIC = {tuple(name in problem.periodic for name in problem.coords)!r}",
        "",
    ]
    for index, layer in enumerate(net.layers, start=1):
        knots, table, base = edge_tables(layer)
        parts += [f"# layer {index}: {layer.in_features} -> {layer.out_features}, order {layer.order}, "
                  f"{knots.shape[1] - 1} knot cells per input",
                  f"KNOTS_{index} = {_array(knots)}", f"POLY_{index} = {_array(table)}",
                  f"BASE_{index} = {_array(base)}", ""]
    parts += [
        "LAYERS = [" + ", ".join(f"(KNOTS_{i}, POLY_{i}, BASE_{i})" for i in range(1, len(net.layers) + 1)) + "]",
        "",
        "",
        "def silu(s):",
        "    with np.errstate(over='ignore'):",
        "        return s / (1.0 + np.exp(-s))",
        "",
        "",
        "def embed(xi):",
        '    """The network inputs [N, n_in] from the unit coordinates xi [N, D]."""',
        "    columns = []",
        "    for a, periodic in enumerate(PERIODIC):",
        "        columns += [np.cos(np.pi * xi[:, a]), np.sin(np.pi * xi[:, a])] if periodic else [xi[:, a]]",
        "    return np.stack(columns, axis=1)",
        "",
        "",
        "def layer(h, knots, poly, base):",
        '    """One KAN layer on h [N, n_in] -> [N, n_out]."""',
        "    out = np.zeros((h.shape[0], poly.shape[-1]))",
        "    cells = knots.shape[1] - 1",
        "    for i in range(h.shape[1]):",
        "        s = h[:, i]",
        "        cell = np.searchsorted(knots[i], s, side='right') - 1",
        "        inside = (cell >= 0) & (cell < cells)",
        "        cell = np.clip(cell, 0, cells - 1)",
        "        local = (s - knots[i, cell])[:, None]",
        "        coef = poly[i, cell]  # [N, k+1, n_out]",
        "        spline = coef[:, -1]",
        "        for p in range(coef.shape[1] - 2, -1, -1):  # Horner",
        "            spline = spline * local + coef[:, p]",
        "        out += np.where(inside[:, None], spline, 0.0) + silu(s)[:, None] * base[i]",
        "    return out",
        "",
        "",
        f"def network({', '.join(args)}):",
        '    """The network outputs [..., outputs] at physical points (broadcast arrays)."""',
        f"    {', '.join(args)}{',' if len(args) == 1 else ''} = np.broadcast_arrays("
        + ", ".join(f"np.asarray({a}, dtype=float)" for a in args) + ")",
        f"    shape = {args[0]}.shape",
        f"    h = embed((np.stack([{', '.join(a + '.ravel()' for a in args)}], axis=1) - LO) * SCALE - 1.0)",
        "    for knots, poly, base in LAYERS:",
        "        h = layer(h, knots, poly, base)",
        "    return h.reshape(shape + (h.shape[1],))",
        "",
        "",
        f"def u({', '.join(args)}):",
        '    """The field at physical points (numpy arrays or numbers, broadcast together)."""',
        f"    n = network({', '.join(args)})",
        f"    {', '.join(f'n{k}' for k in range(problem.outputs))}{',' if problem.outputs == 1 else ''} = "
        f"np.moveaxis(n, -1, 0)",
    ]
    codes = [_numpy_code(t.xreplace(arg_symbols)) for t in transformed]
    if problem.outputs == 1:
        parts.append(f"    return {codes[0]} + np.zeros_like(n0)")
    else:
        parts.append("    return np.stack([" + ", ".join(f"{c} + np.zeros_like(n0)" for c in codes) + "], axis=-1)")
    return "\n".join(parts) + "\n"


def compact_module_source(exprs: Sequence[sympy.Expr], coords: Sequence[str], title: str = "") -> str:
    """A standalone numpy module ``u(*coords)`` for compact formulas."""
    args = [_identifier(name, a) if _identifier(name, a) == name else f"x{a}" for a, name in enumerate(coords)]
    mapping = {_symbol(c): _symbol(a) for c, a in zip(coords, args)}
    codes = [_numpy_code(sympy.sympify(e).xreplace(mapping)) for e in exprs]
    zero = f"np.zeros(np.broadcast({', '.join(args)}).shape)" if len(args) > 1 else f"np.zeros(np.shape({args[0]}))"
    lines = [f'"""{title or "u(" + ", ".join(args) + "): compact symbolic formula"} (generated by kanpde.symbolic)."""',
             "", "import numpy as np", "", "", f"def u({', '.join(args)}):",
             '    """The formula at points (numpy arrays or numbers, broadcast together)."""',
             *(f"    {a} = np.asarray({a}, dtype=float)" for a in args)]
    if len(codes) == 1:
        lines.append(f"    return {zero} + ({codes[0]})")
    else:
        lines.append("    return np.stack([" + ", ".join(f"{zero} + ({c})" for c in codes) + "], axis=-1)")
    return "\n".join(lines) + "\n"


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
            kind = {Dirichlet: "dirichlet", Neumann: "neumann", Periodic: "periodic", Initial: "initial"}[
                type(condition)]
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
        return Jet(u.stack.detach().double().cpu(), u.dim, u.mode, u.coords)


# -- the public API -----------------------------------------------------------------------------
@dataclass
class ExportResult:
    """What :func:`export` produced: the formula (``expression``: a sympy expression, or a column
    Matrix for several outputs), its ``text`` in the requested format, the ``verification`` numbers
    (also in symbolic.json) and the ``paths`` of the written files."""

    mode: str
    format: str
    program: Program
    text: str
    verification: dict[str, Any]
    paths: dict[str, Path]
    coords: tuple[str, ...]
    fits: list[EdgeFit] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    includes_transform: bool = True

    @cached_property
    def expression(self) -> sympy.Expr | sympy.Matrix:
        exprs = self.program.expressions()
        return exprs[0] if len(exprs) == 1 else sympy.Matrix(exprs)

    @property
    def expressions(self) -> list[sympy.Expr]:
        return self.program.expressions()


def _resolve(source: Any, problem: Problem | None) -> tuple[Field, Path | None, Any]:
    from kanpde.solver import LoadedRun, load

    if isinstance(source, (str, os.PathLike)):
        run = load(source, problem=problem)
        return run.model, Path(source), run
    if isinstance(source, LoadedRun):
        return source.model, None, source
    if isinstance(source, Field):
        return source, None, None
    raise TypeError(f"source: expected a run directory, a LoadedRun or a kanpde.Field, got {type(source).__name__}")


def _header(mode: str, field: Field, includes_transform: bool) -> str:
    net, problem = field.net, field.problem
    return (f"kanpde symbolic export ({mode}) of a KAN {list(net.width)}, grid {net.grid}, order {net.order}; "
            f"problem {problem.name}; coordinates {', '.join(problem.coords)}"
            + ("" if includes_transform else "\nthe problem's output transform is NOT included"))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


def export(source: str | os.PathLike | Any, mode: str = "exact", format: str = "sympy",  # noqa: A002
           out_dir: str | os.PathLike | None = None, *, problem: Problem | None = None,
           resolution: int | Sequence[int] | None = None, write: bool = True, **options: Any) -> ExportResult:
    """Export a trained KAN as a formula u(coords) and verify it.

    ``source``: a run directory (loaded with :func:`kanpde.solver.load`; ``problem`` for PDEs defined
    in code), a :class:`~kanpde.solver.LoadedRun` or a :class:`~kanpde.Field`. ``mode``: "exact" or
    "compact" (module docstring; compact ``options`` are the fields of :class:`CompactOptions`).
    ``format`` ("sympy", "latex" or "python") picks the ``text`` returned; all three files
    (``<mode>.txt``, ``.tex``, ``.py``) and ``symbolic.json`` are written into ``out_dir`` (default
    RUN_DIR/symbolic; nothing is written for in-memory sources without ``out_dir``, or with
    ``write=False``). ``resolution``: the evaluation grid (default: the run's, capped at 40 000 points).
    """
    if mode not in MODES:
        raise ValueError(f"mode: must be one of {', '.join(MODES)}, got {mode!r}")
    if format not in FORMATS:
        raise ValueError(f"format: must be one of {', '.join(FORMATS)}, got {format!r}")
    if mode == "exact" and options:
        raise ValueError(f"export: options {', '.join(sorted(options))} apply to mode compact only")
    settings = CompactOptions.build(options) if mode == "compact" else None
    field, run_dir, run = _resolve(source, problem)
    _check_kan(field)
    problem = field.problem
    if problem.is_system or len(problem.hard_conditions()) > 1:  # per-field export: not yet
        raise ValueError(f"export: {problem.name} has fields {', '.join(problem.fields)} or several hard conditions; "
                         "symbolic export supports one field with at most one hard condition")
    if resolution is None and run is not None:
        resolution = run.config.evaluate.resolution
    coords = tuple(_symbol(name) for name in problem.coords)
    fits: list[EdgeFit] = []
    info: dict[str, Any] = {}
    if mode == "exact":
        program, included = exact_program(field)
        info.update(layers=len(field.net.layers), edges=sum(layer.in_features * layer.out_features
                                                             for layer in field.net.layers))
    else:
        exprs, fits, included = compact_program(field, settings)
        samples = _domain_samples(problem)
        exprs = [_tidy(e) for e in _drop_abs(exprs, coords, samples)]
        weights = dict(settings.loss_weights) if settings.loss_weights is not None else \
            dict(run.config.train.loss_weights) if run is not None else {}
        if included:
            exprs, rounding = _refine_and_round(problem, exprs, settings, weights)
            info.update(rounding)
            dropped = _drop_abs(exprs, coords, samples)
            if dropped != exprs:  # refining moved a kink out of the box: round what that uncovered
                exprs, rounding = _refine_and_round(problem, [_tidy(e) for e in dropped],
                                                    replace(settings, refine=False), weights)
                info.update({f"{key}_2": value for key, value in rounding.items()})
        exprs = _drop_abs(exprs, coords, samples)
        if settings.simplify:
            exprs = _simplify(exprs, coords)
        program = Program.from_expressions(exprs, coords, _output_names(problem))
        info.update(edges=len(fits), kept=sum(f.name != "0" for f in fits),
                    functions={name: sum(f.name == name for f in fits) for name in sorted({f.name for f in fits})})
    header = _header(mode, field, included)
    texts = {"sympy": _program_text(program, header, exact=mode == "exact"), "latex": _program_latex(program),
             "python": exact_module_source(field, header.splitlines()[0]) if mode == "exact"
             else compact_module_source(program.expressions(), problem.coords, header.splitlines()[0])}
    verification = verify(field, {mode: program}, resolution, included)
    paths: dict[str, Path] = {}
    target = Path(out_dir) if out_dir is not None else (run_dir / "symbolic" if run_dir is not None else None)
    if write and target is not None:
        target.mkdir(parents=True, exist_ok=True)
        for kind, text in texts.items():
            paths[kind] = target / f"{mode}.{_EXTENSIONS[kind]}"
            paths[kind].write_text(text, encoding="utf-8")
        paths["json"] = target / "symbolic.json"
        stored = {}
        if paths["json"].exists():
            try:
                stored = json.loads(paths["json"].read_text())
            except (OSError, ValueError):
                stored = {}
        stored.update({key: value for key, value in verification.items() if key not in ("exact", "compact")})
        stored[mode] = verification[mode] | {"info": info, "files": {k: str(p) for k, p in paths.items()
                                                                      if k != "json"}}
        if fits:
            stored[mode]["edges"] = [f.as_dict() for f in fits]
            stored[mode]["options"] = {f.name: getattr(settings, f.name) for f in fields(settings)
                                       if f.name != "functions"}
        stored[mode]["formula"] = texts["sympy"] if len(texts["sympy"]) <= 20000 else None
        paths["json"].write_text(json.dumps(_json_safe(stored), indent=2) + "\n", encoding="utf-8")
    return ExportResult(mode, format, program, texts[format], verification, paths, tuple(problem.coords), fits,
                        info, included)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit * 2 // 3].rsplit("\n", 1)[0]
    tail = text[-limit // 4:].split("\n", 1)[-1]
    return f"{head}\n  … ({len(text) - len(head) - len(tail):,} characters omitted) …\n{tail}"


def format_report(result: ExportResult, max_chars: int = 2000) -> str:
    """A short human report: the formula (truncated for huge exact forms) and the verified errors."""
    lines = [f"symbolic export ({result.mode}), coordinates {', '.join(result.coords)}"
             + ("" if result.includes_transform else " — WITHOUT the problem's output transform")]
    if result.mode == "compact" and result.fits:
        kept = [f for f in result.fits if f.name != "0"]
        counts = ", ".join(f"{name} ×{n}" for name, n in result.info.get("functions", {}).items() if name != "0")
        lines.append(f"edges: {len(kept)} kept of {len(result.fits)} ({counts})")
    if result.mode == "compact" or result.format != "sympy":
        body = result.text
    else:
        body = "".join(line + "\n" for line in result.text.splitlines() if not line.startswith("#"))
    if result.mode == "compact" and result.format == "sympy":
        body = "\n".join(f"{name}({', '.join(result.coords)}) = {sympy.sstr(e)}"
                         for name, e in zip(result.program.names, result.expressions))
    lines += ["", _truncate(body.rstrip("\n"), max_chars), ""]
    v = result.verification

    def fmt(value: Any) -> str:
        return "—" if value is None else f"{value:.3e}"

    grid = "×".join(str(n) for n in v.get("grid", []))
    lines.append(f"verification on the evaluation grid ({grid} points):")
    lines.append(f"  {'':8s} {'rel. L2':>10s} {'max err':>10s} {'max|Δmodel|':>12s} {'mean|res|':>10s} "
                 f"{'max|res|':>10s} {'conditions (max err)':s}")
    for name in ("model", result.mode):
        row = v.get(name, {})
        conditions = ", ".join(f"{key} {fmt(c.get('max_abs_err'))}" for key, c in row.get("conditions", {}).items())
        lines.append(f"  {name:8s} {fmt(row.get('rel_l2')):>10s} {fmt(row.get('max_abs_err')):>10s} "
                     f"{fmt(row.get('max_diff_model')) if name != 'model' else '':>12s} "
                     f"{fmt(row.get('residual_mean_abs')):>10s} {fmt(row.get('residual_max_abs')):>10s} {conditions}")
    if result.paths:
        lines.append("written: " + ", ".join(str(p) for p in result.paths.values()))
    return "\n".join(lines)
