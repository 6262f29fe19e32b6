#!/usr/bin/env python
"""Synthetic measurements of a built-in problem's solution as a CSV (columns: its coordinates, then the
field), for the inverse examples (README, docs/inverse.md):

    python scripts/measurements.py heat1d obs.csv --count 200 --noise 0.01 --seed 0
    python scripts/measurements.py burgers obs.csv --count 2000 --noise 0.01 --relative --seed 0

Points are uniform in the problem's box; values come from ``Problem.reference_at``: the exact solution,
a reference evaluated at the points (Burgers: Cole–Hopf), or else the reference grid interpolated.
``--noise`` is the standard deviation of the Gaussian noise added (with ``--relative``, a fraction of
the values' standard deviation; 0: exact values).
"""

from __future__ import annotations

import argparse

import numpy as np

from kanpde.solver import problem_class


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problem", help="a built-in problem with one field, e.g. heat1d or burgers")
    parser.add_argument("out", help="CSV file to write")
    parser.add_argument("--count", type=int, default=200, help="number of points (default 200)")
    parser.add_argument("--noise", type=float, default=0.0, help="noise standard deviation (default 0)")
    parser.add_argument("--relative", action="store_true", help="--noise is a fraction of the values' std")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    problem = problem_class(args.problem)()
    if problem.outputs != 1:
        parser.error(f"{args.problem} has fields {', '.join(problem.fields)}; this script writes one field")
    rng = np.random.default_rng(args.seed)
    lo, hi = np.asarray(problem.box.lo), np.asarray(problem.box.hi)
    points = lo + (hi - lo) * rng.uniform(size=(args.count, len(lo)))
    values = problem.reference_at(points)
    sigma = args.noise * (values.std() if args.relative else 1.0)
    values = values + sigma * rng.standard_normal(args.count)
    header = ",".join([*problem.coords, problem.fields[0]])
    np.savetxt(args.out, np.column_stack([points, values]), delimiter=",", header=header, comments="")
    print(f"wrote {args.count} points of {args.problem} to {args.out} (noise σ = {sigma:.3g})")


if __name__ == "__main__":
    main()
