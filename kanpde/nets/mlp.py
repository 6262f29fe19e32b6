"""Baselines: the multilayer perceptron and the MLP with random Fourier features."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from kanpde.jet import Jet
from kanpde.nets.base import ACTIVATIONS, Activation, JetModule, Linear, Sequential, check_width
from kanpde.univariate import sin_series


def _perceptron(width: list[int], activation: str) -> list[JetModule]:
    layers: list[JetModule] = []
    for n_in, n_out in zip(width[:-1], width[1:]):
        layers += [Linear(n_in, n_out), Activation(activation)]
    return layers[:-1]  # the output layer is linear


class MLP(Sequential):
    """Fully connected network ``width`` = [in, hidden..., out] with a smooth activation."""

    def __init__(self, width: Sequence[int], activation: str = "tanh"):
        width = check_width(width)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        super().__init__(*_perceptron(width, activation))
        self.width, self.activation = width, activation

    def extra_repr(self) -> str:
        return f"width={self.width}, activation={self.activation!r}, params={self.num_parameters()}"


class FourierFeatures(JetModule):
    """γ(x) = [sin(2π B x), cos(2π B x)], B ~ N(0, σ²) fixed (Tancik et al. 2020)."""

    def __init__(self, n_in: int, features: int, sigma: float):
        super().__init__()
        self.in_features, self.out_features = n_in, 2 * features
        self.register_buffer("frequencies", torch.randn(features, n_in) * sigma)

    def jet_forward(self, u: Jet) -> Jet:
        phase = u.linear(2 * math.pi * self.frequencies)
        cycle = sin_series(phase.value, 3)  # sin, cos, −sin, −cos: the derivatives of sin repeat with period 4
        order = range(max(phase.order, 2) + 1)
        return Jet.cat([phase.apply(*(cycle[k % 4] for k in order)), phase.apply(*(cycle[(k + 1) % 4] for k in order))])


class FourierMLP(Sequential):
    """MLP on random Fourier features of the input: ``width[0]`` inputs → 2·features → MLP."""

    def __init__(self, width: Sequence[int], sigma: float = 1.0, features: int = 64, activation: str = "tanh"):
        width = check_width(width)
        if isinstance(features, bool) or not isinstance(features, int) or features < 1:
            raise ValueError(f"features: must be a positive integer, got {features!r}")
        if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma: must be a positive number, got {sigma!r}")
        embedding = FourierFeatures(width[0], features, sigma)
        super().__init__(embedding, *_perceptron([2 * features, *width[1:]], activation))
        self.width, self.sigma, self.features, self.activation = width, sigma, features, activation

    def extra_repr(self) -> str:
        return (f"width={self.width}, sigma={self.sigma}, features={self.features}, "
                f"params={self.num_parameters()}")
