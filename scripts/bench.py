#!/usr/bin/env python
"""Speed of one PINN training step, as specified in BENCHMARKS.md, section "Speed".

One step = the model with the derivatives the residual needs (the 2-D Laplacian), the
loss mean((Δu − f)²) for a fixed f, backward, and an Adam step. Contenders:

    kanpde-jet        kanpde.KAN, ``model.jet(x, "trace").laplacian`` (closed-form jets)
    kanpde-autograd   the same model, ``kanpde.autograd_jet(model, x, "trace").laplacian``
    pykan             pykan 0.2.8 ``KAN(width, grid, k=3)`` in ``speed()`` mode, Laplacian by
                      nested ``torch.autograd.functional.jacobian`` as in its PDE tutorial
    mlp-autograd      torch MLP [2,128,128,128,1] tanh, Laplacian by nested ``torch.autograd.grad``
    mlp-jet           kanpde.MLP of the same width through jets

Group "fourth" (``--groups fourth``): a fourth-order residual step, loss mean((u_xxxx − f)²), KAN
[2,10,10,1] G=10 with splines of order 5, ``kanpde-jet-d4`` (Taylor-mode jets of the derivative set
{xxxx}, kanpde.taylor) against ``kanpde-autograd-d4`` (the same model, u_xxxx by four nested
``torch.autograd.grad``, via ``kanpde.autograd_jet``).

Groups "burgers-step" and "poisson-step": whole training steps of kanpde's trainer (MLP [2,20,20,20,1] and KAN
[2,10,10,1]) against DeepXDE's own step for the same MLP, float64 and float32; group "accuracy": time to a
relative L2 error of 1e-2 and 1e-3 (scripts/bench_pinn.py, which says exactly what is timed). DeepXDE is an
optional extra like pykan: without it those contenders are skipped with a message.

All contenders of a group live in one process with one thread count and are run
round-robin inside every repeat (the order rotates by one each repeat), after warm-up.
A sample is ``steps_per_sample`` consecutive steps (enough for ``--min-time`` seconds),
reported as seconds per step: median, min and max over the repeats.

Memory (``memory_kind``): on CPU the bytes of the distinct storages that autograd saves
for backward during one step (parameters excluded), captured with
``torch.autograd.graph.saved_tensors_hooks`` — deterministic, and the bulk of a training
step's peak memory; on CUDA ``torch.cuda.max_memory_allocated`` above the memory in use
before the step. (tracemalloc does not see torch's allocations, and the process max RSS
only ever grows, so neither can be attributed to one contender.)

Usage: python scripts/bench.py [--quick] [--device cpu|cuda] [--dtype float64|float32]
       [--threads N] [--repeats R] [--no-pykan] [--no-compile] [--groups ...] [--budget S] --json OUT.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import importlib.metadata
import io
import json
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

import kanpde

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_pinn  # noqa: E402  (the trainer/DeepXDE groups; a sibling script)

KAN_SHAPES: list[tuple[list[int], int]] = [
    ([2, 10, 1], 10),
    ([2, 10, 1], 20),
    ([2, 5, 5, 1], 5),
    ([2, 100, 1], 10),
    ([2, 10, 10, 10, 10, 1], 5),
]
MLP_WIDTH = [2, 128, 128, 128, 1]
KAN_CONTENDERS = ("kanpde-jet", "kanpde-autograd", "pykan")
MLP_CONTENDERS = ("mlp-autograd", "mlp-jet")
FOURTH_CONTENDERS = ("kanpde-jet-d4", "kanpde-autograd-d4")
FOURTH_SHAPE, FOURTH_GRID, FOURTH_ORDER = [2, 10, 10, 1], 10, 5
FOURTH_DERIVATIVES = ("xxxx",)  # the set {x, xx, xxx, xxxx} over the coordinates (x, y)
GRID_SWEEP = (5, 10, 20, 50, 100, 200)
SWEEP_SHAPE, SWEEP_GRID = [2, 10, 1], 10
PYKAN_VERSION = "0.2.8"

MEMORY_NOTES = {
    "saved_tensors": "bytes of the distinct storages saved for backward during one step (parameters excluded), "
                     "via torch.autograd.graph.saved_tensors_hooks",
    "cuda_peak": "torch.cuda.max_memory_allocated during one step minus the memory allocated before it",
}


# -- the workload ------------------------------------------------------------------------------------------------
def poisson_source(x: torch.Tensor) -> torch.Tensor:
    """f of the paper's Poisson problem (BENCHMARKS.md), any fixed f would do: shape [N]."""
    a, b = x[:, 0], x[:, 1]
    pi = math.pi
    return (-pi**2 * (1 + 4 * b**2) * torch.sin(pi * a) * torch.sin(pi * b**2)
            + 2 * pi * torch.sin(pi * a) * torch.cos(pi * b**2))


def interior_points(points: int, dtype: torch.dtype, device: torch.device, seed: int = 0) -> torch.Tensor:
    """``points`` points uniform in [-1, 1]², the same for every contender."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(points, 2, generator=generator, dtype=torch.float64) * 2 - 1).to(device=device, dtype=dtype)


def jet_laplacian(model, x):
    return model.jet(x, "trace").laplacian


def autograd_laplacian(model, x):
    return kanpde.autograd_jet(model, x, "trace").laplacian


def jet_fourth(model, x):
    return model.jet(x, kanpde.Derivatives.parse(FOURTH_DERIVATIVES, ("x", "y"))).d(0, 0, 0, 0)


def autograd_fourth(model, x):
    return kanpde.autograd_jet(model, x, kanpde.Derivatives.parse(FOURTH_DERIVATIVES, ("x", "y"))).d(0, 0, 0, 0)


def nested_grad_laplacian(model, x):
    """The MLP-PINN way (e.g. DeepXDE): ∇u by one autograd.grad, then ∂²u/∂x_a² by one more per input."""
    x = x.detach().requires_grad_(True)
    u = model(x)
    (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    lap = 0
    for a in range(x.shape[1]):
        (second,) = torch.autograd.grad(grad[:, a].sum(), x, create_graph=True)
        lap = lap + second[:, a]
    return lap


def pykan_batch_jacobian(func, x, create_graph=False):
    """Verbatim from pykan's tutorial "Example 6: Solving Partial Differential Equation (PDE)"."""
    # x in shape (Batch, Length)
    def _func_sum(x):
        return func(x).sum(dim=0)
    return torch.autograd.functional.jacobian(_func_sum, x, create_graph=create_graph).permute(1, 0, 2)


def pykan_laplacian(model, x):
    """The interior residual of the same tutorial's ``closure()``: a Jacobian of a Jacobian."""
    sol_D1_fun = lambda x: pykan_batch_jacobian(model, x, create_graph=True)[:, 0, :]  # noqa: E731
    sol_D2 = pykan_batch_jacobian(sol_D1_fun, x, create_graph=True)[:, :, :]
    return torch.sum(torch.diagonal(sol_D2, dim1=1, dim2=2), dim=1, keepdim=True)


LAPLACIANS: dict[str, Callable] = {
    "kanpde-jet": jet_laplacian,
    "kanpde-autograd": autograd_laplacian,
    "pykan": pykan_laplacian,
    "mlp-autograd": nested_grad_laplacian,
    "mlp-jet": jet_laplacian,
    "kanpde-jet-d4": jet_fourth,
    "kanpde-autograd-d4": autograd_fourth,
}


def import_pykan():
    """pykan's ``kan`` module, or the reason it cannot be used (the caller says so once)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import kan
    except Exception as error:  # pykan 0.2.8 needs sklearn, pandas, sympy, matplotlib, pyyaml at import
        return None, f"{type(error).__name__}: {error}"
    version = importlib.metadata.version("pykan")
    if version != PYKAN_VERSION:
        print(f"note: pykan {version} is installed, the protocol asks for {PYKAN_VERSION}", file=sys.stderr)
    return kan, None


def build_model(contender: str, shape: list[int], grid: int | None, dtype, device, kan_module=None):
    torch.manual_seed(0)
    if contender in ("kanpde-jet", "kanpde-autograd", *FOURTH_CONTENDERS):
        model = kanpde.KAN(shape, grid=grid, order=FOURTH_ORDER if contender in FOURTH_CONTENDERS else 3)
    elif contender == "mlp-jet":
        model = kanpde.MLP(shape, activation="tanh")
    elif contender == "mlp-autograd":
        layers: list[torch.nn.Module] = []
        for n_in, n_out in zip(shape[:-1], shape[1:]):
            layers += [torch.nn.Linear(n_in, n_out), torch.nn.Tanh()]
        model = torch.nn.Sequential(*layers[:-1])
    elif contender == "pykan":
        # pykan creates its tensors in the default dtype; it writes checkpoints to ./model and prints
        # unless auto_save is off, so build it in a scratch directory with its output swallowed
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        cwd = os.getcwd()
        try:
            with tempfile.TemporaryDirectory() as scratch, contextlib.redirect_stdout(io.StringIO()):
                os.chdir(scratch)
                model = kan_module.KAN(width=list(shape),  # pykan rewrites the list it is given
                                        grid=grid, k=3, seed=0, auto_save=False, device=str(device))
                model = model.speed()  # 0.2.8: symbolic branch off, no activation saving, no auto-save
        finally:
            os.chdir(cwd)
            torch.set_default_dtype(previous)
        return model  # already in ``dtype`` on ``device`` (pykan's ``to`` takes a device only)
    else:
        raise ValueError(contender)
    return model.to(device=device, dtype=dtype)


# -- timing ------------------------------------------------------------------------------------------------------
@dataclass
class Case:
    contender: str
    shape: list[int]
    grid: int | None
    points: int
    group: str
    model: torch.nn.Module | None = None
    step: Callable[[], None] | None = None
    steps_per_sample: int = 1
    samples: list[float] = field(default_factory=list)
    cpu_samples: list[float] = field(default_factory=list)
    memory: dict = field(default_factory=dict)
    parameters: int = 0
    problem: str | None = None  # the trainer/DeepXDE step groups
    setup_seconds: float | None = None  # the compiling first step of a compiled contender

    @property
    def label(self) -> str:
        grid = f" G={self.grid}" if self.grid is not None else ""
        return f"{self.contender} {shape_str(self.shape)}{grid} N={self.points}"


def shape_str(shape: list[int]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def make_step(model: torch.nn.Module, laplacian: Callable, x: torch.Tensor, f: torch.Tensor) -> Callable[[], None]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        lap = laplacian(model, x).reshape(-1)
        loss = torch.mean((lap - f) ** 2)
        loss.backward()
        optimizer.step()

    return step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable[[], None], count: int, device: torch.device) -> tuple[float, float]:
    """Wall-clock and process CPU seconds per step over ``count`` consecutive steps (the CPU time
    does not count the time other processes hold the cores, so it is steadier on a shared machine)."""
    synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(count):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / count, (time.process_time() - cpu_start) / count


def measure_memory(case: Case, device: torch.device) -> dict:
    """Memory of one (untimed) step: see the module docstring."""
    parameters = {p.untyped_storage().data_ptr() for p in case.model.parameters()}
    saved: dict[int, tuple[int, torch.Tensor]] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        pointer = storage.data_ptr()
        if pointer not in parameters and storage.nbytes() > saved.get(pointer, (0, None))[0]:
            saved[pointer] = (storage.nbytes(), tensor)  # keep it alive: its address cannot be reused
        return tensor

    gc.collect()
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        case.step()
    saved_bytes = sum(size for size, _ in saved.values())
    saved.clear()
    result = {"saved_tensor_bytes": saved_bytes}
    if device.type == "cuda":
        synchronize(device)
        result.update(memory_bytes=torch.cuda.max_memory_allocated(device) - before, memory_kind="cuda_peak")
    else:
        result.update(memory_bytes=saved_bytes, memory_kind="saved_tensors")
    return result


def run_group(cases: list[Case], args, device: torch.device, dtype: torch.dtype, kan_module, dde=None) -> None:
    """Build every case of a group, warm them up, then time them round-robin, ``args.repeats`` times."""
    inputs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for case in cases:
        if case.points not in inputs and case.problem is None:
            x = interior_points(case.points, dtype, device)
            inputs[case.points] = (x, poisson_source(x))
        if case.problem is not None:
            case.model, case.step = bench_pinn.step_case(case.contender, case.problem, dtype, device, dde)
            case.setup_seconds = getattr(case.step, "setup_seconds", None)
        else:
            case.model = build_model(case.contender, case.shape, case.grid, dtype, device, kan_module)
            case.step = make_step(case.model, LAPLACIANS[case.contender], *inputs[case.points])
        case.parameters = sum(p.numel() for p in case.model.parameters() if p.requires_grad)
    for case in cases:  # the first warm-up step measures the memory
        case.memory = measure_memory(case, device)
    for round_ in range(args.warmup):  # more warm-up, alternating as well; the last step sizes the samples
        for case in cases:
            seconds, _ = timed(case.step, 1, device)
            if round_ == args.warmup - 1:
                case.steps_per_sample = max(1, min(args.max_steps, math.ceil(args.min_time / seconds)))
    for repeat in range(args.repeats):
        shift = repeat % len(cases)
        for case in cases[shift:] + cases[:shift]:
            gc.collect()
            wall, cpu = timed(case.step, case.steps_per_sample, device)
            case.samples.append(wall)
            case.cpu_samples.append(cpu)
        print(f"  repeat {repeat + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    for case in cases:  # free the models and their optimizer state before the next group
        case.model = case.step = None


# -- the run -----------------------------------------------------------------------------------------------------
def plan(args, with_pykan: bool, with_deepxde: bool = False) -> dict[str, list[Case]]:
    points = args.points
    kan_contenders = [c for c in KAN_CONTENDERS if with_pykan or c != "pykan"]
    main = [Case(c, shape, grid, points, "main") for shape, grid in args.shapes for c in kan_contenders]
    main += [Case(c, MLP_WIDTH, None, points, "main") for c in MLP_CONTENDERS]
    sweep_points = (1000, 10_000) if args.quick else (1000, 10_000, 100_000)
    by_points = [Case(c, shape, grid, n, "points")
                 for n in sweep_points
                 for c, shape, grid in (("kanpde-jet", SWEEP_SHAPE, SWEEP_GRID), ("mlp-autograd", MLP_WIDTH, None))]
    by_grid = [Case("kanpde-jet", SWEEP_SHAPE, g, points, "grid") for g in GRID_SWEEP]
    fourth = [Case(c, FOURTH_SHAPE, FOURTH_GRID, points, "fourth") for c in FOURTH_CONTENDERS]
    groups = {"main": main, "points": by_points, "grid": by_grid, "fourth": fourth}
    for problem in ("burgers", "poisson"):
        interior = bench_pinn.kanpde_points(problem)["interior"]
        groups[f"{problem}-step"] = [
            Case(c, bench_pinn.KAN_WIDTH if c.startswith("kanpde-kan") else bench_pinn.MLP_WIDTH,
                 bench_pinn.KAN_GRID if c.startswith("kanpde-kan") else None, interior, f"{problem}-step",
                 problem=problem)
            for c in bench_pinn.STEP_CONTENDERS
            if (with_deepxde or not c.startswith("deepxde")) and not (args.no_compile and "compiled" in c)]
    return {name: cases for name, cases in groups.items() if name in args.groups}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def metadata(args, device: torch.device, dtype: torch.dtype, pykan_status: str | None) -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        pykan_version = importlib.metadata.version("pykan")
    except importlib.metadata.PackageNotFoundError:
        pykan_version = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": {
            "cpu_model": cpu_model(),
            "cores": os.cpu_count(),
            "usable_cores": usable,
            "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "platform": platform.platform(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        },
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "kanpde_version": kanpde.__version__,
        "pykan_version": pykan_version,
        "pykan_used": pykan_status is None,
        "pykan_skipped_reason": pykan_status,
        "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(),
        "tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "interop_threads": torch.get_num_interop_threads(),
        "quick": args.quick,
        "repeats": args.repeats,
        "warmup_steps": args.warmup,
        "min_sample_seconds": args.min_time,
        "optimizer": "torch.optim.Adam(lr=1e-3)",
        "loss": "mean((laplacian(u) - f)^2), f = the Poisson source of BENCHMARKS.md",
        "points_distribution": "uniform in [-1, 1]^2, torch.Generator seed 0",
        "memory_notes": MEMORY_NOTES,
    }


def to_row(case: Case, device: torch.device, dtype: torch.dtype) -> dict:
    samples = case.samples
    if case.contender.startswith("deepxde"):  # DeepXDE contenders fix their own precision
        dtype = torch.float32 if case.contender.endswith("f32") else torch.float64
    memory = case.memory
    return {
        "contender": case.contender,
        "group": case.group,
        "shape": case.shape,
        "grid": case.grid,
        "points": case.points,
        "dtype": str(dtype).replace("torch.", ""),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "repeats": len(samples),
        "steps_per_sample": case.steps_per_sample,
        "samples_s": samples,
        "cpu_median_s": statistics.median(case.cpu_samples),
        "cpu_min_s": min(case.cpu_samples),
        "cpu_samples_s": case.cpu_samples,
        "parameters": case.parameters,
        "memory_bytes": memory["memory_bytes"],
        "memory_kind": memory["memory_kind"],
        "memory_note": MEMORY_NOTES[memory["memory_kind"]],
        "memory_bytes_per_point": memory["memory_bytes"] / case.points,
        "saved_tensor_bytes": memory["saved_tensor_bytes"],
        "problem": case.problem,
        "setup_s": case.setup_seconds,  # train.compile: the first step, which compiles (not in the samples)
    }


def derive(rows: list[dict], quick: bool) -> dict:
    """Speed-ups (ratios of median step times, > 1: the jet path is faster) and the protocol's targets."""
    def median(contender, group, shape, grid, points=None, measure="median_s"):
        for row in rows:
            if (row["contender"], row["group"], row["shape"], row["grid"]) == (contender, group, shape, grid) and (
                    points is None or row["points"] == points):
                return row[measure]
        return None

    def ratio(numerator, denominator):
        return None if numerator is None or denominator is None else numerator / denominator

    keys = {f"{shape_str(shape)} G={grid}": (shape, grid) for shape, grid in KAN_SHAPES}
    jet = {key: median("kanpde-jet", "main", *sg) for key, sg in keys.items()}
    mlp = median("mlp-autograd", "main", MLP_WIDTH, None)
    derived = {
        "jet_vs_autograd": {key: ratio(median("kanpde-autograd", "main", *sg), jet[key]) for key, sg in keys.items()},
        "jet_vs_pykan": {key: ratio(median("pykan", "main", *sg), jet[key]) for key, sg in keys.items()},
        "jet_vs_mlp_autograd": {key: ratio(mlp, jet[key]) for key in keys},
        "mlp_jet_vs_mlp_autograd": ratio(mlp, median("mlp-jet", "main", MLP_WIDTH, None)),
        "grid_ratio_over_G5": {f"G={g}": ratio(median("kanpde-jet", "grid", SWEEP_SHAPE, g), median(
            "kanpde-jet", "grid", SWEEP_SHAPE, 5)) for g in GRID_SWEEP},
        "points_scaling": {c: {str(row["points"]): row["median_s"] for row in rows
                               if row["group"] == "points" and row["contender"] == c}
                           for c in ("kanpde-jet", "mlp-autograd")},
    }
    def cpu(contender, shape_grid):
        return median(contender, "main", *shape_grid, measure="cpu_median_s")

    for contender, name in (("kanpde-autograd", "jet_vs_autograd_cpu"), ("pykan", "jet_vs_pykan_cpu"),
                            ("mlp-autograd", "jet_vs_mlp_autograd_cpu")):  # the same from process CPU time
        derived[name] = {key: ratio(cpu(contender, (MLP_WIDTH, None) if contender == "mlp-autograd" else sg),
                                    cpu("kanpde-jet", sg)) for key, sg in keys.items()}
    base = f"{shape_str(SWEEP_SHAPE)} G={SWEEP_GRID}"

    def target(name, value, threshold, met):
        return {"target": name, "value": value, "threshold": threshold, "met": None if value is None else met(value)}

    grid = derived["grid_ratio_over_G5"]
    targets = [
        target(f"kanpde-jet >= 5x faster than kanpde-autograd at {base}", derived["jet_vs_autograd"][base], 5,
               lambda v: v >= 5),
        target("kanpde-jet step at G=100 <= 1.5x step at G=5 ([2,10,1])", grid["G=100"], 1.5, lambda v: v <= 1.5),
        target("kanpde-jet step at G=200 <= 1.5x step at G=5 ([2,10,1])", grid["G=200"], 1.5, lambda v: v <= 1.5),
        target(f"kanpde-jet >= 20x faster than pykan at {base}", derived["jet_vs_pykan"][base], 20,
               lambda v: v >= 20),
    ]
    targets += [target(f"kanpde-jet {key} faster than mlp-autograd", value, 1, lambda v: v > 1)
                for key, value in derived["jet_vs_mlp_autograd"].items()]
    fourth = ratio(median("kanpde-autograd-d4", "fourth", FOURTH_SHAPE, FOURTH_GRID),
                   median("kanpde-jet-d4", "fourth", FOURTH_SHAPE, FOURTH_GRID))
    derived["fourth_jet_vs_autograd"] = fourth
    if fourth is not None:  # the group ran
        targets.append(target(f"u_xxxx step: kanpde-jet-d4 >= 5x faster than kanpde-autograd-d4 at "
                              f"{shape_str(FOURTH_SHAPE)} G={FOURTH_GRID}", fourth, 5, lambda v: v >= 5))
    for problem in ("burgers", "poisson"):  # kanpde trainer step / DeepXDE step (< 1: kanpde is faster)
        group = f"{problem}-step"
        deepxde = median("deepxde-mlp-f64", group, bench_pinn.MLP_WIDTH, None)
        contenders = {"mlp": ("kanpde-mlp-trainer", bench_pinn.MLP_WIDTH, None),
                      "mlp_compiled": ("kanpde-mlp-compiled-trainer", bench_pinn.MLP_WIDTH, None),
                      "kan": ("kanpde-kan-trainer", bench_pinn.KAN_WIDTH, bench_pinn.KAN_GRID),
                      "kan_compiled": ("kanpde-kan-compiled-trainer", bench_pinn.KAN_WIDTH, bench_pinn.KAN_GRID)}
        for suffix, measure in (("", "median_s"), ("_cpu", "cpu_median_s")):
            reference = median("deepxde-mlp-f64", group, bench_pinn.MLP_WIDTH, None, measure=measure)
            derived[f"{problem}_step_over_deepxde_f64{suffix}"] = {
                name: ratio(median(contender, group, shape, grid, measure=measure), reference)
                for name, (contender, shape, grid) in contenders.items()}
        derived[f"{problem}_deepxde_f32_over_f64"] = ratio(median("deepxde-mlp-f32", group, bench_pinn.MLP_WIDTH,
                                                                 None), deepxde)
        if problem == "burgers" and deepxde is not None:
            values = derived["burgers_step_over_deepxde_f64"]
            targets += [
                target("burgers, float64: kanpde MLP [2,20,20,20,1] trainer step / DeepXDE step <= 1",
                       values["mlp"], 1, lambda v: v <= 1),
                target("burgers, float64: the same with train.compile (compilation not counted) <= 1",
                       values["mlp_compiled"], 1, lambda v: v <= 1),
                target("burgers, float64: kanpde KAN [2,10,10,1] trainer step / DeepXDE MLP step <= 1",
                       values["kan"], 1, lambda v: v <= 1),
                target("burgers, float64: the same with train.compile (compilation not counted) <= 1",
                       values["kan_compiled"], 1, lambda v: v <= 1)]
    derived["targets"] = targets
    derived["targets_note"] = ("--quick run: few points and repeats, not the protocol's figures" if quick else
                               "protocol run")
    return derived


def print_table(rows: list[dict], derived: dict, meta: dict, out=sys.stdout) -> None:
    titles = {"main": "Step time per contender", "points": "Step time vs number of points",
              "grid": f"Step time vs grid size, kanpde-jet {shape_str(SWEEP_SHAPE)}",
              "fourth": "u_xxxx residual step, KAN of order 5",
              "burgers-step": "Whole training step, Burgers (kanpde trainer vs DeepXDE)",
              "poisson-step": "Whole training step, Poisson (kanpde trainer vs DeepXDE)"}
    machine = meta["machine"]
    print(f"# {meta['date']}  {machine['cpu_model']}, {machine['usable_cores']} usable cores, "
          f"{meta['threads']} threads, torch {meta['torch_version']}, {meta['device']}, {meta['dtype']}", file=out)
    header = (f"{'contender':<28} {'shape':<17} {'G':>4} {'points':>7} {'median ms':>10} {'min ms':>9} "
              f"{'max ms':>9} {'n':>3} {'memory MB':>10} {'B/point':>8}")
    for group, title in titles.items():
        selected = [row for row in rows if row["group"] == group]
        if not selected:
            continue
        print(f"\n## {title}\n{header}", file=out)
        for row in selected:
            grid = "-" if row["grid"] is None else str(row["grid"])
            print(f"{row['contender']:<28} {shape_str(row['shape']):<17} {grid:>4} {row['points']:>7} "
                  f"{row['median_s'] * 1e3:>10.2f} {row['min_s'] * 1e3:>9.2f} {row['max_s'] * 1e3:>9.2f} "
                  f"{row['repeats']:>3} {row['memory_bytes'] / 2**20:>10.2f} {row['memory_bytes_per_point']:>8.0f}",
                  file=out)
    print("\n## Speed-ups (ratio of median step times)", file=out)
    for name in ("jet_vs_autograd", "jet_vs_pykan", "jet_vs_mlp_autograd", "jet_vs_autograd_cpu", "jet_vs_pykan_cpu",
                 "jet_vs_mlp_autograd_cpu"):
        values = ", ".join(f"{key}: {fmt(value)}" for key, value in derived[name].items())
        print(f"{name}: {values}", file=out)
    print(f"mlp_jet_vs_mlp_autograd: {fmt(derived['mlp_jet_vs_mlp_autograd'])}", file=out)
    print(f"fourth_jet_vs_autograd: {fmt(derived['fourth_jet_vs_autograd'])}", file=out)
    for problem in ("burgers", "poisson"):
        for suffix in ("", "_cpu"):
            values = derived.get(f"{problem}_step_over_deepxde_f64{suffix}", {})
            if any(v is not None for v in values.values()):
                print(f"{problem}_step_over_deepxde_f64{suffix}: "
                      + ", ".join(f"{k}: {fmt(v)}" for k, v in values.items()), file=out)
    print("grid_ratio_over_G5: " + ", ".join(f"{k}: {fmt(v)}" for k, v in derived["grid_ratio_over_G5"].items()),
          file=out)
    print(f"\n## Targets ({derived['targets_note']})", file=out)
    for item in derived["targets"]:
        verdict = {True: "MET", False: "NOT MET", None: "n/a"}[item["met"]]
        print(f"{verdict:<8} {item['target']}: {fmt(item['value'])}", file=out)
    print(f"memory: {meta['memory_notes'][rows[0]['memory_kind']]}" if rows else "", file=out)
    if rows and rows[0]["memory_kind"] == "saved_tensors" and any(r["problem"] for r in rows):
        print("(trainer and DeepXDE steps: the saved tensors of the whole step, its condition terms included)",
              file=out)


def fmt(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def parse_shapes(parser, text: str) -> list[tuple[list[int], int]]:
    """'2,10,1:10;2,5,5,1:5' -> [([2, 10, 1], 10), ([2, 5, 5, 1], 5)]."""
    shapes = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        try:
            width, grid = item.split(":")
            shape, grid = [int(size) for size in width.split(",")], int(grid)
        except ValueError:
            parser.error(f"--shapes: expected 'w0,w1,...:G' items separated by ';', got {item!r}")
        if len(shape) < 2 or min(shape) < 1 or grid < 1:
            parser.error(f"--shapes: sizes and grid must be positive, with at least two sizes, got {item!r}")
        shapes.append((shape, grid))
    if not shapes:
        parser.error("--shapes: no shape given")
    return shapes


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="1000 points, points sweep 1e3/1e4, 2 repeats: a smoke run (< 60 s on 2 idle cores)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--tf32", action="store_true",
                        help="CUDA float32: TensorFloat-32 matrix products (torch.backends.cuda.matmul.allow_tf32)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's default)")
    parser.add_argument("--repeats", type=int, default=None, help="timed samples per contender (default 5, quick 2)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps per contender after the memory step (default 1)")
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds a sample lasts at least, by repeating steps (default 0.25, quick 0.01)")
    parser.add_argument("--max-steps", type=int, default=50, help="most steps in one sample")
    parser.add_argument("--points", type=int, default=None,
                        help="interior points of the main table and the grid sweep (default 10000, quick 1000)")
    parser.add_argument("--groups", default="main,points,grid",
                        help="comma-separated subset of main,points,grid,fourth,burgers-step,poisson-step,accuracy "
                             "(default: main,points,grid)")
    parser.add_argument("--budget", type=float, default=600.0,
                        help="accuracy group: seconds of training each contender gets at most (default 600)")
    parser.add_argument("--problems", default="burgers,poisson",
                        help="accuracy group: comma-separated problems (default burgers,poisson)")
    parser.add_argument("--no-pykan", action="store_true", help="leave out the pykan rows")
    parser.add_argument("--no-compile", action="store_true",
                        help="leave out the train.compile contender of the step groups (its compilation takes minutes)")
    parser.add_argument("--deepxde-f64", action="store_true",
                        help="accuracy group: also DeepXDE's recipe in float64 (its stock run is float32)")
    parser.add_argument("--shapes", default=None, metavar="W:G;W:G",
                        help="KAN shapes of the main table, e.g. '2,10,1:10;2,5,5,1:5' (default: the protocol's)")
    parser.add_argument("--json", required=True, metavar="OUT.json", help="where to write the results")
    args = parser.parse_args(argv)
    defaults = {"repeats": (2, 5), "warmup": (1, 1), "min_time": (0.01, 0.25), "points": (1000, 10_000)}
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    unknown = set(args.groups) - set(("main", "points", "grid", "fourth", "burgers-step", "poisson-step", "accuracy"))
    if unknown:
        parser.error(f"--groups: unknown group(s) {', '.join(sorted(unknown))}")
    if args.repeats < 1 or args.warmup < 1 or args.max_steps < 1 or args.min_time < 0 or args.points < 1:
        parser.error("--repeats, --warmup, --max-steps and --points must be at least 1, --min-time at least 0")
    args.shapes = KAN_SHAPES if args.shapes is None else parse_shapes(parser, args.shapes)
    args.problems = [p.strip() for p in args.problems.split(",") if p.strip()]
    if not args.problems or set(args.problems) - {"burgers", "poisson"} or args.budget <= 0:
        parser.error("--problems: a subset of burgers,poisson; --budget: positive seconds")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.set_default_dtype(dtype)
    out_path = os.path.abspath(args.json)

    kan_module, pykan_status = (None, "disabled with --no-pykan") if args.no_pykan else import_pykan()
    if kan_module is None and not args.no_pykan:
        print(f"pykan is not importable ({pykan_status}); skipping the pykan rows "
              f"(pip install pykan=={PYKAN_VERSION}, i.e. the 'bench' extra)", file=sys.stderr)
    meta = metadata(args, device, dtype, pykan_status)
    dde, deepxde_status = None, "not needed by the groups run"
    if {"burgers-step", "poisson-step", "accuracy"} & set(args.groups):
        dde, deepxde_status = bench_pinn.import_deepxde()
        if dde is None:
            print(f"DeepXDE is not importable ({deepxde_status}); skipping the DeepXDE contenders "
                  "(pip install deepxde, i.e. the 'bench' extra; pytorch backend)", file=sys.stderr)
    meta.update(deepxde_version=bench_pinn.deepxde_version(), deepxde_used=dde is not None,
                deepxde_skipped_reason=None if dde is not None else deepxde_status)

    rows: list[dict] = []
    for name, cases in plan(args, kan_module is not None, dde is not None).items():
        print(f"group {name}: {len(cases)} cases", file=sys.stderr, flush=True)
        run_group(cases, args, device, dtype, kan_module, dde)
        rows += [to_row(case, device, dtype) for case in cases]
    accuracy = []
    if "accuracy" in args.groups:
        print(f"group accuracy: {args.problems}, budget {args.budget:g} s each", file=sys.stderr, flush=True)
        accuracy = bench_pinn.run_accuracy(args.problems, args.budget, dtype, device, dde, args.deepxde_f64)

    derived = derive(rows, args.quick)
    derived.update(bench_pinn.derive_accuracy(accuracy))
    derived["targets"] += derived.pop("accuracy_targets")
    meta["machine"]["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    meta["max_rss_bytes_process"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    meta["wall_seconds"] = time.perf_counter() - started
    if device.type == "cuda":
        meta["max_memory_allocated_process"] = torch.cuda.max_memory_allocated(device)
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    with open(out_path, "w") as handle:
        json.dump({"metadata": meta, "rows": rows, "accuracy": accuracy, "derived": derived}, handle, indent=1)
    print_table(rows, derived, meta)
    bench_pinn.print_accuracy(accuracy)
    print(f"\nwritten {out_path} in {meta['wall_seconds']:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
