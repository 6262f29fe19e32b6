"""The formula's building blocks: the straight-line :class:`Program`, sympy helpers (symbols, printers,
lambdify, derivatives of piecewise expressions) and the map between the problem's coordinates and the
network's inputs and outputs (box map, periodic embedding, output transform)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.printing.numpy import NumPyPrinter

from kanpde.field import Field
from kanpde.geometry import Box
from kanpde.nets.kan import KAN
from kanpde.problem import Initial, Problem


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
    condition with a constant g on a box; a problem with its own transform may define
    ``symbolic_output_transform(outputs, coords) -> list of sympy expressions``.
    """
    if problem.odd or problem.even:  # the field is (N(ξ) ∓ N(Rξ))/2, not a transform of one N
        return None
    hook = getattr(problem, "symbolic_output_transform", None)
    if callable(hook):
        return list(hook(list(outputs), list(coords)))
    if type(problem).output_transform is not Problem.output_transform:
        return None
    hard = [c for c in problem.conditions if getattr(c, "hard", False)]
    if not hard:
        return list(outputs)
    condition = hard[0]
    if len(hard) > 1 or callable(condition.value) or not isinstance(problem.box, Box):
        return None  # several hard conditions combine (per field, transfinite) and φ of a non-box: not written out
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
