"""Modules that map jets to jets, so every model gets the closed-form derivative path."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from kanpde.jet import Jet, check_mode
from kanpde.nets.dense import dense_jet_forward
from kanpde.taylor import Derivatives, TaylorJet
from kanpde.univariate import SERIES


def check_width(width: Sequence[int], name: str = "width") -> list[int]:
    """Validate a layer-width list such as [2, 10, 1]."""
    if isinstance(width, (str, bytes)) or not isinstance(width, Sequence):
        raise ValueError(f"{name}: must be a list of layer sizes such as [2, 10, 1], got {width!r}")
    if len(width) < 2:
        raise ValueError(f"{name}: needs at least an input and an output size, got {list(width)}")
    for size in width:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"{name}: every size must be a positive integer, got {list(width)}")
    return list(width)


class JetModule(nn.Module):
    """A module whose ``jet_forward`` maps the jet of its input to the jet of its output.

    ``forward(x)`` is the value-only jet of the same code, so values and derivatives can
    never disagree.
    """

    in_features: int

    def jet_forward(self, u: Jet) -> Jet:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.in_features:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected a tensor of shape [N, {self.in_features}], got {shape}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.jet_forward(Jet.seed(x, "value")).value

    def jet(self, x: torch.Tensor, hessian: str | Derivatives = "full", coords: Sequence[str] | None = None) -> Jet:
        """Value and input-derivatives at ``x`` [N, D], propagated forward in closed form.

        ``hessian``: "full" (Hessian, its diagonal and the Laplacian), "diagonal" (the
        diagonal and the Laplacian), "diagonal:A" (∂²/∂x_a² for the axes a in A only, e.g.
        "diagonal:0"), "trace" (the Laplacian only), "none" (gradient only), or a
        :class:`kanpde.Derivatives` set of any order (a :class:`kanpde.TaylorJet` comes back).
        """
        if isinstance(hessian, Derivatives):
            self._check_input(x)
            return self.jet_forward(TaylorJet.seed(x, hessian, coords))
        self._check_input(x)
        check_mode(hessian, x.shape[1], value=False)
        return self.jet_forward(Jet.seed(x, hessian, coords))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class Linear(JetModule):
    """y = x Wᵀ + b; derivatives are mapped by the same matrix."""

    def __init__(self, n_in: int, n_out: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = n_in, n_out
        self.weight = nn.Parameter(torch.empty(n_out, n_in))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None
        bound = 1 / math.sqrt(n_in)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def jet_forward(self, u: Jet) -> Jet:
        return u.linear(self.weight, self.bias)


def _tanh(v: torch.Tensor):
    t = torch.tanh(v)
    s = 1 - t * t
    return t, s, -2 * t * s


def _sin(v: torch.Tensor):
    s = torch.sin(v)
    return s, torch.cos(v), -s


def silu_derivatives(v: torch.Tensor, highest: int = 2,
                     out: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """[silu(v), silu'(v), …] up to the ``highest`` derivative (1 to 3), with σ = sigmoid(v):
    silu' = σ + silu·(1−σ), silu'' = σ(1−σ)(2 + v(1−2σ)), silu''' = σ(1−σ)(3(1−2σ) + v(1 − 6σ(1−σ))).
    ``out``: tensors shaped like ``v`` to write the results into (e.g. slices of one stacked tensor);
    in-place steps keep the passes over ``v`` few. Not for autograd through ``out``."""
    out = list(out) if out is not None else [None] * (highest + 1)
    sig = torch.sigmoid(v)
    rest = 1 - sig
    silu = torch.mul(v, sig, out=out[0])
    result = [silu, torch.addcmul(sig, silu, rest, out=out[1])]
    if highest >= 2:
        bump = sig * rest  # σ(1−σ)
        slope = rest - sig  # 1 − 2σ
        result.append(torch.mul(v, slope, out=out[2]).add_(2).mul_(bump))
        if highest >= 3:
            third = torch.mul(bump, -6, out=out[3]).add_(1).mul_(v).add_(slope, alpha=3)
            result.append(third.mul_(bump))
    return result


def _silu(v: torch.Tensor):
    return tuple(silu_derivatives(v, 2))


def _softplus(v: torch.Tensor):
    sig = torch.sigmoid(v)
    return nn.functional.softplus(v), sig, sig * (1 - sig)


ACTIVATIONS = {"tanh": _tanh, "sin": _sin, "silu": _silu, "softplus": _softplus}
"""Elementwise activations with closed-form first and second derivatives."""


class Activation(JetModule):
    """An elementwise activation (``tanh``, ``sin``, ``silu``, ``softplus``) on jets."""

    def __init__(self, name: str):
        super().__init__()
        if name not in ACTIVATIONS:
            raise ValueError(f"activation: must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
        self.name = name
        self.function = ACTIVATIONS[name]

    def jet_forward(self, u: Jet) -> Jet:
        if isinstance(u, TaylorJet):  # any order: the activation's derivatives up to the jet's order
            return u.compose(SERIES[self.name](u.value, u.order))
        return u.apply(*self.function(u.value))

    def extra_repr(self) -> str:
        return self.name


class Sequential(JetModule):
    """Jet modules applied in order."""

    def __init__(self, *layers: JetModule):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.in_features = next(layer.in_features for layer in layers if hasattr(layer, "in_features"))

    def jet_forward(self, u: Jet) -> Jet:
        if type(u) is not Jet or u.mode == "value":
            for layer in self.layers:
                u = layer.jet_forward(u)
            return u
        run: list[JetModule] = []  # consecutive dense layers take the fast path (kanpde.nets.dense)
        for layer in self.layers:
            if type(layer) in (Linear, Activation):
                run.append(layer)
                continue
            if run:
                u, run = dense_jet_forward(run, u), []
            u = layer.jet_forward(u)
        return dense_jet_forward(run, u) if run else u
