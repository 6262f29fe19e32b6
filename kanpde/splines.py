"""B-splines of order k on extended knots: local bases, derivatives, refinement and fitting.

Every function works on one knot vector per input channel, ``knots`` [n, K], strictly
increasing. A grid of G intervals on [a, b] is extended by k knots on each side, so
K = G + 2k + 1 and there are M = G + k basis functions, indexed by the knot where
their support starts (de Boor's convention, as in the original KAN code).

At a point x in the knot cell [t_c, t_{c+1}) only the k+1 bases B_{c−k} … B_c are
non-zero. :func:`local_basis` computes just those, by the Cox–de Boor recursion on
the 2k+2 surrounding knots, so the cost does not depend on G. On a uniform grid the
cell is found by one division instead of a binary search.

For training, :func:`cell_polynomials` turns the bases into one polynomial per knot cell,
so a spline and its derivatives are evaluated by Horner's rule at any point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def uniform_grid(lo: torch.Tensor, hi: torch.Tensor, grid: int, order: int) -> torch.Tensor:
    """Extended uniform knots [n, G + 2k + 1] for intervals [lo_i, hi_i] split into ``grid`` cells."""
    steps = torch.arange(-order, grid + order + 1, dtype=lo.dtype, device=lo.device)
    return lo[:, None] + steps * ((hi - lo) / grid)[:, None]


def extend_knots(points: torch.Tensor, order: int) -> torch.Tensor:
    """Add ``order`` knots on each side of the grid ``points`` [n, G+1], spaced (b − a)/G."""
    spacing = (points[:, -1:] - points[:, :1]) / (points.shape[1] - 1)
    steps = torch.arange(1, order + 1, dtype=points.dtype, device=points.device)
    return torch.cat([points[:, :1] - steps.flip(0) * spacing, points, points[:, -1:] + steps * spacing], dim=1)


def interior(knots: torch.Tensor, order: int) -> torch.Tensor:
    """The grid points a = t_k < … < t_{G+k} = b without the extension, [n, G+1]."""
    return knots[:, order : knots.shape[1] - order]


def is_uniform(knots: torch.Tensor, rtol: float = 1e-9) -> bool:
    """Whether every knot vector is equally spaced (enables the division cell lookup)."""
    spacing = knots.diff(dim=1)
    return bool(torch.all((spacing - spacing[:, :1]).abs() <= rtol * spacing[:, :1].abs()))


def _pad(knots: torch.Tensor, order: int) -> torch.Tensor:
    """Continue the end spacings by ``order`` knots each side, so every cell has 2k+2 neighbours."""
    left = knots[:, 1:2] - knots[:, :1]
    right = knots[:, -1:] - knots[:, -2:-1]
    steps = torch.arange(1, order + 1, dtype=knots.dtype, device=knots.device)
    return torch.cat([knots[:, :1] - steps.flip(0) * left, knots, knots[:, -1:] + steps * right], dim=1)


def find_cells(x: torch.Tensor, knots: torch.Tensor, uniform: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell index c with t_c ≤ x < t_{c+1} (clamped), and a mask of x inside [t_0, t_{K−1})."""
    first, last = knots[:, 0], knots[:, -1]
    cells = knots.shape[1] - 1
    if uniform:
        index = torch.floor((x - first) / ((last - first) / cells)).long()
    else:
        index = torch.searchsorted(knots, x.T.contiguous(), right=True).T - 1
    inside = (x >= first) & (x < last)
    return index.clamp(0, cells - 1), inside


def locate(x: torch.Tensor, knots: torch.Tensor, uniform: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`find_cells` plus the offset s = x − t_c in the cell: (cell, inside, s), each like ``x``.
    On a uniform grid s comes from the same division as the cell (few passes over x)."""
    if not uniform:
        cell, inside = find_cells(x, knots, uniform)
        offsets = torch.arange(knots.shape[0], device=x.device) * knots.shape[1]
        return cell, inside, x - knots.reshape(-1)[cell + offsets]
    first, last = knots[:, 0], knots[:, -1]
    cells = knots.shape[1] - 1
    width = (last - first) / cells
    shifted = x - first
    inside = (shifted >= 0) & (x < last)
    cell = torch.floor(shifted / width).clamp_(0, cells - 1)
    return cell.long(), inside, torch.addcmul(shifted, cell, width, value=-1)


def cell_columns(h: torch.Tensor, knots: torch.Tensor, uniform: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """For values ``h`` [n, N] (points last), the column of a per-cell table with cells+1 columns per input
    (i·(cells+1) + c; the last one, c = cells, for values outside the knots) and the offset s = h − t_c."""
    cells = knots.shape[1] - 1
    cell, inside, s = (part.T for part in locate(h.T, knots, uniform))
    offsets = torch.arange(h.shape[0], device=h.device)[:, None] * (cells + 1)
    return cell.masked_fill_(~inside, cells).add_(offsets), s


def local_basis(
    x: torch.Tensor, knots: torch.Tensor, order: int, derivatives: int = 0, uniform: bool = False
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The k+1 non-zero B-splines at ``x`` [N, n] and up to ``derivatives`` (≤ 2) derivatives.

    Returns (cell, [B, B', B'']) with ``cell`` [N, n] the index c of the knot cell and each
    B [N, n, k+1], where B[..., r] is basis number c − k + r. Outside [t_0, t_{K−1}) all are zero.
    """
    k = order
    cell, inside = find_cells(x, knots, uniform)
    mask = inside[..., None].to(x.dtype)
    padded = _pad(knots, k)  # padded[:, j + k] = t_j
    n, width = padded.shape
    # knots t_{c−k} … t_{c+k+1} around each point: near[..., m] = t_{c−k+m}
    offsets = torch.arange(2 * k + 2, device=x.device)
    rows = (torch.arange(n, device=x.device) * width)[None, :, None]
    near = padded.reshape(-1)[rows + cell[..., None] + offsets]

    def t(shift: int, count: int) -> torch.Tensor:  # t_{c+shift} … t_{c+shift+count−1}
        return near[..., k + shift : k + shift + count]

    xs = x[..., None]
    levels = [torch.ones_like(xs)]  # levels[p][..., r] = B_{c−p+r, p}
    for p in range(1, k + 1):
        lower = levels[-1]
        zero = torch.zeros_like(xs)
        from_left = torch.cat([zero, lower], dim=-1)  # B_{i, p−1}, i = c−p+r
        from_right = torch.cat([lower, zero], dim=-1)  # B_{i+1, p−1}
        t_i, t_ip, t_i1, t_ip1 = t(-p, p + 1), t(0, p + 1), t(1 - p, p + 1), t(1, p + 1)
        # Cox–de Boor: B_{i,p} = (x−t_i)/(t_{i+p}−t_i) B_{i,p−1} + (t_{i+p+1}−x)/(t_{i+p+1}−t_{i+1}) B_{i+1,p−1}
        levels.append((xs - t_i) / (t_ip - t_i) * from_left + (t_ip1 - xs) / (t_ip1 - t_i1) * from_right)

    def differentiate(values: torch.Tensor, p: int) -> torch.Tensor:
        """Map coefficients on B_{·,p−1} to the derivative of the degree-p bases."""
        zero = torch.zeros_like(values[..., :1])
        from_left, from_right = torch.cat([zero, values], -1), torch.cat([values, zero], -1)
        t_i, t_ip, t_i1, t_ip1 = t(-p, p + 1), t(0, p + 1), t(1 - p, p + 1), t(1, p + 1)
        # B'_{i,p} = p (B_{i,p−1}/(t_{i+p}−t_i) − B_{i+1,p−1}/(t_{i+p+1}−t_{i+1}))
        return p * (from_left / (t_ip - t_i) - from_right / (t_ip1 - t_i1))

    result = [levels[k] * mask]
    for order_of_derivative in range(1, derivatives + 1):
        if order_of_derivative > k:
            result.append(torch.zeros_like(result[0]))
            continue
        values = levels[k - order_of_derivative]
        for p in range(k - order_of_derivative + 1, k + 1):
            values = differentiate(values, p)
        result.append(values * mask)
    return cell, result


def dense_basis(x: torch.Tensor, knots: torch.Tensor, order: int, uniform: bool = False) -> torch.Tensor:
    """All M = K − k − 1 bases at ``x`` [N, n] as a dense tensor [N, n, M] (for fitting and tests)."""
    cell, (values,) = local_basis(x, knots, order, uniform=uniform)
    count = knots.shape[1] - order - 1
    full = x.new_zeros(*x.shape, count + 2 * order)
    columns = cell[..., None] + torch.arange(order + 1, device=x.device)  # padded index of B_{c−k+r}
    return full.scatter(-1, columns, values)[..., order : order + count]


def cell_samples(knots: torch.Tensor, order: int) -> torch.Tensor:
    """k+1 Chebyshev points inside every knot cell [t_c, t_{c+1}), extension included: [P, n].
    A spline on these knots is determined by its values there, so a refit on them is exact
    when the target lies in the same spline space."""
    nodes = (1 - torch.cos(torch.pi * (torch.arange(order + 1, dtype=knots.dtype) + 0.5) / (order + 1))) / 2
    starts, widths = knots[:, :-1, None], knots.diff(dim=1)[..., None]
    return (starts + widths * nodes.to(knots.device)).reshape(knots.shape[0], -1).T


def refine(knots: torch.Tensor, order: int, factor: int) -> torch.Tensor:
    """Split every grid interval of [a, b] into ``factor`` equal parts, keeping the k outer knots
    on each side. The new knots contain all the old ones, so every old spline is exactly a spline
    on the new knots (knot insertion), on its whole support."""
    points = interior(knots, order)
    fractions = torch.arange(factor, dtype=knots.dtype, device=knots.device) / factor
    starts, widths = points[:, :-1, None], points.diff(dim=1)[..., None]
    fine = (starts + fractions * widths).reshape(points.shape[0], -1)
    return torch.cat([knots[:, :order], fine, knots[:, knots.shape[1] - order - 1 :]], dim=1)


def fit(
    x: torch.Tensor, y: torch.Tensor, knots: torch.Tensor, order: int, ridge: float = 0.0
) -> torch.Tensor:
    """Least-squares spline coefficients [n, M, m] with Σ_m c[i, m, j] B_m(x_i) ≈ y[:, i, j].

    ``x`` [P, n], ``y`` [P, n, m]. ``ridge`` = 0 solves by QR (for exact refits with
    well-placed points); ridge > 0 adds ridge·mean(diag AᵀA)·I to the normal equations,
    which keeps bases without samples at zero.
    """
    design = dense_basis(x, knots, order).transpose(0, 1)  # [n, P, M]
    targets = y.transpose(0, 1)  # [n, P, m]
    if ridge == 0:  # QR: full column rank is guaranteed by the caller's sample placement
        q, r = torch.linalg.qr(design)
        return torch.linalg.solve_triangular(r, q.transpose(1, 2) @ targets, upper=True)
    gram = design.transpose(1, 2) @ design
    scale = torch.diagonal(gram, dim1=1, dim2=2).mean(-1).clamp_min(torch.finfo(x.dtype).tiny)
    gram = gram + ridge * scale[:, None, None] * torch.eye(gram.shape[-1], dtype=x.dtype, device=x.device)
    return torch.linalg.solve(gram, design.transpose(1, 2) @ targets)


def grid_from_samples(x: torch.Tensor, grid: int, order: int, grid_eps: float) -> torch.Tensor:
    """Knots adapted to samples ``x`` [P, n]: grid_eps·uniform + (1 − grid_eps)·quantiles
    on [min, max] (the original KAN's grid update), then extended by ``order`` knots."""
    ordered = torch.sort(x, dim=0).values
    positions = torch.linspace(0, x.shape[0] - 1, grid + 1, device=x.device).round().long()
    adaptive = ordered[positions].T  # [n, G+1]
    lo, hi = ordered[0], ordered[-1]
    span = torch.maximum(hi - lo, 1e-6 * (1 + lo.abs()))  # a constant activation still gets a grid
    centre = (hi + lo) / 2
    lo, hi = centre - span / 2, centre + span / 2
    uniform = lo[:, None] + (hi - lo)[:, None] * torch.linspace(0, 1, grid + 1, dtype=x.dtype, device=x.device)
    points = grid_eps * uniform + (1 - grid_eps) * adaptive.clamp(lo[:, None], hi[:, None])
    # keep knots strictly increasing even when samples repeat (possible only for grid_eps = 0)
    columns, minimum = list(points.unbind(1)), 1e-3 * span / grid
    for i in range(1, grid + 1):
        columns[i] = torch.maximum(columns[i], columns[i - 1] + minimum)
    points = torch.stack(columns, dim=1)
    return extend_knots(points, order)


def cell_polynomials(knots: torch.Tensor, order: int) -> torch.Tensor:
    """The local bases as polynomials on every knot cell: Q [n, K−1, k+1 (r), k+1 (p)] with

        B_{c−k+r}(x) = Σ_p Q[i, c, r, p] · (x − t_c)^p    for t_c ≤ x < t_{c+1}.

    Found by evaluating the bases at k+1 Chebyshev nodes of each cell and solving the
    Vandermonde system in the cell coordinate ξ = (x − t_c)/h_c ∈ [0, 1], then rescaling.
    """
    k, n, cells = order, knots.shape[0], knots.shape[1] - 1
    nodes = (1 - torch.cos(torch.pi * (torch.arange(k + 1, dtype=knots.dtype) + 0.5) / (k + 1))) / 2
    nodes = nodes.to(knots.device)
    start, width = knots[:, :-1], knots.diff(dim=1)  # [n, cells]
    x = start[..., None] + width[..., None] * nodes  # [n, cells, k+1 (q)]
    _, (values,) = local_basis(x.reshape(n, -1).T, knots, k)  # [cells·(k+1), n, k+1 (r)]
    values = values.reshape(cells, k + 1, n, k + 1).permute(2, 0, 1, 3)  # [n, cells, q, r]
    powers = torch.arange(k + 1, device=knots.device)
    vandermonde = nodes[:, None] ** powers  # [q, p]
    in_xi = torch.linalg.solve(vandermonde, values)  # [n, cells, p, r]: coefficients of ξ^p
    return (in_xi / width[..., None, None] ** powers[:, None]).transpose(-1, -2)


def horner(coefficients: Sequence[torch.Tensor], s: torch.Tensor, derivatives: int) -> list[torch.Tensor]:
    """p(s), p'(s), … up to ``derivatives`` for p(s) = Σ_p a_p s^p; ``coefficients`` = [a_0, …, a_k]."""
    k = len(coefficients) - 1
    result = []
    for d in range(derivatives + 1):
        if d > k:
            result.append(torch.zeros_like(coefficients[0]))
            continue
        # d-th derivative: Σ_{p≥d} a_p p!/(p−d)! s^(p−d)
        value = coefficients[k] * (math.factorial(k) // math.factorial(k - d))
        for p in range(k - 1, d - 1, -1):
            factor = math.factorial(p) // math.factorial(p - d)
            value = torch.addcmul(coefficients[p] * factor if factor != 1 else coefficients[p], value, s)
        result.append(value)
    return result
