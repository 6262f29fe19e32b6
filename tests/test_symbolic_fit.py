"""Tests for the symbolic export (kanpde.symbolic.fit).

Compact mode: known edge functions are recovered, user functions can be added, pruning removes a
zeroed edge, dead hidden nodes lose their inputs, simplification keeps exact constants.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch

from kanpde import symbolic
from kanpde.problems.poisson_sin import PoissonSin
from tests.symbolic_cases import (
    float64_single_thread,  # noqa: F401 (autouse fixture)
    random_field,
)


@pytest.mark.parametrize("name, truth, params", [
    ("sin", lambda s: 0.7 * np.sin(2 * s + 0.1) + 0.3, (0.7, 2.0, 0.1, 0.3)),
    ("cos", lambda s: -0.5 * np.cos(np.pi * s) + 1.0, (-0.5, np.pi, 0.0, 1.0)),
    ("x^2", lambda s: 1.5 * (s - 0.25) ** 2 - 0.5, (1.5, 1.0, -0.25, -0.5)),
    ("exp", lambda s: 0.3 * np.exp(1.5 * s) + 0.1, (0.3, 1.5, 0.0, 0.1)),
    ("x", lambda s: 0.2 - 1.3 * s, (-1.3, 1.0, 0.0, 0.2)),
])
def test_fit_edge_recovers_known_functions(name, truth, params):
    s = np.random.default_rng(0).uniform(-1.3, 0.9, 1500)
    fit = symbolic.fit_edge(s, truth(s))
    assert fit.name == name, fit.candidates
    np.testing.assert_allclose((fit.a, fit.b, fit.c, fit.d), params, rtol=1e-6, atol=1e-7)
    assert fit.r2 > 1 - 1e-12
    assert np.abs(fit.evaluate(s) - truth(s)).max() < 1e-6


def test_fit_edge_selection_prefers_simple_and_handles_constants():
    s = np.linspace(-1, 1, 400)
    line = symbolic.fit_edge(s, 2 * s + 1e-7 * np.sin(7 * s))  # x² or sin could fit better, x is enough
    assert line.name == "x"
    assert symbolic.fit_edge(s, np.full_like(s, 0.25)).name == "const"
    # no candidate within r2_tol: the fallback score log10(1 − R²) + complexity would favour x (R² 0.05,
    # score 0.98) over cos (R² 0.6, score 1.6); only candidates explaining half of the variance compete
    rough = symbolic.fit_edge(s, 0.3 * s + np.cos(3 * s) + 0.8 * np.sin(23 * s))
    assert rough.candidates["x"] < 0.5 <= rough.r2 and rough.name == "cos", rough.candidates


def test_user_functions_extend_the_library(monkeypatch):
    s = np.linspace(-1, 1, 300)
    y = 0.5 * np.sinh(1.2 * s) - 0.1
    library = {"x": symbolic.FUNCTIONS["x"], "sinh": (sympy.sinh, np.sinh, 2)}
    fit = symbolic.fit_edge(s, y, functions=library)
    assert fit.name == "sinh"
    np.testing.assert_allclose((fit.a, fit.b, fit.c, fit.d), (0.5, 1.2, 0.0, -0.1), atol=1e-7)
    assert fit.expression(sympy.Symbol("s")).has(sympy.sinh)
    monkeypatch.setitem(symbolic.FUNCTIONS, "sinh", (sympy.sinh, np.sinh, 2))
    assert "sinh" in symbolic.fit_edge(s, y, functions=None).candidates
    with pytest.raises(ValueError, match="functions"):
        symbolic.fit_edge(s, y, functions=["x", "no-such-function"])


def test_pruning_removes_a_zeroed_edge():
    field = random_field(PoissonSin(), [2, 2, 1], grid=4, order=3)
    with torch.no_grad():
        first = field.net.layers[0]
        first.coef[1, :, 0] = 0.0
        first.base_weight[1, 0] = 0.0
    options = symbolic.CompactOptions(functions=["x", "x^2", "sin"], samples=512)
    exprs, fits, included = symbolic.compact_program(field, options)
    assert included and len(fits) == 6
    by_edge = {(f.layer, f.i, f.j): f for f in fits}
    assert by_edge[(1, 1, 0)].name == "0" and by_edge[(1, 1, 0)].score == 0.0
    assert all(f.name != "0" for key, f in by_edge.items() if key != (1, 1, 0))
    # the pruned edge does not appear: hidden node 0 depends on x only
    hidden = symbolic.compact_program(field, symbolic.CompactOptions(functions=["x"], samples=256))[1]
    assert [f.name for f in hidden if (f.layer, f.i, f.j) == (1, 1, 0)] == ["0"]
    assert exprs[0].free_symbols <= {sympy.Symbol("x", real=True), sympy.Symbol("y", real=True)}


def test_dead_hidden_nodes_lose_their_inputs():
    samples = [(np.zeros((10, 2)), np.ones((10, 2, 2))), (np.zeros((10, 2)), np.stack([np.ones(10), np.zeros(10)],
                                                                                       -1)[:, :, None])]
    scores, keep = symbolic.compact._prune(samples, 1e-2)
    assert keep[1][:, 0].tolist() == [True, False]
    assert keep[0][:, 1].tolist() == [False, False]  # hidden node 1 feeds nothing
    assert keep[0][:, 0].all()


def test_simplify_keeps_exact_constants():
    """sympy.simplify is used when it shortens a formula, not when it turns 7/9 into 0.777… ."""
    x, y = sympy.symbols("x y", real=True)
    product = sympy.expand(sympy.cos(sympy.pi * (x - y)) / 2 - sympy.cos(sympy.pi * (x + y)) / 2, trig=False)
    assert symbolic.compact._simplify([product], (x, y)) == [sympy.sin(sympy.pi * x) * sympy.sin(sympy.pi * y)]
    mixed = sympy.Float(0.4) * sympy.sin(-sympy.pi * y + sympy.Rational(7, 9)) - sympy.Float(0.5) * sympy.cos(
        sympy.Rational(23, 7) * x - sympy.Float(2.9) * y + sympy.Float(3.5)) + sympy.Float(0.1)
    assert symbolic.compact._simplify([mixed], (x, y)) == [mixed]
