#!/usr/bin/env python
"""Errors of finished space-time runs, overall and near a front: relative L2 on the whole evaluation grid, and
relative L2 and max abs error on the strip |x − x0| ≤ width (all t), from each run's solution.h5.

Usage: python scripts/shock_error.py RUN_DIR [RUN_DIR ...] [--x0 0.0] [--width 0.1]
(for burgers the shock sits at x = 0; docs/accuracy.md uses the defaults).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np


def errors(run: Path, x0: float, width: float) -> dict[str, float]:
    with h5py.File(run / "solution.h5", "r") as f:
        x, prediction, reference = f["x"][()], f["prediction"][()], f["reference"][()]
    strip = np.abs(x - x0) <= width
    error = prediction - reference
    summary = json.loads((run / "summary.json").read_text())
    return {"rel_l2": float(np.linalg.norm(error) / np.linalg.norm(reference)),
            "strip_rel_l2": float(np.linalg.norm(error[strip]) / np.linalg.norm(reference[strip])),
            "strip_max_abs": float(np.abs(error[strip]).max()), "train_seconds": summary["train_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--x0", type=float, default=0.0)
    parser.add_argument("--width", type=float, default=0.1)
    args = parser.parse_args()
    print("| run | rel. L2 | rel. L2, strip | max abs, strip | train s |")
    print("| --- | --- | --- | --- | --- |")
    for run in args.runs:
        e = errors(run, args.x0, args.width)
        print(f"| {run.name} | {e['rel_l2']:.2e} | {e['strip_rel_l2']:.2e} | {e['strip_max_abs']:.2e} "
              f"| {e['train_seconds']:.0f} |")


if __name__ == "__main__":
    main()
