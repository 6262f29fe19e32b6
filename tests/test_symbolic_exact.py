"""Tests for the symbolic export (kanpde.symbolic.exact).

Exact mode: the sympy formula (lambdified) and the standalone exact.py equal the model to 1e-10 for
several shapes, orders and grids (extended and sample-adapted, points outside the knots included);
the formula's sympy-differentiated jets and residual agree with the model's.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import sympy

from kanpde import symbolic
from kanpde.loss import residual
from kanpde.problems.poisson_sin import PoissonSin
from tests.symbolic_cases import (
    CASES,
    TOL,
    HardSquare,
    float64_single_thread,  # noqa: F401 (autouse fixture)
    import_file,
    lambdify,
    model_values,
    points_in,
    random_field,
)


@pytest.mark.parametrize("case", list(CASES))
def test_exact_formula_and_module_equal_the_model(case, tmp_path):
    field = CASES[case]()
    result = symbolic.export(field, mode="exact", out_dir=tmp_path)
    x = points_in(field.problem, 400)
    expected = model_values(field, x)
    columns = [x[:, a].numpy() for a in range(x.shape[1])]
    coords = [sympy.Symbol(name, real=True) for name in field.problem.coords]
    formula = lambdify(coords, result.expression)
    with np.errstate(all="ignore"):
        from_sympy = np.broadcast_to(formula(*columns), expected.shape)
    assert np.abs(from_sympy - expected).max() <= TOL * max(1.0, np.abs(expected).max())
    source = result.paths["python"].read_text()
    assert not re.search(r"^\s*(import|from)\s+(torch|kanpde)", source, re.M)
    module = import_file(result.paths["python"])
    from_module = module.u(*columns)
    assert from_module.shape == expected.shape
    assert np.abs(from_module - expected).max() <= TOL * max(1.0, np.abs(expected).max())
    # broadcasting: a grid given as separate axes
    if x.shape[1] == 2:
        grid = module.u(columns[0][:5, None], columns[1][None, :7])
        assert grid.shape == (5, 7)
    assert result.verification["exact"]["max_diff_model"] <= TOL * max(1.0, np.abs(expected).max())


def test_exact_piecewise_structure():
    """Every edge is a Piecewise of order-k polynomials per knot cell, zero outside the knots."""
    field = random_field(PoissonSin(), [2, 1], grid=3, order=2)
    program, included = symbolic.exact_program(field)
    assert included
    expression = program.expressions()[0]
    pieces = list(expression.atoms(sympy.Piecewise))
    assert len(pieces) == 2  # one per input edge
    layer = field.net.layers[0]
    for piece in pieces:
        assert len(piece.args) == layer.knots.shape[1] + 1  # zero, one per cell, zero
        assert piece.args[0].expr == 0 and piece.args[-1].expr == 0 and piece.args[-1].cond == sympy.true
        for value, _ in piece.args[1:-1]:
            assert sympy.Poly(value, *value.free_symbols).total_degree() <= 2
    assert expression.has(sympy.exp)  # the silu part, s/(1 + exp(-s))


def test_exact_jets_and_residual_match_the_model():
    """Derivatives by sympy.diff of the exact formula = the network's closed-form jets, in every mode."""
    field = random_field(HardSquare(), [2, 3, 1], grid=4, order=3)
    program, _ = symbolic.exact_program(field)
    formula = symbolic.SymbolicField(program, field.problem)
    x = points_in(field.problem, 200, margin=0.0)
    for mode in ("none", "trace", "diagonal", "full", "diagonal:1"):
        expected = field.jet(x, mode).stack.detach()
        actual = formula.jet(x, mode).stack
        assert actual.shape == expected.shape
        assert (actual - expected).abs().max() <= 1e-9 * expected.abs().max()
    r_model = residual(field, x).detach()
    r_formula = residual(formula, x)
    assert (r_formula - r_model).abs().max() <= 1e-9 * r_model.abs().max()
    report = symbolic.verify(field, {"exact": program}, resolution=21)
    model, exact = report["model"], report["exact"]
    assert math.isclose(exact["residual_mean_abs"], model["residual_mean_abs"], rel_tol=1e-8)
    assert math.isclose(exact["residual_max_abs"], model["residual_max_abs"], rel_tol=1e-8)
    assert exact["conditions"]["boundary"]["max_abs_err"] <= 1e-12  # hard condition, built in
    assert exact["max_diff_model"] <= TOL
