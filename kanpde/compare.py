"""Compare models on one problem: each model × seed trained by :func:`kanpde.solver.solve`.

Every run shares the problem, the training protocol and the collocation points (the points are
drawn with the base config's seed); only the network and its initialisation seed change. Results::

    OUT/<model>/seed<k>/   a run directory per model and seed (config, summary, solution, plots)
    OUT/table.md           model, width, parameters, rel. L2 mean ± std over seeds, time, s/step
    OUT/table.json         the same, with the per-seed values and the run directories
    OUT/comparison.png     |u − u_ref| of every model (first seed) on one logarithmic colour scale

Model variants: a name in :data:`DEFAULT_VARIANTS` (``kan``, ``mlp``, ``siren``, ``fourier_mlp``)
gives that network with the problem's input and output sizes; the base config's own model is
used for its own type. ``overrides_per_model`` maps a name to ``KEY=VALUE`` strings (as ``--set``)
or to a mapping of dotted keys to values, applied on top; a name that is not a model type
(``mlp_10x``, ``kan_g20``) is a free label whose overrides set ``model.type`` and the rest.
"""

from __future__ import annotations

import concurrent.futures
import copy
import datetime
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from kanpde.config import Config, apply_overrides, config_from_dict, config_to_dict, load_config
from kanpde.distributed import from_environment
from kanpde.results import write_text_atomic
from kanpde.solver import build_net, build_problem, solve
from kanpde.train import DivergenceError

__all__ = ["DEFAULT_VARIANTS", "MODEL_TYPES", "compare", "model_configs", "format_table", "plot_errors"]

MODEL_TYPES = ("kan", "mlp", "siren", "fourier_mlp")

DEFAULT_VARIANTS: dict[str, dict[str, Any]] = {
    "kan": {"model": {"type": "kan", "hidden": [10], "grid": 5}},
    "mlp": {"model": {"type": "mlp", "hidden": [128, 128, 128], "activation": "tanh"}, "adam_lr": 1e-3},
    "siren": {"model": {"type": "siren", "hidden": [64, 64, 64], "omega0": 30.0}, "adam_lr": 1e-4},
    "fourier_mlp": {"model": {"type": "fourier_mlp", "hidden": [128, 128, 128], "sigma": 1.0, "features": 64,
                              "activation": "tanh"}, "adam_lr": 1e-3},
}
"""Per model type: the model section (``hidden`` sizes between the problem's inputs and outputs) and
the learning rate of its Adam stages (``adam_lr``; absent: the base config's). The base config's own
model type keeps the base config's model and learning rates."""


# -- configs ------------------------------------------------------------------------------
def _override_strings(overrides: Sequence[str] | Mapping[str, Any] | None, label: str) -> list[str]:
    if overrides is None:
        return []
    if isinstance(overrides, str):
        return [overrides]
    if isinstance(overrides, Mapping):
        return [f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"
                for key, value in overrides.items()]
    if not all(isinstance(item, str) for item in overrides):
        raise ValueError(f"overrides_per_model.{label}: expected KEY=VALUE strings or a mapping, got {overrides!r}")
    return list(overrides)


def model_configs(config: Config, models: Sequence[str],
                  overrides_per_model: Mapping[str, Sequence[str] | Mapping[str, Any]] | None = None
                  ) -> dict[str, Config]:
    """The validated config of every model name (see the module docstring), before any seed is set."""
    overrides_per_model = dict(overrides_per_model or {})
    unknown = sorted(set(overrides_per_model) - set(models))
    if unknown:
        raise ValueError(f"overrides_per_model: {', '.join(unknown)} not among the models {', '.join(models)}")
    if not models:
        raise ValueError("models: at least one model is needed")
    if len(set(models)) != len(models):
        raise ValueError(f"models: a name is given twice: {', '.join(models)}")
    problem = build_problem(config.problem)
    base = config_to_dict(config)
    result = {}
    for label in models:
        data = copy.deepcopy(base)
        variant = DEFAULT_VARIANTS.get(label)
        if variant is None and label not in overrides_per_model:
            raise ValueError(f"models: unknown model {label!r}; model types: {', '.join(MODEL_TYPES)} "
                             "(other names need overrides that set model.type)")
        if variant is not None and config.model.type != label:
            model = dict(variant["model"])
            hidden = model.pop("hidden")
            model["width"] = [problem.input_features, *hidden, problem.outputs]
            data["model"] = model
            if "adam_lr" in variant:
                for stage in data["train"]["stages"]:
                    if stage["optimizer"] == "adam":
                        stage["lr"] = variant["adam_lr"]
        data = apply_overrides(data, _override_strings(overrides_per_model.get(label), label))
        if data.get("model", {}).get("type", "kan") != "kan":  # grids are KAN's: the schedule would be ignored
            data["train"].update(grid_schedule={}, grid_update_every=0, grid_update_until=0)
        try:
            result[label] = config_from_dict(data, source=f"{config.source} [{label}]")
        except ValueError as error:
            raise ValueError(f"model {label}: {error}") from None
    return result


# -- the comparison -----------------------------------------------------------------------
def _as_config(config: Config | Mapping | str | os.PathLike) -> Config:
    if isinstance(config, Config):
        return config
    if isinstance(config, Mapping):
        return config_from_dict(config)
    return load_config(config)


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null, paths strings, numpy scalars Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(finite) if finite else math.nan


def _std(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.stdev(finite) if len(finite) > 1 else (0.0 if finite else math.nan)


def _train(config: Config, run_dir: Path, device: str | None, quiet: bool) -> dict:
    """One model × seed run (also a worker process's job): its summary, with ``run_dir`` and ``diverged``."""
    diverged = None
    try:
        summary = solve(config, out=run_dir, device=device, quiet=quiet, force=True)
    except DivergenceError as error:  # the run directory still describes the last good state
        diverged = str(error)
        summary = json.loads((run_dir / "summary.json").read_text())
    return {**summary, "run_dir": str(run_dir), "diverged": diverged}


def _start_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _run_all(jobs: dict[tuple[str, int], tuple[Config, Path]], device: str | None, quiet: bool,
             workers: int) -> Iterator[tuple[tuple[str, int], dict]]:
    """(job key, summary) for every job as it finishes: in order in this process (``workers`` 1,
    each run with its own progress bar), or in ``workers`` spawned processes that share this
    process's torch threads, under one progress bar counting finished runs."""
    if workers == 1:
        for key, (config, run_dir) in jobs.items():
            yield key, _train(config, run_dir, device, quiet)
        return
    threads = max(1, torch.get_num_threads() // workers)
    pool = concurrent.futures.ProcessPoolExecutor(min(workers, len(jobs)), multiprocessing.get_context("spawn"),
                                                  initializer=_start_worker, initargs=(threads,))
    bar = tqdm(total=len(jobs), desc=f"compare ({workers} workers)", unit="run", disable=quiet, dynamic_ncols=True)
    try:
        futures = {pool.submit(_train, config, run_dir, device, True): key for key, (config, run_dir) in jobs.items()}
        for future in concurrent.futures.as_completed(futures):
            yield futures[future], future.result()
            bar.update(1)
    finally:
        bar.close()
        pool.shutdown(wait=True, cancel_futures=True)


def compare(config: Config | Mapping | str | os.PathLike, models: Sequence[str] = MODEL_TYPES, seeds: int = 3,
            out: str | os.PathLike | None = None,
            overrides_per_model: Mapping[str, Sequence[str] | Mapping[str, Any]] | None = None,
            quiet: bool = False, *, device: str | None = None, force: bool = False,
            plots: bool | None = None, workers: int = 1) -> dict:
    """Train every model of ``models`` with ``seeds`` initialisation seeds on the config's problem.

    ``config``: a :class:`Config`, a dict in the YAML layout, or a YAML path / built-in name.
    Model seed k is ``train.seed + k``; every run draws the same points, from ``points.seed`` (default:
    the base config's ``train.seed``). ``out`` defaults to ``runs/compare-<problem>-<time>``; ``force`` overwrites
    existing run directories there; ``device`` overrides ``train.device``; ``plots`` overrides
    ``output.plots`` of the runs. ``quiet`` turns the per-run progress bars off; one line per
    finished run is printed either way (to stderr). ``workers`` > 1 trains that many runs at a
    time in separate processes (each with its share of this process's torch threads), under
    one progress bar; the results are the same as one after the other.

    Returns the table as a dict: ``problem``, ``seeds``, ``rows`` (one dict per model, in order:
    ``model``, ``type``, ``width``, ``grid``, ``params``, ``rel_l2_mean``, ``rel_l2_std``,
    ``train_seconds_mean``, ``seconds_per_step``, ``steps``, ``device``, ``per_seed`` and
    ``run_dirs``), ``markdown`` and the paths ``table_md``, ``table_json``, ``figure``.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds: must be a positive integer, got {seeds!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers: must be a positive integer, got {workers!r}")
    if from_environment().parallel:  # every rank would write the same table
        raise ValueError("compare: start it without torchrun; it runs its jobs in parallel with workers (--workers)")
    base = _as_config(config)
    variants = model_configs(base, list(models), overrides_per_model)
    problem = build_problem(base.problem)
    for label, variant in variants.items():  # every network buildable before any training starts
        try:
            build_net(variant.model, problem)
        except ValueError as error:
            raise ValueError(f"model {label}: {error}") from None
    out = Path(out) if out is not None else Path("runs") / (
        f"compare-{base.problem.name.rpartition(':')[2]}-{time.strftime('%Y%m%d-%H%M%S')}")
    if not force:
        taken = [out / label / f"seed{k}" for label in variants for k in range(seeds)
                 if (out / label / f"seed{k}" / "config.yaml").exists()]
        if taken:
            raise FileExistsError(f"--out: {out} already holds runs ({taken[0]}, ...); use force to overwrite")
    out.mkdir(parents=True, exist_ok=True)
    points_seed = base.train.seed if base.points.seed is None else base.points.seed  # one set for every run
    started = time.perf_counter()
    jobs = {}
    for label, variant in variants.items():
        for k in range(seeds):
            sets = [f"train.seed={base.train.seed + k}", f"points.seed={points_seed}"]
            if plots is not None:
                sets.append(f"output.plots={'true' if plots else 'false'}")
            run_config = config_from_dict(apply_overrides(config_to_dict(variant), sets), source=variant.source)
            jobs[label, k] = (run_config, out / label / f"seed{k}")
    summaries = {}
    for (label, k), summary in _run_all(jobs, device, quiet, workers):
        summaries[label, k] = summary
        rel = math.nan if summary.get("rel_l2") is None else summary["rel_l2"]
        tqdm.write(f"compare: {label} seed {k}: rel. L2 {rel:.3e}, {summary['steps']} steps in "
                   f"{summary['train_seconds']:.1f} s ({summary['params']} parameters)"
                   f"{' DIVERGED' if summary['diverged'] else ''} -> {summary['run_dir']}", file=sys.stderr)
    rows = [_row(label, variant, [summaries[label, k] for k in range(seeds)]) for label, variant in variants.items()]
    result = {
        "problem": base.problem.name, "config": base.source, "seeds": seeds,
        "model_seeds": [base.train.seed + k for k in range(seeds)],
        "points_seed": points_seed,
        "date": datetime.date.today().isoformat(), "wall_seconds": time.perf_counter() - started,
        "rows": rows,
    }
    result["markdown"] = format_table(result)
    figure = out / "comparison.png"
    try:
        plot_errors(figure, [(row["model"], row["run_dirs"][0], row["rel_l2"][0]) for row in rows],
                    title=f"{base.problem.name}: |u − u_ref|, first seed")
    except (OSError, KeyError, ValueError) as error:  # a figure is not worth failing a finished comparison
        print(f"compare: no figure: {error}", file=sys.stderr)
        figure = None
    result.update(table_md=str(out / "table.md"), table_json=str(out / "table.json"),
                  figure=None if figure is None else str(figure))
    write_text_atomic(out / "table.md", result["markdown"])
    write_text_atomic(out / "table.json", json.dumps(_clean(result), indent=2) + "\n")
    return result


def _row(label: str, config: Config, runs: list[dict]) -> dict:
    rel = [math.nan if r.get("rel_l2") is None else float(r["rel_l2"]) for r in runs]
    seconds = [float(r["train_seconds"]) for r in runs]
    per_step = [float(r["seconds_per_step"]) for r in runs]
    return {
        "model": label, "type": config.model.type, "width": list(config.model.width),
        "grid": runs[0].get("grid"), "params": runs[0]["params"],
        "rel_l2_mean": _mean(rel), "rel_l2_std": _std(rel), "rel_l2": rel,
        "train_seconds_mean": _mean(seconds), "train_seconds": seconds,
        "seconds_per_step": _mean(per_step), "steps": runs[0]["steps"],
        "device": runs[0].get("device"), "dtype": runs[0].get("dtype"), "threads": runs[0].get("threads"),
        "seeds": [r.get("seed") for r in runs], "run_dirs": [r["run_dir"] for r in runs],
        "diverged": [r["diverged"] for r in runs if r["diverged"]],
        "per_seed": [{"seed": r.get("seed"), "rel_l2": x, "train_seconds": s, "steps": r["steps"],
                      "final_loss": r.get("final_loss"), "run_dir": r["run_dir"]}
                     for r, x, s in zip(runs, rel, seconds)],
    }


def _sci(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.2e}"


def format_table(result: Mapping) -> str:
    """The markdown table of a :func:`compare` result."""
    seeds = result["seeds"]
    lines = [f"# {result['problem']}: {seeds} seed{'s' if seeds > 1 else ''} per model "
             f"(model seeds {', '.join(map(str, result['model_seeds']))}; points seed {result['points_seed']})", "",
             "| model | network | params | rel. L2 (mean ± std) | train s (mean) | s/step | steps | device |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for row in result["rows"]:
        network = f"{row['type']} {row['width']}"
        if row["type"] == "kan" and row.get("grid") is not None:
            network += f" G={row['grid']}"
        error = _sci(row["rel_l2_mean"]) + (f" ± {_sci(row['rel_l2_std'])}" if seeds > 1 else "")
        if row["diverged"]:
            error += " (diverged)"
        lines.append(f"| {row['model']} | {network} | {row['params']} | {error} | {row['train_seconds_mean']:.1f} "
                     f"| {row['seconds_per_step']:.3g} | {row['steps']} | {row['device']} |")
    return "\n".join(lines) + "\n"


# -- the figure ---------------------------------------------------------------------------
def plot_errors(path: str | os.PathLike, runs: Sequence[tuple[str, str | os.PathLike, float]],
                title: str = "") -> None:
    """One panel of |prediction − reference| per (label, run directory, rel. L2), on a shared log scale
    (for a system the Euclidean norm of the fields' errors)."""
    import h5py
    from matplotlib.colors import LogNorm

    from kanpde.plots import plt, save

    panels = []
    for label, run_dir, rel in runs:
        with h5py.File(Path(run_dir) / "solution.h5", "r") as f:
            names = str(f.attrs["coordinates"]).split(",")
            axes = [f[name][()] for name in names]
            error = np.abs(f["error"][()])
            if len(str(f.attrs.get("fields", "u")).split(",")) > 1:  # a system: |error| over its fields
                error = np.sqrt(np.square(error).sum(-1))
        while error.ndim > 2:  # middle slice of extra axes
            error, axes, names = np.take(error, error.shape[-1] // 2, axis=-1), axes[:-1], names[:-1]
        panels.append((label, rel, names, axes, error))
    top = max(float(np.max(p[4])) for p in panels)
    top = top if top > 0 and math.isfinite(top) else 1.0
    norm = LogNorm(vmin=top * 1e-6, vmax=top)
    fig, axs = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 1.0, 3.6), squeeze=False)
    image = None
    for ax, (label, rel, names, axes, error) in zip(axs[0], panels):
        if len(axes) == 1:
            ax.semilogy(axes[0], np.maximum(error, top * 1e-6))
            ax.set_ylim(top * 1e-6, top * 2)
            ax.set_xlabel(names[0])
        else:
            image = ax.pcolormesh(axes[0], axes[1], np.maximum(error, top * 1e-6).T, shading="auto",
                                  cmap="magma", norm=norm)
            ax.set_xlabel(names[0])
            ax.set_ylabel(names[1])
        ax.set_title(f"{label}: rel. L2 {_sci(rel)}", fontsize=10)
    if image is not None:
        fig.colorbar(image, ax=list(axs[0]), shrink=0.9, label="|u − u_ref|")
    if title:
        fig.suptitle(title)
    save(fig, Path(path), bbox_inches="tight")
