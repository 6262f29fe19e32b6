"""The exact form: every KAN edge as SiLU base + Piecewise spline polynomial, composed into a
:class:`~kanpde.symbolic.formula.Program` equal to the network to round-off."""

from __future__ import annotations

import warnings

import numpy as np
import sympy
import torch

from kanpde.field import Field
from kanpde.nets.kan import KANLayer
from kanpde.symbolic.fit import FUNCTIONS
from kanpde.symbolic.formula import (
    Program,
    _box_map,
    _check_kan,
    _embedding,
    _identifier,
    _output_names,
    _symbol,
    symbolic_output_transform,
)


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


def snapped_expression(layer: KANLayer, i: int, j: int, name: str, s: sympy.Expr) -> sympy.Expr:
    """a·f(b·s + c) + d of a snapped edge (symbolic discovery), its constants as the network holds them."""
    a, b, c, d = (sympy.Float(float(v), 17) for v in layer.snap_affine[i, j].detach())
    return a * FUNCTIONS[name].sympy(b * s + c) + d


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
            terms += [snapped_expression(layer, i, j, name, current[i])
                      for i, jj, name in layer.snapped_edges() if jj == j]
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
