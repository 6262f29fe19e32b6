"""A small system with an exact solution, used by tests/test_systems.py (also as a torchrun problem file)."""

import math

import torch

import kanpde

PI = math.pi


class Pair(kanpde.Problem):
    """u' = v, v' = −π²u on [0, 1]; u(0) = 0, v(0) = π: u = sin(πx), v = π cos(πx)."""

    box = kanpde.Box([0.0], [1.0], ("x",))
    fields = ("u", "v")
    derivatives = "none"
    conditions = [kanpde.Dirichlet(0.0, on="x=0", field="u"), kanpde.PointValue("v", at=(0.0,), value=PI)]

    def residual(self, u, x):
        return {"first": u["u"].d("x") - u["v"].value, "second": u["v"].d("x") + PI**2 * u["u"].value}

    def exact(self, x):
        return torch.stack([torch.sin(PI * x[:, 0]), PI * torch.cos(PI * x[:, 0])], dim=1)
