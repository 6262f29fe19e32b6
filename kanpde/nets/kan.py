"""Kolmogorov–Arnold Network: a learnable univariate function on every edge, sums on the nodes.

Layer l maps n_in → n_out by (KAN paper, eq. 2.10)

    y_j = Σ_i φ_ji(x_i),   φ_ji(s) = w_b[i,j]·silu(s) + w_s[i,j]·Σ_m c[i,m,j]·B_m(s).

Only k+1 B-splines are non-zero at a point, so a layer gathers for each point the k+1
coefficients it needs and contracts them with the local bases (and their derivatives,
for jets) in one batched product: the cost does not depend on the grid size G.
Parameters per layer: n_in·n_out·(G + k + 2).

Jets (training) go through :class:`_LayerJet`, an autograd function with a hand-written
backward: a table holds per knot cell the Taylor coefficients of every edge spline (w_s and
the factorials folded in), so one gather and k+1 fused multiply-adds give φ, φ', φ'' (and
the third derivative, for the backward) of all edges, computed points-last so that every
pass runs along the N points; the backward is a few products and one ``index_add_`` instead
of the hundreds of small operators autograd would record. The plain forward (value only)
stays ordinary differentiable torch code, so nested autograd (the reference) can
differentiate it as often as it likes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from kanpde import splines
from kanpde.jet import Jet, outer_terms, outer_terms_adjoint, pure_to_second, second_to_pure
from kanpde.nets import fused_kan, knots
from kanpde.nets.base import JetModule, Sequential, check_width, silu_derivatives
from kanpde.nets.library import NAMES, affine_derivatives
from kanpde.taylor import TaylorJet
from kanpde.univariate import silu_series


class _LayerJet(torch.autograd.Function):
    """The output jet stack [N, T, m] of a KAN layer from its input jet ``u``, its ``table`` and w_b.

    ``table`` [k+1, m, n·(cells+1)]: entry (p, j, i·(cells+1) + c) is the Taylor coefficient
    b_p = p!·a_p of the spline w_s·Σ_m c_m B_m of edge (i, j) on knot cell c, a polynomial
    Σ_p a_p s^p in s = h − t_c; the entries of cell c = cells are zero (points outside the knots).
    With e_r = s^r/r! the edge functions and their derivatives are (Taylor's formula)

        φ^(d) = Σ_r b_{d+r}·e_r + w_b·silu^(d)(h),

    k+1 fused multiply-adds, then the chain rule (as :meth:`Jet.edge_sum`). Everything inside works
    points-last ([terms, channels, N] in memory): every elementwise pass then runs along the N
    points, however few the channels; the output is a [N, T, m] view of that memory, which the
    next layer takes as it is. Backward, in closed form: the table gets Σ_d ∂φ^(d)·e_{p−d}
    scattered by one ``index_add_``, w_b gets Σ ∂φ^(d)·silu^(d), the input value Σ_d ∂φ^(d)·φ^(d+1),
    and the input derivatives the adjoint of the chain rule.
    """

    @staticmethod
    def forward(ctx, stack: torch.Tensor, table: torch.Tensor, base_weight: torch.Tensor, u: Jet,
                layer: KANLayer) -> torch.Tensor:
        terms = stack.permute(1, 2, 0).contiguous()  # [T, n, N]; a view when the stack came from a layer
        h = terms[0]
        n, points = h.shape
        k = layer.order
        cell, s = splines.cell_columns(h, layer.knots, layer.uniform)  # the table's column per point, [n, N]
        derivatives = 1 if u.mode == "none" else 2
        count = derivatives + 1 + ctx.needs_input_grad[0]  # orders of φ: one more for ∂/∂h
        powers = [s][:k]  # e_1 … e_k, [n, N]
        for r in range(2, k + 1):
            powers.append(torch.mul(powers[-1], s).mul_(1 / r))
        silu = h.new_empty(count, n, points)
        silu_derivatives(h, count - 1, out=silu.unbind(0))
        columns = cell.reshape(1, 1, -1).expand(table.shape[0], table.shape[1], -1)  # no copy
        coefficients = torch.gather(table, 2, columns).view(k + 1, -1, n, points)  # [k+1 (p), m, n, N]
        weight = base_weight.T[:, :, None]  # [m, n, 1]
        direct = min(count, k + 1)  # e_0 = 1: φ^(d) starts from b_d + w_b·silu^(d)
        if direct == count:
            phi = torch.addcmul(coefficients[:count], silu[:, None], weight)  # [count (d), m, n, N]
        else:
            phi = silu[:, None] * weight
            phi[:direct] += coefficients[:direct]
        for r in range(1, k + 1):
            orders = min(count, k + 1 - r)
            phi[:orders].addcmul_(powers[r - 1], coefficients[r : r + orders])
        ctx.save_for_backward(terms, cell, silu, phi, *powers)
        ctx.jet, ctx.derivatives, ctx.table_shape = u, derivatives, table.shape
        return _chain_rule(terms, phi, u, derivatives).permute(2, 0, 1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        terms, cell, silu, phi, *powers = ctx.saved_tensors
        u, derivatives = ctx.jet, ctx.derivatives
        grad = grad.permute(1, 2, 0).contiguous()  # [T, m, N]
        dim, (_, n, points), m, k = u.dim, terms.shape, grad.shape[1], len(powers)
        orders = derivatives + 1
        # ∂loss/∂φ^(d) [orders, m, n, N], stored as the first rows of ∂loss/∂b_p (their e_0 = 1 terms)
        per_point = phi.new_empty(max(orders, k + 1), m, n, points)
        grad_phi = per_point[:orders]
        grad_phi[0] = grad[0, :, None]  # value: Σ_i φ_i
        if u.seed_scale is not None:  # first derivatives s_a φ'_a, second s_a² φ''_a
            scale = u.seed_scale[:, None]
            torch.mul(grad[1 : 1 + dim].transpose(0, 1), scale, out=grad_phi[1])
            if derivatives == 2:
                second = second_to_pure(grad[1 + dim :], u.mode, dim, axis=0).transpose(0, 1)  # [m, D, N]
                torch.mul(second, scale * scale, out=grad_phi[2])
        else:  # ∂φ' = Σ_t ∂u_t·Γ_t over first and second terms, ∂φ'' = Σ_s (∂u∂u)_s·Γ_s
            _accumulate(grad_phi[1], terms[1:], grad[1:])
            if derivatives == 2:
                _accumulate(grad_phi[2], _outer(terms, dim, u.mode), grad[1 + dim :])
        grad_stack = grad_table = grad_base = None
        if ctx.needs_input_grad[0]:
            grad_terms = torch.empty_like(terms)
            torch.sum(grad_phi * phi[1:], dim=(0, 1), out=grad_terms[0])  # ∂φ^(d)/∂h = φ^(d+1)
            if u.seed_scale is not None:  # the forward took the seed's derivatives as the constants they are
                grad_terms[1:] = 0
            else:
                _transpose_accumulate(grad_terms[1:], grad[1:], phi[1])  # Γ_t·φ' for first and second terms
                if derivatives == 2:  # Γ_s·φ'' through the products of first derivatives
                    curvature = torch.empty_like(terms[1 + dim :])
                    _transpose_accumulate(curvature, grad[1 + dim :], phi[2])
                    grad_terms[1 : 1 + dim] += outer_terms_adjoint(curvature, terms[1 : 1 + dim], u.mode, axis=0)
            grad_stack = grad_terms.permute(2, 0, 1)
        if ctx.needs_input_grad[2]:
            grad_base = (grad_phi * silu[:orders, None]).sum((0, 3)).T
        if ctx.needs_input_grad[1]:  # ∂loss/∂b_p = Σ_d ∂φ^(d)·e_{p−d}, per point, then summed per cell
            per_point[orders:] = 0
            for p in range(k, 0, -1):  # in place, from the top: row p reads the rows below it only
                for d in range(min(p, orders)):
                    per_point[p].addcmul_(powers[p - d - 1], per_point[d])
            grad_table = phi.new_zeros(ctx.table_shape).index_add_(
                2, cell.reshape(-1), per_point[: k + 1].reshape(k + 1, m, -1))
        return grad_stack, grad_table, grad_base, None, None


def _outer(terms: torch.Tensor, dim: int, mode: str) -> torch.Tensor:
    """:func:`outer_terms` of the first derivatives in points-last layout: [S, n, N]."""
    first = terms[1 : 1 + dim]
    return outer_terms(first, first, mode, axis=0)


def _accumulate(out: torch.Tensor, factors: torch.Tensor, weights: torch.Tensor) -> None:
    """out[j, i, N] = Σ_t factors[t, i, N]·weights[t, j, N] (``out`` [m, n, N])."""
    torch.mul(factors[0], weights[0, :, None], out=out)
    for t in range(1, factors.shape[0]):
        out.addcmul_(factors[t], weights[t, :, None])


def _transpose_accumulate(out: torch.Tensor, weights: torch.Tensor, phi: torch.Tensor) -> None:
    """out[t, i, N] (+)= Σ_j weights[t, j, N]·phi[j, i, N] (``out`` [T', n, N], ``phi`` [m, n, N])."""
    torch.mul(weights[:, 0, None], phi[0], out=out)
    for j in range(1, phi.shape[0]):
        out.addcmul_(weights[:, j, None], phi[j])


def _chain_rule(terms: torch.Tensor, phi: torch.Tensor, u: Jet, derivatives: int) -> torch.Tensor:
    """The output terms [T, m, N] of y_j = Σ_i φ_ji(u_i) from the input terms [T, n, N] and
    φ^(d) [d, m, n, N], points-last (the chain rule of :meth:`Jet.edge_sum`)."""
    dim, m, points = u.dim, phi.shape[1], phi.shape[3]
    out = phi.new_empty(terms.shape[0], m, points)
    torch.sum(phi[0], dim=1, out=out[0])
    if u.seed_scale is not None:  # ∂u_i/∂x_a = s_a δ_ia and ∂²u = 0: the edges' own derivatives
        scale = u.seed_scale[:, None]
        torch.mul(phi[1], scale, out=out[1 : 1 + dim].transpose(0, 1))
        if derivatives == 2:
            out[1 + dim :] = pure_to_second(phi[2] * (scale * scale), u.mode).transpose(0, 1)  # phi[2]: [m, D, N]
        return out
    linear = out[1:]  # φ'·∂u and φ'·∂²u
    _product_sum(linear, terms[1:], phi[1])
    if derivatives == 2:  # + φ''·∂u∂u
        linear[dim:] += _product_sum(torch.empty_like(linear[dim:]), _outer(terms, dim, u.mode), phi[2])
    return out


def _product_sum(out: torch.Tensor, factors: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """out[t, j, N] = Σ_i factors[t, i, N]·phi[j, i, N] (``factors`` [T', n, N], ``phi`` [m, n, N])."""
    if phi.shape[0] == 1:  # one output: a product and a sum over i
        return torch.sum(factors * phi, dim=1, keepdim=True, out=out)
    torch.mul(factors[:, None, 0], phi[:, 0], out=out)
    for i in range(1, phi.shape[1]):
        out.addcmul_(factors[:, None, i], phi[:, i])
    return out


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: must be a positive integer, got {value!r}")
    return value


class KANLayer(JetModule):
    """One KAN layer with ``n_in``·``n_out`` edge functions on a grid of ``grid`` intervals."""

    def __init__(self, n_in: int, n_out: int, grid: int = 5, order: int = 3,
                 grid_range: tuple[float, float] = (-1.0, 1.0), noise_scale: float = 0.3):
        super().__init__()
        self.in_features, self.out_features, self.order = n_in, n_out, order
        lo, hi = (torch.full((n_in,), float(bound)) for bound in grid_range)
        self.register_buffer("knots", None)
        self.register_buffer("cell_basis", None, persistent=False)  # derived from the knots
        self._set_knots(splines.uniform_grid(lo, hi, grid, order))
        # initialisation in the spirit of the KAN paper: small spline noise, w_b ~ U(−1, 1)/√n_in
        self.coef = nn.Parameter((torch.rand(n_in, grid + order, n_out) - 0.5) * noise_scale / grid)
        self.base_weight = nn.Parameter((2 * torch.rand(n_in, n_out) - 1) / math.sqrt(n_in))
        self.spline_weight = nn.Parameter(torch.ones(n_in, n_out) / math.sqrt(n_in))
        # sparse / snapped edges (symbolic discovery, kanpde.nets.sparse): absent unless used, so a plain KAN's
        # state and forward are unchanged. edge_mask [n_in, n_out]: 1 = spline edge, 0 = removed or snapped;
        # snap_function: index into library.NAMES or −1; snap_affine: (a, b, c, d) of a·f(b·s + c) + d
        self.register_buffer("edge_mask", None)
        self.register_buffer("snap_function", None)
        self.register_parameter("snap_affine", None)

    @property
    def grid(self) -> int:
        return self.knots.shape[1] - 2 * self.order - 1

    def enable_edge_state(self) -> None:
        """Create the edge mask and the (empty) snapped-edge parameters, if not there yet."""
        if self.edge_mask is None:
            shape = (self.in_features, self.out_features)
            self.edge_mask = self.coef.new_ones(shape)
            self.snap_function = torch.full(shape, -1, dtype=torch.long, device=self.coef.device)
            self.snap_affine = nn.Parameter(self.coef.new_zeros(*shape, 4))

    def snapped_edges(self) -> list[tuple[int, int, str]]:
        """(i, j, library name) of every snapped edge."""
        if self.snap_function is None:
            return []
        return [(i, j, NAMES[int(self.snap_function[i, j])]) for i, j in (self.snap_function >= 0).nonzero().tolist()]

    def symbolic_derivatives(self, h: torch.Tensor, order: int) -> list[torch.Tensor]:
        """[φ, …, φ^(order)] of the snapped edges at inputs ``h`` [N, n_in], each [N, n_in, n_out] (0 elsewhere)."""
        out = [h.new_zeros(h.shape[0], self.in_features, self.out_features) for _ in range(order + 1)]
        for i, j, name in self.snapped_edges():
            a, b, c, d = self.snap_affine[i, j].unbind(0)
            one_hot = torch.zeros_like(out[0][0])
            one_hot[i, j] = 1
            for k, value in enumerate(affine_derivatives(name, h[:, i], a, b, c, d, order)):
                out[k] = out[k] + value[:, None, None] * one_hot
        return out

    def edge_values(self, h: torch.Tensor) -> torch.Tensor:
        """φ_ji(h_i) of every edge, snapped ones included: [N, n_in, n_out], differentiable."""
        phi = self.edge_derivatives(h, 0)[0]
        return phi + self.symbolic_derivatives(h, 0)[0] if self.snapped_edges() else phi

    @torch.no_grad()
    def apply_mask(self) -> None:
        """Zero the spline and base parameters of masked edges (call after changing the mask)."""
        if self.edge_mask is not None:
            self.coef.mul_(self.edge_mask[:, None, :])
            self.base_weight.mul_(self.edge_mask)
            self.spline_weight.mul_(self.edge_mask)

    def mask_gradients(self) -> None:
        """Zero the gradients of masked edges' parameters, so that Adam and L-BFGS keep them at zero."""
        if self.edge_mask is None:
            return
        for parameter, mask in ((self.coef, self.edge_mask[:, None, :]), (self.base_weight, self.edge_mask),
                                (self.spline_weight, self.edge_mask)):
            if parameter.grad is not None:
                parameter.grad.mul_(mask)
        if self.snap_affine.grad is not None:
            self.snap_affine.grad.mul_((self.snap_function >= 0)[..., None])

    def grid_range(self) -> torch.Tensor:
        """[n_in, 2]: the interval [a, b] each input's grid covers (before the extension)."""
        points = splines.interior(self.knots, self.order)
        return torch.stack([points[:, 0], points[:, -1]], dim=1)

    def _set_knots(self, knots: torch.Tensor) -> None:
        self.knots = knots.contiguous()
        self.uniform = splines.is_uniform(self.knots)
        self.cell_basis = splines.cell_polynomials(self.knots, self.order)

    def cell_coefficients(self, coefficients: torch.Tensor) -> torch.Tensor:
        """[n, cells, k+1 (p), out]: on every knot cell c the spline Σ_m coefficients[i,m,j] B_m as a
        polynomial Σ_p a_p s^p in s = h − t_c (``coefficients`` [n, G+k, out]), computed in the
        dtype of ``coefficients`` (symbolic export asks for float64 whatever the layer's dtype)."""
        k = self.order
        padded = nn.functional.pad(coefficients, (0, 0, k, k))  # zero rows for bases that do not exist
        windows = padded.unfold(1, k + 1, 1)  # [n, cells, out, k+1 (r)]: the bases alive on each cell
        return torch.einsum("icrp,icjr->icpj", self.cell_basis.to(coefficients.dtype), windows)

    def _cell_table(self, by_row: bool = False) -> torch.Tensor:
        """The table of :class:`_LayerJet`, [k+1, out, n·(cells+1)]: entry (p, j, i·(cells+1) + c) is
        the Taylor coefficient p!·a_p of w_s·Σ_m c_m B_m = Σ_p a_p s^p of edge (i, j) on knot cell c;
        a zero cell per input for points outside the knots. ``by_row``: the same entries as
        [n·(cells+1), k+1, out], the layout of the compiled kernels (:mod:`kanpde.nets.fused_kan`)."""
        polynomial = self.cell_coefficients(self.spline_weight[:, None, :] * self.coef)  # [n, cells, p, out]
        factorials = polynomial.new_tensor([math.factorial(p) for p in range(self.order + 1)])
        taylor = polynomial * factorials[:, None]
        if by_row:
            return nn.functional.pad(taylor, (0, 0, 0, 0, 0, 1)).flatten(0, 1)  # the outside cell
        return nn.functional.pad(taylor.permute(2, 3, 0, 1), (0, 1)).flatten(2)

    def _edge_polynomials(self, coefficients: torch.Tensor, h: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """For every point and input, its knot cell's polynomial Σ_p a_p s^p in s = h − t_c,
        for all outputs: ([a_0, …, a_k] each [N, n, out], s [N, n, 1]). Points outside the
        knots get the zero polynomial."""
        k = self.order
        cell, inside, s = splines.locate(h, self.knots, self.uniform)
        table = self.cell_coefficients(coefficients).permute(2, 0, 1, 3)  # [k+1 (p), n, cells, out]
        n, cells = table.shape[1:3]
        table = nn.functional.pad(table.reshape(k + 1, n * cells, -1), (0, 0, 0, 1))  # last row: zero
        rows = torch.where(inside, cell + torch.arange(n, device=h.device) * cells, n * cells)
        return list(table[:, rows].unbind(0)), s[..., None]

    def edge_derivatives(self, h: torch.Tensor, order: int) -> list[torch.Tensor]:
        """φ_ji^(d)(h_i) for d = 0 … ``order``, each [N, n, m], in ordinary differentiable torch code.

        On the knot cell of h the spline is Σ_p b_p e_p with e_p = s^p/p!, s = h − t_c (the table of
        :class:`_LayerJet`), so φ^(d) = Σ_r b_{d+r} e_r + w_b·silu^(d)(h); beyond the spline order k
        only the silu part is left (the spline's (k+1)-th derivative vanishes between knots)."""
        k, (points, n), m = self.order, h.shape, self.out_features
        column, s = (part.T for part in splines.cell_columns(h.T, self.knots, self.uniform))  # [N, n]
        table = self._cell_table()  # [k+1 (p), m, n·(cells+1)]
        # b_p [N, n, m]; unbind, not indexing: one backward op instead of a zero-filled copy per slice
        b = table.index_select(2, column.reshape(-1)).view(k + 1, m, points, n).permute(0, 2, 3, 1).unbind(0)
        powers = [s[..., None]]  # e_1 … e_k, [N, n, 1]
        for r in range(2, k + 1):
            powers.append(powers[-1] * s[..., None] / r)
        phi = []
        for d, silu in enumerate(silu_series(h, order)):
            edge = silu[..., None] * self.base_weight
            if d <= k:
                spline = b[d]
                for r in range(1, k - d + 1):
                    spline = spline + b[d + r] * powers[r - 1]
                edge = edge + spline
            phi.append(edge)
        return phi

    def jet_forward(self, u: Jet) -> Jet:
        out = self._spline_jet_forward(u)
        if self.snap_function is None or not bool((self.snap_function >= 0).any()):
            return out
        order = u.order if isinstance(u, TaylorJet) else {"value": 0, "none": 1}.get(u.mode, 2)
        return out + u.edge_sum(self.symbolic_derivatives(u.value, order))

    def _spline_jet_forward(self, u: Jet) -> Jet:
        if isinstance(u, TaylorJet):  # any order: Faà di Bruno with the edges' derivatives, autograd backward
            return u.edge_sum(self.edge_derivatives(u.value, u.order))
        if u.mode != "value":  # closed-form jets with a hand-written backward, or compiled kernels (train.compile)
            if fused_kan.applies(u, self.out_features):
                stack = fused_kan.layer_jet(u, self._cell_table(by_row=True), self.base_weight, self.knots,
                                            self.uniform, self.order)
                if stack is not None:
                    return u._like(stack)
            return u._like(_LayerJet.apply(u.stack, self._cell_table(), self.base_weight, u, self))
        # the plain forward: ordinary torch code, differentiable to any order for nested autograd
        h = u.value
        polynomial, s = self._edge_polynomials(self.spline_weight[:, None, :] * self.coef, h)
        (spline,) = splines.horner(polynomial, s, 0)  # w_s Σ_m c_m B_m(h_i), [N, n, out]
        # φ_ji(h_i) = w_b·silu(h_i) + w_s Σ_m c_m B_m(h_i)
        return u.edge_sum([torch.addcmul(spline, nn.functional.silu(h)[..., None], self.base_weight)])

    def edge_splines(self, h: torch.Tensor) -> torch.Tensor:
        """Σ_m c[i,m,j] B_m(h_i) for every edge, without w_s: [N, n_in, n_out]."""
        polynomial, s = self._edge_polynomials(self.coef, h)
        return splines.horner(polynomial, s, 0)[0]

    @torch.no_grad()
    def refit(self, knots: torch.Tensor, samples: torch.Tensor, ridge: float) -> None:
        """Move to new ``knots``, refitting the splines by least squares on ``samples`` [P, n_in]."""
        coef = splines.fit(samples, self.edge_splines(samples), knots, self.order, ridge)
        self._set_knots(knots)
        self.coef = nn.Parameter(coef.contiguous())

    def range_samples(self, per_interval: int = 4) -> torch.Tensor:
        """Points covering each input's grid range densely enough for an exact refit: [P, n_in]."""
        bounds = self.grid_range()
        count = per_interval * (self.grid + self.order) + 1
        steps = torch.linspace(0, 1, count, dtype=bounds.dtype, device=bounds.device)[:, None]
        return bounds[:, 0] + steps * (bounds[:, 1] - bounds[:, 0])

    def _apply(self, fn, *args, **kwargs):
        precision = torch.finfo(self.knots.dtype).eps
        super()._apply(fn, *args, **kwargs)
        knots = self.knots
        if torch.finfo(knots.dtype).eps < precision and not self.uniform and splines.is_uniform(knots, 10 * precision):
            # a uniform grid rounded to a lower precision: make it uniform in the new one
            bounds = self.grid_range()
            knots = splines.uniform_grid(bounds[:, 0], bounds[:, 1], self.grid, self.order)
        self._set_knots(knots)  # recompute the derived tables in the new dtype / on the new device
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a checkpoint may hold another grid size: take its shapes before loading
        knots, coef = state_dict.get(prefix + "knots"), state_dict.get(prefix + "coef")
        if knots is not None and coef is not None and (knots.shape, coef.shape) != (self.knots.shape, self.coef.shape):
            self._set_knots(torch.empty_like(knots, dtype=self.knots.dtype, device=self.knots.device))
            self.coef = nn.Parameter(torch.empty_like(coef, dtype=self.coef.dtype, device=self.coef.device))
            self.in_features, self.out_features = coef.shape[0], coef.shape[2]  # a pruned network's width
            like = self.coef.new_empty(coef.shape[0], coef.shape[2])
            self.base_weight, self.spline_weight = nn.Parameter(like.clone()), nn.Parameter(like.clone())
        if prefix + "edge_mask" in state_dict:  # a network with pruned or snapped edges
            self.enable_edge_state()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._set_knots(self.knots)

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, grid={self.grid}, order={self.order}"


class KAN(Sequential):
    """A Kolmogorov–Arnold Network ``width`` = [in, hidden..., out], a ``torch.nn.Module``.

    ``grid`` intervals of B-splines of order ``order`` on ``grid_range`` per edge (inputs
    are expected in that range, e.g. mapped to [-1, 1]); ``grid_eps`` mixes a uniform grid
    into the sample-adapted one in :meth:`update_grid` (1 = uniform, 0 = quantiles);
    ``grid_monitor`` chooses how :meth:`update_grid` places knots: "quantile" (activations),
    "arclength" or "curvature" (equidistributing a monitor of the edge functions).
    """

    def __init__(self, width: Sequence[int], grid: int = 5, order: int = 3,
                 grid_range: Sequence[float] = (-1.0, 1.0), grid_eps: float = 0.02,
                 noise_scale: float = 0.3, grid_monitor: str = "quantile"):
        width = check_width(width)
        if grid_monitor not in ("quantile", *knots.MONITORS):
            raise ValueError(f"grid_monitor: must be one of quantile, {', '.join(knots.MONITORS)}, "
                             f"got {grid_monitor!r}")
        _positive_int(grid, "grid")
        if isinstance(order, bool) or not isinstance(order, int) or order < 0:
            raise ValueError(f"order: must be a non-negative integer, got {order!r}")
        if (isinstance(grid_range, (str, bytes)) or len(grid_range) != 2
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in grid_range)
                or not grid_range[0] < grid_range[1]):
            raise ValueError(f"grid_range: must be two finite numbers lo < hi, got {grid_range!r}")
        if not (isinstance(grid_eps, (int, float)) and 0 <= grid_eps <= 1):
            raise ValueError(f"grid_eps: must be a number in [0, 1], got {grid_eps!r}")
        layers = [KANLayer(n_in, n_out, grid, order, tuple(grid_range), noise_scale)
                  for n_in, n_out in zip(width[:-1], width[1:])]
        super().__init__(*layers)
        self.order, self.grid_eps, self.grid_monitor = order, grid_eps, grid_monitor

    @property
    def width(self) -> list[int]:
        """[in, hidden..., out]: read from the layers (pruning changes it)."""
        return [self.layers[0].in_features] + [layer.out_features for layer in self.layers]

    @property
    def grid(self) -> int:
        return self.layers[0].grid

    def _probe(self, x: torch.Tensor | None) -> torch.Tensor:
        if x is not None:
            self._check_input(x)
            return x
        return self.layers[0].range_samples()

    @torch.no_grad()
    def _refit_layers(self, new_knots, x: torch.Tensor | None, exact: bool) -> float:
        """Refit every layer on new knots (``new_knots(layer, samples)``); return the relative
        L2 change of the model output on ``x`` (or on the first layer's grid range).

        ``exact``: the new knots contain the old ones, so the refit on k+1 points in every new
        cell reproduces the old spline to round-off everywhere; otherwise it fits the layer's
        activations of ``x`` (or its grid range) by least squares.
        """
        probe = self._probe(x)
        before = self(probe)
        h = x
        for layer in self.layers:
            if exact:
                knots = new_knots(layer, None)
                layer.refit(knots, splines.cell_samples(knots, self.order), ridge=0.0)
            else:
                samples = layer.range_samples() if h is None else h
                layer.refit(new_knots(layer, samples), samples, ridge=0.0 if h is None else 1e-8)
            h = layer(h) if h is not None else None
        after = self(probe)
        return float(torch.linalg.norm(after - before) / torch.linalg.norm(before).clamp_min(1e-300))

    def extend_grid(self, new_grid: int, x: torch.Tensor | None = None) -> float:
        """Change every layer's grid to ``new_grid`` intervals, keeping the function.

        When ``new_grid`` is a multiple of the current grid the new knots contain the old
        ones (the outer knots are kept) and the function is unchanged everywhere (knot
        insertion, error ~1e-15);
        otherwise the splines are refitted by least squares on the activations of ``x``
        (or on the grid ranges). Returns the relative L2 change of the output on ``x``
        (or on the first layer's grid range). Optimizer state must be rebuilt afterwards.
        """
        _positive_int(new_grid, "new_grid")
        if new_grid == self.grid:
            return 0.0
        nested, old = new_grid % self.grid == 0, self.grid

        def new_knots(layer: KANLayer, samples: torch.Tensor) -> torch.Tensor:
            if nested:
                return splines.refine(layer.knots, self.order, new_grid // layer.grid)
            bounds = layer.grid_range()
            return splines.uniform_grid(bounds[:, 0], bounds[:, 1], new_grid, self.order)

        change = self._refit_layers(new_knots, x, exact=nested)
        if not nested and x is None:
            warnings.warn(f"KAN.extend_grid: G {old} -> {new_grid} is not a refinement of the old grid and no "
                          f"samples x were given, so the splines were refitted on the grid ranges only: the "
                          f"function changed by {change:.1%} (relative L2); pass x (the training inputs) to "
                          "fit where the data are", RuntimeWarning, stacklevel=2)
        return change

    def update_grid(self, x: torch.Tensor, grid_eps: float | None = None) -> float:
        """Adapt every layer's knots to the activations of samples ``x`` (quantiles mixed
        with a uniform grid by ``grid_eps``; or, with ``grid_monitor`` "arclength" or "curvature",
        equidistributing that monitor of the edge functions, :mod:`kanpde.nets.knots`) and refit
        the splines by least squares. Returns the relative L2 change of the output on ``x``."""
        eps = self.grid_eps if grid_eps is None else grid_eps
        self._check_input(x)
        if self.grid_monitor != "quantile":
            return self._refit_layers(
                lambda layer, samples: knots.equidistributed_knots(layer, samples, self.grid_monitor, eps), x,
                exact=False)
        return self._refit_layers(
            lambda layer, samples: splines.grid_from_samples(samples, layer.grid, self.order, eps), x, exact=False)

    def extra_repr(self) -> str:
        return f"width={self.width}, grid={self.grid}, order={self.order}, params={self.num_parameters()}"

    def __repr__(self) -> str:
        return f"KAN({self.extra_repr()})"
