"""Solve a problem from a config: build problem, network, points and trainer; write the run.

``solve(config)`` is what ``python -m kanpde solve`` calls; ``load(run_dir)`` gives the
trained model back.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kanpde import distributed, plots
from kanpde.autodiff import autograd_jet
from kanpde.config import Config, ModelConfig, ProblemConfig, config_from_dict, load_config
from kanpde.field import Field
from kanpde.geometry import Box, Sampler, domain_from_spec, evaluation_grid
from kanpde.nets import KAN, MLP, SIREN, FourierMLP, JetModule
from kanpde.problem import Problem
from kanpde.results import RunDirectory, read_summary
from kanpde.train import Trainer
from kanpde.version import __version__

BUILTIN_PROBLEMS = Path(__file__).parent / "problems"
MAX_PARAMETERS = 10**8
MAX_EVALUATION_POINTS = 10**7


# -- building blocks ----------------------------------------------------------------------
def builtin_problems() -> dict[str, type[Problem]]:
    """The built-in problems by name (each module in kanpde/problems defines one or more)."""
    found = {}
    for module_path in sorted(BUILTIN_PROBLEMS.glob("*.py")):
        if module_path.stem.startswith("_"):
            continue
        module = importlib.import_module(f"kanpde.problems.{module_path.stem}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Problem) and value is not Problem \
                    and value.__module__ == module.__name__:
                found[value.problem_name] = value
    return found


def problem_class(name: str) -> type[Problem]:
    """A built-in problem by name, or a user's class as "path/to/file.py:ClassName"."""
    if ":" in name:
        file, _, class_name = name.rpartition(":")
        path = Path(file)
        if not path.is_file():
            raise ValueError(f"problem.name: file not found: {file}")
        spec = importlib.util.spec_from_file_location(f"kanpde_user_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        cls = getattr(module, class_name, None)
        if not (isinstance(cls, type) and issubclass(cls, Problem)):
            raise ValueError(f"problem.name: {file} has no Problem subclass named {class_name!r}")
        return cls
    known = builtin_problems()
    if name not in known:
        raise ValueError(f"problem.name: unknown problem {name!r}; built-in problems: {', '.join(known)}")
    return known[name]


def build_problem(config: ProblemConfig) -> Problem:
    """The problem of ``config``, on ``config.domain`` if one is given (checked here: one-line errors)."""
    domain = None if config.domain is None else domain_from_spec(config.domain, "problem.domain")
    return problem_class(config.name)(domain=domain, **config.params)


def build_net(config: ModelConfig, problem: Problem) -> JetModule:
    """The network of ``config``, checked against the problem's input and output sizes."""
    width = list(config.width)
    if width[0] != problem.input_features:
        periodic = f", two for each periodic one ({', '.join(problem.periodic)})" if problem.periodic else ""
        raise ValueError(f"model.width: the first size must be the number of inputs of {problem.name} "
                         f"({problem.input_features}: one per coordinate {', '.join(problem.coords)}{periodic}), "
                         f"got {width[0]}")
    if width[-1] != problem.outputs:
        raise ValueError(f"model.width: the last size must be the number of outputs of {problem.name} "
                         f"({problem.outputs}), got {width[-1]}")
    count = _parameter_count(config, width)
    if count > MAX_PARAMETERS:
        raise ValueError(f"model: {config.type} {width} would have {count:.2e} parameters; "
                         f"at most {MAX_PARAMETERS:.0e}")
    if config.type == "kan":
        return KAN(width, grid=config.grid, order=config.order, grid_range=tuple(config.grid_range),
                   grid_eps=config.grid_eps)
    if config.type == "mlp":
        return MLP(width, activation=config.activation)
    if config.type == "siren":
        return SIREN(width, omega0=config.omega0)
    return FourierMLP(width, sigma=config.sigma, features=config.features, activation=config.activation)


def build_field(config: Config, problem: Problem, device: torch.device) -> Field:
    """The trial function: a freshly initialised network (seeded) for ``problem``, in the config's dtype."""
    dtype = getattr(torch, config.train.dtype)
    torch.manual_seed(config.train.seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # so that grids and weights are made in that precision
    try:
        net = build_net(config.model, problem)
    finally:
        torch.set_default_dtype(previous)
    return Field(net, problem, config.train.derivatives).to(device=device, dtype=dtype)


def build_sampler(config: Config, problem: Problem, dtype: torch.dtype, device: torch.device) -> Sampler:
    """The collocation points of ``config.points`` (boundary and initial points only where the box has them)."""
    points = config.points
    return Sampler(problem.box, points.interior, points.boundary if problem.box.space_dim else 0,
                   points.initial if problem.box.has_time else 0, method=points.sampler,
                   seed=config.train.seed, resample_every=points.resample_every, dtype=dtype, device=device)


def _parameter_count(config: ModelConfig, width: list[int]) -> int:
    """Parameters the network will have, computed before allocating it."""
    pairs = list(zip(width[:-1], width[1:]))
    if config.type == "kan":
        return sum(a * b * (config.grid + config.order + 2) for a, b in pairs)
    if config.type == "fourier_mlp":
        pairs[0] = (2 * config.features, pairs[0][1])
    return sum((a + 1) * b for a, b in pairs)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device: cuda was asked for but torch sees no CUDA device")
    return torch.device(device)


# -- evaluation ---------------------------------------------------------------------------
def _scattered(problem: Problem, points, values, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference points [P, D] and values [P] checked against the domain; NaN values are left out."""
    points, values = np.asarray(points, dtype=np.float64), np.asarray(values, dtype=np.float64)
    domain = problem.domain
    if points.ndim != 2 or points.shape[1] != domain.dim or values.shape[:1] != points.shape[:1]:
        raise ValueError(f"{problem.name}.reference: scattered points must be [P, {domain.dim}] with values [P], "
                         f"got {list(points.shape)} and {list(values.shape)}")
    outside = ~np.asarray(domain.contains(points, tol=1e-9 * domain.diameter))
    if outside.any():
        raise ValueError(f"{problem.name}.reference: {int(outside.sum())} of {len(points)} points lie outside the "
                         f"domain, e.g. {points[outside][0].tolist()}")
    finite = np.isfinite(values.reshape(len(values), -1)).all(1)
    return (torch.as_tensor(points[finite], dtype=dtype, device=device),
            torch.as_tensor(values[finite], dtype=dtype, device=device))


@dataclass
class Evaluation:
    """The evaluation points with the reference values, and the metrics of a field on them.

    On a box: a tensor grid (``axes``). On another domain: the grid over its bounding box, restricted
    to the points inside (``inside`` [prod(len(axes))] says which), or the reference's scattered
    points (``axes`` None)."""

    names: tuple[str, ...]
    axes: list[np.ndarray] | None
    points: torch.Tensor
    reference: torch.Tensor | None  # [P] or [P, outputs]
    reference_grad: torch.Tensor | None  # [P, D] (scalar exact solutions)
    inside: np.ndarray | None = None

    @classmethod
    def build(cls, problem: Problem, resolution, dtype, device) -> Evaluation:
        grid = problem.reference()
        if grid is not None and isinstance(grid[0], np.ndarray) and grid[0].ndim == 2:
            points, reference = _scattered(problem, *grid, dtype, device)
            return cls(problem.coords, None, points, reference, None)
        if grid is not None:
            axes, values = grid
            mesh = np.meshgrid(*axes, indexing="ij")
            points = torch.tensor(np.stack([m.ravel() for m in mesh], axis=1), dtype=dtype, device=device)
            reference = torch.as_tensor(np.asarray(values), dtype=dtype, device=device).reshape(points.shape[0], -1)
            return cls(problem.coords, [np.asarray(a) for a in axes], points, reference.squeeze(-1), None)
        sizes = [resolution] * problem.box.dim if isinstance(resolution, int) else list(resolution)
        if math.prod(sizes) > MAX_EVALUATION_POINTS:
            raise ValueError(f"evaluate.resolution: {resolution} gives {math.prod(sizes):.1e} points on the "
                             f"{problem.box.dim}-D box; at most {MAX_EVALUATION_POINTS:.0e}")
        axes, points = evaluation_grid(problem.box, resolution, dtype=dtype, device=device)
        inside = None if isinstance(problem.domain, Box) else np.asarray(problem.domain.contains(points.cpu()))
        if inside is not None:
            points = points[torch.as_tensor(inside, device=points.device)]
        exact = problem.exact(points)
        gradient = None
        if exact is not None and problem.outputs == 1:
            gradient = autograd_jet(lambda p: problem.exact(p).reshape(p.shape[0], 1), points, "none").grad[:, 0]
            gradient = gradient.detach()
        reference = None if exact is None else exact.detach()
        return cls(problem.coords, axes, points, reference, gradient, inside)

    def on_grid(self, values: np.ndarray) -> np.ndarray:
        """Values at the evaluation points laid out on the grid (NaN outside the domain)."""
        if self.inside is None:
            return values.reshape([len(axis) for axis in self.axes] + list(values.shape[1:]))
        full = np.full((len(self.inside), *values.shape[1:]), np.nan)
        full[self.inside] = values
        return full.reshape([len(axis) for axis in self.axes] + list(values.shape[1:]))

    def predict(self, field: Field, gradient: bool = False, chunk: int = 32768):
        values, grads = [], []
        for start in range(0, self.points.shape[0], chunk):
            x = self.points[start : start + chunk]
            if gradient:
                jet = field.jet(x, "none")
                values.append(jet.value.detach())
                grads.append(jet.grad[:, 0].detach())
            else:
                with torch.no_grad():
                    values.append(field(x))
        value = torch.cat(values)
        value = value[:, 0] if field.problem.outputs == 1 else value
        return value, (torch.cat(grads) if gradient else None)

    def metrics(self, field: Field, full: bool = False) -> dict[str, float]:
        if self.reference is None:
            return {"rel_l2": math.nan}
        with_gradient = full and self.reference_grad is not None
        value, grad = self.predict(field, gradient=with_gradient)
        error = value - self.reference
        result = {"rel_l2": float(error.norm() / self.reference.norm().clamp_min(1e-300))}
        if full:
            result["max_abs_err"] = float(error.abs().max())
            result["l2_squared"] = float(error.square().mean())  # mean of (u − u*)² on the grid
            if with_gradient:
                gradient_error = float((grad - self.reference_grad).square().sum(-1).mean())
                result["h1_squared"] = result["l2_squared"] + gradient_error  # + mean |∇u − ∇u*|²
        return result


# -- the whole run ------------------------------------------------------------------------
def default_out(config: Config) -> Path:
    problem = config.problem.name.rpartition(":")[2]
    return Path("runs") / f"{problem}-{config.model.type}-{time.strftime('%Y%m%d-%H%M%S')}"


def _as_config(config: Config | dict | str | os.PathLike, problem: Problem | None) -> Config:
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        data = dict(config)
        if problem is not None:
            data.setdefault("problem", {"name": problem.name})
        return config_from_dict(data)
    return load_config(config)


def solve(config: Config | dict | str | os.PathLike, *, problem: Problem | None = None,
          out: str | os.PathLike | None = None, device: str | None = None, quiet: bool = False,
          force: bool = False, resume: bool = False) -> dict:
    """Train the config's model on its problem and write the run directory; returns the summary.

    ``config`` may be a :class:`Config`, a dict in the YAML layout, or a YAML path/built-in
    name. ``problem`` (an instance) replaces the config's problem, for PDEs defined in code.
    Raises ``ValueError`` (naming the config key) for bad input before any work starts.

    Under torchrun (WORLD_SIZE > 1) the ranks train data-parallel on shards of the same global
    points (:mod:`kanpde.distributed`); only rank 0 writes the run directory and shows progress,
    evaluates against the reference, and its summary is returned on every rank (``world_size``
    says how many ranks trained).
    """
    config = _as_config(config, problem)
    torch_device = resolve_device(device or config.train.device)
    with distributed.process_group(torch_device) as world:
        return _solve(config, problem, out, distributed.local_device(torch_device, world), world,
                      quiet=quiet, force=force, resume=resume)


def _solve(config: Config, problem: Problem | None, out, torch_device: torch.device, world: distributed.World, *,
           quiet: bool, force: bool, resume: bool) -> dict:
    dtype = getattr(torch, config.train.dtype)
    problem = problem if problem is not None else build_problem(config.problem)
    field = build_field(config, problem, torch_device)
    sampler = build_sampler(config, problem, dtype, torch_device)
    main = world.is_main  # rank 0 evaluates, shows progress and writes
    evaluation = distributed.on_main(
        lambda: Evaluation.build(problem, config.evaluate.resolution, dtype, torch_device), world)
    trainer = Trainer(field, sampler, config.train, evaluate=(lambda: evaluation.metrics(field)) if main else None,
                      evaluate_every=config.evaluate.every, checkpoint_every=config.output.checkpoint_every,
                      progress=main and not quiet, world=world)
    # everything is checked: only now touch the disk
    run = distributed.on_main(lambda: _open_run(config, out, force, resume), world)

    def checkpoint(trainer: Trainer) -> None:
        run.write_checkpoint({"trainer": trainer.state_dict(), "kanpde": __version__})
        run.write_history(trainer.history.rows)

    trainer.on_checkpoint = checkpoint if main else None
    if resume:
        state = distributed.broadcast_object(distributed.on_main(lambda: run.read_checkpoint(), world), world)
        if state is None and main:  # said even with --quiet: the user asked for something else
            print(f"kanpde: no checkpoint in {run.path}: starting from the beginning", file=sys.stderr)
        elif state is not None:
            trainer.load_state_dict(state["trainer"])
    distributed.broadcast_state(field, world)  # one starting point for all ranks
    try:
        trainer.run()
    finally:  # whatever happened, the run directory describes the last state reached
        summary = _finish(run, config, field, evaluation, trainer, torch_device, world) if main else None
    return distributed.broadcast_object(summary, world)


def _open_run(config: Config, out, force: bool, resume: bool) -> RunDirectory:
    run = RunDirectory(out or config.output.dir or default_out(config), force=force, resume=resume)
    run.write_config(config)
    return run


def _finish(run: RunDirectory, config: Config, field: Field, evaluation: Evaluation, trainer: Trainer,
            device: torch.device, world: distributed.World) -> dict:
    problem, net = field.problem, field.net
    metrics = evaluation.metrics(field, full=True)
    last_loss = trainer.history.rows[-1]["loss"] if trainer.history.rows else math.nan
    summary = {
        "problem": problem.name, "model": config.model.type, "width": list(config.model.width),
        "grid": net.grid if isinstance(net, KAN) else None, "params": net.num_parameters(),
        "steps": trainer.step, "train_seconds": trainer.train_seconds,
        "seconds_per_step": trainer.train_seconds / max(trainer.step, 1), "final_loss": last_loss,
        **metrics, "device": str(device), "dtype": config.train.dtype, "seed": config.train.seed,
        "derivatives": config.train.derivatives, "recoveries": trainer.recoveries,
        "events": trainer.history.events, "kanpde": __version__, "torch": torch.__version__,
        "python": platform.python_version(), "threads": torch.get_num_threads(),
        "completed": trainer.step >= trainer.total_steps, "world_size": world.size,
    }
    run.write_history(trainer.history.rows)
    run.write_checkpoint({"trainer": trainer.state_dict(), "kanpde": __version__})
    value, _ = evaluation.predict(field)
    prediction = value.cpu().numpy()
    reference = None if evaluation.reference is None else evaluation.reference.cpu().numpy().reshape(prediction.shape)
    attrs = {"problem": problem.name, "model": config.model.type, "rel_l2": metrics["rel_l2"]}
    if evaluation.axes is None:  # scattered reference points: one coordinate array per axis
        points = evaluation.points.cpu().numpy()
        run.write_solution(evaluation.names, list(points.T), prediction, reference, {**attrs, "layout": "scattered"})
    else:
        prediction = evaluation.on_grid(prediction)
        reference = None if reference is None else evaluation.on_grid(reference)
        run.write_solution(evaluation.names, evaluation.axes, prediction, reference, attrs)
    if config.output.plots:
        title = f"{problem.name}, {config.model.type} {list(config.model.width)}: rel. L2 {metrics['rel_l2']:.2e}"
        if problem.outputs == 1 and evaluation.axes is None:
            plots.plot_scattered(run.path / "plots" / "solution.png", evaluation.names,
                                 evaluation.points.cpu().numpy(), prediction, reference, title,
                                 inside=lambda x: np.asarray(problem.domain.contains(x)))
        elif problem.outputs == 1:
            plots.plot_solution(run.path / "plots" / "solution.png", evaluation.names, evaluation.axes,
                                prediction, reference, title)
        plots.plot_history(run.path / "plots" / "loss.png", trainer.history.rows, problem.loss_terms())
        if isinstance(net, KAN):
            plots.plot_kan_edges(run.path / "plots" / "kan_edges.png", net)
    run.write_summary(summary)  # last: its presence means the run directory is complete
    return summary


# -- reading a run back -------------------------------------------------------------------
@dataclass
class LoadedRun:
    """A finished run: ``model(x)`` evaluates the trained solution at physical points."""

    model: Field
    problem: Problem
    config: Config
    summary: dict | None

    @property
    def net(self) -> JetModule:
        return self.model.net


def load(run_dir: str | os.PathLike, device: str = "cpu", problem: Problem | None = None) -> LoadedRun:
    """The trained model and problem of a run directory (pass ``problem`` for PDEs defined in code)."""
    run_dir = Path(run_dir)
    if not (run_dir / "checkpoint.pt").exists():
        raise FileNotFoundError(f"run_dir: no checkpoint.pt in {run_dir}")
    config = load_config(run_dir / "config.yaml")
    state = torch.load(run_dir / "checkpoint.pt", map_location=device, weights_only=False)
    problem = problem if problem is not None else build_problem(config.problem)
    field = build_field(config, problem, torch.device(device))
    field.load_state_dict(state["trainer"]["field"])
    summary = read_summary(run_dir) if (run_dir / "summary.json").exists() else None
    return LoadedRun(field, problem, config, summary)


__all__ = ["solve", "load", "LoadedRun", "build_problem", "build_net", "problem_class", "builtin_problems"]
