"""``train.compile`` for KANs: a KAN layer's second-order jet as compiled, fused kernels.

The eager layer (:class:`~kanpde.nets.kan._LayerJet`) makes one pass over memory per operation on
[d, m, n, N] arrays: φ, φ′, φ″ of every edge at every point, the chain rule, and in the backward their
adjoints, each one materialised. Here the same formulas are written as broadcasts and reductions over the
edges, with (Taylor's formula on the knot cell of h_i, as in the eager layer)

    φ^(d)_ji(h_i) = Σ_r b_{d+r}·e_r + w_b·silu^(d)(h_i),   e_r = s^r/r!,   s = h_i − t_cell,

and ``torch.compile`` turns each of these into one loop nest that keeps φ^(d) in registers:

    forward       y_t[j] = Σ_i chain rule of φ^(d)_ji with the input terms
    backward      ∂/∂(input terms) = Σ_j …,  ∂/∂w_b = Σ_points …,  ∂/∂table: scattered per knot cell

The arrays that cross memory are the jets, never the [d, m, n, N] edge arrays; each backward kernel
recomputes what it needs from the jets, so no two kernels share a large intermediate.

Two layouts, because the compiled loops vectorise along the innermost axis. **Points first** (jets
[N, T, n], the table by rows [n·(cells+1), k+1, m]) puts the outputs innermost: a point's cell then selects
k+1 contiguous rows, loaded as vectors, where points last would gather every coefficient on its own. The
forward and the table's scatter of a layer with at least ``_BY_POINT_OUTPUTS`` outputs run so. The reductions
over the outputs (the input terms' gradient, w_b's) and narrow layers, the output layer [n → 1] among them,
run **points last** ([T, n, N]), vectorised over the points. docs/benchmarks.md, "Kernels points first".

Shapes are compiled symbolically: one compilation per kernel, jet mode, dimension and spline order serves
every layer and every number of points, plus one per kernel for the size 1 of an output layer (Burgers' KAN
[2,10,10,1]: eight graphs, 35–45 s on a 2-core CPU with an empty cache, 8–16 s once torch's cache in /tmp
holds their builds). A jet of the network's inputs (``seed_scale`` set) is taken as the ordinary jet it
is. The knot cells are found eagerly (a division on a uniform grid, a binary search on knots that grid updates
moved). Layers with one input and jets of one point keep the eager path.
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
    (``table`` [k+1, m, n·(cells+1)] as in :class:`~kanpde.nets.kan._LayerJet`), points last."""
    b = [table[p][:, column] for p in range(order + 1)]  # b_p of every edge on its point's cell, [m, n, N]
    return _taylor(b, _powers(s, order), silu_derivatives(h, count - 1), base_weight.T[:, :, None], order, count)


def _edges_by_point(h: torch.Tensor, row: torch.Tensor, s: torch.Tensor, table: torch.Tensor,
                    base_weight: torch.Tensor, order: int, count: int) -> list[torch.Tensor]:
    """φ^(d)_ji(h_i) for d < ``count``, each [N, n, m], points first: ``h``, ``row``, ``s`` [N, n] and the
    table by rows, [n·(cells+1), k+1, m] (row i·(cells+1) + c: the k+1 coefficients of every output on cell c).
    A point's k+1 rows are contiguous over the outputs, so the kernel loads them as vectors."""
    b = table[row]  # [N, n, k+1, m]
    powers = [e[..., None] for e in _powers(s, order)]
    silu = [f[..., None] for f in silu_derivatives(h, count - 1)]
    return _taylor(b.unbind(2), powers, silu, base_weight, order, count)


def _taylor(b, powers, silu, weight, order: int, count: int) -> list[torch.Tensor]:
    """φ^(d) = Σ_r b_{d+r}·e_r + w_b·silu^(d) for d < ``count`` (any broadcastable layout)."""
    phi = []
    for d in range(count):
        edge = weight * silu[d]
        for r in range(order + 1 - d):
            edge = edge + b[d + r] * powers[r]
        phi.append(edge)
    return phi


def _curvatures(terms: torch.Tensor, dim: int, mode: str) -> torch.Tensor:
    """The products of first derivatives that φ″ multiplies (:func:`outer_terms`), stacked along dim 0."""
    first = terms[1 : 1 + dim]
    return outer_terms(first, first, mode, axis=0)


def _by_point(stack: torch.Tensor) -> torch.Tensor:
    """The input terms of a jet stack [N, T, n], points first and broadcast over the outputs: [T, N, n, 1]."""
    return stack.transpose(0, 1)[..., None]


def _chain_rule(phi: list[torch.Tensor], terms: torch.Tensor, dim: int, mode: str) -> list[torch.Tensor]:
    """The output terms of y_j = Σ_i φ_ji(u_i) (the chain rule of :meth:`Jet.edge_sum`), summed over the inputs
    (dim 1 of φ^(d): [m, n, N] with ``terms`` [T, n, N], or [N, n, m] with [T, N, n, 1])."""
    out = [phi[0].sum(1)] + [(phi[1] * terms[t]).sum(1) for t in range(1, terms.shape[0])]
    for index, product in enumerate(_curvatures(terms, dim, mode)):  # φ′·∂²u + φ″·∂u∂u
        out[1 + dim + index] = out[1 + dim + index] + (phi[2] * product).sum(1)
    return out


def _forward(terms, column, s, table, base_weight, order: int, dim: int, mode: str) -> torch.Tensor:
    """Output terms [T, m, N], points last: ``terms`` [T, n, N], ``table`` [k+1, m, n·(cells+1)]."""
    phi = _edges(terms[0], column, s, table, base_weight, order, 2 + _second_order(terms.shape[0], dim))
    return torch.stack(_chain_rule(phi, terms, dim, mode))


def _forward_by_point(stack, row, s, table, base_weight, order: int, dim: int, mode: str) -> torch.Tensor:
    """The output stack [N, T, m], points first: ``stack`` [N, T, n], ``table`` by rows (:func:`_edges_by_point`)."""
    phi = _edges_by_point(stack[:, 0], row, s, table, base_weight, order, 2 + _second_order(stack.shape[1], dim))
    return torch.stack(_chain_rule(phi, _by_point(stack), dim, mode), 1)


def _second_order(count: int, dim: int) -> bool:
    """Whether a jet of ``count`` terms over ``dim`` inputs has second-order terms (φ″ is needed)."""
    return count > 1 + dim


def _phi_adjoints(grad: torch.Tensor, terms: torch.Tensor, dim: int, mode: str) -> list[torch.Tensor]:
    """∂loss/∂φ^(d) (broadcast over the edges) from ∂loss/∂(output terms) ``grad``, either layout: points
    last, ``grad`` [T, m, 1, N] and ``terms`` [T, n, N]; points first, [T, N, 1, m] and [T, N, n, 1]."""
    adjoints = [grad[0], sum(grad[t] * terms[t] for t in range(1, terms.shape[0]))]
    curvature = _curvatures(terms, dim, mode)
    if len(curvature):
        adjoints.append(sum(grad[1 + dim + index] * product for index, product in enumerate(curvature)))
    return adjoints


def _grad_terms(grad, terms, column, s, table, base_weight, order: int, dim: int, mode: str) -> torch.Tensor:
    """∂loss/∂(input terms) [T, n, N], points last (a reduction over the outputs, which points first would
    make the vectorised axis): ∂φ^(d)/∂h = φ^(d+1) for the value, the chain rule's adjoint for the rest."""
    grad = grad[:, :, None]  # [T, m, 1, N]
    adjoints = _phi_adjoints(grad, terms, dim, mode)
    phi = _edges(terms[0], column, s, table, base_weight, order, len(adjoints) + 1)
    out = [sum(adjoint * phi[d + 1] for d, adjoint in enumerate(adjoints)).sum(0)]
    out += [(grad[t] * phi[1]).sum(0) for t in range(1, terms.shape[0])]
    if len(adjoints) > 2:  # through φ″·∂u∂u to the first derivatives
        second = grad[1 + dim :]
        curvature = torch.stack([(second[index] * phi[2]).sum(0) for index in range(second.shape[0])])
        first = outer_terms_adjoint(curvature, terms[1 : 1 + dim], mode, axis=0)
        out[1 : 1 + dim] = [out[1 + a] + first[a] for a in range(dim)]
    return torch.stack(out)


def _grad_base_weight(grad, terms, dim: int, mode: str) -> torch.Tensor:
    """∂loss/∂w_b [n, m] = Σ_points Σ_d ∂φ^(d)·silu^(d), points last."""
    adjoints = _phi_adjoints(grad[:, :, None], terms, dim, mode)
    silu = silu_derivatives(terms[0], len(adjoints) - 1)
    return sum((adjoint * silu[d]).sum(2) for d, adjoint in enumerate(adjoints)).T


def _table_rows(adjoints: list[torch.Tensor], powers: list[torch.Tensor], order: int) -> list[torch.Tensor]:
    """∂loss/∂b_p = Σ_d ∂φ^(d)·e_{p−d} at every point, for p = 0 … k (either layout)."""
    per_point = []
    for p in range(order + 1):
        rows = [adjoint * powers[p - d] for d, adjoint in enumerate(adjoints) if d <= p]
        per_point.append(sum(rows[1:], rows[0]))
    return per_point


def _grad_table(grad, terms, column, s, table, order: int, dim: int, mode: str) -> torch.Tensor:
    """∂loss/∂table [k+1, m, n·(cells+1)], points last: the rows [m, n, N] of every point summed per knot cell."""
    per_point = _table_rows(_phi_adjoints(grad[:, :, None], terms, dim, mode), _powers(s, order), order)
    return torch.zeros_like(table).index_add_(2, column.flatten(), torch.stack(per_point).flatten(2))


def _grad_table_by_point(grad, stack, row, s, table, order: int, dim: int, mode: str) -> torch.Tensor:
    """∂loss/∂table [n·(cells+1), k+1, m], points first (``grad`` [N, T, m]): every point's k+1 rows added to
    its cell's, each a vector over the outputs."""
    adjoints = _phi_adjoints(grad.transpose(0, 1)[:, :, None], _by_point(stack), dim, mode)  # [N, n, m]
    per_point = _table_rows(adjoints, [e[..., None] for e in _powers(s, order)], order)
    return torch.zeros_like(table).index_add_(0, row.flatten(), torch.stack(per_point, 2).flatten(0, 1))


_KERNELS: dict[tuple[str, str], object] = {}  # (kernel, device type) → its compiled function
_FAILED: list[str] = []  # the reason compiling failed once: every layer stays eager from then on

_RECOMPUTE = {"realize_reads_threshold": 100, "realize_cpu_opcount_threshold": 1000,
              "realize_cpu_acc_reads_threshold": 100}
_SERIAL = {"cpp.threads": 1}
_CPU_OPTIONS = {"forward": _RECOMPUTE, "forward_by_point": _RECOMPUTE, "terms": _RECOMPUTE,
                "table": _SERIAL, "table_by_point": _SERIAL}
"""Inductor options per kernel on a CPU (docs/benchmarks.md, "Kernels points first"); options this torch does not
know are left out.

- Recompute: where every φ^(d) feeds several sums (the forward's output terms, the input terms' gradient),
  inductor by default stores it ([m, n, N]) once it is read often enough or costs enough operations; recomputed
  in registers instead, those kernels take about 0.7× the time.
- Serial: the table's gradient sums every point into a small table; run on several threads, each of those
  additions is atomic, and the Burgers step at 2 threads took 1.5× as long as with these two kernels serial."""


def _kernel(name: str, device: torch.device):
    key = (name, device.type)
    if key not in _KERNELS:
        function = {"forward": _forward, "forward_by_point": _forward_by_point, "terms": _grad_terms,
                    "base": _grad_base_weight, "table": _grad_table, "table_by_point": _grad_table_by_point}[name]
        options = None
        if device.type == "cpu" and name in _CPU_OPTIONS:
            from torch._inductor import list_options  # imported by torch.compile in any case

            known = set(list_options())
            options = {option: value for option, value in _CPU_OPTIONS[name].items() if option in known} or None
        _KERNELS[key] = torch.compile(function, dynamic=True, options=options)
    return _KERNELS[key]


_BY_POINT_OUTPUTS = 4


def _by_point_layout(outputs: int) -> bool:
    """Whether a layer's kernels run points first: where its outputs fill a good part of a vector register
    (the kernels vectorise over them); narrower layers, the output layer [n → 1] among them, run points last,
    vectorised over the points (docs/benchmarks.md, "Kernels points first")."""
    return outputs >= _BY_POINT_OUTPUTS


class _FusedLayerJet(torch.autograd.Function):
    """The output jet stack [N, T, m] of a KAN layer (as :class:`_LayerJet`), by the compiled kernels."""

    @staticmethod
    def forward(ctx, stack: torch.Tensor, table: torch.Tensor, base_weight: torch.Tensor, knots: torch.Tensor,
                uniform: bool, order: int, dim: int, mode: str) -> torch.Tensor:
        # plain tensors whether or not they are parameters or need gradients (training, evaluation): each of
        # these properties is a guard of torch.compile, and a change would compile the kernel again
        stack, table, base_weight = stack.detach(), table.detach(), base_weight.detach()
        ctx.spec, ctx.by_point = (order, dim, mode), _by_point_layout(table.shape[2])
        if ctx.by_point:
            stack = stack.contiguous()  # [N, T, n], as it is when it came from a layer
            row, s = (part.T for part in splines.cell_columns(stack[:, 0].T, knots, uniform))  # [N, n]
            ctx.save_for_backward(stack, row, s, table, base_weight)
            return _kernel("forward_by_point", stack.device)(stack, row, s, table, base_weight, *ctx.spec)
        terms, table = stack.permute(1, 2, 0).contiguous(), table.permute(1, 2, 0).contiguous()
        column, s = splines.cell_columns(terms[0], knots, uniform)  # eager: a binary search on moved knots
        ctx.save_for_backward(terms, column, s, table, base_weight)
        return _kernel("forward", stack.device)(terms, column, s, table, base_weight, *ctx.spec).permute(2, 0, 1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        wanted, spec = ctx.needs_input_grad, ctx.spec
        grad_stack = grad_table = grad_base = None
        if ctx.by_point:
            stack, row, s, table, base_weight = ctx.saved_tensors
            if wanted[1]:
                grad_table = _kernel("table_by_point", grad.device)(grad.contiguous(), stack, row, s, table,
                                                                    *spec)
            # the reductions over the outputs (input terms, w_b) run points last
            terms = stack.permute(1, 2, 0).contiguous()
            if wanted[0]:  # the rest only for the input terms' gradient (a first layer's is not wanted)
                column, s, table = row.T.contiguous(), s.T.contiguous(), table.permute(1, 2, 0).contiguous()
        else:
            terms, column, s, table, base_weight = ctx.saved_tensors
        grad = grad.permute(1, 2, 0).contiguous()  # [T, m, N]
        if wanted[1] and not ctx.by_point:
            grad_table = _kernel("table", grad.device)(grad, terms, column, s, table, *spec).permute(2, 0, 1)
        if wanted[0]:
            grad_stack = _kernel("terms", grad.device)(grad, terms, column, s, table, base_weight, *spec)
            grad_stack = grad_stack.permute(2, 0, 1)
        if wanted[2]:
            grad_base = _kernel("base", grad.device)(grad, terms, spec[1], spec[2])
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


def applies(u: Jet, outputs: int) -> bool:
    """Whether a layer with ``outputs`` outputs takes the jet ``u`` through the kernels: inside :func:`enabled`,
    unless compiling failed before, for several points and inputs. torch.compile specialises a size of 1; of
    those only one output (a network's output layer) is taken, at the cost of its own compilations."""
    return bool(_ACTIVE[0]) and not _FAILED and min(u.stack.shape[0], u.stack.shape[2]) >= 2


def layer_jet(u: Jet, table: torch.Tensor, base_weight: torch.Tensor, knots: torch.Tensor, uniform: bool,
              order: int) -> torch.Tensor | None:
    """The layer's output stack by the compiled kernels where :func:`applies` (``table`` by rows,
    [n·(cells+1), k+1, m]: :func:`_edges_by_point`), or None when compiling fails, now or before (one warning
    on stderr, e.g. no C++ compiler for torch.compile to use): the eager layer does it then.

    The first call for a jet mode, dimension, order, dtype, device and kind of layer (points first, points last,
    one output) also runs the backward kernels once, so that a compilation that fails does so here, where the
    eager layer can still take over."""
    if _FAILED:
        return None
    outputs = table.shape[2]
    key = (u.mode, u.dim, order, table.dtype, table.device.type, _by_point_layout(outputs), outputs == 1)
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


__all__ = ["applies", "enabled", "layer_jet"]
