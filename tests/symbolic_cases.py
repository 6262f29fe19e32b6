"""Shared cases for the symbolic-export tests (tests/test_symbolic_*.py): small problems, random KANs,
points, LaTeX checks, and the autouse-able fixture ``float64_single_thread``."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import sympy
import torch

from kanpde import KAN, Box, Dirichlet, Field, Problem
from kanpde.problems.poisson_sin import PoissonSin
from tests.user_problem import PeriodicHeat

DTYPE = torch.float64
TOL = 1e-10


@pytest.fixture(autouse=True)
def float64_single_thread():
    """The models here are tiny: float64 by default and one intra-op thread (a loaded 2-core machine)."""
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(DTYPE)
    torch.set_num_threads(1)
    yield
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)


class Line(Problem):
    """A 1-D problem on a box that is not [-1, 1] (so the box map is not the identity)."""

    problem_name = "symbolic_test_line"
    box = Box([0.0], [3.0], ("s",))
    derivatives = "diagonal"
    conditions = [Dirichlet(0.0)]

    def residual(self, u, x):
        return u.d("s", "s") + torch.sin(x[:, 0])


class HardSquare(Problem):
    """2-D, hard Dirichlet u = 1/2 on the faces of [0, 2]×[-1, 1]: the output transform is included."""

    problem_name = "symbolic_test_hard"
    box = Box([0.0, -1.0], [2.0, 1.0], ("x", "y"))
    derivatives = "full"
    conditions = [Dirichlet(0.5, hard=True)]

    def residual(self, u, x):
        return u.laplacian + u.d("x", "y") - 1.0


def random_field(problem: Problem, width, grid: int, order: int, seed: int = 0) -> Field:
    """A KAN with O(1) random spline coefficients, so the piecewise part matters."""
    torch.manual_seed(seed)
    net = KAN(width, grid=grid, order=order)
    with torch.no_grad():
        for layer in net.layers:
            layer.coef.normal_(0.0, 0.5)
            layer.base_weight.normal_(0.0, 0.5)
    return Field(net, problem)


def points_in(problem: Problem, n: int, margin: float = 0.1, seed: int = 1) -> torch.Tensor:
    """Random points of the box enlarged by ``margin`` (so some fall outside the knots' span)."""
    generator = torch.Generator().manual_seed(seed)
    lo, hi = torch.tensor(problem.box.lo), torch.tensor(problem.box.hi)
    u = torch.rand(n, problem.box.dim, generator=generator, dtype=DTYPE) * (1 + 2 * margin) - margin
    return lo + u * (hi - lo)


def lambdify(coords, expr):
    """sympy.lambdify with numpy, common subexpressions extracted (unsorted: much faster on big formulas)."""
    return sympy.lambdify(coords, expr, "numpy", cse=lambda e: sympy.cse(e, order="none", list=False))


def model_values(field: Field, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return field(x)[:, 0].numpy()


def import_file(path):
    spec = importlib.util.spec_from_file_location(f"kanpde_symbolic_test_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def adapt(field: Field, extend: int | None = None, update: bool = False) -> Field:
    x = field.net_inputs(points_in(field.problem, 300, margin=0.0, seed=3))
    if extend:
        field.net.extend_grid(extend, x)
    if update:
        field.net.update_grid(x * 0.7 + 0.1)  # samples covering part of the range: knots move, some points outside
    return field


CASES = {
    "line [1,3,1] order 1": lambda: random_field(Line(), [1, 3, 1], grid=3, order=1),
    "square [2,3,1] order 3": lambda: random_field(PoissonSin(), [2, 3, 1], grid=5, order=3),
    "hard [2,2,2,1] order 2": lambda: random_field(HardSquare(), [2, 2, 2, 1], grid=4, order=2),
    "extended [2,2,1] 4->8": lambda: adapt(random_field(PoissonSin(), [2, 2, 1], grid=4, order=3), extend=8),
    "adapted [2,2,1] update_grid": lambda: adapt(random_field(HardSquare(), [2, 2, 1], grid=5, order=2), update=True),
    "periodic [3,2,1] 3->6": lambda: adapt(random_field(PeriodicHeat(), [3, 2, 1], grid=3, order=3), extend=6),
}




def sample_formula() -> tuple[sympy.Expr, tuple[sympy.Symbol, ...]]:
    x, y = sympy.symbols("x y", real=True)
    expr = sympy.sin(sympy.pi * x) * sympy.exp(-(y**2)) / 2 + sympy.sqrt(x + 3) - sympy.Rational(3, 7) * sympy.cos(
        2 * y + sympy.Float("0.125")) + sympy.log(y + 2) * sympy.tanh(x)
    return expr, (x, y)




def balanced(latex: str) -> bool:
    depth = 0
    for character in latex.replace(r"\{", "").replace(r"\}", ""):
        depth += {"{": 1, "}": -1}.get(character, 0)
        if depth < 0:
            return False
    return depth == 0


def assert_compiles_as_math(latex: str) -> None:
    """Every row ``lhs &= rhs`` of an aligned block parses as TeX math with matplotlib's mathtext
    (a real TeX-math parser: unknown macros, unbalanced braces or a malformed \\frac raise ValueError)."""
    from matplotlib.mathtext import MathTextParser

    body = latex.strip().removeprefix(r"\begin{aligned}").removesuffix(r"\end{aligned}").strip()
    parser = MathTextParser("path")
    for row in body.split(" \\\\\n"):
        lhs, sep, rhs = row.partition("&=")
        assert sep, row
        parser.parse(f"${lhs.strip()} = {rhs.strip()}$")




def parse_latex_or_skip(latex: str) -> sympy.Expr:
    """sympy's LaTeX parser (it needs antlr4-python3-runtime 4.11 exactly; skip without it), symbols real,
    e and pi read as the constants (the parser may leave them as symbols)."""
    parse_latex = pytest.importorskip("sympy.parsing.latex").parse_latex
    try:
        parsed = parse_latex(latex)
    except ImportError as missing:
        pytest.skip(f"LaTeX parsing unavailable: {missing}")
    constants = {"e": sympy.E, "pi": sympy.pi}
    return parsed.xreplace({s: constants.get(s.name, sympy.Symbol(s.name, real=True)) for s in parsed.free_symbols})
