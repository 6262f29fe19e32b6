#!/usr/bin/env python
"""Relative L2 error against time of a finished space-time run, and how long it stays below a threshold.

Reads RUN_DIR/solution.h5 (prediction and reference on the evaluation grid, u[i, j] = u(x_i, t_j)) and
prints, for every ``--every``-th time, e(t_j) = ‖pred(·, t_j) − ref(·, t_j)‖₂ / ‖ref(·, t_j)‖₂, then the
last time T such that e(t) < ``--threshold`` for every grid time t ≤ T.

Usage: python scripts/error_vs_time.py RUN_DIR [--threshold 1e-2] [--every 10]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np


def error_against_time(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(t, e(t)) from a run directory's solution.h5 (time the last coordinate)."""
    with h5py.File(run_dir / "solution.h5", "r") as solution:
        t, prediction, reference = (np.asarray(solution[key]) for key in ("t", "prediction", "reference"))
    norm = np.linalg.norm(reference, axis=0)
    return t, np.linalg.norm(prediction - reference, axis=0) / np.where(norm > 0, norm, 1.0)


def time_below(t: np.ndarray, error: np.ndarray, threshold: float) -> float | None:
    """The last grid time up to which every e(t) < threshold (None if not even the first)."""
    above = np.flatnonzero(error >= threshold)
    if above.size == 0:
        return float(t[-1])
    return None if above[0] == 0 else float(t[above[0] - 1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--threshold", type=float, default=1e-2)
    parser.add_argument("--every", type=int, default=10, help="print every n-th time of the grid")
    args = parser.parse_args(argv)
    if not (args.run_dir / "solution.h5").is_file():
        parser.error(f"run_dir: no solution.h5 in {args.run_dir}")
    t, error = error_against_time(args.run_dir)
    print("| t | rel. L2 error |\n|---:|---:|")
    for j in range(0, t.size, args.every):
        print(f"| {t[j]:g} | {error[j]:.2e} |")
    below = time_below(t, error, args.threshold)
    print(f"\nerror < {args.threshold:g} for t ≤ {below:g}" if below is not None else
          f"\nerror ≥ {args.threshold:g} already at t = {t[0]:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
