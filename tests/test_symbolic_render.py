"""Tests for the symbolic export (kanpde.symbolic.render).

Formats: sympy text and srepr round trips; LaTeX rows parse as TeX math (matplotlib's mathtext) and,
with antlr4 4.11, back to the same sympy expression.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from kanpde import symbolic
from kanpde.problems.poisson_sin import PoissonSin
from tests.symbolic_cases import (
    assert_compiles_as_math,
    balanced,
    float64_single_thread,  # noqa: F401 (autouse fixture)
    lambdify,
    model_values,
    parse_latex_or_skip,
    points_in,
    random_field,
    sample_formula,
)


def test_text_round_trips():
    expr, coords = sample_formula()
    program = symbolic.Program(coords, [], [expr], ["u"])
    text = symbolic.render._program_text(program, "header")
    assert symbolic.parse_text(text)["u"] == expr
    assert sympy.sympify(sympy.srepr(expr)) == expr
    # exact mode: the layered text reads back to the same function, srepr exactly for one layer
    field = random_field(PoissonSin(), [2, 2, 1], grid=3, order=3)
    result = symbolic.export(field, mode="exact", format="sympy")
    parsed = symbolic.parse_text(result.text)["u"]
    x = points_in(field.problem, 50)
    function = lambdify(result.program.coords, parsed)
    values = function(x[:, 0].numpy(), x[:, 1].numpy())
    assert np.abs(values - model_values(field, x)).max() <= 1e-12
    single, _ = symbolic.exact_program(random_field(PoissonSin(), [2, 1], grid=3, order=3))
    expression = single.expressions()[0]
    assert sympy.sympify(sympy.srepr(expression)) == expression


def test_latex_is_well_formed():
    expr, coords = sample_formula()
    latex = symbolic.render._program_latex(symbolic.Program(coords, [], [expr], ["u"]))
    assert balanced(latex)
    assert_compiles_as_math(latex)
    for broken in (latex.replace(r"\right)}", r"\right)", 1), latex.replace(r"\sqrt", r"\sqrtt", 1)):
        with pytest.raises(ValueError):  # the check can fail
            assert_compiles_as_math(broken)
    for name in (r"\sin", r"\cos", r"\sqrt", r"\log", r"\tanh", r"\pi", r"e^{"):
        assert name in latex
    field = random_field(PoissonSin(), [2, 2, 1], grid=3, order=3)
    result = symbolic.export(field, mode="exact", format="latex")
    assert balanced(result.text) and r"\begin{cases}" in result.text and r"h^{(1)}_{0}" in result.text


def test_latex_parses_back():
    expr, (x, y) = sample_formula()
    latex = symbolic.render._program_latex(symbolic.Program((x, y), [], [expr], ["u"]))
    rhs = latex.split("&=", 1)[1].removesuffix("\\end{aligned}\n").strip()
    assert sympy.simplify(parse_latex_or_skip(rhs) - expr) == 0
