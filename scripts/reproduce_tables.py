#!/usr/bin/env python
"""Reproduce the rows of the ICLR 2025 poster's tables (BENCHMARKS.md) with kanpde.

    python scripts/reproduce_tables.py --table allen_cahn|darcy --budget tiny|quick|full
                                       [--out DIR] [--seeds N] [--device auto|cpu|cuda] [--threads N]
                                       [--workers K] [--rows LABEL[,LABEL...]]

Each row of the poster's table is trained (by :func:`kanpde.compare.compare`: same problem, same
points, model seeds 0..N−1) and printed beside the published relative L2 error and time; --rows trains
only the rows with those labels (e.g. --rows kan_propagated; --help lists the labels). Writes
DIR/reproduced.md and DIR/reproduced.json besides compare's table.md, table.json, comparison.png
and the run directories (default DIR: runs/tables/<table>-<budget>).

Budgets (:data:`BUDGETS`; all optimisers are Adam unless a row says "(ours)"):

* ``full``  the protocol: the step counts we chose (the poster does not state its own), 3 seeds;
            "10× training" rows take 10× the steps of the plain MLP row. Hours to days on a CPU.
* ``quick`` a short version that finishes within about 15 minutes on an idle 2-core CPU with
            --workers 2 and its default 1 seed (--seeds 3: 3×): far fewer steps. Its numbers are
            indicative, not the protocol.
* ``tiny``  a few steps on a few points, seconds: a smoke test for the test suite.

Rows marked "(ours)" are not the poster's: L-BFGS after Adam, the grid extended, and (``kan_propagated``,
``kan_100_g10_symmetric``, ``kan_100_g10_quintic``) the solution's reflection symmetry built in
(``problem.params.symmetric``), Darcy's with quintic splines (``model.order: 5``),
Allen–Cahn's with the residual propagated in time as a loss term in its last stage
(``train.propagated_residual``).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from kanpde.compare import _clean, compare
from kanpde.config import load_config


@dataclass(frozen=True)
class Row:
    """A row of the poster's table: our label, its name there, the published error and seconds."""

    label: str
    name: str
    model: dict
    published: float | None = None
    published_seconds: float | None = None
    kind: str = "kan"  # which budget stages it gets: "kan", "kan_small", "mlp" (Adam), "kan_lbfgs",
    #                    "kan_propagated" (ours)
    factor: int = 1  # "10× training": this many times the steps of its kind
    note: str = ""
    extend_to: int | None = None  # KAN grid extension to this size when the last stage starts
    sets: tuple[str, ...] = ()  # further --set overrides of this row's config


SYMMETRIC = ("problem.params.symmetric=true",)
KAN_5 = {"type": "kan", "width": [2, 5, 5, 1], "grid": 5}


MLP = {"type": "mlp", "width": [2, 128, 128, 128, 1], "activation": "tanh"}

TABLES: dict[str, dict] = {
    "allen_cahn": {
        "config": "allen_cahn.yaml",
        "title": "Allen–Cahn (Dirichlet, d = 1e-3), rel. L2 against the converged Chebyshev reference",
        "rows": [
            Row("kan", "KAN [2,5,5,1] G=5", KAN_5, 3.4e-3, 2801),
            Row("mlp", "MLP [2,128,128,128,1]", MLP, 1.5e-1, 478, kind="mlp"),
            Row("mlp_10x", "MLP [2,128,128,128,1], 10× training", MLP, 3.9e-4, 4766, kind="mlp", factor=10),
            Row("kan_lbfgs", "KAN [2,5,5,1] G=5, Adam + L-BFGS (ours)", KAN_5, kind="kan_lbfgs",
                note="not a poster row: L-BFGS after the Adam stage"),
            Row("kan_lbfgs_g10", "KAN [2,5,5,1] G=5→10, Adam + L-BFGS (ours)", KAN_5, kind="kan_lbfgs",
                extend_to=10, note="not a poster row: grid extended 5 → 10 when L-BFGS starts"),
            Row("kan_propagated", "KAN [2,5,5,1] G=5, symmetric, propagated residual (ours)", KAN_5,
                kind="kan_propagated", sets=SYMMETRIC,
                note="not a poster row: the solution's symmetry u(−x,t)=u(x,t) built in, then the residual "
                     "propagated in time (train.propagated_residual) in the last stage"),
        ],
    },
    "darcy": {
        "config": "darcy.yaml",
        "title": "Darcy flow (setup ours, BENCHMARKS.md), rel. L2 against the exact solution",
        "rows": [
            Row("kan_10_g20", "KAN [2,10,1] G=20", {"type": "kan", "width": [2, 10, 1], "grid": 20}, 3.9e-4, 66,
                kind="kan_small"),
            Row("kan_100_g10", "KAN [2,100,1] G=10", {"type": "kan", "width": [2, 100, 1], "grid": 10}, 4.3e-6, 107),
            Row("kan_deep_g5", "KAN [2,10,10,10,10,1] G=5",
                {"type": "kan", "width": [2, 10, 10, 10, 10, 1], "grid": 5}, 8.5e-5, 123),
            Row("mlp", "MLP [2,128,128,128,1]", MLP, 3.0e-5, 30, kind="mlp"),
            Row("mlp_10x", "MLP [2,128,128,128,1], 10× training", MLP, 4.5e-6, 277, kind="mlp", factor=10),
            Row("mlp_rff", "MLP+RFF [2,128,128,128,1]",
                {"type": "fourier_mlp", "width": [2, 128, 128, 128, 1], "sigma": 1.0, "features": 64,
                 "activation": "tanh"}, 5.9e-6, 31, kind="mlp"),
            Row("kan_100_g10_lbfgs", "KAN [2,100,1] G=10, Adam + L-BFGS (ours)",
                {"type": "kan", "width": [2, 100, 1], "grid": 10}, kind="kan_lbfgs",
                note="not a poster row: L-BFGS after the Adam stage"),
            Row("kan_100_g10_symmetric", "KAN [2,100,1] G=10, symmetric, Adam + L-BFGS (ours)",
                {"type": "kan", "width": [2, 100, 1], "grid": 10}, kind="kan_lbfgs", sets=SYMMETRIC,
                note="not a poster row: the point symmetry u(1−x,1−y)=u(x,y) of a, f and u* built in"),
            Row("kan_100_g10_quintic", "KAN [2,100,1] G=10, quintic splines, symmetric, Adam + L-BFGS (ours)",
                {"type": "kan", "width": [2, 100, 1], "grid": 10, "order": 5}, kind="kan_lbfgs", sets=SYMMETRIC,
                note="not a poster row: splines of order 5 (5100 parameters, 4500 at order 3) and the point "
                     "symmetry built in"),
        ],
    },
}


def _adam(steps: int, lr: float, decay: float | None = None) -> dict:
    stage = {"optimizer": "adam", "steps": steps, "lr": lr}
    if decay is not None:
        stage.update(decay="exponential", decay_rate=decay)
    return stage


def _lbfgs(steps: int, causal_epsilon: float | None = None, fixed_points: int | None = None,
           loss_weights: dict[str, float] | None = None) -> dict:
    stage = {"optimizer": "lbfgs", "steps": steps}
    if causal_epsilon is not None:
        stage["causal_epsilon"] = causal_epsilon
    if fixed_points is not None:  # the stage's own points: one fixed draw of this many
        stage["points"] = {"interior": fixed_points, "resample_every": 0}
    if loss_weights is not None:  # this stage's own weights of those terms
        stage["loss_weights"] = loss_weights
    return stage


def _propagated(grid: int) -> list[str]:
    """The --set overrides of a "kan_propagated" row: the propagated residual on a grid × grid midpoint grid
    (x × t), at weight 0 (not computed) except in stages that set its weight."""
    return [f'train.propagated_residual={{"grid": [{grid}, {grid}]}}',
            'train.loss_weights={"propagated_residual": 0}']


PROPAGATED = {"propagated_residual": 1.0}  # the last stage's weight of the term


# Darcy: Adam rows redraw their points every 100 steps (the 4500-parameter KAN overfits a fixed draw of
# 2000); the big KANs' learning rate decays to 1 %, the small one's stays (decayed, it stops short:
# docs/tables.md); L-BFGS needs one fixed set of points, so its stage gets more of them. Allen–Cahn:
# L-BFGS with causal ε = 1e4 (at losses ~1e-5 the weights of ε = 10 are all ≈ 1 and no longer order
# the time slices); "kan_propagated" rows end with an L-BFGS stage on the residual propagated in time
# (allen_cahn_target.yaml).
# Per budget and table: the seeds, config overrides shared by all rows, the stages of each kind of row, and
# ("kind_sets") further overrides of the rows of a kind.
BUDGETS: dict[str, dict[str, dict]] = {
    "tiny": {
        "allen_cahn": {"seeds": 1, "sets": ["points.interior=64", "points.boundary=16", "points.initial=16",
                                            "evaluate.every=0", "output.plots=false"],
                       "kan": [_adam(3, 1e-2)], "mlp": [_adam(2, 1e-3)],
                       "kan_lbfgs": [_adam(3, 1e-2), _lbfgs(2, 1e4)],
                       "kan_propagated": [_adam(3, 1e-2), _lbfgs(2, 1e4), _lbfgs(2, 1e4, loss_weights=PROPAGATED)],
                       "kind_sets": {"kan_propagated": _propagated(8)}},
        "darcy": {"seeds": 1, "sets": ["points.interior=64", "points.boundary=16", "evaluate.every=0",
                                       "evaluate.resolution=11", "output.plots=false", "points.resample_every=2"],
                  "kan": [_adam(3, 1e-2, 0.01)], "kan_small": [_adam(3, 1e-2)], "mlp": [_adam(2, 1e-3)],
                  "kan_lbfgs": [_adam(3, 1e-2, 0.01), _lbfgs(2, fixed_points=80)]},
    },
    "quick": {
        "allen_cahn": {"seeds": 1, "sets": ["evaluate.every=0", "output.plots=false"],
                       "kan": [_adam(2000, 1e-2)], "mlp": [_adam(150, 1e-3)],
                       "kan_lbfgs": [_adam(1000, 1e-2), _lbfgs(1000, 1e4)],
                       "kan_propagated": [_adam(1000, 1e-2), _lbfgs(1000, 1e4),
                                          _lbfgs(500, 1e4, loss_weights=PROPAGATED)],
                       "kind_sets": {"kan_propagated": _propagated(200)}},
        "darcy": {"seeds": 1, "sets": ["evaluate.every=0", "output.plots=false", "points.resample_every=100"],
                  "kan": [_adam(1000, 1e-2, 0.01)], "kan_small": [_adam(1000, 1e-2)], "mlp": [_adam(150, 1e-3)],
                  "kan_lbfgs": [_adam(500, 1e-2, 0.01), _lbfgs(200, fixed_points=4000)]},
    },
    "full": {
        "allen_cahn": {"seeds": 3, "sets": ["evaluate.every=1000"],
                       "kan": [_adam(50000, 1e-2, 0.01)], "mlp": [_adam(20000, 1e-3, 0.1)],
                       "kan_lbfgs": [_adam(20000, 1e-2, 0.1), _lbfgs(10000, 1e4)],
                       "kan_propagated": [_adam(20000, 1e-2, 0.1), _lbfgs(10000, 1e4),
                                          _lbfgs(2000, 1e4, loss_weights=PROPAGATED)],
                       "kind_sets": {"kan_propagated": _propagated(200)}},
        "darcy": {"seeds": 3, "sets": ["evaluate.every=1000", "points.resample_every=100"],
                  "kan": [_adam(20000, 1e-2, 0.01)], "kan_small": [_adam(20000, 1e-2, 0.1)],
                  "mlp": [_adam(10000, 1e-3, 0.1)],
                  "kan_lbfgs": [_adam(5000, 1e-2, 0.01), _lbfgs(5000, fixed_points=8000)]},
    },
}

BUDGET_NOTES = {
    "tiny": "tiny budget: a smoke test (a few steps on a few points); the errors mean nothing.",
    "quick": "quick budget: short training, sized to finish within ~15 minutes on an idle 2-core CPU with "
             "--workers 2 and 1 seed (the default; --seeds 3 takes 3×); indicative only, not the protocol "
             "(use --budget full).",
    "full": "full budget: the protocol (our step counts; the poster does not publish its own).",
}


def row_overrides(row: Row, budget: dict) -> list[str]:
    """The --set strings that make a row's config from the table's base config."""
    stages = copy.deepcopy(budget[row.kind])
    for stage in stages:
        stage["steps"] *= row.factor
    extension = []
    if row.extend_to is not None:
        extension = [f"train.grid_schedule={{{sum(stage['steps'] for stage in stages[:-1])}: {row.extend_to}}}"]
    return [f"model={json.dumps(row.model)}", f"train.stages={json.dumps(stages)}", *extension,
            *budget.get("kind_sets", {}).get(row.kind, ()), *row.sets]


def select_rows(table: str, labels: list[str] | None) -> list[Row]:
    """The table's rows with these labels (all if None), in the table's order; ValueError names an unknown one."""
    rows = TABLES[table]["rows"]
    if labels is None:
        return rows
    known = [row.label for row in rows]
    unknown = [label for label in labels if label not in known]
    if unknown or not labels:
        raise ValueError(f"no row {unknown[0]!r} in table {table}" if unknown else "no label given",
                         f"(rows: {', '.join(known)})")
    return [row for row in rows if row.label in labels]


def _fmt(value: float | None, digits: str = ".2e") -> str:
    return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, digits)


def _seconds(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def reproduce(table: str, budget: str, out: str | os.PathLike | None = None, seeds: int | None = None,
              device: str | None = None, quiet: bool = True, command: str = "", workers: int = 1,
              rows: list[str] | None = None) -> dict:
    """Train a table's rows (all, or those labelled ``rows``, in the table's order) under a budget; returns the
    report (also written to OUT/reproduced.{md,json}). ``workers`` > 1 trains that many rows/seeds at a time in
    separate processes (same numbers)."""
    spec, plan = TABLES[table], BUDGETS[budget][table]
    seeds = plan["seeds"] if seeds is None else seeds
    out = Path(out) if out is not None else Path("runs") / "tables" / f"{table}-{budget}"
    rows = select_rows(table, rows)
    config = load_config(spec["config"], plan["sets"])
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    result = compare(config, [row.label for row in rows], seeds, out,
                     {row.label: row_overrides(row, plan) for row in rows}, quiet=quiet, device=device, force=True,
                     workers=workers)
    wall = time.perf_counter() - started
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    ours = {r["model"]: r for r in result["rows"]}
    report_rows = []
    for row in rows:
        r = ours[row.label]
        report_rows.append({
            "row": row.name, "label": row.label, "kind": row.kind, "params": r["params"], "steps": r["steps"],
            "rel_l2_mean": r["rel_l2_mean"], "rel_l2_std": r["rel_l2_std"], "rel_l2": r["rel_l2"],
            "train_seconds_mean": r["train_seconds_mean"], "seconds_per_step": r["seconds_per_step"],
            "published_rel_l2": row.published, "published_seconds": row.published_seconds,
            "device": r["device"], "note": row.note, "run_dirs": r["run_dirs"],
            "sets": [*plan.get("kind_sets", {}).get(row.kind, ()), *row.sets],
        })
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "workers": workers,
               "torch": torch.__version__, "python": platform.python_version(),
               "load_average_before": load_before, "load_average_after": load_after}
    report = {"table": table, "title": spec["title"], "budget": budget, "seeds": seeds,
              "date": datetime.date.today().isoformat(), "wall_seconds": wall, "machine": machine,
              "stages": {row.kind: plan[row.kind] for row in rows}, "sets": plan["sets"],
              "command": command,
              "rows": report_rows, "compare": result["table_json"], "figure": result["figure"]}
    report["markdown"] = format_report(report)
    out.mkdir(parents=True, exist_ok=True)
    (out / "reproduced.md").write_text(report["markdown"], encoding="utf-8")
    (out / "reproduced.json").write_text(json.dumps(_clean(report), indent=2) + "\n", encoding="utf-8")
    return report


def _stages_text(stages: list[dict]) -> str:
    parts = []
    for stage in stages:
        text = f"{stage['optimizer']} {stage['steps']}"
        if stage["optimizer"] == "adam":
            text += f" (lr {stage['lr']:g}" + (f", exponential decay to ×{stage['decay_rate']:g}"
                                                 if stage.get("decay") == "exponential" else "") + ")"
        if stage.get("causal_epsilon") is not None:
            text += f" (causal ε {stage['causal_epsilon']:g})"
        if stage.get("points"):
            text += f" (on {stage['points']['interior']} fixed points)"
        if stage.get("loss_weights"):
            text += " (loss weights " + ", ".join(f"{k} {v:g}" for k, v in stage["loss_weights"].items()) + ")"
        parts.append(text)
    return " + ".join(parts)


def format_report(report: dict) -> str:
    seeds = report["seeds"]
    machine = report["machine"]
    lines = [f"## {report['title']}", "",
             f"| row | params | rel. L2 (ours{', mean ± std' if seeds > 1 else ''}) | time s (ours) | steps "
             f"| rel. L2 (poster) | time s (poster) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        error = _fmt(r["rel_l2_mean"]) + (f" ± {_fmt(r['rel_l2_std'])}" if seeds > 1 else "")
        lines.append(f"| {r['row']} | {r['params']} | {error} | {_seconds(r['train_seconds_mean'])} | {r['steps']} "
                     f"| {_fmt(r['published_rel_l2'])} | {_seconds(r['published_seconds'])} |")
    load = machine.get("load_average_before")
    kinds = {}  # kind of row -> the names of its rows (10× rows: 10× the steps)
    for r in report["rows"]:
        kinds.setdefault(r["kind"], []).append(r["row"])
    lines += [
        "",
        f"- {BUDGET_NOTES[report['budget']]}",
        f"- Ours: {seeds} seed{'s' if seeds > 1 else ''} (model seeds 0..{seeds - 1}, one shared set of points). "
        f"Config: {TABLES[report['table']]['config']} with {', '.join(report['sets']) or 'no overrides'}. "
        "Stages (\"10× training\": 10× the steps):",
        *(f"  - {' / '.join(names)}: {_stages_text(report['stages'][kind])}" for kind, names in kinds.items()),
        *(f"- {r['row']}: also {', '.join(r['sets'])}." for r in report["rows"] if r.get("sets")),
        "- The poster's rows are Adam on a GPU with an unpublished setup (points, steps, learning rates, "
        "constraints); ours are float64 on "
        f"{report['rows'][0]['device']} with {machine['torch_threads']} thread(s), {machine['cpu_count']} cores "
        f"({machine['processor']}), so times compare only roughly"
        + (f"; load average {load[0]:.1f} at the start (a shared machine slows every row)" if load else "") + ".",
        f"- Date {report['date']}; wall time {report['wall_seconds']:.0f} s; torch {machine['torch']}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", choices=sorted(TABLES), required=True)
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="quick")
    parser.add_argument("--out", help="output directory (default runs/tables/<table>-<budget>)")
    parser.add_argument("--seeds", type=int, help="seeds per row (default: the budget's)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides train.device")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: the same for every row, and immune to "
                             "oversubscription on a shared machine)")
    parser.add_argument("--progress", action="store_true", help="show each run's progress bar")
    parser.add_argument("--workers", type=int, default=1,
                        help="train this many runs at a time in separate processes, each with "
                             "max(1, threads // workers) threads (default 1)")
    labels = "; ".join(f"{table}: {', '.join(row.label for row in spec['rows'])}" for table, spec in TABLES.items())
    parser.add_argument("--rows", metavar="LABEL[,LABEL...]",
                        help=f"train only these rows of the table (default: all): {labels}")
    args = parser.parse_args(argv)
    rows = None
    if args.rows is not None:
        rows = [label.strip() for label in args.rows.split(",") if label.strip()]
        try:
            select_rows(args.table, rows)
        except ValueError as error:
            parser.error(f"--rows: {' '.join(error.args)}")
    if args.seeds is not None and args.seeds < 1:
        parser.error("--seeds: must be a positive integer")
    if args.threads < 1:
        parser.error("--threads: must be a positive integer")
    if args.workers < 1:
        parser.error("--workers: must be a positive integer")
    torch.set_num_threads(args.threads)
    command = " ".join(["python", "scripts/reproduce_tables.py", *(sys.argv[1:] if argv is None else argv)])
    report = reproduce(args.table, args.budget, args.out, args.seeds, args.device, quiet=not args.progress,
                       command=command, workers=args.workers, rows=rows)
    print(report["markdown"], end="")
    out = Path(args.out) if args.out else Path("runs") / "tables" / f"{args.table}-{args.budget}"
    print(f"\nwritten: {out / 'reproduced.md'}, {out / 'reproduced.json'} (runs, table.md, comparison.png: {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
