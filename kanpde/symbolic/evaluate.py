""":class:`SymbolicField`: a formula evaluated like a :class:`~kanpde.Field` -- values and jets (derivatives
by ``sympy.diff``) in the problem's derivative mode, so the library's residual and loss code apply to it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy
import torch

from kanpde.jet import Jet, curved_axes
from kanpde.problem import Problem
from kanpde.symbolic.formula import Program, _diff, _lambdify, _points
from kanpde.taylor import Derivatives, TaylorJet


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
        for key, compiled in self._compiled.items():  # a richer one will do
            if key[0] == "taylor":
                continue
            have_order, have_full = key
            if have_order >= order and have_full == full or have_order >= order and order < 2:
                return compiled
        self._compiled[order, full] = _Compiled(self.program, order, full)
        return self._compiled[order, full]

    def _taylor_jet(self, x: torch.Tensor, derivatives: Derivatives) -> TaylorJet:
        """Derivatives of any order (a problem's :class:`Derivatives` set), by ``sympy.diff`` of the whole formula."""
        key = ("taylor", derivatives.indices)
        if key not in self._compiled:
            coords, params = list(self.program.coords), list(self.program.params)
            functions = []
            for expr in self.program.expressions():
                per_output = []
                for alpha in derivatives.indices:
                    derivative = expr
                    for axis, count in enumerate(alpha):
                        if count:
                            derivative = sympy.diff(derivative, coords[axis], count)
                    per_output.append(_lambdify(coords + params, derivative))
                functions.append(per_output)
            self._compiled[key] = functions
        points = x.detach().to("cpu", torch.float64).numpy()
        n = points.shape[0]
        with np.errstate(all="ignore"):
            columns = [np.stack([_points(fn(*points.T, *self.params), n) for fn in per_output], axis=1)
                       for per_output in self._compiled[key]]
        stack = torch.as_tensor(np.stack(columns, axis=-1), dtype=x.dtype, device=x.device)
        return TaylorJet(stack, derivatives, self.problem.coords)

    def jet(self, x: torch.Tensor, mode: str | Derivatives) -> Jet:
        if isinstance(mode, Derivatives):
            return self._taylor_jet(x, mode)
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
            elif curved_axes(mode, dim) is not None:
                parts.append(second[:, list(curved_axes(mode, dim))])
            elif mode == "full":
                parts.append(second.reshape(n, dim * dim))
            columns.append(np.concatenate(parts, axis=1))
        stack = torch.as_tensor(np.stack(columns, axis=-1), dtype=x.dtype, device=x.device)
        return Jet(stack, dim, mode, self.problem.coords)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.jet(x, "value").value
