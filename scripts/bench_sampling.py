"""Sampling speed on a rectangle with 17 circular holes: 100 000 interior + 10 000 boundary points, one core.

    OMP_NUM_THREADS=1 python scripts/bench_sampling.py

Prints the best of 5 timings per method, wall clock and CPU time of this process (on a loaded machine the CPU
time is the fairer measure of one core's work); a first call builds and caches the domain's pieces and part
measures, timed separately.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from kanpde.geometry import Disk, Rectangle, sample_boundary, sample_interior


def plate() -> object:
    """[0, 6] × [0, 4] minus 17 disks of radius 0.3 on a staggered lattice."""
    domain = Rectangle([0.0, 0.0], [6.0, 4.0], name="outer")
    centres = [(x, y) for y in (0.8, 2.0, 3.2) for x in np.arange(0.8, 5.7, 0.9)][:17]
    for i, (x, y) in enumerate(centres):
        domain = domain - Disk((x, y), 0.3, name=f"hole{i}")
    return domain


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    domain = plate()
    sample_boundary(domain, 10, "uniform", 0)
    print(f"build + first call: {time.perf_counter() - start:.3f} s ({len(domain.operands) - 1} holes)")
    for method in ("uniform", "sobol", "halton", "lhs"):
        times, cpu = [], []
        for seed in range(5):
            start, start_cpu = time.perf_counter(), time.process_time()
            x = sample_interior(domain, 100_000, method, seed)
            b = sample_boundary(domain, 10_000, method, seed)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        assert x.shape == (100_000, 2) and b.points.shape == (10_000, 2)
        print(f"{method:8s} 100k interior + 10k boundary: wall best {min(times):.3f} s, "
              f"median {sorted(times)[2]:.3f} s; CPU best {min(cpu):.3f} s, median {sorted(cpu)[2]:.3f} s")


if __name__ == "__main__":
    main()
