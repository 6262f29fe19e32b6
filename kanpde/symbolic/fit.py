"""Per-edge fitting for the compact form: the function library :data:`FUNCTIONS`, :func:`fit_edge`
(a·f(b·s + c) + d by variable projection and least squares) and the selection rule."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import sympy
from scipy.optimize import least_squares

from kanpde.symbolic.formula import _symbol


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
