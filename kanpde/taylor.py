"""Jets of any order: the derivatives a residual reads, carried forward in closed form (Taylor mode).

:class:`kanpde.jet.Jet` stops at second order. A :class:`TaylorJet` carries an arbitrary,
downward-closed set of multi-indices α (``Derivatives``): the value (α = 0) and every ∂^α u
the residual reads, together with the lower ones the chain rule needs to produce them. Its
stack has the layout of ``Jet``'s, [N, T, *C] with term 0 the value, so linear maps, sums,
channel selection and concatenation are inherited unchanged.

An elementwise function g maps a jet by the multivariate Faà di Bruno formula

    ∂^α g(u) = Σ_{π partition of α} g^(|π|)(u) · Π_{B ∈ π} ∂^{α_B} u,

the partitions π of the multiset of α's axes into blocks B; partitions giving the same
product of derivatives are merged into one term with its count. Grouped by the order
k = |π|, every layer needs one tensor Q_k [N, A, *C] of products per order, and a KAN
layer y_j = Σ_i φ_ji(u_i) is then Σ_k Q_k·φ^(k) — one batched product per order
(DESIGN.md, "Jets of any order"). Products of jets use the Leibniz rule
∂^α(ab) = Σ_{β≤α} C(α, β) ∂^β a ∂^{α−β} b. All terms are precomputed as index tables,
so a layer costs a fixed number of tensor operations whatever the order.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import torch

from kanpde.jet import MODES, Jet, check_mode, curved_axes, diagonal_mode

MultiIndex = tuple[int, ...]  # derivative counts per input axis


def _set_partitions(items: list[int]) -> Iterable[list[list[int]]]:
    """Every partition of the list ``items`` (positions are distinct) into non-empty blocks."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in _set_partitions(rest):
        yield [[first], *partition]
        for index in range(len(partition)):
            yield [*partition[:index], [first, *partition[index]], *partition[index + 1:]]


def _counts(axes: Sequence[int], dim: int) -> MultiIndex:
    return tuple(sum(1 for a in axes if a == axis) for axis in range(dim))


def _axes(alpha: MultiIndex) -> list[int]:
    return [axis for axis, count in enumerate(alpha) for _ in range(count)]


class Derivatives:
    """A downward-closed set of multi-indices over ``dim`` inputs, the value (0, …, 0) first.

    Built from what a residual reads with :meth:`parse`; the closure adds every lower
    multi-index (∂^β with β ≤ α), which the chain rule needs to produce ∂^α.
    """

    def __init__(self, indices: Iterable[MultiIndex], dim: int, coords: Sequence[str] | None = None):
        wanted = {tuple(int(c) for c in alpha) for alpha in indices}
        closed: set[MultiIndex] = set()
        for alpha in wanted:
            if len(alpha) != dim or min(alpha, default=0) < 0:
                raise ValueError(f"derivatives: {alpha} is not a multi-index over {dim} inputs")
            for beta in _lower(alpha):
                closed.add(beta)
        closed.add((0,) * dim)
        self.indices: tuple[MultiIndex, ...] = tuple(sorted(closed, key=lambda a: (sum(a), tuple(-c for c in a))))
        self.requested = tuple(sorted(wanted - {(0,) * dim}, key=lambda a: (sum(a), tuple(-c for c in a))))
        self.dim = dim
        self.coords = tuple(coords) if coords is not None else None
        self.position = {alpha: index for index, alpha in enumerate(self.indices)}
        self.order = max(sum(alpha) for alpha in self.indices)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def parse(cls, spec: Iterable, coords: Sequence[str]) -> Derivatives:
        """From names: ``("t", "x", "xx", "xxxx")``, or tuples of names ``(("x", "x"), ("x", "t"))``."""
        coords = tuple(coords)
        if isinstance(spec, (str, bytes)) or not isinstance(spec, Iterable):
            raise ValueError(f"derivatives: expected a list of derivatives such as ('t', 'xx'), got {spec!r}")
        return cls([cls._parse_one(item, coords) for item in spec], len(coords), coords)

    @staticmethod
    def _parse_one(item, coords: tuple[str, ...]) -> MultiIndex:
        if isinstance(item, str):
            if item in coords:
                names = [item]
            elif all(len(name) == 1 for name in coords) and item and all(c in coords for c in item):
                names = list(item)  # "xxt" when every coordinate name is one letter
            else:
                raise ValueError(f"derivatives: cannot read {item!r} as derivatives in coordinates {coords}; "
                                 "write a tuple of names such as ('x', 'x')")
        elif isinstance(item, Sequence) and item and all(isinstance(n, (str, int)) for n in item):
            names = list(item)
        else:
            raise ValueError(f"derivatives: expected a name such as 'xx' or a tuple of names, got {item!r}")
        axes = []
        for name in names:
            if isinstance(name, int) and not isinstance(name, bool) and 0 <= name < len(coords):
                axes.append(name)
            elif name in coords:
                axes.append(coords.index(name))
            else:
                raise ValueError(f"derivatives: unknown coordinate {name!r} in {item!r}; coordinates: {coords}")
        return _counts(axes, len(coords))

    def union(self, other: Derivatives) -> Derivatives:
        return Derivatives(self.requested + other.requested, self.dim, self.coords)

    def name(self, alpha: MultiIndex) -> str:
        names = self.coords or tuple(str(a) for a in range(self.dim))
        return "".join(names[a] for a in _axes(alpha)) or "value"

    def standard_mode(self) -> str | None:
        """The leanest jet mode ("value", "none", "diagonal:A", "diagonal", "full") that carries this set,
        if the order is ≤ 2: those modes have the fused fast paths (kanpde.nets.kan, kanpde.nets.dense).
        Every first derivative is carried (the chain rule needs them); of the second, the pure ∂²/∂x_a² that
        are read ("diagonal:A", e.g. u_xx and not u_tt for Burgers), or all of them when one is mixed."""
        if self.order > 2:
            return None
        if self.order < 2:
            return ("value", "none")[self.order]
        if any(sum(alpha) == 2 and max(alpha) == 1 for alpha in self.indices):
            return "full"
        return diagonal_mode([alpha.index(2) for alpha in self.indices if max(alpha, default=0) == 2], self.dim)

    def __eq__(self, other) -> bool:
        return isinstance(other, Derivatives) and (self.indices, self.dim) == (other.indices, other.dim)

    def __hash__(self) -> int:
        return hash((self.indices, self.dim))

    def __repr__(self) -> str:
        return f"Derivatives({', '.join(self.name(a) for a in self.requested) or 'value'})"

    # -- index tables (cached per set) ----------------------------------------------------
    @functools.cached_property
    def pure(self) -> list[tuple[int | None, int]]:
        """For every multi-index: (a, k) when it is k·e_a (a derivative along one axis only), else (None, k)."""
        return [(next((a for a, c in enumerate(alpha) if c), 0) if sum(1 for c in alpha if c) <= 1 else None,
                 sum(alpha)) for alpha in self.indices]

    @functools.cached_property
    def composition(self) -> dict[int, tuple[list[int], list[list[int]], list[float]]]:
        """Faà di Bruno terms by order k ≥ 2: (targets, factors [k][terms], counts), positions in the stack."""
        tables: dict[int, tuple[list[int], list[list[int]], list[float]]] = {}
        for target, alpha in enumerate(self.indices):
            terms: Counter = Counter()
            for partition in _set_partitions(_axes(alpha)):
                if len(partition) >= 2:
                    terms[tuple(sorted(self.position[_counts(block, self.dim)] for block in partition))] += 1
            for factors, count in terms.items():
                k = len(factors)
                targets, columns, counts = tables.setdefault(k, ([], [[] for _ in range(k)], []))
                targets.append(target - 1)  # among the derivative terms (the value is not one)
                for column, factor in zip(columns, factors):
                    column.append(factor)
                counts.append(float(count))
        return tables

    @functools.cached_property
    def leibniz(self) -> tuple[list[int], list[int], list[int], list[float]]:
        """Leibniz terms: (target, left, right, binomial) with ∂^α(ab) ∋ C(α, β) ∂^β a ∂^{α−β} b."""
        table: tuple[list[int], list[int], list[int], list[float]] = ([], [], [], [])
        for target, alpha in enumerate(self.indices):
            for beta in _lower(alpha):
                gamma = tuple(a - b for a, b in zip(alpha, beta))
                for column, entry in zip(table, (target, self.position[beta], self.position[gamma],
                                                 float(math.prod(math.comb(a, b) for a, b in zip(alpha, beta))))):
                    column.append(entry)
        return table


def _lower(alpha: MultiIndex) -> list[MultiIndex]:
    """Every β ≤ α componentwise (α included)."""
    ranges = [range(c + 1) for c in alpha]
    result: list[MultiIndex] = [()]
    for r in ranges:
        result = [(*beta, c) for beta in result for c in r]
    return result


_INDEX_CACHE: dict[tuple[tuple[int, ...], str], torch.Tensor] = {}


def _index(values: list, device: torch.device) -> torch.Tensor:
    """The index tensor of ``values`` on ``device``, made once (the tables are fixed per derivative set)."""
    key = (tuple(values), str(device))
    if key not in _INDEX_CACHE:
        _INDEX_CACHE[key] = torch.tensor(values, dtype=torch.long, device=device)
    return _INDEX_CACHE[key]


class TaylorJet(Jet):
    """Value and the derivatives ∂^α u of a set :class:`Derivatives` at N points (stack [N, T, *C]).

    The API of :class:`Jet`: ``value``, ``d("x", "x", "x", "x")``, ``grad``, ``laplacian``,
    ``hess_diag`` and ``hess`` where the set holds what they need, ``apply`` for elementwise
    functions (given as many derivatives as the order), ``linear``, sums and products.
    ``mode`` is the :class:`Derivatives` set, so code that builds jets "in the mode of u"
    (``autograd_jet(g, x, u.mode)``) builds matching ones.
    """

    def __init__(self, stack: torch.Tensor, derivatives: Derivatives, coords: Sequence[str] | None = None):
        if stack.shape[1] != len(derivatives.indices):
            raise ValueError(f"jet stack has {stack.shape[1]} terms, {derivatives} needs {len(derivatives.indices)}")
        self.stack = stack
        self.dim = derivatives.dim
        self.mode = derivatives
        self.coords = tuple(coords) if coords is not None else derivatives.coords
        self.seed_scale = None

    @classmethod
    def seed(cls, x: torch.Tensor, mode: Derivatives, coords: Sequence[str] | None = None,
             scale: torch.Tensor | Sequence[float] | None = None) -> TaylorJet:
        """The jet of the inputs at ``x`` [N, D]: ∂x_a/∂x_a = scale_a, every other derivative 0."""
        if x.ndim != 2 or x.shape[1] != mode.dim:
            raise ValueError(f"x: expected a tensor of shape [N, {mode.dim}], got shape {tuple(x.shape)}")
        d = mode.dim
        scale = torch.ones(d, dtype=x.dtype, device=x.device) if scale is None else torch.as_tensor(
            scale, dtype=x.dtype, device=x.device)
        stack = x.new_zeros(x.shape[0], len(mode.indices), d)
        stack[:, 0] = x
        for axis in range(d):
            unit = tuple(int(a == axis) for a in range(d))
            if unit in mode.position:
                stack[:, mode.position[unit], axis] = scale[axis]
        jet = cls(stack, mode, coords)
        jet.seed_scale = scale  # the first layer then needs only the pure derivatives of its edges
        return jet

    def _like(self, stack: torch.Tensor) -> TaylorJet:
        return TaylorJet(stack, self.mode, self.coords)

    @property
    def order(self) -> int:
        return self.mode.order

    # -- reading derivatives --------------------------------------------------------------
    def _term(self, alpha: MultiIndex, what) -> torch.Tensor:
        if alpha not in self.mode.position:
            raise ValueError(f"the derivative {what} is not carried by this jet ({self.mode}); "
                             "add it to the problem's derivatives")
        return self.stack[:, self.mode.position[alpha]]

    def d(self, *axes: str | int) -> torch.Tensor:
        """∂^α u by coordinate names or indices: ``u.d("x", "x", "x", "x")``, ``u.d("x", "t")``."""
        if not axes:
            return self.value
        return self._term(_counts([self._axis(axis) for axis in axes], self.dim), axes)

    def _unit(self, *axes: int) -> MultiIndex:
        return _counts(axes, self.dim)

    @property
    def first(self) -> torch.Tensor:
        return torch.stack([self._term(self._unit(a), (a,)) for a in range(self.dim)], dim=1)

    @property
    def hess_diag(self) -> torch.Tensor:
        return torch.stack([self._term(self._unit(a, a), (a, a)) for a in range(self.dim)], dim=1).movedim(1, -1)

    @property
    def laplacian(self) -> torch.Tensor:
        return self.hess_diag.sum(-1)

    @property
    def hess(self) -> torch.Tensor:
        rows = [torch.stack([self._term(self._unit(a, b), (a, b)) for b in range(self.dim)], dim=-1)
                for a in range(self.dim)]
        return torch.stack(rows, dim=-2)

    @property
    def second(self) -> torch.Tensor:
        raise ValueError("a TaylorJet has no second-order block; read derivatives with d(...)")

    # -- the chain rule -----------------------------------------------------------------
    def _products(self, k: int, stack: torch.Tensor) -> torch.Tensor:
        """Q_k [N, A, *C]: Σ over the order-k Faà di Bruno terms of count·Π ∂^β u (``stack`` [N, T, *C])."""
        targets, columns, counts = self.mode.composition[k]
        device = stack.device
        product = stack.index_select(1, _index(columns[0], device))
        for column in columns[1:]:
            product = product * stack.index_select(1, _index(column, device))
        weights = torch.tensor(counts, dtype=stack.dtype, device=device).reshape(-1, *(1,) * (stack.ndim - 2))
        out = stack.new_zeros(stack.shape[0], stack.shape[1] - 1, *stack.shape[2:])
        return out.index_add(1, _index(targets, device), product * weights)

    def compose(self, derivatives: Sequence[torch.Tensor]) -> TaylorJet:
        """The jet of g(u) for an elementwise g, from ``derivatives`` = [g(u), g'(u), …, g^(order)(u)]."""
        if len(derivatives) <= self.order:
            raise ValueError(f"an elementwise function on a jet of order {self.order} needs its derivatives "
                             f"up to order {self.order}, got {len(derivatives) - 1}")
        rest = self.stack[:, 1:] * derivatives[1].unsqueeze(1)
        for k in self.mode.composition:
            rest = rest + self._products(k, self.stack) * derivatives[k].unsqueeze(1)
        return self._like(torch.cat([derivatives[0].unsqueeze(1), rest], dim=1))

    def apply(self, f: torch.Tensor, df: torch.Tensor, d2f: torch.Tensor | None = None, *higher) -> TaylorJet:
        return self.compose([f, df, *(() if d2f is None else (d2f, *higher))])

    def edge_sum(self, phi: Sequence[torch.Tensor]) -> TaylorJet:
        """The jet of y_j = Σ_i φ_ji(u_i) from ``phi`` = [φ, φ', …, φ^(order)], each [N, n, m]:
        ∂^α y = Σ_k Q_k·φ^(k), one batched product per order k."""
        value = phi[0].sum(1, keepdim=True)
        if self.seed_scale is not None:  # u_i = s_i x_i + c_i: ∂^α y_j = s_i^k φ^(k)_ji if α = k e_i, else 0
            zero = value.new_zeros(value.shape[0], value.shape[2])
            rest = torch.stack([zero if axis is None else phi[k][:, axis] * self.seed_scale[axis] ** k
                                for axis, k in self.mode.pure[1:]], dim=1)
            return self._like(torch.cat([value, rest], dim=1))
        rest = torch.bmm(self.stack[:, 1:], phi[1])
        for k in self.mode.composition:
            rest = rest + torch.bmm(self._products(k, self.stack), phi[k])
        return self._like(torch.cat([value, rest], dim=1))

    def __mul__(self, other) -> TaylorJet:
        if not isinstance(other, Jet):
            return self._like(self.stack * self._constant(other))
        if not isinstance(other, TaylorJet) or other.mode != self.mode:
            raise ValueError(f"cannot multiply jets carrying different derivatives ({self.mode}, {other.mode})")
        target, left, right, binomial = self.mode.leibniz
        device = self.stack.device
        products = self.stack.index_select(1, _index(left, device)) * other.stack.index_select(1, _index(right, device))
        weights = torch.tensor(binomial, dtype=self.stack.dtype, device=device)
        products = products * weights.reshape(-1, *(1,) * (products.ndim - 2))
        return self._like(torch.zeros_like(self.stack).index_add(1, _index(target, device), products))

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"TaylorJet({self.mode}, points={self.stack.shape[0]}, channels={self.channels})"


def resolve(spec, coords: Sequence[str]) -> str | Derivatives:
    """A problem's ``derivatives`` declaration → a jet mode: one of the second-order modes, "diagonal:A" included
    (kept as they are, they have the fused fast path), or a :class:`Derivatives` set when it needs more."""
    if isinstance(spec, str) and (spec in MODES[1:] or spec.startswith("diagonal:")):
        try:
            check_mode(spec, len(coords))
        except ValueError as error:
            raise ValueError(f"derivatives: {str(error).removeprefix('hessian: ')}") from None
        return diagonal_mode(curved_axes(spec, len(coords)), len(coords)) if spec.startswith("diagonal") else spec
    derivatives = spec if isinstance(spec, Derivatives) else Derivatives.parse(spec, coords)
    return derivatives.standard_mode() or derivatives


def jet_order(mode: str | Derivatives) -> int:
    """The highest derivative order a jet mode carries."""
    if isinstance(mode, Derivatives):
        return mode.order
    return {"value": 0, "none": 1}.get(mode, 2)


class _Recorder:
    """A stand-in jet for one tracing pass: records what a residual reads, returns zeros."""

    def __init__(self, points: int, dim: int, coords: Sequence[str], dtype: torch.dtype):
        self.points, self.dim, self.coords, self.dtype = points, dim, tuple(coords), dtype
        self.read: list[MultiIndex] = []
        self.mode = "trace"

    def _zeros(self, *shape: int) -> torch.Tensor:
        return torch.zeros(self.points, *shape, dtype=self.dtype)

    @property
    def value(self) -> torch.Tensor:
        return self._zeros()

    def d(self, *axes) -> torch.Tensor:
        names = [a if isinstance(a, int) else self.coords.index(a) for a in axes]
        self.read.append(_counts(names, self.dim))
        return self._zeros()

    @property
    def grad(self) -> torch.Tensor:
        self.read += [_counts([a], self.dim) for a in range(self.dim)]
        return self._zeros(self.dim)

    @property
    def hess_diag(self) -> torch.Tensor:
        self.read += [_counts([a, a], self.dim) for a in range(self.dim)]
        return self._zeros(self.dim)

    @property
    def laplacian(self) -> torch.Tensor:
        return self.hess_diag.sum(-1)

    @property
    def hess(self) -> torch.Tensor:
        self.read += [_counts([a, b], self.dim) for a in range(self.dim) for b in range(self.dim)]
        return self._zeros(self.dim, self.dim)

    def __getitem__(self, channel) -> _Recorder:
        return self


def trace(functions: Iterable[Callable[[object, torch.Tensor], object]], x: torch.Tensor,
          coords: Sequence[str]) -> Derivatives:
    """The derivatives that ``functions`` (each ``f(u, x)``, e.g. a residual) read, found by calling
    each once on a recording stand-in jet at the points ``x`` [N, D]."""
    recorder = _Recorder(x.shape[0], x.shape[1], coords, x.dtype)
    for function in functions:
        function(recorder, x)
    return Derivatives(recorder.read, x.shape[1], coords)
