"""An inverse heat problem: find the conductivity field a(x, y) from noisy measurements of u."""

from __future__ import annotations

import math
from functools import cached_property

import torch

from kanpde.conditions import Condition, Dirichlet, Initial
from kanpde.data import Observations
from kanpde.geometry import Box
from kanpde.jet import Jet
from kanpde.problem import Problem

PI = math.pi


def bump(x: torch.Tensor) -> torch.Tensor:
    """s = sin(πx)·sin(πy)."""
    return torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1])


class HeatInverse(Problem):
    """u_t = ∇·(a∇u) + f on [-1, 1]² × [0, 1] with the conductivity a unknown: two fields (u, a), one
    equation, and noisy measurements of u.

    Truth: u* = e^{−t} s, a* = 2 + s, s = sin(πx) sin(πy), so
    f = u_t − ∇a·∇u − aΔu = e^{−t}(−s − |∇s|² + 2π² s (2 + s)), |∇s|² = π²(cos²πx sin²πy + sin²πx cos²πy).
    Built in exactly: u = 0 on the boundary, u(·, 0) = s, and a = 2 on the boundary (known there).
    a does not depend on t: a soft condition a_t = 0 at the interior points says so.
    Data: ``samples`` points drawn uniformly (seed ``seed``) with u* + N(0, ``noise``²).
    """

    problem_name = "heat_inverse"
    description = "inverse heat: conductivity a(x, y) from 2500 noisy samples of u (σ = 0.1), a known on ∂Ω"
    box = Box.space_time([-1.0, -1.0], [1.0, 1.0], t0=0.0, t1=1.0, names=("x", "y", "t"))
    fields = ("u", "a")
    derivatives = ("t", "x", "y", "xx", "yy")  # not u_tt: the lean jet "diagonal:0,1"
    params = {"samples": 2500, "noise": 0.1, "seed": 0}
    conditions = (Dirichlet(0.0, field="u", hard=True), Initial(bump, field="u", hard=True),
                  Dirichlet(2.0, field="a", hard=True),
                  Condition(lambda a, x: a.d("t"), on="interior", field="a", name="steady_a"))

    @cached_property
    def observations(self) -> tuple[Observations, ...]:
        """The measurements: generated once per problem, the same for every run with the same seed."""
        count = self.params["samples"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"problem.params.samples: must be a positive integer, got {count!r}")
        if not self.params["noise"] >= 0:
            raise ValueError(f"problem.params.noise: must be ≥ 0, got {self.params['noise']!r}")
        generator = torch.Generator().manual_seed(int(self.params["seed"]))
        lo, hi = torch.tensor(self.box.lo, dtype=torch.float64), torch.tensor(self.box.hi, dtype=torch.float64)
        x = lo + (hi - lo) * torch.rand(count, 3, generator=generator, dtype=torch.float64)
        noise = torch.randn(count, generator=generator, dtype=torch.float64)
        noisy = self.exact(x)[:, 0] + self.params["noise"] * noise
        return (Observations(x, noisy, field="u", name="data_u", source="heat_inverse observations",
                             columns=self.coords),)

    def source(self, x: torch.Tensor) -> torch.Tensor:
        s, decay = bump(x), torch.exp(-x[:, 2])
        cx, cy = torch.cos(PI * x[:, 0]), torch.cos(PI * x[:, 1])
        sx, sy = torch.sin(PI * x[:, 0]), torch.sin(PI * x[:, 1])
        grad_squared = PI**2 * (cx**2 * sy**2 + sx**2 * cy**2)
        return decay * (-s - grad_squared + 2 * PI**2 * s * (2 + s))

    def residual(self, u: Jet, x: torch.Tensor) -> torch.Tensor:
        heat, a = u["u"], u["a"]
        flux_divergence = a.d("x") * heat.d("x") + a.d("y") * heat.d("y") + a.value * (
            heat.d("x", "x") + heat.d("y", "y"))  # ∇·(a∇u) = ∇a·∇u + aΔu
        return heat.d("t") - flux_divergence - self.source(x)

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        s = bump(x)
        return torch.stack([torch.exp(-x[:, 2]) * s, 2 + s], dim=1)
