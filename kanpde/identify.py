"""Identified parameters: the trained unknowns' values with a standard error each.

The standard error is a Gauss–Newton (Laplace) approximation at the optimum, conditional on the
trained network: with r(θ) the PDE residuals at N collocation points as a function of the p
unknowns θ alone, J = ∂r/∂θ [N, p] (exact, by two reverse passes) and s² = Σ r² / (N − p) the
residual variance, Cov(θ) ≈ s² (JᵀJ)⁻¹. It says how well the physics pins θ down given the
fitted field; it leaves out the network's own uncertainty, so it is a lower bound, not a
credible interval. None where JᵀJ is singular (θ does not enter the residual) or N ≤ p.
"""

from __future__ import annotations

import math

import torch

from kanpde.field import Field
from kanpde.loss import residuals

METHOD = ("std: Gauss-Newton/Laplace, s^2 (J^T J)^-1 with J = d(residual)/d(unknowns) at the collocation "
          "points, network held fixed (a lower bound)")


def _jacobian(r: torch.Tensor, inputs: list[torch.Tensor]) -> torch.Tensor:
    """J = ∂r/∂θ [N, p] by the double-backward trick: g(v) = Jᵀv, then ∂(g_k)/∂v = column k."""
    v = torch.zeros_like(r, requires_grad=True)
    grads = torch.autograd.grad((r * v).sum(), inputs, create_graph=True, allow_unused=True)
    columns = []
    for g in grads:
        if g is None or not g.requires_grad:
            columns.append(torch.zeros_like(r))
        else:
            columns.append(torch.autograd.grad(g, v, retain_graph=True)[0])
    return torch.stack(columns, dim=1)


def identified(field: Field, x: torch.Tensor) -> dict[str, dict]:
    """{name: {"value", "std", "init", "positive"}} for each unknown parameter of the field's problem,
    the standard errors from the residuals at interior points ``x`` (see the module docstring)."""
    unknowns = field.unknowns
    if len(unknowns) == 0:
        return {}
    names = list(unknowns)
    with torch.enable_grad():
        r = torch.cat([value.reshape(-1) for value in residuals(field, x).values()])
        jacobian = _jacobian(r, [unknowns[name].raw for name in names]).detach()
    slopes = torch.stack([torch.sigmoid(unknowns[n].raw) if unknowns[n].positive else torch.ones_like(unknowns[n].raw)
                          for n in names]).detach()  # dθ/draw (softplus' = sigmoid)
    jacobian = jacobian / slopes
    count, p = jacobian.shape
    stds: list[float | None] = [None] * p
    if count > p:
        variance = float(r.detach().square().sum()) / (count - p)
        normal = jacobian.T @ jacobian
        if torch.linalg.matrix_rank(normal) == p:
            covariance = variance * torch.linalg.inv(normal)
            stds = [math.sqrt(max(float(c), 0.0)) for c in torch.diagonal(covariance)]
    return {name: {"value": float(unknowns[name].value.detach()), "std": std, "init": unknowns[name].init,
                   "positive": unknowns[name].positive} for name, std in zip(names, stds)}


def describe(identified_values: dict[str, dict]) -> str:
    """One line: "nu = 0.0100 ± 0.0001, k = ..." (no ± where no estimate)."""
    parts = []
    for name, entry in identified_values.items():
        std = f" ± {entry['std']:.2g}" if entry.get("std") is not None else ""
        parts.append(f"{name} = {entry['value']:.6g}{std}")
    return ", ".join(parts)
