"""``train.compile`` for KANs: a KAN layer's second-order jet as compiled, fused kernels.

The eager layer (:class:`~kanpde.nets.kan._LayerJet`) makes one pass over memory per operation on
[d, m, n, N] arrays: φ, φ′, φ″ of every edge at every point, the chain rule, and in the backward their
adjoints, each one materialised. Here the same formulas are written as broadcasts and reductions over the
edges, with (Taylor's formula on the knot cell of h_i, as in the eager layer)

    φ^(d)_ji(h_i) = Σ_r b_{d+r}·e_r + w_b·silu^(d)(h_i),   e_r = s^r/r!,   s = h_i − t_cell,

and ``torch.compile`` turns each of these into one loop nest that keeps φ^(d) in registers:

    forward       y_t[j] = Σ_i chain rule of φ^(d)_ji with the input terms     [T, m, N]
    backward      ∂/∂(input terms) = Σ_j …,  ∂/∂w_b = Σ_points …,  ∂/∂table: scattered per knot cell

The arrays that cross memory are the jets ([T, n, N] in, [T, m, N] out), never the [d, m, n, N] edge
arrays; each backward kernel recomputes what it needs from the jets, so no two kernels share a large
intermediate. Shapes are compiled symbolically: one compilation per kernel, jet mode, dimension and spline
order serves every layer and every number of points (Burgers' KAN [2,10,10,1]: four graphs, 60–80 s on a
2-core CPU with an empty cache, 12–26 s once torch's cache in /tmp holds their builds). A jet of the network's inputs
(``seed_scale`` set) is taken as the ordinary jet it is. The knot cells are found eagerly (a division on a
uniform grid, a binary search on knots that grid updates moved). Layers with one input or one output (an
output layer [n → 1]) and jets of one point keep the eager path.

Costs and gains: docs/benchmarks.md, "train.compile for KANs".
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import torch

from kanpde import splines
from kanpde.errors import first_line
from kanpde.jet import Jet, outer_terms, outer_terms_adjoint
from kanpde.nets.base import silu_derivatives


def _powers(s: torch.Tensor, order: int) -> list[torch.Tensor]:
    """e_r = s^r/r! for r = 0 … k."""
    powers = [torch.ones_like(s), s]
    for r in range(2, order + 1):
        powers.append(powers[-1] * s * (1 / r))
    return powers[: order + 1]


def _edges(h: torch.Tensor, column: torch.Tensor, s: torch.Tensor, table: torch.Tensor, base_weight: torch.Tensor,
           order: int, count: int) -> list[torch.Tensor]:
    """φ^(d)_ji(h_i) for d < ``count``, each [m, n, N], at the input values ``h`` [n, N] in their cells
    (``table`` and ``base_weight`` as in :class:`~kanpde.nets.kan._LayerJet`)."""
    b = [table[p][:, column] for p in range(order + 1)]  # b_p of every edge on its point's cell, [m, n, N]
    powers = _powers(s, order)
    silu = silu_derivatives(h, count - 1)
    weight = base_weight.T[:, :, None]  # [m, n, 1]
    phi = []
    for d in range(count):
        edge = weight * silu[d]
        for r in range(order + 1 - d):
            edge = edge + b[d + r] * powers[r]
        phi.append(edge)
    return phi


def _curvatures(terms: torch.Tensor, dim: int, mode: str) -> torch.Tensor:
    """The products of first derivatives that φ″ multiplies (:func:`outer_terms`), [S, n, N]."""
    first = terms[1 : 1 + dim]
    return outer_terms(first, first, mode, axis=0)


def _forward(terms, column, s, table, base_weight, order: int, dim: int, mode: str) -> torch.Tensor:
    """Output terms [T, m, N] of y_j = Σ_i φ_ji(u_i) (the chain rule of :meth:`Jet.edge_sum`)."""
    curvature = _curvatures(terms, dim, mode)
    phi = _edges(terms[0], column, s, table, base_weight, order, 3 if len(curvature) else 2)
    out = [phi[0].sum(1)] + [(phi[1] * terms[t]).sum(1) for t in range(1, terms.shape[0])]
    for index, product in enumerate(curvature):  # φ′·∂²u + φ″·∂u∂u
        out[1 + dim + index] = out[1 + dim + index] + (phi[2] * product).sum(1)
    return torch.stack(out)


def _phi_adjoints(grad: torch.Tensor, terms: torch.Tensor, dim: int, mode: str) -> list[torch.Tensor]:
    """∂loss/∂φ^(d) [m, n, N] (broadcast) from ∂loss/∂(output terms) ``grad`` [T, m, N]."""
    adjoints = [grad[0][:, None], sum(grad[t][:, None] * terms[t] for t in range(1, terms.shape[0]))]
    curvature = _curvatures(terms, dim, mode)
    if len(curvature):
        adjoints.append(sum(grad[1 + dim + index][:, None] * product for index, product in enumerate(curvature)))
    return adjoints


def _grad_terms(grad, terms, column, s, table, base_weight, order: int, dim: int, mode: str) -> torch.Tensor:
    """∂loss/∂(input terms) [T, n, N]: ∂φ^(d)/∂h = φ^(d+1) for the value, the chain rule's adjoint for the rest."""
    adjoints = _phi_adjoints(grad, terms, dim, mode)
    phi = _edges(terms[0], column, s, table, base_weight, order, len(adjoints) + 1)
    out = [sum(adjoint * phi[d + 1] for d, adjoint in enumerate(adjoints)).sum(0)]
    out += [(grad[t][:, None] * phi[1]).sum(0) for t in range(1, terms.shape[0])]
    if len(adjoints) > 2:  # through φ″·∂u∂u to the first derivatives
        second = grad[1 + dim :]
        curvature = torch.stack([(second[index][:, None] * phi[2]).sum(0) for index in range(second.shape[0])])
        first = outer_terms_adjoint(curvature, terms[1 : 1 + dim], mode, axis=0)
        out[1 : 1 + dim] = [out[1 + a] + first[a] for a in range(dim)]
    return torch.stack(out)


def _grad_base_weight(grad, terms, dim: int, mode: str) -> torch.Tensor:
    """∂loss/∂w_b [n, m] = Σ_points Σ_d ∂φ^(d)·silu^(d)."""
    adjoints = _phi_adjoints(grad, terms, dim, mode)
    silu = silu_derivatives(terms[0], len(adjoints) - 1)
    return sum((adjoint * silu[d]).sum(2) for d, adjoint in enumerate(adjoints)).T


def _grad_table(grad, terms, column, s, table, order: int, dim: int, mode: str) -> torch.Tensor:
    """∂loss/∂table [k+1, m, n·(cells+1)]: Σ_d ∂φ^(d)·e_{p−d} per point, summed per knot cell."""
    adjoints = _phi_adjoints(grad, terms, dim, mode)
    powers = _powers(s, order)
    per_point = []
    for p in range(order + 1):
        rows = [adjoint * powers[p - d] for d, adjoint in enumerate(adjoints) if d <= p]
        per_point.append(sum(rows[1:], rows[0]))  # [m, n, N]
    per_point = torch.stack(per_point).flatten(2)
    return torch.zeros_like(table).index_add_(2, column.flatten(), per_point)


_KERNELS: dict[str, object] = {}
_FAILED: list[str] = []  # the reason compiling failed once: every layer stays eager from then on


def _kernel(name: str):
    if name not in _KERNELS:
        function = {"forward": _forward, "terms": _grad_terms, "base": _grad_base_weight, "table": _grad_table}[name]
        _KERNELS[name] = torch.compile(function, dynamic=True)
    return _KERNELS[name]


class _FusedLayerJet(torch.autograd.Function):
    """The output jet stack [N, T, m] of a KAN layer (as :class:`_LayerJet`), by the compiled kernels."""

    @staticmethod
    def forward(ctx, stack: torch.Tensor, table: torch.Tensor, base_weight: torch.Tensor, knots: torch.Tensor,
                uniform: bool, order: int, dim: int, mode: str) -> torch.Tensor:
        # plain tensors whether or not they are parameters or need gradients (training, evaluation): each of
        # these properties is a guard of torch.compile, and a change would compile the kernel again
        terms = stack.permute(1, 2, 0).contiguous().detach()  # [T, n, N]; a view when the stack came from a layer
        table, base_weight = table.detach(), base_weight.detach()
        column, s = splines.cell_columns(terms[0], knots, uniform)  # eager: a binary search on moved knots
        out = _kernel("forward")(terms, column, s, table, base_weight, order, dim, mode)
        ctx.save_for_backward(terms, column, s, table, base_weight)
        ctx.spec = (order, dim, mode)
        return out.permute(2, 0, 1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        terms, column, s, table, base_weight = ctx.saved_tensors
        _, dim, mode = ctx.spec
        grad = grad.permute(1, 2, 0).contiguous()  # [T, m, N]
        wanted = ctx.needs_input_grad
        grad_stack = grad_table = grad_base = None
        if wanted[0]:
            grad_stack = _kernel("terms")(grad, terms, column, s, table, base_weight, *ctx.spec).permute(2, 0, 1)
        if wanted[1]:
            grad_table = _kernel("table")(grad, terms, column, s, table, *ctx.spec)
        if wanted[2]:
            grad_base = _kernel("base")(grad, terms, dim, mode)
        return grad_stack, grad_table, grad_base, None, None, None, None, None


_CHECKED: set[tuple] = set()
_ACTIVE = [0]  # > 0 inside :func:`enabled`


@contextlib.contextmanager
def enabled() -> Iterator[None]:
    """KAN layers jet through the compiled kernels inside this context (``train.compile``)."""
    _ACTIVE[0] += 1
    try:
        yield
    finally:
        _ACTIVE[0] -= 1


def layer_jet(u: Jet, table: torch.Tensor, base_weight: torch.Tensor, knots: torch.Tensor, uniform: bool,
              order: int) -> torch.Tensor | None:
    """The layer's output stack by the compiled kernels, or None where the eager layer does it: outside
    :func:`enabled`; for a single point, input or output (e.g. a network's output layer [n → 1]: it gains
    little, and compiling a kernel for each such size would cost more); or when compiling failed, now or
    before (one warning on stderr, e.g. no C++ compiler for torch.compile to use).

    The first call for a jet mode, dimension, order, dtype and device also runs the backward kernels once, so
    that a compilation that fails does so here, where the eager layer can still take over."""
    if not _ACTIVE[0] or _FAILED or min(u.stack.shape[0], u.stack.shape[2], table.shape[1]) < 2:
        return None
    key = (u.mode, u.dim, order, table.dtype, table.device.type)
    try:
        if key not in _CHECKED:
            with torch.enable_grad():
                inputs = [part.detach().requires_grad_() for part in (u.stack, table, base_weight)]
                probe = _FusedLayerJet.apply(*inputs, knots, uniform, order, u.dim, u.mode)
                torch.autograd.grad(probe.sum(), inputs)
            _CHECKED.add(key)
        return _FusedLayerJet.apply(u.stack, table, base_weight, knots, uniform, order, u.dim, u.mode)
    except Exception as error:  # noqa: BLE001 - the formulas are tested eagerly; here only the compiler can fail
        reason = first_line(error)
        _FAILED.append(reason)
        print(f"kanpde: warning: train.compile: compiling the KAN layer jet failed ({reason}); "
              "KAN layers run eagerly", file=sys.stderr)
        return None


__all__ = ["enabled", "layer_jet"]
