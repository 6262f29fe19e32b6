"""Kolmogorov–Arnold Network: a learnable univariate function on every edge, sums on the nodes.

Layer l maps n_in → n_out by (KAN paper, eq. 2.10)

    y_j = Σ_i φ_ji(x_i),   φ_ji(s) = w_b[i,j]·silu(s) + w_s[i,j]·Σ_m c[i,m,j]·B_m(s).

Only k+1 B-splines are non-zero at a point, so a layer gathers for each point the k+1
coefficients it needs and contracts them with the local bases (and their derivatives,
for jets) in one batched product: the cost does not depend on the grid size G.
Parameters per layer: n_in·n_out·(G + k + 2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from kanpde import splines
from kanpde.jet import Jet
from kanpde.nets.base import ACTIVATIONS, JetModule, Sequential, check_width

_silu = ACTIVATIONS["silu"]
_DERIVATIVES = {"value": 0, "none": 1}  # orders of spline derivatives a jet mode needs; others 2


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

    @property
    def grid(self) -> int:
        return self.knots.shape[1] - 2 * self.order - 1

    def grid_range(self) -> torch.Tensor:
        """[n_in, 2]: the interval [a, b] each input's grid covers (before the extension)."""
        points = splines.interior(self.knots, self.order)
        return torch.stack([points[:, 0], points[:, -1]], dim=1)

    def _set_knots(self, knots: torch.Tensor) -> None:
        self.knots = knots.contiguous()
        self.uniform = splines.is_uniform(self.knots)
        self.cell_basis = splines.cell_polynomials(self.knots, self.order)

    def _edge_polynomials(self, coefficients: torch.Tensor, h: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """For every point and input, its knot cell's polynomial Σ_p a_p s^p in s = h − t_c,
        for all outputs: ([a_0, …, a_k] each [N, n, out], s [N, n, 1]). Points outside the
        knots get the zero polynomial."""
        k = self.order
        cell, inside = splines.find_cells(h, self.knots, self.uniform)
        padded = nn.functional.pad(coefficients, (0, 0, k, k))  # zero rows for bases that do not exist
        windows = padded.unfold(1, k + 1, 1)  # [n, cells, out, k+1 (r)]: the bases alive on each cell
        table = torch.einsum("icrp,icjr->picj", self.cell_basis, windows)  # [k+1 (p), n, cells, out]
        n, cells = table.shape[1:3]
        table = nn.functional.pad(table.reshape(k + 1, n * cells, -1), (0, 0, 0, 1))  # last row: zero
        offsets = torch.arange(n, device=h.device)
        rows = torch.where(inside, cell + offsets * cells, n * cells)
        start = self.knots.reshape(-1)[cell + offsets * self.knots.shape[1]]
        return list(table[:, rows].unbind(0)), (h - start)[..., None]

    def jet_forward(self, u: Jet) -> Jet:
        h = u.value
        derivatives = _DERIVATIVES.get(u.mode, 2)
        polynomial, s = self._edge_polynomials(self.spline_weight[:, None, :] * self.coef, h)
        spline = splines.horner(polynomial, s, derivatives)  # spline part of φ^(d), [N, n, out] each
        silu = _silu(h)
        # φ^(d)_ji(h_i) = w_b·silu^(d)(h_i) + (w_s Σ_m c_m B_m)^(d)(h_i)
        phi = [torch.addcmul(part, silu[d][..., None], self.base_weight) for d, part in enumerate(spline)]
        return u.edge_sum(phi)

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
        if knots is not None and coef is not None and knots.shape != self.knots.shape:
            self._set_knots(torch.empty_like(knots, dtype=self.knots.dtype, device=self.knots.device))
            self.coef = nn.Parameter(torch.empty_like(coef, dtype=self.coef.dtype, device=self.coef.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._set_knots(self.knots)

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, grid={self.grid}, order={self.order}"


class KAN(Sequential):
    """A Kolmogorov–Arnold Network ``width`` = [in, hidden..., out], a ``torch.nn.Module``.

    ``grid`` intervals of B-splines of order ``order`` on ``grid_range`` per edge (inputs
    are expected in that range, e.g. mapped to [-1, 1]); ``grid_eps`` mixes a uniform grid
    into the sample-adapted one in :meth:`update_grid` (1 = uniform, 0 = quantiles).
    """

    def __init__(self, width: Sequence[int], grid: int = 5, order: int = 3,
                 grid_range: Sequence[float] = (-1.0, 1.0), grid_eps: float = 0.02,
                 noise_scale: float = 0.3):
        width = check_width(width)
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
        self.width, self.order, self.grid_eps = width, order, grid_eps

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
        nested = new_grid % self.grid == 0

        def new_knots(layer: KANLayer, samples: torch.Tensor) -> torch.Tensor:
            if nested:
                return splines.refine(layer.knots, self.order, new_grid // layer.grid)
            bounds = layer.grid_range()
            return splines.uniform_grid(bounds[:, 0], bounds[:, 1], new_grid, self.order)

        return self._refit_layers(new_knots, x, exact=nested)

    def update_grid(self, x: torch.Tensor, grid_eps: float | None = None) -> float:
        """Adapt every layer's knots to the activations of samples ``x`` (quantiles mixed
        with a uniform grid by ``grid_eps``) and refit the splines by least squares.
        Returns the relative L2 change of the output on ``x``."""
        eps = self.grid_eps if grid_eps is None else grid_eps
        self._check_input(x)
        return self._refit_layers(
            lambda layer, samples: splines.grid_from_samples(samples, layer.grid, self.order, eps), x, exact=False)

    def extra_repr(self) -> str:
        return f"width={self.width}, grid={self.grid}, order={self.order}, params={self.num_parameters()}"

    def __repr__(self) -> str:
        return f"KAN({self.extra_repr()})"
