"""SIREN: sine activations with the initialisation of Sitzmann et al. (2020)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from kanpde.nets.base import Activation, Linear, Sequential, check_width


class SIREN(Sequential):
    """y = W_L sin(ω₀(W_{L-1} … sin(ω₀(W_1 x + b_1)) …) + b_L).

    ω₀ is folded into the hidden weights, so each hidden layer is Linear → sin.
    Initialisation: first layer U(−1/n, 1/n)·ω₀, later layers U(−√(6/n), √(6/n)).
    """

    def __init__(self, width: Sequence[int], omega0: float = 30.0):
        width = check_width(width)
        if not (isinstance(omega0, (int, float)) and math.isfinite(omega0) and omega0 > 0):
            raise ValueError(f"omega0: must be a positive number, got {omega0!r}")
        layers = []
        for index, (n_in, n_out) in enumerate(zip(width[:-1], width[1:])):
            linear = Linear(n_in, n_out)
            bound = 1 / n_in if index == 0 else math.sqrt(6 / n_in) / omega0
            is_hidden = index < len(width) - 2
            scale = omega0 if is_hidden else 1.0
            with torch.no_grad():
                linear.weight.uniform_(-bound, bound).mul_(scale)
                linear.bias.uniform_(-bound, bound).mul_(scale)
            layers.append(linear)
            if is_hidden:
                layers.append(Activation("sin"))
        super().__init__(*layers)
        self.width, self.omega0 = width, omega0

    def extra_repr(self) -> str:
        return f"width={self.width}, omega0={self.omega0}, params={self.num_parameters()}"
