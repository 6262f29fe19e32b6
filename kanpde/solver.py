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
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from kanpde import checks, discover, distributed, plots
from kanpde.adaptive import build_adaptive
from kanpde.autodiff import autograd_jet
from kanpde.config import Config, ConfigError, ModelConfig, ProblemConfig, config_from_dict, load_config
from kanpde.data import read_observations
from kanpde.field import Field
from kanpde.geometry import Box, Sampler, domain_from_spec, evaluation_grid
from kanpde.identify import METHOD as IDENTIFY_METHOD
from kanpde.identify import identified
from kanpde.loss import condition_error, residuals
from kanpde.nets import KAN, MLP, SIREN, FourierMLP, JetModule
from kanpde.problem import Problem
from kanpde.results import RunDirectory, read_checkpoint_file, read_summary
from kanpde.train import Trainer
from kanpde.version import __version__

BUILTIN_PROBLEMS = Path(__file__).parent / "problems"
MAX_PARAMETERS = 10**8
MAX_EVALUATION_POINTS = 2 * 10**6  # 1414² in 2-D: finer grids evaluate slower than they inform
IDENTIFY_POINTS = 20000  # collocation points for the identified parameters' standard errors


# -- a user's problem code ----------------------------------------------------------------
class ProblemError(ValueError):
    """An error raised by a user's problem code, as one line ``file:line: Type: message``."""


_PACKAGE = Path(__file__).resolve().parent
_LIBRARIES = tuple(str(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}
                   if len(Path(p).resolve().parts) > 1)


def _user_frame(error: BaseException) -> str | None:
    """``file:line`` of the innermost traceback frame in a user's file (not kanpde, torch or the stdlib)."""
    if isinstance(error, SyntaxError) and error.filename and not error.filename.startswith("<"):
        return f"{error.filename}:{error.lineno}"
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename)
        if frame.filename.startswith("<") or not path.is_file():
            continue
        resolved = str(path.resolve())
        if resolved.startswith(str(_PACKAGE)) or resolved.startswith(_LIBRARIES):
            continue
        return f"{frame.filename}:{frame.lineno}"
    return None


@contextmanager
def user_code(what: str = "") -> Iterator[None]:
    """Errors raised in a user's problem file become :class:`ProblemError` (one line, exit status 2, the
    original traceback chained for ``--debug``); kanpde's own errors pass through unchanged."""
    try:
        yield
    except (ProblemError, ConfigError, KeyboardInterrupt):
        raise
    except Exception as error:
        where = _user_frame(error)
        if where is None:
            raise
        message = " ".join(str(error).split()) or "(no message)"
        raise ProblemError(f"{where}: {type(error).__name__}: {message}{what}") from error


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
        try:
            with user_code(" (while importing the problem file)"):
                spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[spec.name]
            raise
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
    cls = problem_class(config.name)
    with user_code():
        return cls(domain=domain, **config.params)


def add_data(config: Config, problem: Problem) -> None:
    """Read the config's ``data`` files (relative to the current directory) into the problem's observations."""
    for entry in config.data:
        problem.add_observations(read_observations(entry.file, problem.coords, problem.fields, entry.field,
                                                   entry.noise, entry.weight, entry.name))


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
        needed = problem.derivative_order
        if needed > config.order:  # the spline's (k+1)-th derivative vanishes between knots
            raise ValueError(f"model.order: {problem.name} reads derivatives of order {needed}, which splines of "
                             f"order {config.order} cannot represent (zero between knots); set model.order to "
                             f"at least {needed} ({needed + 1} for a continuous {_ordinal(needed)} derivative)")
        return KAN(width, grid=config.grid, order=config.order, grid_range=tuple(config.grid_range),
                   grid_eps=config.grid_eps, grid_monitor=config.grid_monitor)
    if config.type == "mlp":
        return MLP(width, activation=config.activation)
    if config.type == "siren":
        return SIREN(width, omega0=config.omega0)
    return FourierMLP(width, sigma=config.sigma, features=config.features, activation=config.activation)


def _ordinal(n: int) -> str:
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n if n < 20 else n % 10, 'th')}"


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
    return Field(net, problem, config.train.derivatives, config.train.compile).to(device=device, dtype=dtype)


def build_sampler(config: Config, problem: Problem, dtype: torch.dtype, device: torch.device) -> Sampler:
    """The collocation points of ``config.points`` (boundary and initial points only where the box has them)."""
    points = config.points
    seed = config.train.seed if points.seed is None else points.seed
    return Sampler(problem.box, points.interior, points.boundary if problem.box.space_dim else 0,
                   points.initial if problem.box.has_time else 0, method=points.sampler,
                   seed=seed, resample_every=points.resample_every, dtype=dtype, device=device)


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

    d <= 2: a tensor grid (``resolution`` points per axis) or the reference solution's grid. d >= 3: a
    grid would put most of its points on faces (92 % in 5-D at 101 per axis) and weigh them far beyond
    their volume, so the metrics use ``resolution²`` scrambled Sobol points in the box; the solution file
    and plot then show the 2-D slice through the centre (``output``). ``described`` says which, in the
    summary's ``evaluated_on``. On a domain other than a box the points are those inside it (``inside``
    marks them among the grid's), or the reference's scattered points."""

    names: tuple[str, ...]
    axes: list[np.ndarray] | None
    points: torch.Tensor
    reference: torch.Tensor | None  # [P] or [P, outputs]
    reference_grad: torch.Tensor | None  # [P, D] (scalar exact solutions)
    described: str = ""
    output: Evaluation | None = None  # the grid written to solution.h5 when the metrics use other points
    inside: np.ndarray | None = None  # non-box domains: which of the grid's points are in the domain

    @classmethod
    def build(cls, problem: Problem, resolution, dtype, device) -> Evaluation:
        with problem.true_values():  # against the true solution, also when a parameter is unknown
            return cls._build(problem, resolution, dtype, device)

    @classmethod
    def _build(cls, problem: Problem, resolution, dtype, device) -> Evaluation:
        grid = problem.reference()
        if grid is not None and isinstance(grid[0], np.ndarray) and grid[0].ndim == 2:
            points, reference = _scattered(problem, *grid, dtype, device)
            return cls(problem.coords, None, points, reference, None,
                       f"the reference solution's {len(points)} scattered points")
        if grid is not None:
            axes, values = grid
            mesh = np.meshgrid(*axes, indexing="ij")
            points = torch.tensor(np.stack([m.ravel() for m in mesh], axis=1), dtype=dtype, device=device)
            reference = torch.as_tensor(np.asarray(values), dtype=dtype, device=device).reshape(points.shape[0], -1)
            sizes = "×".join(str(len(a)) for a in axes)
            return cls(problem.coords, [np.asarray(a) for a in axes], points, reference.squeeze(-1), None,
                       f"the reference solution's grid, {sizes} points")
        sizes = [resolution] * problem.box.dim if isinstance(resolution, int) else list(resolution)
        if problem.box.dim >= 3:
            return cls._interior(problem, sizes, dtype, device)
        if math.prod(sizes) > MAX_EVALUATION_POINTS:
            raise ValueError(f"evaluate.resolution: {resolution} gives {math.prod(sizes):.1e} points on the "
                             f"{problem.box.dim}-D box; at most {MAX_EVALUATION_POINTS:.0e}")
        axes, points = evaluation_grid(problem.box, resolution, dtype=dtype, device=device)
        return cls._at(problem, axes, points, f"a {'×'.join(map(str, sizes))} grid with both ends of every axis")

    @classmethod
    def _at(cls, problem: Problem, axes, points: torch.Tensor, described: str) -> Evaluation:
        inside = None if isinstance(problem.domain, Box) else np.asarray(problem.domain.contains(points.cpu()))
        if inside is not None:
            points = points[torch.as_tensor(inside, device=points.device)]
            described += f", the {len(points)} points in the domain"
        exact = problem.exact(points)
        gradient = None
        if exact is not None and problem.outputs == 1:
            gradient = autograd_jet(lambda p: problem.exact(p).reshape(p.shape[0], 1), points, "none").grad[:, 0]
            gradient = gradient.detach()
        reference = None if exact is None else exact.detach()
        return cls(problem.coords, axes, points, reference, gradient, described, inside=inside)

    def on_grid(self, values: np.ndarray) -> np.ndarray:
        """Values at the evaluation points laid out on the grid (NaN outside the domain)."""
        if self.inside is not None:
            full = np.full((len(self.inside), *values.shape[1:]), np.nan)
            full[self.inside] = values
            values = full
        return values.reshape([len(axis) for axis in self.axes] + list(values.shape[1:]))

    @classmethod
    def _interior(cls, problem: Problem, sizes: list[int], dtype, device) -> Evaluation:
        """d >= 3: metrics on scrambled Sobol points (seed 0), output on the centre slice of the first two axes."""
        from scipy.stats import qmc

        box, count = problem.box, sizes[0] * sizes[1]
        if count > MAX_EVALUATION_POINTS:
            raise ValueError(f"evaluate.resolution: {sizes[0]}×{sizes[1]} gives {count:.1e} points; "
                             f"at most {MAX_EVALUATION_POINTS:.0e}")
        with warnings.catch_warnings():  # a count that is not a power of 2 is fine for an error estimate
            warnings.simplefilter("ignore", UserWarning)
            unit = qmc.Sobol(box.dim, scramble=True, seed=0).random(count)
        lo, hi = np.asarray(box.lo), np.asarray(box.hi)
        points = torch.tensor(lo + unit * (hi - lo), dtype=dtype, device=device)
        axes = [np.linspace(lo[a], hi[a], sizes[a]) if a < 2 else np.array([(lo[a] + hi[a]) / 2])
                for a in range(box.dim)]
        mesh = np.meshgrid(*axes, indexing="ij")
        grid = torch.tensor(np.stack([m.ravel() for m in mesh], axis=1), dtype=dtype, device=device)
        names = problem.coords
        output = cls._at(problem, axes, grid, f"the {names[0]}-{names[1]} slice through the centre")
        described = (f"{count} scrambled Sobol points in the {box.dim}-D box (solution.h5 and the plot: "
                     f"the {names[0]}-{names[1]} slice through the centre)")
        return replace(cls._at(problem, None, points, described), output=output)

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
        if error.ndim == 2:  # a system: rel_l2 is over all fields, rel_l2_<field> per field
            for index, name in enumerate(field.problem.fields):
                own = self.reference[:, index]
                result[f"rel_l2_{name}"] = float(error[:, index].norm() / own.norm().clamp_min(1e-300))
        if full:
            result["max_abs_err"] = float(error.abs().max())
            result["l2_squared"] = float(error.square().mean())  # mean of (u − u*)² on the grid
            if error.ndim == 2:
                for index, name in enumerate(field.problem.fields):
                    result[f"max_abs_err_{name}"] = float(error[:, index].abs().max())
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
    with distributed.process_group(torch_device) as world, tf32(
            torch_device.type == "cuda" and config.train.dtype == "float32" and config.train.tf32):
        return _solve(config, problem, out, distributed.local_device(torch_device, world), world,
                      quiet=quiet, force=force, resume=resume)


@contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """``train.tf32``: TensorFloat-32 matrix products and convolutions on CUDA while training (float32 only:
    float64 is never rounded), restored afterwards."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    if enabled:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def _solve(config: Config, problem: Problem | None, out, torch_device: torch.device, world: distributed.World, *,
           quiet: bool, force: bool, resume: bool) -> dict:
    dtype = getattr(torch, config.train.dtype)
    problem = problem if problem is not None else build_problem(config.problem)
    add_data(config, problem)
    main = world.is_main  # rank 0 evaluates, shows progress and writes
    warnings: list[str] = []  # said once everything is checked, so that an error comes alone
    checks.check_config(config, problem, warnings.append)
    checks.check_size(config, problem, torch_device)
    field = build_field(config, problem, torch_device)
    sampler = build_sampler(config, problem, dtype, torch_device)
    with user_code():
        evaluation = distributed.on_main(
            lambda: Evaluation.build(problem, config.evaluate.resolution, dtype, torch_device), world)
    adaptive = build_adaptive(config.points.adaptive, field, config.points.interior, sampler.seed, world)
    with user_code():  # the trainer evaluates the residual once for the loss terms' names
        trainer = Trainer(field, sampler, config.train, evaluate=(lambda: evaluation.metrics(field)) if main else None,
                          evaluate_every=config.evaluate.every, checkpoint_every=config.output.checkpoint_every,
                          progress=main and not quiet, world=world, adaptive=adaptive)
    path = Path(out or config.output.dir or default_out(config))
    if resume:  # the checkpoint is read and checked against the config before anything is written
        state = distributed.broadcast_object(distributed.on_main(lambda: _resume_state(path, config), world), world)
        if state is None and main:  # said even with --quiet: the user asked for something else
            print(f"kanpde: no checkpoint in {path}: starting from the beginning", file=sys.stderr)
        elif state is not None:
            _load_state(trainer, state, path)
    with user_code():  # a user's residual or condition of the wrong shape, or failing, stops here
        checks.check_terms(field, trainer.points(min(trainer.step, trainer.total_steps - 1)), residuals,
                           condition_error)
    # everything is checked: only now touch the disk
    run = distributed.on_main(lambda: _open_run(config, path, force, resume), world)
    for message in warnings if main else ():
        checks.warn(message)

    def checkpoint(trainer: Trainer) -> None:
        run.write_checkpoint({"trainer": trainer.state_dict(), "kanpde": __version__})
        run.write_history(trainer.history.rows)

    trainer.on_checkpoint = checkpoint if main else None
    distributed.broadcast_state(field, world)  # one starting point for all ranks
    discovering = config.symbolic is not None and config.symbolic.discover
    if discovering and resume:
        raise ValueError("symbolic.discover: --resume is not supported (pruning and snapping run once, at the end)")
    if discovering:
        discover.start(trainer, config.symbolic)
    try:
        with user_code(f" (at step {trainer.step + 1})"):
            trainer.run()
            if discovering:
                discover.finish(trainer, config.symbolic)
    finally:  # whatever happened, the run directory describes the last state reached
        summary = _finish(run, config, field, evaluation, trainer, torch_device, world) if main else None
    return distributed.broadcast_object(summary, world)


def _resume_state(path: Path, config: Config) -> dict | None:
    """The checkpoint to resume from (None if there is none), refused with one line when it is damaged or was
    written for another problem or network."""
    if not (path / "checkpoint.pt").exists():
        return None
    saved = path / "config.yaml"
    if saved.exists():
        try:
            before = load_config(saved)
        except ConfigError as error:
            raise ValueError(f"--resume: the run's {saved} cannot be read: {error}") from None
        if before.problem != config.problem:
            raise ValueError(f"--resume: {path} holds a run of problem {before.problem.name} "
                             f"{dict(before.problem.params)}, not {config.problem.name} {dict(config.problem.params)}; "
                             "use another --out (or --force to replace it)")
        changed = [f"model.{key}: {getattr(before.model, key)!r} there, {getattr(config.model, key)!r} here"
                   for key in before.model.__dataclass_fields__
                   if getattr(before.model, key) != getattr(config.model, key)]
        if changed:
            raise ValueError(f"--resume: the checkpoint in {path} was trained with another network ({changed[0]}); "
                             "resume with its model settings, or use another --out")
    return read_checkpoint_file(path / "checkpoint.pt")


def _load_state(trainer: Trainer, state: dict, path: Path) -> None:
    try:
        trainer.load_state_dict(state["trainer"])
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as error:
        reason = " ".join(str(error).split())[:160]
        raise ValueError(f"--resume: the checkpoint in {path} does not fit this config ({reason})") from None


def _open_run(config: Config, path: Path, force: bool, resume: bool) -> RunDirectory:
    run = RunDirectory(path, force=force, resume=resume)
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
        **metrics, "evaluated_on": evaluation.described,
        "device": str(device), "dtype": config.train.dtype, "seed": config.train.seed,
        "derivatives": config.train.derivatives, "recoveries": trainer.recoveries,
        "events": trainer.history.events, "kanpde": __version__, "torch": torch.__version__,
        "python": platform.python_version(), "threads": torch.get_num_threads(),
        "completed": trainer.step >= trainer.total_steps, "world_size": world.size,
        "fields": list(problem.fields), "loss_terms": list(trainer.weights),
    }
    if problem.unknowns:
        points = trainer.points(max(trainer.step - 1, 0)).interior
        summary["identified"] = identified(field, points[:IDENTIFY_POINTS])
        summary["identified_method"] = IDENTIFY_METHOD
    run.write_history(trainer.history.rows)
    run.write_checkpoint({"trainer": trainer.state_dict(), "kanpde": __version__})
    evaluation = evaluation.output or evaluation  # the grid the solution file and plot show
    value, _ = evaluation.predict(field)
    prediction = value.cpu().numpy()
    reference = None if evaluation.reference is None else evaluation.reference.cpu().numpy().reshape(prediction.shape)
    attrs = {"problem": problem.name, "model": config.model.type, "rel_l2": metrics["rel_l2"]}
    if evaluation.axes is None:  # scattered reference points: one coordinate array per axis
        points = evaluation.points.cpu().numpy()
        run.write_solution(evaluation.names, list(points.T), prediction, reference, {**attrs, "layout": "scattered"},
                           fields=problem.fields)
    else:
        prediction = evaluation.on_grid(prediction)
        reference = None if reference is None else evaluation.on_grid(reference)
        run.write_solution(evaluation.names, evaluation.axes, prediction, reference, attrs, fields=problem.fields)
    if config.output.plots:
        model = f"{config.model.type} {list(config.model.width)}"
        if problem.outputs == 1 and evaluation.axes is None:
            plots.plot_scattered(run.path / "plots" / "solution.png", evaluation.names,
                                 evaluation.points.cpu().numpy(), prediction, reference,
                                 f"{problem.name}, {model}: rel. L2 {metrics['rel_l2']:.2e}",
                                 inside=lambda x: np.asarray(problem.domain.contains(x)))
        elif problem.outputs == 1:
            plots.plot_solution(run.path / "plots" / "solution.png", evaluation.names, evaluation.axes,
                                prediction, reference, f"{problem.name}, {model}: rel. L2 {metrics['rel_l2']:.2e}")
        else:
            for index, name in enumerate(problem.fields):
                error = metrics.get(f"rel_l2_{name}", math.nan)
                plots.plot_solution(run.path / "plots" / f"solution_{name}.png", evaluation.names, evaluation.axes,
                                    prediction[..., index], None if reference is None else reference[..., index],
                                    f"{problem.name} {name}, {model}: rel. L2 {error:.2e}")
        starts = [sum(stage.steps for stage in config.train.stages[:i]) for i in range(1, len(config.train.stages))]
        plots.plot_history(run.path / "plots" / "loss.png", trainer.history.rows, list(trainer.weights),
                           trainer.history.events, starts)
        if isinstance(net, KAN):
            plots.plot_kan_edges(run.path / "plots" / "kan_edges.png", net)
    run.write_summary(summary)  # last: its presence means the run directory is complete
    if summary["completed"]:
        run.finish()  # --force: only now delete the old run's files
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
