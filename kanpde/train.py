"""Training: optimizer stages, the KAN grid schedule, time marching, evaluation, divergence recovery.

One global step counter runs through the stages (e.g. Adam then L-BFGS). At scheduled
steps KAN grids are extended (G → G') or adapted to the current points; the optimizer
is rebuilt afterwards, since its state belongs to the old parameters. With time windows
the points of a space-time problem are confined to a growing time interval [t0, t_k]
(time marching). A stage may have its own points (more of them for L-BFGS, say). A
non-finite loss or gradient restores the last good state and lowers the learning rate.
Optional: residual-adaptive interior points (:mod:`kanpde.adaptive`) and loss weights set by
gradient norms (:mod:`kanpde.balancing`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from tqdm.auto import tqdm

from kanpde import distributed, modes, propagation
from kanpde.adaptive import ResidualAdaptive
from kanpde.balancing import GradientNormBalancing
from kanpde.config import StageConfig, TrainConfig
from kanpde.distributed import World
from kanpde.field import Field
from kanpde.geometry import Box, Points, Sampler
from kanpde.loss import loss_terms, term_names
from kanpde.nets.kan import KAN
from kanpde.nets.sparse import sparsity_penalty
from kanpde.problem import did_you_mean

LINE_SEARCH_EVALUATIONS = 25
"""Loss evaluations one L-BFGS step may spend in its strong Wolfe line search."""

CHECKPOINT_SECONDS = 60.0
"""A checkpoint is also written whenever this much training time has passed since the last one."""

RECOVERY_FACTOR = 0.1
"""After a divergence the stage's learning rate is multiplied by this factor."""


def _on_host(tensors: list[torch.Tensor], device: torch.device) -> list[float]:
    """Scalar tensors as Python floats with one device-to-host copy (one synchronisation per step on a GPU)."""
    if not tensors:
        return []
    return torch.stack([t.detach().reshape(()).to(device=device, dtype=torch.float64) for t in tensors]).tolist()


def _all_finite(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Whether every entry of every tensor is finite, as a tensor (no synchronisation)."""
    if not tensors:
        return torch.ones((), dtype=torch.bool)
    return torch.isfinite(torch.cat([t.detach().reshape(-1) for t in tensors])).all()  # a few calls, not 4 per tensor


class DivergenceError(RuntimeError):
    """Training kept producing non-finite losses after the allowed recoveries."""


@dataclass
class History:
    """One row per step: step, loss, each term, grid, lr, elapsed seconds, rel_l2 (NaN if not evaluated)."""

    rows: list[dict[str, float]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def last(self, key: str) -> float:
        for row in reversed(self.rows):
            if not math.isnan(row.get(key, math.nan)):
                return row[key]
        return math.nan


def _make_optimizer(stage: StageConfig, parameters) -> torch.optim.Optimizer:
    if stage.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=stage.lr, foreach=True)  # the per-tensor updates, bit for bit
    # one step = one L-BFGS iteration; max_eval must be given explicitly, since torch's default
    # (max_iter·5/4 = 1) leaves the strong Wolfe line search no evaluations and it returns t = 0
    return torch.optim.LBFGS(parameters, lr=stage.lr, max_iter=1, max_eval=1 + LINE_SEARCH_EVALUATIONS,
                             history_size=stage.history_size, line_search_fn="strong_wolfe",
                             tolerance_grad=0.0, tolerance_change=0.0)


def _lr_factor(stage: StageConfig, step_in_stage: int) -> float:
    """Learning-rate decay within a stage: exponential lr·rate^(s/steps) or step lr·rate^⌊s/every⌋."""
    if stage.decay == "exponential":
        return stage.decay_rate ** (step_in_stage / stage.steps)
    if stage.decay == "step":
        return stage.decay_rate ** (step_in_stage // stage.decay_every)
    return 1.0


class Trainer:
    """Trains a :class:`Field` on a :class:`Sampler`'s points according to a :class:`TrainConfig`.

    ``evaluate`` (optional) returns metrics such as {"rel_l2": …}, called every
    ``evaluate_every`` steps and at the end; ``on_checkpoint(trainer)`` is called every
    ``checkpoint_every`` steps and at the end of each stage.

    Data-parallel (``world`` of several ranks, see :mod:`kanpde.distributed`): every rank holds
    the same global points and trains on its shard; losses and gradients are summed over ranks
    in each closure, so all ranks take the same steps. Grid changes use the global points.
    """

    def __init__(self, field_: Field, sampler: Sampler, config: TrainConfig, *,
                 evaluate: Callable[[], dict[str, float]] | None = None, evaluate_every: int = 0,
                 on_checkpoint: Callable[[Trainer], None] | None = None, checkpoint_every: int = 0,
                 progress: bool = True, world: World = distributed.SINGLE, adaptive: ResidualAdaptive | None = None):
        self.field, self.sampler, self.config, self.world = field_, sampler, config, world
        self.samplers = tuple(  # per stage: ``points`` with the stage's own settings, if any
            sampler.derive(f"train.stages[{index}].points", **stage.points.changes()) if stage.points else sampler
            for index, stage in enumerate(config.stages))
        self.evaluate, self.evaluate_every = evaluate, evaluate_every
        self.on_checkpoint, self.checkpoint_every = on_checkpoint, checkpoint_every
        self.progress = progress
        self.weights = self._loss_weights()
        self.balancing = self._balancing()
        parameter = next(iter(field_.parameters()), field_._lo)
        self.grid_terms = self._grid_terms(parameter.dtype)
        self.observations = [data.to(parameter.dtype, field_._lo.device).part(world.rank, world.size)
                             for data in field_.problem.data]  # this rank's share, like the points
        self._check_time_windows()
        if self.kan is not None and self.kan.grid_monitor != "quantile" and not config.grid_update_every:
            raise ValueError(f"model.grid_monitor: {self.kan.grid_monitor!r} acts only in grid updates; "
                             "set train.grid_update_every")
        self.adaptive = adaptive  # residual-adaptive interior points (kanpde.adaptive)
        if adaptive is not None:
            self._check_adaptive(adaptive)
        self.history = History()
        self.step = 0  # global step: the number of optimizer steps taken
        self.recoveries = 0
        self.lr_scale = 1.0  # lowered by divergence recoveries
        self.train_seconds = 0.0
        self.optimizer: torch.optim.Optimizer | None = None
        self._good: dict | None = None
        self._last_checkpoint = 0.0  # train_seconds at the last checkpoint
        self.sparsity: tuple[float, float] | None = None  # (λ, entropy weight): KAN sparsity penalty (kanpde.discover)
        self._shown_rel_l2: float | None = None  # the progress bar's rel_l2 (None: read it from the history)

    @property
    def total_steps(self) -> int:
        return sum(stage.steps for stage in self.config.stages)

    @property
    def kan(self) -> KAN | None:
        return self.field.net if isinstance(self.field.net, KAN) else None

    def _loss_weights(self) -> dict[str, float]:
        """Each loss term's weight: ``train.loss_weights``, else the condition's own ``weight``, else 1."""
        problem = self.field.problem
        terms = term_names(self.field) + self._grid_term_names()
        stages = self.config.stages
        named = [("train.loss_weights", self.config.loss_weights),
                 *((f"train.stages[{i}].loss_weights", stage.loss_weights) for i, stage in enumerate(stages))]
        for key, weights in named:
            for name in weights:
                if name not in terms:
                    raise ValueError(f"{key}.{name}: unknown loss term of {problem.name}{did_you_mean(name, terms)}")
        own = {c.name: c.weight for c in problem.conditions} | {data.name: data.weight for data in problem.data}
        for index, stage in enumerate(stages):
            if stage.loss_weights and self.config.loss_balancing is not None:
                raise ValueError(f"train.stages[{index}].loss_weights: cannot be combined with "
                                 "train.loss_balancing (which sets the weights itself)")
        return {name: float(self.config.loss_weights.get(name, own.get(name, 1.0))) for name in terms}

    def weights_of(self, stage: StageConfig) -> dict[str, float]:
        """The loss weights a stage trains with: the run's, with the stage's own ``loss_weights`` replacing them."""
        if not stage.loss_weights:
            return self.weights
        return {name: float(stage.loss_weights.get(name, weight)) for name, weight in self.weights.items()}

    def _grid_term_names(self) -> list[str]:
        """The grid terms this run configures: "residual_modes", "propagated_residual"."""
        settings = {modes.TERM: self.config.residual_modes, propagation.TERM: self.config.propagated_residual}
        return [name for name, value in settings.items() if value is not None]

    def _grid_terms(self, dtype: torch.dtype) -> dict[str, modes.SineModes | propagation.PropagatedResidual]:
        """The grid terms of ``train.residual_modes`` (kanpde.modes) and ``train.propagated_residual``
        (kanpde.propagation), each on this rank's share of its grid."""
        config, problem = self.config, self.field.problem
        names, terms = self._grid_term_names(), {}
        part, device = (self.world.rank, self.world.size), self.field._lo.device
        for name in names:
            key = f"train.{name}"
            if [n for n in self.weights if n not in problem.loss_terms(()) and n not in names] != ["residual"]:
                raise ValueError(f"{key}: {problem.name} is a system of named residuals; the term supports one "
                                 "residual only")
            if not isinstance(problem.domain, Box):
                raise ValueError(f"{key}: needs a box domain (its grid spans the box); {problem.name}'s domain is "
                                 f"a {type(problem.domain).__name__}")
            if config.time_windows > 1:
                raise ValueError(f"{key}: cannot be combined with train.time_windows (its grid spans the whole "
                                 "time interval)")
            if self.balancing is not None:
                raise ValueError(f"{key}: cannot be combined with train.loss_balancing (set its weight in "
                                 "loss_weights)")
            box = problem.box
            if name == modes.TERM:
                settings = config.residual_modes
                terms[name] = modes.SineModes(box.lo, box.hi, settings.modes, settings.grid, dtype=dtype,
                                              device=device, part=part, key=key)
                continue
            if not box.has_time:
                raise ValueError(f"{key}: needs a time coordinate (it integrates the residual in time); "
                                 f"{problem.name}'s box has none")
            terms[name] = propagation.PropagatedResidual(box.lo, box.hi, config.propagated_residual.grid,
                                                         box.time_axis, dtype=dtype, device=device, part=part,
                                                         key=key)
        return terms

    def terms_until(self, step: int) -> list[str]:
        """The loss terms computed in the steps before ``step``: every term, except a grid term while its weight
        is 0 (it is then not computed and changes nothing; a resume compares these)."""
        start, used = 0, set()
        for stage in self.config.stages:
            if start < step:
                used |= {name for name in self.grid_terms if self.weights_of(stage).get(name, 0.0) > 0}
            start += stage.steps
        return [name for name in self.weights if name not in self.grid_terms or name in used]

    def _balancing(self) -> GradientNormBalancing | None:
        settings = self.config.loss_balancing
        if settings is None:
            return None
        if len(self.weights) < 2:
            raise ValueError(f"train.loss_balancing: {self.field.problem.name} has no loss term besides the "
                             "residual (its conditions are hard): nothing to balance")
        return GradientNormBalancing(settings.every, settings.alpha)

    def _balance(self, points, stage: StageConfig) -> None:
        """Loss balancing (kanpde.balancing): new weights from the per-term gradients at this step's points."""
        across_ranks = distributed.sum_over_ranks if self.world.parallel else None
        terms = loss_terms(self.field, points, self.config.causal_epsilon_of(stage), self.config.causal_chunks,
                           across_ranks, self.time_window_end(self.step), None, self.config.causal_min_weight,
                           self.observations)
        self.weights = self.balancing.update(self.weights, terms, self.field.parameters(), across_ranks)

    def _check_time_windows(self) -> None:
        config, box = self.config, self.field.problem.box
        if config.time_windows > 1 and not box.has_time:
            raise ValueError(f"train.time_windows: time marching needs a space-time problem; "
                             f"{self.field.problem.name} has no time coordinate")
        if config.time_windows_until > self.total_steps:
            raise ValueError(f"train.time_windows_until: {config.time_windows_until} is past the last step "
                             f"({self.total_steps})")

    def _check_adaptive(self, adaptive: ResidualAdaptive) -> None:
        if self.config.time_windows > 1:
            raise ValueError("points.adaptive: cannot be combined with train.time_windows (the windows squeeze "
                             "the points' times)")
        for index, sampler in enumerate(self.samplers):
            adaptive.check_sampler(sampler, f"train.stages[{index}].points" if sampler is not self.sampler
                                   else "points")

    @property
    def time_windows_until(self) -> int:
        """The step at which time marching ends (default: the end of the first stage)."""
        return self.config.time_windows_until or self.config.stages[0].steps

    def time_window_end(self, step: int) -> float | None:
        """Time marching (Wight & Zhao 2020, a single network): the end t_k of the time interval
        [t0, t_k] trained at ``step``, k = 1..K growing evenly over the steps before
        ``time_windows_until``; None when the whole interval is trained."""
        windows, until = self.config.time_windows, self.time_windows_until
        if windows <= 1 or step >= until:
            return None
        box = self.field.problem.box
        return box.t0 + (box.t1 - box.t0) * (step * windows // until + 1) / windows

    def sampler_at(self, step: int) -> Sampler:
        """The sampler of the stage that ``step`` belongs to."""
        return self.samplers[self._stage_at(step)[0]]

    def points(self, step: int) -> Points:
        """The collocation points of ``step``: its stage's draw, with times squeezed into the
        current time window [t0, t_k] (so every window gets all the points)."""
        points = self.sampler_at(step).sample(step)
        if self.adaptive is not None:
            points = self.adaptive.points(points, self.sampler_at(step), step)
        end = self.time_window_end(step)
        if end is None:
            return points
        box = self.field.problem.box
        axis, fraction = box.time_axis, (end - box.t0) / (box.t1 - box.t0)

        def squeeze(x: torch.Tensor) -> torch.Tensor:
            x = x.clone()
            x[:, axis] = box.t0 + (x[:, axis] - box.t0) * fraction
            return x

        return Points(squeeze(points.interior), squeeze(points.boundary), points.boundary_face,
                      points.boundary_normal, points.initial)

    def _stage_at(self, step: int) -> tuple[int, StageConfig, int]:
        start = 0
        for index, stage in enumerate(self.config.stages):
            if step < start + stage.steps:
                return index, stage, step - start
            start += stage.steps
        last = len(self.config.stages) - 1
        return last, self.config.stages[-1], self.config.stages[-1].steps

    def restart(self) -> None:
        """Forget the optimizer's state and the last good snapshot: the network was changed outside training
        (pruned, snapped, restored), so both would describe another network."""
        self.optimizer, self._good = None, None

    def add_stage(self, stage: StageConfig) -> None:
        """Append ``stage`` to the run (on the run's main points), to be trained by the next :meth:`run`."""
        self.config = replace(self.config, stages=(*self.config.stages, stage))
        self.samplers = (*self.samplers, self.sampler)
        self.restart()

    # -- the loop -----------------------------------------------------------------------
    def run(self, steps: int | None = None) -> History:
        """Train from the current step to the end of the last stage, or for ``steps`` more steps at most."""
        end = self.total_steps if steps is None else min(self.total_steps, self.step + steps)
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not self.progress, dynamic_ncols=True,
                   desc=f"{self.field.problem.name}")
        current_stage = self._stage_at(self.step)[0] if self.optimizer is not None else None
        try:
            while self.step < end:
                index, stage, in_stage = self._stage_at(self.step)
                new_stage = index != current_stage or self.optimizer is None
                current_stage = index
                started = time.perf_counter()
                new_grid = self._change_grid()  # the old optimizer state belongs to the old parameters
                self.train_seconds += time.perf_counter() - started  # grid changes are part of training
                new_weights = self.balancing is not None and self.step > 0 and self.balancing.due(self.step)
                new_objective = self._new_time_window() or self._new_draw() or new_weights  # L-BFGS: stale curvature
                if new_stage or new_grid or (new_objective and stage.optimizer == "lbfgs"):
                    self.optimizer = self._new_optimizer(stage)
                for group in self.optimizer.param_groups:  # an unknown's own lr decays with the stage's
                    group["lr"] = group.get("own_lr", stage.lr) * self.lr_scale * _lr_factor(stage, in_stage)
                row = self._one_step(stage)
                if row is None:
                    continue  # recovered from a divergence: the step is taken again
                self._after_step(row, bar, stage_end=in_stage + 1 == stage.steps)
        finally:
            bar.close()
        return self.history

    def _new_optimizer(self, stage: StageConfig) -> torch.optim.Optimizer:
        """The stage's optimizer; with Adam, an unknown parameter with its own ``lr`` is a parameter group
        of its own (L-BFGS has one step length for all parameters: such an lr is noted and not used)."""
        own = [u for u in self.field.unknowns.values() if u.lr is not None]
        if not own:
            return _make_optimizer(stage, self.field.parameters())
        if stage.optimizer == "lbfgs":
            event = "an unknown parameter's own lr applies to Adam stages only; L-BFGS uses the stage's"
            if event not in self.history.events:
                self.history.events.append(event)
            return _make_optimizer(stage, self.field.parameters())
        separate = {id(u.raw) for u in own}
        groups = [{"params": [p for p in self.field.parameters() if id(p) not in separate]}]
        groups += [{"params": [u.raw], "lr": u.lr, "own_lr": u.lr} for u in own]
        return _make_optimizer(stage, groups)

    def _change_grid(self) -> bool:
        """Grid extension and grid update at this step; returns whether parameters changed."""
        kan, config, step = self.kan, self.config, self.step
        if kan is None:
            return False
        every, until = config.grid_update_every, config.grid_update_until
        extend = step in config.grid_schedule and config.grid_schedule[step] != kan.grid
        update = bool(every) and step % every == 0 and step < until
        if not (extend or update):
            return False
        x = self.field.net_inputs(self.points(step).interior)
        if extend:
            old = kan.grid
            error = kan.extend_grid(config.grid_schedule[step], x)
            self.history.events.append(f"step {step}: grid {old} -> {kan.grid}, fit error {error:.2e}")
        if update:
            kan.update_grid(x)
        self._good = None  # a saved state of the old grid no longer fits
        return True

    def _new_draw(self) -> bool:
        """Whether the stage's sampler draws new points at this step (``resample_every``; a new stage's
        own points come with a new optimizer anyway)."""
        sampler, step, adaptive = self.sampler_at(self.step), self.step, self.adaptive
        if adaptive is not None and step > 0 and adaptive.draw_step(step) != adaptive.draw_step(step - 1):
            return True
        return step > 0 and sampler.draw_step(step) != sampler.draw_step(step - 1)

    def _new_time_window(self) -> bool:
        """Whether a new time window starts at this step (recorded as an event)."""
        box = self.field.problem.box

        def end(step: int) -> float:
            window_end = self.time_window_end(step)
            return box.t1 if window_end is None else window_end

        if self.config.time_windows <= 1 or (self.step > 0 and end(self.step) == end(self.step - 1)):
            return False
        self.history.events.append(f"step {self.step}: time window [{box.t0:g}, {end(self.step):g}]")
        return self.step > 0

    def _closure(self, points, time_end: float | None, causal_epsilon: float | str, weights: dict[str, float]):
        """The loss of one step with the loss ``weights``; causal weights are computed once per step (fixed in a
        line search)."""
        across_ranks = distributed.sum_over_ranks if self.world.parallel else None
        frozen = {}
        grid_terms = {name: term for name, term in self.grid_terms.items() if weights.get(name, 0.0) > 0}

        def closure():
            self.optimizer.zero_grad(set_to_none=True)
            terms = loss_terms(self.field, points, causal_epsilon, self.config.causal_chunks,
                               across_ranks, time_end, frozen, self.config.causal_min_weight,
                               self.observations, grid_terms)  # a grid term at weight 0: not computed
            loss = sum(weights[name] * value for name, value in terms.items())
            if self.sparsity is not None and self.kan is not None:
                weight, entropy = self.sparsity
                loss = loss + weight * sparsity_penalty(self.kan, self.field.net_inputs(points.interior), entropy,
                                                        across_ranks)
            loss.backward()
            if self.kan is not None:  # pruned and snapped edges stay as they are
                for layer in self.kan.layers:
                    layer.mask_gradients()
            if across_ranks is not None:  # this rank's shares → the global loss, terms and gradient
                totals = distributed.reduce_gradients(self.field.parameters(),
                                                      torch.stack([loss, *terms.values()]).detach())
                loss, terms = totals[0], dict(zip(terms, totals[1:]))
            if not hasattr(closure, "terms"):  # the row reports the state the step started from
                closure.terms = terms
            return loss
        return closure

    def _one_step(self, stage: StageConfig) -> dict | None:
        started = time.perf_counter()
        points = distributed.shard(self.points(self.step), self.world)
        if self._good is None:
            self._good = self._snapshot()
        if self.balancing is not None and self.balancing.due(self.step):
            self._balance(points, stage)
        epsilon = self.config.causal_epsilon_of(stage)
        closure = self._closure(points, self.time_window_end(self.step), epsilon, self.weights_of(stage))
        loss = self._lbfgs_step(closure, stage) if stage.optimizer == "lbfgs" else self._adam_step(closure)
        device = self.field._lo.device
        # the loss, the parameters' finiteness, the terms and the unknowns (after the step) in one transfer
        scalars = [torch.as_tensor(loss), _all_finite(list(self.field.parameters())), *closure.terms.values(),
                   *(u.value for u in self.field.unknowns.values())]
        loss, finite, *values = _on_host(scalars, device)
        self.train_seconds += time.perf_counter() - started
        if not (math.isfinite(loss) and finite):
            self._recover(loss)
            return None
        row = {"step": self.step + 1, "loss": loss}
        row.update(zip(closure.terms, values[:len(closure.terms)]))
        row.update(zip(self.field.unknowns, values[len(closure.terms):]))
        row.update({"grid": float(self.kan.grid) if self.kan else math.nan,
                    "lr": self.optimizer.param_groups[0]["lr"]})
        if self.balancing is not None:
            row.update({f"weight_{name}": weight for name, weight in self.weights.items()})
        return row

    def _lbfgs_step(self, closure, stage: StageConfig) -> torch.Tensor:
        """One L-BFGS iteration; when its line search finds no decrease (the parameters do not move),
        the history is dropped, so the next step starts again from a scaled gradient step."""
        before = [p.detach().clone() for p in self.field.parameters()]
        loss = self.optimizer.step(closure)
        if all(torch.equal(a, p) for a, p in zip(before, self.field.parameters())):
            self.optimizer = self._new_optimizer(stage)
            event = f"step {self.step + 1}: L-BFGS made no progress, restarted without its history"
            if not self.history.events or not self.history.events[-1].endswith("without its history"):
                self.history.events.append(event)
        return loss

    def _adam_step(self, closure) -> torch.Tensor:
        loss = closure()
        if not bool(_all_finite([p.grad for p in self.field.parameters() if p.grad is not None])):
            return torch.tensor(math.nan)
        self.optimizer.step()
        return loss

    def _after_step(self, row: dict, bar, stage_end: bool) -> None:
        self.step += 1
        evaluate_now = self.evaluate is not None and (
            self.step == self.total_steps or (self.evaluate_every and self.step % self.evaluate_every == 0))
        row["rel_l2"] = math.nan
        if evaluate_now:  # rel_l2, and for a system rel_l2_<field> too
            row.update({k: v for k, v in self.evaluate().items() if k.startswith("rel_l2")})
            if not math.isnan(row["rel_l2"]):
                self._shown_rel_l2 = row["rel_l2"]
        row["elapsed"] = self.train_seconds
        self.history.rows.append(row)
        if self.step % 50 == 0 or stage_end:  # keep a last good state for divergence recovery
            self._good = self._snapshot()
        if stage_end:
            distributed.check_identical(self.field, self.world)
        if not bar.disable:
            if self._shown_rel_l2 is None:  # after a resume or a recovery: the last evaluation in the history
                self._shown_rel_l2 = self.history.last("rel_l2")
            postfix = {"loss": f"{row['loss']:.3e}"}
            if not math.isnan(self._shown_rel_l2):
                postfix["rel_l2"] = f"{self._shown_rel_l2:.2e}"
            if self.kan is not None:
                postfix["G"] = self.kan.grid
            bar.set_postfix(postfix, refresh=False)
        bar.update(1)
        checkpoint_now = (stage_end or (self.checkpoint_every and self.step % self.checkpoint_every == 0)
                          or self.train_seconds - self._last_checkpoint >= CHECKPOINT_SECONDS)
        if self.on_checkpoint is not None and checkpoint_now:
            self.on_checkpoint(self)
            self._last_checkpoint = self.train_seconds

    # -- divergence ---------------------------------------------------------------------
    def _snapshot(self) -> dict:
        return {"field": copy.deepcopy(self.field.state_dict()), "step": self.step,
                "rows": len(self.history.rows), "weights": dict(self.weights)}

    def _recover(self, loss: float) -> None:
        """Restore the last good state; lower the learning rate, or give up after max_recoveries."""
        failed_at = self.step + 1
        self.field.load_state_dict(self._good["field"])
        self.weights = dict(self._good["weights"])  # balanced weights belong to the state they were computed on
        del self.history.rows[self._good["rows"]:]
        self._shown_rel_l2 = None
        self.step = self._good["step"]
        self.optimizer = None  # rebuilt at the next step, without the poisoned moments
        self.recoveries += 1
        if self.recoveries > self.config.max_recoveries:
            raise DivergenceError(
                f"training diverged (loss {loss}) at step {failed_at} after {self.config.max_recoveries} "
                f"recoveries (train.max_recoveries); kept the last good state, step {self.step}")
        self.lr_scale *= RECOVERY_FACTOR
        self.history.events.append(
            f"step {failed_at}: non-finite loss, restored the state of step {self.step} and multiplied "
            f"the learning rate by {RECOVERY_FACTOR} (recovery {self.recoveries})")

    # -- checkpoint state ---------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue: parameters (grids included), optimizer, step, history."""
        return {"field": self.field.state_dict(),
                "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
                # the stage the optimizer belongs to: at a stage's end, the stage just finished
                "stage": self._stage_at(max(self.step - 1, 0))[0], "step": self.step, "recoveries": self.recoveries,
                "lr_scale": self.lr_scale, "weights": dict(self.weights),
                "train_seconds": self.train_seconds, "history": self.history.rows,
                "events": self.history.events, "grid": self.kan.grid if self.kan else None,
                "fields": list(self.field.problem.fields), "loss_terms": self.terms_until(self.step),
                "adaptive": self.adaptive.state_dict() if self.adaptive is not None else None}

    def load_state_dict(self, state: dict) -> None:
        computed = self.terms_until(state["step"])
        for key, now in (("fields", list(self.field.problem.fields)), ("loss_terms", computed)):
            if key in state and list(state[key]) != now:
                raise ValueError(f"--resume: the checkpoint's {key.replace('_', ' ')} {state[key]} differ from "
                                 f"the problem's {now}")
        self.field.load_state_dict(state["field"])
        self.step, self.recoveries = state["step"], state["recoveries"]
        self.lr_scale, self.train_seconds = state["lr_scale"], state["train_seconds"]
        self.history = History(list(state["history"]), list(state["events"]))
        self._shown_rel_l2 = None
        saved = {name: w for name, w in state.get("weights", {}).items() if name in computed}  # a term not yet
        self.weights = {name: float(saved.get(name, w)) for name, w in self.weights.items()}  # computed: the config's
        if self.adaptive is not None and state.get("adaptive") is not None:
            self.adaptive.load_state_dict(state["adaptive"])
        index, stage, _ = self._stage_at(self.step)
        if state["optimizer"] is not None and self.step < self.total_steps and state["stage"] == index:
            self.optimizer = self._new_optimizer(stage)
            self.optimizer.load_state_dict(state["optimizer"])
        self._good = None
