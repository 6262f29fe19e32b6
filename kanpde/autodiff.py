"""The reference: the same jet by nested reverse-mode autograd, for any module or function.

Used by the tests to check the closed-form jets, by the benchmark as the slow path,
and as the fallback for modules that do not propagate jets themselves. Each output
row must depend on its own input row only (true for pointwise networks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from kanpde.jet import MODES, Jet


def autograd_jet(
    function: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    hessian: str = "full",
    coords: Sequence[str] | None = None,
) -> Jet:
    """Jet of ``function`` at ``x`` [N, D] by nested ``torch.autograd.grad``.

    The graph is kept (``create_graph=True``), so the result can be trained through.
    """
    if hessian not in MODES:
        raise ValueError(f"hessian: must be one of {', '.join(MODES)}, got {hessian!r}")
    if x.ndim != 2:
        raise ValueError(f"x: expected a tensor of shape [N, D], got shape {tuple(x.shape)}")
    if hessian == "value":
        y = function(x)
        return Jet(y.unsqueeze(1), x.shape[1], "value", coords)
    with torch.enable_grad():
        return _nested(function, x.detach().requires_grad_(True), hessian, coords)


def _nested(function, x, hessian, coords) -> Jet:
    n, dim = x.shape
    y = function(x)
    channels = tuple(y.shape[1:])
    flat = y.reshape(n, -1)

    def derivative(output: torch.Tensor) -> torch.Tensor:
        if not output.requires_grad:  # does not depend on x
            return torch.zeros_like(x)
        (g,) = torch.autograd.grad(output.sum(), x, create_graph=True, allow_unused=True)
        return torch.zeros_like(x) if g is None else g

    grads = [derivative(flat[:, c]) for c in range(flat.shape[1])]  # each [N, D]
    first = torch.stack(grads, dim=-1)  # [N, D, C]
    parts = [flat.unsqueeze(1), first]
    if hessian != "none":
        rows = [[derivative(g[:, a]) for a in range(dim)] for g in grads]  # rows[c][a]: ∂²/∂x_a∂x_·
        if hessian == "full":
            second = torch.stack([torch.stack(r, dim=1) for r in rows], dim=-1).reshape(n, dim * dim, -1)
        else:
            diag = torch.stack([torch.stack([r[a][:, a] for a in range(dim)], dim=1) for r in rows], dim=-1)
            second = diag if hessian == "diagonal" else diag.sum(1, keepdim=True)
        parts.append(second)
    stack = torch.cat(parts, dim=1).reshape(n, -1, *channels)
    return Jet(stack, dim, hessian, coords)
