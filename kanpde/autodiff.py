"""The reference: the same jet by nested reverse-mode autograd, for any module or function.

Used by the tests to check the closed-form jets, by the benchmark as the slow path,
and as the fallback for modules that do not propagate jets themselves. Each output
row must depend on its own input row only (true for pointwise networks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from kanpde.jet import Jet, check_mode, curved_axes
from kanpde.taylor import Derivatives, TaylorJet


def autograd_jet(
    function: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    hessian: str | Derivatives = "full",
    coords: Sequence[str] | None = None,
) -> Jet:
    """Jet of ``function`` at ``x`` [N, D] by nested ``torch.autograd.grad``; ``hessian`` a jet mode or a
    :class:`kanpde.Derivatives` set of any order (then a :class:`kanpde.TaylorJet`).

    The graph is kept (``create_graph=True``), so the result can be trained through.
    """
    if isinstance(hessian, Derivatives):
        if x.ndim != 2 or x.shape[1] != hessian.dim:
            raise ValueError(f"x: expected a tensor of shape [N, {hessian.dim}], got shape {tuple(x.shape)}")
        with torch.enable_grad():
            return _nested_taylor(function, x.detach().requires_grad_(True), hessian, coords)
    if x.ndim != 2:
        raise ValueError(f"x: expected a tensor of shape [N, D], got shape {tuple(x.shape)}")
    check_mode(hessian, x.shape[1])
    if hessian == "value":
        y = function(x)
        return Jet(y.unsqueeze(1), x.shape[1], "value", coords)
    with torch.enable_grad():
        return _nested(function, x.detach().requires_grad_(True), hessian, coords)


def _derivative(output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """∂output/∂x [N, D] for an output [N] whose rows depend on their own rows of x, graph kept."""
    if not output.requires_grad:  # does not depend on x
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(output.sum(), x, create_graph=True, allow_unused=True)
    return torch.zeros_like(x) if g is None else g


def _nested_taylor(function, x: torch.Tensor, derivatives: Derivatives, coords) -> TaylorJet:
    """Every ∂^α of the set by differentiating a lower one, ∂^α = ∂_a ∂^{α − e_a} (a: the last axis of α)."""
    n = x.shape[0]
    y = function(x)
    channels = tuple(y.shape[1:])
    flat = y.reshape(n, -1)
    terms = {derivatives.indices[0]: [flat[:, c] for c in range(flat.shape[1])]}
    gradients: dict = {}  # parent multi-index → per channel ∂/∂x of it, [N, D]
    for alpha in derivatives.indices[1:]:
        axis = max(a for a, count in enumerate(alpha) if count)
        parent = tuple(count - (a == axis) for a, count in enumerate(alpha))
        if parent not in gradients:
            gradients[parent] = [_derivative(term, x) for term in terms[parent]]
        terms[alpha] = [g[:, axis] for g in gradients[parent]]
    stack = torch.stack([torch.stack(terms[alpha], dim=-1) for alpha in derivatives.indices], dim=1)
    return TaylorJet(stack.reshape(n, -1, *channels), derivatives, coords)


def _nested(function, x, hessian, coords) -> Jet:
    n, dim = x.shape
    y = function(x)
    channels = tuple(y.shape[1:])
    flat = y.reshape(n, -1)

    def derivative(output: torch.Tensor) -> torch.Tensor:
        return _derivative(output, x)

    grads = [derivative(flat[:, c]) for c in range(flat.shape[1])]  # each [N, D]
    first = torch.stack(grads, dim=-1)  # [N, D, C]
    parts = [flat.unsqueeze(1), first]
    if hessian != "none":
        if hessian == "full":
            rows = [[derivative(g[:, a]) for a in range(dim)] for g in grads]  # rows[c][a]: ∂²/∂x_a∂x_·
            second = torch.stack([torch.stack(r, dim=1) for r in rows], dim=-1).reshape(n, dim * dim, -1)
        else:  # only the ∂²/∂x_a² the mode carries are differentiated
            axes = curved_axes(hessian, dim) or range(dim)  # trace: every axis
            diag = torch.stack([torch.stack([derivative(g[:, a])[:, a] for a in axes], dim=1) for g in grads], dim=-1)
            second = diag if hessian != "trace" else diag.sum(1, keepdim=True)
        parts.append(second)
    stack = torch.cat(parts, dim=1).reshape(n, -1, *channels)
    return Jet(stack, dim, hessian, coords)
