"""Jets: a field's value and its derivatives with respect to the inputs, carried forward.

A PINN residual needs u, ∇u and some second derivatives at every collocation point.
Instead of nesting reverse-mode autograd (a graph of a graph), every layer maps the
jet of its input to the jet of its output in closed form (chain rule, DESIGN.md):

    ∂y/∂x_a      = f'(h) ∂h/∂x_a
    ∂²y/∂x_a∂x_b = f''(h) ∂h/∂x_a ∂h/∂x_b + f'(h) ∂²h/∂x_a∂x_b

All terms live in one tensor ``stack`` of shape [N, T, *C]: N points, T terms, C the
channels. Term 0 is the value, terms 1..D the first derivatives, and the remaining
terms the second-order part the ``mode`` asks for:

    mode        second-order terms               T
    "value"     none, and no gradient either     1
    "none"      none                             1 + D
    "trace"     the Laplacian Σ_a ∂²/∂x_a²       2 + D
    "diagonal"  ∂²/∂x_a² for every a             1 + 2D
    "diagonal:A"  ∂²/∂x_a² for the axes a in A   1 + D + |A|
    "full"      ∂²/∂x_a∂x_b for every a, b       1 + D + D²

"diagonal:A" (e.g. "diagonal:0", A a comma-separated list of axes) is the lean jet of a time-dependent
residual such as Burgers' u_t + u u_x − ν u_xx: it carries u_xx but not u_tt, which nothing reads.

Keeping the terms in one tensor makes a linear layer a single matrix product over all
of them, and lets the plain forward pass be the "value" jet of the same code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

MODES = ("value", "none", "trace", "diagonal", "full")  # and "diagonal:A", a diagonal on the axes A only


def diagonal_mode(axes: Sequence[int], dim: int) -> str:
    """The jet mode carrying ∂²/∂x_a² for the ``axes`` a only: "diagonal" when they are all ``dim`` axes."""
    axes = sorted(set(axes))
    return "diagonal" if axes == list(range(dim)) else "diagonal:" + ",".join(map(str, axes))


def curved_axes(mode: str, dim: int) -> tuple[int, ...] | None:
    """The axes whose ∂²/∂x_a² a diagonal ``mode`` carries (all for "diagonal"); None for the other modes.
    Raises ValueError for a "diagonal:A" whose A is not distinct, increasing axes below ``dim``."""
    if mode == "diagonal":
        return tuple(range(dim))
    if not (isinstance(mode, str) and mode.startswith("diagonal:")):
        return None
    try:
        axes = tuple(int(a) for a in mode.removeprefix("diagonal:").split(","))
    except ValueError:
        axes = ()
    if not axes or list(axes) != sorted(set(axes)) or not 0 <= axes[0] <= axes[-1] < dim:
        raise ValueError(f"hessian: {mode!r} must list distinct axes below {dim} in increasing order, "
                         "e.g. 'diagonal:0'")
    return axes


def check_mode(mode: str, dim: int, value: bool = True) -> None:
    """Raise ValueError unless ``mode`` names a second-order jet layout over ``dim`` inputs (or "value")."""
    valid = MODES if value else MODES[1:]
    if not (isinstance(mode, str) and (mode in valid or curved_axes(mode, dim) is not None)):
        raise ValueError(f"hessian: must be one of {', '.join(valid)} or 'diagonal:A' (A: axes), got {mode!r}")


def num_terms(mode: str, dim: int) -> int:
    """Number of stacked terms T of a jet in ``mode`` over ``dim`` inputs."""
    check_mode(mode, dim)
    curved = curved_axes(mode, dim)
    second = len(curved) if curved is not None else {"value": 0, "none": 0, "trace": 1, "full": dim * dim}[mode]
    return 1 + (0 if mode == "value" else dim) + second


def _select(tensor: torch.Tensor, axes: tuple[int, ...], axis: int) -> torch.Tensor:
    """The entries ``axes`` (increasing) along ``axis``: a view when they are consecutive."""
    if axes[-1] - axes[0] == len(axes) - 1:
        return tensor if len(axes) == tensor.shape[axis] else tensor.narrow(axis, axes[0], len(axes))
    return torch.cat([tensor.narrow(axis, a, 1) for a in axes], axis)


def _place(part: torch.Tensor, axes: tuple[int, ...], dim: int, axis: int) -> torch.Tensor:
    """The adjoint of :func:`_select`: ``part`` at the positions ``axes`` along ``axis``, zeros elsewhere."""
    if len(axes) == dim:
        return part
    zero = torch.zeros_like(part.narrow(axis, 0, 1))
    return torch.cat([part.narrow(axis, axes.index(a), 1) if a in axes else zero for a in range(dim)], axis)


def pure_to_second(pure: torch.Tensor, mode: str, axis: int = 1) -> torch.Tensor:
    """The second-order block of ``mode`` when only pure second derivatives are non-zero: ``pure`` holds
    ∂²/∂x_a² for every axis a along ``axis`` (a jet of separate inputs, e.g. the seed through one layer)."""
    dim = pure.shape[axis]
    curved = curved_axes(mode, dim)
    if curved is not None:
        return _select(pure, curved, axis)
    if mode == "trace":
        return pure.sum(axis, keepdim=True)
    if mode == "full":  # on the diagonal a·(D + 1) of the D·D block
        eye = torch.eye(dim, dtype=pure.dtype, device=pure.device).reshape(dim, dim, *(1,) * (pure.ndim - axis - 1))
        return (pure.unsqueeze(axis + 1) * eye).flatten(axis, axis + 1)
    return pure.narrow(axis, 0, 0)


def second_to_pure(second: torch.Tensor, mode: str, dim: int, axis: int = 1) -> torch.Tensor:
    """The adjoint of :func:`pure_to_second`: a gradient of the second-order block → per axis a, [.., D, ..]."""
    curved = curved_axes(mode, dim)
    if curved is not None:
        return _place(second, curved, dim, axis)
    if mode == "trace":
        return second.expand(*second.shape[:axis], dim, *second.shape[axis + 1:])
    return second.unflatten(axis, (dim, dim)).diagonal(0, axis, axis + 1).movedim(-1, axis)  # full


def outer_terms(first: torch.Tensor, other: torch.Tensor, mode: str, axis: int = 1) -> torch.Tensor:
    """Second-order term of the product of two first derivatives, in ``mode`` layout.

    ``first`` and ``other`` hold the D derivatives along ``axis`` (stack layout [N, D, *C]); the
    result has the shape of the second-order block there: D*D (full), D (diagonal), |A| (diagonal:A),
    1 (trace).
    """
    if mode == "full":
        return (first.unsqueeze(axis + 1) * other.unsqueeze(axis)).flatten(axis, axis + 1)
    curved = curved_axes(mode, first.shape[axis])
    if curved is not None:
        part = _select(first, curved, axis)
        return part * (part if other is first else _select(other, curved, axis))  # a square: one selection
    if mode == "trace":
        return (first * other).sum(axis, keepdim=True)
    return first.narrow(axis, 0, 0)


def outer_terms_adjoint(grad: torch.Tensor, first: torch.Tensor, mode: str, axis: int = 1) -> torch.Tensor:
    """The gradient w.r.t. ``first`` of Σ grad·outer_terms(first, first, mode, axis) (a backward pass)."""
    if mode == "full":
        d = first.shape[axis]
        square = grad.unflatten(axis, (d, d))
        return ((square + square.transpose(axis, axis + 1)) * first.unsqueeze(axis)).sum(axis + 1)
    if mode == "trace":  # ∂(Σ_a g_a²)/∂g_a = 2 g_a
        return 2 * grad * first
    curved = curved_axes(mode, first.shape[axis])
    if curved is not None:  # ∂(g_a²)/∂g_a = 2 g_a on the curved axes, 0 on the others
        return _place(2 * grad * _select(first, curved, axis), curved, first.shape[axis], axis)
    return torch.zeros_like(first)


class Jet:
    """Value and input-derivatives of a (vector) field at N points.

    Public shapes put the channels before the derivative axes, as in the papers:
    ``value`` [N, *C], ``grad`` [N, *C, D], ``hess`` [N, *C, D, D],
    ``hess_diag`` [N, *C, D], ``laplacian`` [N, *C]. Derivatives can also be read by
    coordinate name with :meth:`d` when ``coords`` is set.
    """

    def __init__(self, stack: torch.Tensor, dim: int, mode: str, coords: Sequence[str] | None = None,
                 seed_scale: torch.Tensor | None = None):
        if stack.shape[1] != num_terms(mode, dim):
            raise ValueError(
                f"jet stack has {stack.shape[1]} terms, mode {mode!r} over {dim} inputs needs "
                f"{num_terms(mode, dim)}"
            )
        self.stack = stack
        self.dim = dim
        self.mode = mode
        self.coords = tuple(coords) if coords is not None else None
        # set when this is the jet of a diagonal affine map of the inputs (grad = diag(scale),
        # second = 0), which lets the first layer skip the chain-rule products
        self.seed_scale = seed_scale

    # -- construction -------------------------------------------------------------------
    @classmethod
    def seed(cls, x: torch.Tensor, mode: str = "full", coords: Sequence[str] | None = None,
             scale: torch.Tensor | Sequence[float] | None = None) -> Jet:
        """The jet of the inputs themselves at ``x`` [N, D]: grad = I (or diag(scale)), second = 0.

        ``scale`` maps derivatives when ``x`` are mapped coordinates ξ_a = (x_a − c_a)·scale_a
        and derivatives are wanted with respect to the original x.
        """
        if x.ndim != 2:
            raise ValueError(f"x: expected a tensor of shape [N, D], got shape {tuple(x.shape)}")
        n, d = x.shape
        scale = torch.ones(d, dtype=x.dtype, device=x.device) if scale is None else torch.as_tensor(
            scale, dtype=x.dtype, device=x.device)
        stack = x.new_zeros(n, num_terms(mode, d), d)
        stack[:, 0] = x
        if mode != "value":
            stack[:, 1 : 1 + d] = torch.diag(scale)
        return cls(stack, d, mode, coords, seed_scale=scale)

    def _like(self, stack: torch.Tensor) -> Jet:
        return Jet(stack, self.dim, self.mode, self.coords)

    def split_rows(self, sizes: Sequence[int]) -> list[Jet]:
        """The jets of consecutive blocks of ``sizes`` points (views of this jet's stack)."""
        return [Jet(part, self.dim, self.mode, self.coords, self.seed_scale) for part in self.stack.split(list(sizes))]

    # -- parts of the stack -------------------------------------------------------------
    @property
    def value(self) -> torch.Tensor:
        return self.stack[:, 0]

    @property
    def first(self) -> torch.Tensor:
        """First derivatives in stack layout [N, D, *C]."""
        if self.mode == "value":
            raise ValueError("this jet carries no derivatives (mode 'value')")
        return self.stack[:, 1 : 1 + self.dim]

    @property
    def second(self) -> torch.Tensor:
        """Second-order block in stack layout [N, S, *C] (S = D², D, 1 or 0 by mode)."""
        return self.stack[:, 1 + self.dim :] if self.mode != "value" else self.stack[:, :0]

    @property
    def order(self) -> int:
        """The highest derivative order carried: 0 (value), 1 (none) or 2."""
        return {"value": 0, "none": 1}.get(self.mode, 2)

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(self.stack.shape[2:])

    # -- public views -------------------------------------------------------------------
    @property
    def grad(self) -> torch.Tensor:
        """∂u/∂x_a, shape [N, *C, D]."""
        return self.first.movedim(1, -1)

    @property
    def hess(self) -> torch.Tensor:
        """∂²u/∂x_a∂x_b, shape [N, *C, D, D]; needs mode 'full'."""
        self._require("full", what="the full Hessian")
        n = self.stack.shape[0]
        return self.second.reshape(n, self.dim, self.dim, *self.channels).movedim((1, 2), (-2, -1))

    @property
    def hess_diag(self) -> torch.Tensor:
        """∂²u/∂x_a², shape [N, *C, D]; needs mode 'full' or 'diagonal'."""
        self._require("full", "diagonal", what="the Hessian diagonal")
        if self.mode == "full":
            return torch.diagonal(self.hess, dim1=-2, dim2=-1)
        return self.second.movedim(1, -1)

    @property
    def laplacian(self) -> torch.Tensor:
        """Σ_a ∂²u/∂x_a², shape [N, *C]."""
        self._require("full", "diagonal", "trace", what="the Laplacian")
        if self.mode == "trace":
            return self.second[:, 0]
        return self.hess_diag.sum(-1)

    def _require(self, *modes: str, what: str) -> None:
        if self.mode not in modes:
            raise ValueError(f"{what} needs a jet of mode {' or '.join(map(repr, modes))}, this one is {self.mode!r}")

    def _axis(self, name: str | int) -> int:
        if isinstance(name, int):
            if not 0 <= name < self.dim:
                raise ValueError(f"derivative axis {name} out of range for {self.dim} inputs")
            return name
        if self.coords is None or name not in self.coords:
            raise ValueError(f"unknown coordinate {name!r}; this jet's coordinates are {self.coords}")
        return self.coords.index(name)

    def d(self, *axes: str | int) -> torch.Tensor:
        """A derivative by coordinate name or index: ``u.d("t")``, ``u.d("x", "x")``."""
        if len(axes) == 1:
            return self.first[:, self._axis(axes[0])]
        if len(axes) == 2:
            a, b = (self._axis(axis) for axis in axes)
            if self.mode == "full":
                return self.second[:, a * self.dim + b]
            curved = curved_axes(self.mode, self.dim)
            if a == b and curved is not None:
                if a in curved:
                    return self.second[:, curved.index(a)]
                raise ValueError(f"the derivative {axes} is not carried by this jet (mode {self.mode!r}, the "
                                 "second derivatives read): add it to the problem's derivatives")
            self._require("full", *(["diagonal"] if a == b else []),
                          what=f"the mixed derivative {axes}" if a != b else f"the derivative {axes}")
        raise ValueError(f"derivatives of order 1 or 2 are carried, asked for {axes}")

    # -- algebra ------------------------------------------------------------------------
    def map(self, f: torch.Tensor, df: torch.Tensor, d2f: torch.Tensor | None) -> torch.Tensor:
        """Stack of g(u) for an elementwise g, given f = g(u), df = g'(u), d2f = g''(u).

        ``f``, ``df``, ``d2f`` have shape [N, *C, *E]: extra trailing axes E broadcast, so
        a family of functions (e.g. the k+1 local B-splines) composes in one call.
        Returns a stack [N, T, *C, *E]; wrap it with :meth:`_like` when E is empty.
        """
        if self.mode == "value":
            return f.unsqueeze(1)
        extra = f.ndim - self.value.ndim
        first = self.first.reshape(*self.first.shape, *(1,) * extra)
        parts = [f.unsqueeze(1), df.unsqueeze(1) * first]
        if self.mode != "none":
            second = self.second.reshape(*self.second.shape, *(1,) * extra)
            parts.append(d2f.unsqueeze(1) * outer_terms(self.first, self.first, self.mode).reshape(
                *second.shape[:2], *self.channels, *(1,) * extra) + df.unsqueeze(1) * second)
        return torch.cat(parts, dim=1)

    def apply(self, f: torch.Tensor, df: torch.Tensor, d2f: torch.Tensor | None = None, *higher) -> Jet:
        """The jet of g(u) for an elementwise g: ``u.apply(torch.sin(v), torch.cos(v), -torch.sin(v))``.
        Derivatives beyond the second (``higher``) are for jets of higher order and ignored here."""
        return self._like(self.map(f, df, d2f))

    def edge_sum(self, phi: Sequence[torch.Tensor]) -> Jet:
        """The jet of y_j = Σ_i φ_ji(u_i), given the edge functions' derivatives at u.

        ``phi`` = [φ, φ', φ''] (as many as the mode needs), each [N, n, m] holding
        φ^(d)_ji(u_i). Chain rule (DESIGN.md, "Derivatives: jets"):
        ∂y_j = Σ_i φ'_ji ∂u_i and ∂²y_j = Σ_i φ''_ji ∂u_i ∂u_i + φ'_ji ∂²u_i, each a batched matmul.
        """
        value = phi[0].sum(1, keepdim=True)
        if self.mode == "value":
            return self._like(value)
        if self.seed_scale is not None:  # ∂u_i/∂x_a = s_a δ_ia and ∂²u = 0: the edges' own derivatives
            scale = self.seed_scale[:, None]
            return self._like(torch.cat([value, scale * phi[1], *self._seed_second(phi, scale * scale)], dim=1))
        linear = torch.bmm(self.stack[:, 1:], phi[1])  # φ'·∂u and φ'·∂²u (the terms after the value)
        if self.mode != "none":
            linear[:, self.dim :] += torch.bmm(outer_terms(self.first, self.first, self.mode), phi[2])  # φ''·∂u∂u
        return self._like(torch.cat([value, linear], dim=1))

    def _seed_second(self, phi: Sequence[torch.Tensor], scale2: torch.Tensor) -> list[torch.Tensor]:
        """Second-order block of Σ_a φ_a(s_a x_a + c_a) in this jet's mode: only ∂²/∂x_a² = s_a² φ''_a."""
        return [] if self.mode == "none" else [pure_to_second(scale2 * phi[2], self.mode)]

    def linear(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> Jet:
        """The jet of u @ weightᵀ + bias over the last channel axis (one matmul for all terms)."""
        stack = self.stack @ weight.T
        if bias is not None:
            stack = torch.cat([stack[:, :1] + bias, stack[:, 1:]], dim=1)
        return self._like(stack)

    def _constant(self, other: torch.Tensor | float) -> torch.Tensor:
        """A constant (scalar, [N, *C] like the value, or [*C] per channel) shaped to broadcast with the stack."""
        other = torch.as_tensor(other, dtype=self.stack.dtype, device=self.stack.device)
        return other.unsqueeze(1) if other.ndim == self.value.ndim else other

    def __add__(self, other: Jet | torch.Tensor | float) -> Jet:
        if isinstance(other, Jet):
            return self._like(self.stack + other.stack)
        return self._like(torch.cat([self.stack[:, :1] + self._constant(other), self.stack[:, 1:]], dim=1))

    __radd__ = __add__

    def __neg__(self) -> Jet:
        return self._like(-self.stack)

    def __sub__(self, other: Jet | torch.Tensor | float) -> Jet:
        return self + (-other)

    def __rsub__(self, other: torch.Tensor | float) -> Jet:
        return (-self) + other

    def __mul__(self, other: Jet | torch.Tensor | float) -> Jet:
        if not isinstance(other, Jet):  # a constant: scales every term
            return self._like(self.stack * self._constant(other))
        a, b = self.value.unsqueeze(1), other.value.unsqueeze(1)
        if self.mode == "value":
            return self._like(a * b)
        parts = [a * b, a * other.first + b * self.first]
        if self.mode != "none":  # Leibniz: (ab)'' = a b'' + b a'' + a'⊗b' + b'⊗a'
            cross = outer_terms(self.first, other.first, self.mode)
            if self.mode == "full":
                cross = cross + outer_terms(other.first, self.first, self.mode)
            else:
                cross = 2 * cross
            parts.append(a * other.second + b * self.second + cross)
        return self._like(torch.cat(parts, dim=1))

    __rmul__ = __mul__

    def __getitem__(self, channel: int | slice) -> Jet:
        """Select channels: ``u[0]`` is the jet of the first output, with its channel axis dropped."""
        return self._like(self.stack[:, :, channel])

    @staticmethod
    def cat(jets: Sequence[Jet], axis: int = -1) -> Jet:
        """Concatenate jets along channel axis ``axis`` (0 is the first channel axis)."""
        dim = axis + 2 if axis >= 0 else axis  # skip the point and term axes
        return jets[0]._like(torch.cat([jet.stack for jet in jets], dim=dim))

    def __repr__(self) -> str:
        return f"Jet(mode={self.mode!r}, points={self.stack.shape[0]}, dim={self.dim}, channels={self.channels})"
