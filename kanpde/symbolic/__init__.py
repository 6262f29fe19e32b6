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
:func:`format_report`. This package sits at the solver level: it imports the lower layers and
``kanpde.solver``, and nothing in the library imports it except the CLI (and ``kanpde.export``).

Modules, one job each (each imports only those listed before it):
:mod:`~kanpde.symbolic.formula` (Program, sympy helpers, coordinates and output transform),
:mod:`~kanpde.symbolic.evaluate` (SymbolicField: a formula as a field with jets),
:mod:`~kanpde.symbolic.exact` (the exact piecewise program),
:mod:`~kanpde.symbolic.fit` (the function library and per-edge fits),
:mod:`~kanpde.symbolic.compact` (pruning, fitting, composing and tidying the compact form),
:mod:`~kanpde.symbolic.refine` (refining and rounding constants against the PDE),
:mod:`~kanpde.symbolic.render` (text, LaTeX, numpy modules; parsing text back),
:mod:`~kanpde.symbolic.verify` (errors, residual and condition errors on the evaluation grid),
:mod:`~kanpde.symbolic.pipeline` (:func:`export`, :func:`format_report`).

Several fields and other domains: a :class:`Program` has one output per field component (``names``), and
every step handles lists of outputs. The box is assumed in few places, which a non-box domain replaces:
the coordinate map (``formula._box_map``, and ``render.exact_module_source``'s ``lo``/``hi``) and the points
(``compact._edge_samples``, ``compact._domain_samples``, ``refine._loss_points``, ``verify._evaluation``,
``verify._condition_points``).
"""

from kanpde.symbolic.compact import CompactOptions, compact_program
from kanpde.symbolic.evaluate import SymbolicField
from kanpde.symbolic.exact import exact_program
from kanpde.symbolic.fit import FUNCTIONS, EdgeFit, SymbolicFunction, fit_edge
from kanpde.symbolic.formula import Program
from kanpde.symbolic.pipeline import FORMATS, MODES, ExportResult, export, format_report
from kanpde.symbolic.render import compact_module_source, exact_module_source, parse_text
from kanpde.symbolic.verify import verify

__all__ = [
    "FUNCTIONS", "SymbolicFunction", "Program", "SymbolicField", "EdgeFit", "CompactOptions", "ExportResult",
    "export", "format_report", "exact_program", "compact_program", "fit_edge", "verify", "parse_text",
    "exact_module_source", "compact_module_source", "MODES", "FORMATS",
]
