#!/usr/bin/env python
"""Synthetic measurements of heat1d's exact solution u = exp(−νπ²t)·sin(πx) (ν = 0.1) as a CSV
with columns x, t, u, for the inverse examples (README, docs/inverse.md):

    python scripts/heat1d_measurements.py obs.csv --count 200 --noise 0.01 --seed 0

``--noise`` is the standard deviation of the Gaussian noise added to u (0: exact values).
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="CSV file to write")
    parser.add_argument("--count", type=int, default=200, help="number of points (default 200)")
    parser.add_argument("--noise", type=float, default=0.0, help="noise standard deviation (default 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nu", type=float, default=0.1, help="the true ν (default 0.1)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    xt = rng.uniform(0, 1, (args.count, 2))
    u = np.exp(-args.nu * np.pi**2 * xt[:, 1]) * np.sin(np.pi * xt[:, 0]) + args.noise * rng.standard_normal(args.count)
    np.savetxt(args.out, np.column_stack([xt, u]), delimiter=",", header="x,t,u", comments="")
    print(f"wrote {args.count} points to {args.out}")


if __name__ == "__main__":
    main()
