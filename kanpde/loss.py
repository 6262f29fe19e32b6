"""Loss terms: the mean squared PDE residual (or each named residual of a system), one mean
squared error per soft condition, one mean squared misfit per set of observations, and the residual's
grid terms (kanpde.modes, kanpde.propagation)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from kanpde.conditions import Condition
from kanpde.data import Observations
from kanpde.field import Field, field_jet
from kanpde.geometry import Points
from kanpde.jet import Jet, curved_axes
from kanpde.modes import SineModes
from kanpde.problem import RESERVED
from kanpde.propagation import PropagatedResidual

GridTerm = SineModes | PropagatedResidual
"""A loss term computed from the residual on its own fixed grid (``GridTerm.points``)."""


def _rows(r, x: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(r, torch.Tensor) or r.ndim == 0 or r.shape[0] != x.shape[0]:
        shape = tuple(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__
        raise ValueError(f"{what}: must return a tensor with one row per point "
                         f"([{x.shape[0]}] or [{x.shape[0]}, k]), got {shape}")
    return r


def residuals(field: Field, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The problem's residual(s) at interior points ``x`` by loss-term name, checked for shape:
    {"residual": r} or, for a residual that returns a dict, its named residuals."""
    return _named_residuals(field.problem, field.jet(x, field.problem.derivatives), x)


def _named_residuals(problem, u: Jet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """:func:`residuals` from the network's jet ``u`` at ``x``."""
    what = f"{type(problem).__name__}.residual"
    r = problem.residual(field_jet(u, problem), x)
    if not isinstance(r, dict):
        return {"residual": _rows(r, x, what)}
    if not r:
        raise ValueError(f"{what}: returned an empty dict")
    clash = [c.name for c in problem.conditions] + list(RESERVED)
    for name in r:
        if not isinstance(name, str) or not name.isidentifier() or name in clash:
            raise ValueError(f"{what}: residual name {name!r} must be a name not used by a condition or reserved")
    return {name: _rows(value, x, f"{what}[{name!r}]") for name, value in r.items()}


def residual(field: Field, x: torch.Tensor) -> torch.Tensor:
    """The problem's residual at interior points ``x`` (a system's named residuals side by side)."""
    terms = residuals(field, x)
    return next(iter(terms.values())) if len(terms) == 1 else torch.cat(
        [r.reshape(x.shape[0], -1) for r in terms.values()], dim=1)


def term_names(field: Field) -> list[str]:
    """The loss terms' names, found by evaluating the residual and every general condition once at
    the domain's centre, so that a residual or condition naming a field or coordinate that does not
    exist fails before training starts."""
    problem = field.problem
    box = problem.box
    dtype = next(iter(field.parameters()), torch.empty((), dtype=torch.float64)).dtype
    x = torch.tensor([[(lo + hi) / 2 for lo, hi in zip(box.lo, box.hi)]], dtype=dtype, device=field._lo.device)
    names = list(residuals(field, x))
    for condition in problem.conditions:
        if type(condition) is Condition:
            u = field_jet(field.jet(x, problem.condition_modes[condition.name]), problem, condition.field)
            _rows(condition.defect(u, x, torch.zeros_like(x)), x, f"condition {condition.name}")
    return problem.loss_terms(names)


SumOverRanks = Callable[[torch.Tensor], torch.Tensor]
"""Data-parallel training: the sum of a tensor over all ranks (see kanpde.distributed)."""


def _mse(error: torch.Tensor, across_ranks: SumOverRanks | None = None) -> torch.Tensor:
    """Mean of error²; with ``across_ranks`` this rank's share Σ_local e² / N_all_ranks of the global mean."""
    if across_ranks is not None:
        return error.square().sum() / across_ranks(error.new_tensor(float(error.numel()))).clamp_min(1)
    return error.square().mean() if error.numel() else error.new_zeros(())


def causal_mean(squared: torch.Tensor, t: torch.Tensor, t0: float, t1: float, epsilon: float | str,
                chunks: int, across_ranks: SumOverRanks | None = None, frozen: dict | None = None,
                min_weight: float = 0.05) -> torch.Tensor:
    """Causally weighted mean of squared residuals (Wang, Sankaran & Perdikaris 2022, eq. 3.11):
    chunk i of the time axis has mean L_i and weight w_i = exp(−ε Σ_{k<i} L_k), without gradient,
    so later times count only once earlier ones are resolved. With ``across_ranks`` the chunk
    means and weights are those of all ranks' points, and the result is this rank's share.
    ``frozen`` (a dict) keeps the first weights computed with it and reuses them: an L-BFGS line
    search needs one objective, and with a large ε the weights would change at every trial point.

    ``epsilon="auto"`` rescales ε at every step to the losses, ε = −ln(min_weight) / Σ_{k<last} L_k,
    so the last chunk's weight is ``min_weight``: a fixed ε leaves every weight ≈ 1 once the losses
    are small, or starves the late chunks while they are large (docs/tables.md, "Targets")."""
    index = ((t - t0) / (t1 - t0) * chunks).floor().long().clamp(0, chunks - 1)
    totals = squared.new_zeros(chunks).index_add(0, index, squared)
    counts = torch.bincount(index, minlength=chunks).to(squared.dtype)
    if across_ranks is not None:
        counts = across_ranks(counts).clamp_min(1)
        means, global_means = totals / counts, across_ranks(totals) / counts
    else:
        counts = counts.clamp_min(1)
        means = global_means = totals / counts
    weights = None if frozen is None else frozen.get("causal_weights")
    if weights is None:
        earlier = torch.cat([global_means.new_zeros(1), global_means.cumsum(0)[:-1]]).detach()
        if epsilon == "auto":  # w_i = min_weight^(Σ_{k<i} L_k / Σ_{k<last} L_k)
            weights = torch.pow(min_weight, earlier / earlier[-1]) if earlier[-1] > 0 else torch.ones_like(earlier)
        else:
            weights = torch.exp(-epsilon * earlier)
        if frozen is not None:
            frozen["causal_weights"] = weights
    return (weights * means).mean()


def loss_terms(field: Field, points: Points, causal_epsilon: float | str = 0.0, causal_chunks: int = 16,
               across_ranks: SumOverRanks | None = None, time_end: float | None = None,
               frozen: dict | None = None, causal_min_weight: float = 0.05,
               observations: Sequence[Observations] | None = None,
               grid_terms: Mapping[str, GridTerm] | None = None) -> dict[str, torch.Tensor]:
    """Every loss term by name: "residual", each soft condition's and each set of observations' (mean
    squared misfit; ``observations`` this rank's share, default the problem's data), and each of
    ``grid_terms`` (:func:`grid_term`).
    With ``causal_epsilon`` > 0 or "auto" (space-time problems) the residual term is the causally weighted
    mean, its chunks spanning [t0, ``time_end``] (default t1: the points' time window), its weights kept in
    ``frozen`` if given (see :func:`causal_mean`). With ``across_ranks`` (data-parallel training on a shard
    of the points) each term is this rank's share: the shares of all ranks add up to the term on all ranks'
    points."""
    problem = field.problem
    causal = (causal_epsilon == "auto" or causal_epsilon > 0) and problem.box.has_time
    observations = problem.data if observations is None else observations
    named, shared = _shared_passes(field, points, observations)
    terms = {}
    for name, r in named.items():
        if causal:
            squared = r.square().reshape(r.shape[0], -1).sum(1)
            t = points.interior[:, problem.box.time_axis]
            box = problem.box
            t1 = box.t1 if time_end is None else time_end
            own = frozen if frozen is None or len(named) == 1 else frozen.setdefault(name, {})
            terms[name] = causal_mean(squared, t, box.t0, t1, causal_epsilon, causal_chunks, across_ranks,
                                      own, causal_min_weight)
        else:
            terms[name] = _mse(r, across_ranks)
    for condition in problem.soft_conditions:
        if condition.name in shared:
            u, x, normal = shared[condition.name]
            error = _defect(problem, condition, field_jet(u, problem, condition.field), x, normal)
        else:
            error = condition_error(field, condition, points)
        term = _mse(error, across_ranks)
        terms[condition.name] = condition.weight * term if isinstance(condition, Condition) else term
    for data in observations:
        values = shared[data.name][0].value
        terms[data.name] = _mse(data.misfit(values[:, problem.fields.index(data.field)]), across_ranks)
    for name, term in (grid_terms or {}).items():
        terms[name] = grid_term(field, term, across_ranks)
    return terms


def grid_term(field: Field, term: GridTerm, across_ranks: SumOverRanks | None = None) -> torch.Tensor:
    """A grid term of the (single) residual at its grid points: "residual_modes", the mean square of the
    residual's sine coefficients (kanpde.modes), or "propagated_residual", the mean square of the error the
    residual causes when integrated in time with the problem's growth rate (kanpde.propagation)."""
    if isinstance(term, SineModes):
        return term.mean_square(residual(field, term.points), across_ranks)
    problem, x = field.problem, term.points
    u = field_jet(field.jet(x, problem.derivatives), problem)
    r = _rows(problem.residual(u, x), x, f"{type(problem).__name__}.residual")
    rate = _rows(problem.growth_rate(u, x), x, f"{type(problem).__name__}.growth_rate")
    return term.mean_square(r, rate)


def _reads_within(mode, jet_mode, dim: int) -> bool:
    """Whether a closed-form jet in ``jet_mode`` over ``dim`` inputs holds every term a reader of ``mode`` needs
    (a lean diagonal's ∂²/∂x_a² are in a jet with those and more, or in the whole Hessian)."""
    if not (isinstance(mode, str) and isinstance(jet_mode, str)):
        return False
    if mode in (jet_mode, "value") or (mode == "none" and jet_mode != "value"):
        return True
    curved = curved_axes(mode, dim)
    return curved is not None and (jet_mode == "full" or set(curved) <= set(curved_axes(jet_mode, dim) or ()))


def _values_ride(wanted: Sequence[tuple], interior: int) -> bool:
    """Whether the sets read for their values (``wanted``: (name, mode, points, normals)) are few enough to ride
    in the residual's pass under ``train.compile``: at most a quarter as many distinct points as the residual's.
    Its compiled jet then costs less for them than a value pass of their own, which stays eager (Burgers:
    −11 % per step for the KAN, −6 % for the MLP, docs/benchmarks.md, "Lean jets")."""
    sets = {id(x): x.shape[0] for _, mode, x, _ in wanted if mode == "value"}
    return 0 < sum(sets.values()) <= interior // 4


def _shared_passes(field: Field, points: Points, observations: Sequence[Observations]):
    """The residuals and the jets of the soft conditions and of the observations, with one network pass per jet
    mode instead of one per set of points: the sets read in one mode are evaluated together (a set of points
    two conditions share, once), and a condition on the interior points that reads no more than the residual
    takes the residual's own jet. Each pass has a fixed cost that dominates for the few points of a condition;
    joining the conditions' points to the residual's pass instead would carry every derivative term there
    (slower on the lid-driven cavity, docs/benchmarks.md), except for few value-only sets under
    ``train.compile`` (:func:`_values_ride`). Returns (the named residuals, {condition or data name: (jet,
    points, normals)}); periodic conditions and derivative sets of any order keep passes of their own."""
    problem = field.problem
    residual_mode = problem.derivatives
    wanted = []  # (name, mode, points, normals)
    for condition in problem.soft_conditions:
        mode = problem.condition_modes[condition.name]
        if condition.kind != "periodic" and isinstance(mode, str):
            shares = condition.kind == "interior" and _reads_within(mode, residual_mode, problem.box.dim)
            wanted.append((condition.name, residual_mode if shares else mode,
                           *condition_points(problem, condition, points)))
    wanted += [(data.name, "value", data.x, None) for data in observations]
    own_pass = not isinstance(residual_mode, str)  # derivatives of any order: a TaylorJet of its own
    if field.compile and not own_pass and _values_ride(wanted, points.interior.shape[0]):
        wanted = [(name, residual_mode if mode == "value" else mode, x, normal) for name, mode, x, normal in wanted]
    sets = {} if own_pass else {residual_mode: [points.interior]}  # per mode, its distinct sets of points
    placed = []  # per wanted set: the index of its points among its mode's sets
    for _, mode, x, _ in wanted:
        known = sets.setdefault(mode, [])
        index = next((i for i, other in enumerate(known) if other is x or (
            other.shape == x.shape and torch.equal(other, x))), len(known))
        if index == len(known):
            known.append(x)
        placed.append(index)
    jets = {mode: field.jet(torch.cat(xs), mode).split_rows([x.shape[0] for x in xs]) for mode, xs in sets.items()}
    named = residuals(field, points.interior) if own_pass else _named_residuals(
        problem, jets[residual_mode][0], points.interior)
    return named, {name: (jets[mode][index], x, normal) for (name, mode, x, normal), index in zip(wanted, placed)}


def condition_points(problem, condition: Condition, points: Points) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The points a (not periodic) condition sees in a draw, and their outward normals on a boundary."""
    if condition.kind == "initial":
        return points.initial, None
    if condition.kind == "interior":
        return points.interior, None
    if condition.kind == "point":
        return torch.tensor([condition.at], dtype=points.interior.dtype, device=points.interior.device), None
    return problem.boundary_part(condition, points)


def _defect(problem, condition: Condition, u, x: torch.Tensor, normal: torch.Tensor | None) -> torch.Tensor:
    """``condition.defect``, checked to give one number per point."""
    defect = condition.defect(u, x, normal)
    if not isinstance(defect, torch.Tensor) or tuple(defect.shape) != (x.shape[0],):
        shape = list(defect.shape) if isinstance(defect, torch.Tensor) else type(defect).__name__
        raise ValueError(f"{type(problem).__name__}.conditions: {condition.name!r} gives values of shape {shape} on "
                         f"{x.shape[0]} points; expected [{x.shape[0]}]: one number per point ([N], not [N, 1])")
    return defect


def condition_error(field: Field, condition: Condition, points: Points) -> torch.Tensor:
    """Pointwise defect of one condition on the sampled points (its own point for a PointValue)."""
    problem = field.problem
    if condition.kind == "periodic":
        axis = problem.box.names.index(condition.axis)
        lo = points.boundary[points.boundary_face == problem.box.face_index(f"{condition.axis}.lo")]
        hi = lo.clone()
        hi[:, axis] = problem.box.hi[axis]
        u_lo, u_hi = (field_jet(field.jet(p, "none"), problem, condition.field) for p in (lo, hi))
        return torch.cat([u_lo.value - u_hi.value, u_lo.first[:, axis] - u_hi.first[:, axis]])
    x, normal = condition_points(problem, condition, points)
    u = field_jet(field.jet(x, problem.condition_modes[condition.name]), problem, condition.field)
    return _defect(problem, condition, u, x, normal)
