"""Unknown parameters: scalars of a problem that are trained jointly with the network.

``params = {"nu": kanpde.Unknown(init=0.05, positive=True)}`` (or, in YAML,
``nu: {unknown: true, init: 0.05, positive: true}``) makes ``self.nu`` a trainable 0-d tensor
that the residual reads like any parameter. A positive unknown is ν = softplus(θ) with θ the
trained number, so it stays > 0 and moves in relative steps while it is small.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

KEYS = ("unknown", "init", "positive", "lr")


class Unknown(nn.Module):
    """A trainable scalar: ``value`` = θ, or softplus(θ) if ``positive``; ``lr`` its own learning rate
    (Adam stages; None: the stage's)."""

    def __init__(self, init: float, positive: bool = False, lr: float | None = None):
        super().__init__()
        if isinstance(init, bool) or not isinstance(init, (int, float)) or not math.isfinite(init):
            raise ValueError(f"Unknown: init must be a finite number, got {init!r}")
        if positive and init <= 0:
            raise ValueError(f"Unknown: a positive unknown needs init > 0, got {init}")
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0
                               or not math.isfinite(lr)):
            raise ValueError(f"Unknown: lr must be a positive number or None, got {lr!r}")
        self.init, self.positive, self.lr = float(init), bool(positive), lr
        # softplus⁻¹(ν) = ν + log(1 − e^{−ν}), stable for small and large ν
        raw = self.init + math.log(-math.expm1(-self.init)) if positive else self.init
        self.raw = nn.Parameter(torch.tensor(raw, dtype=torch.float64))

    @property
    def value(self) -> torch.Tensor:
        """The parameter as the residual sees it (a 0-d tensor carrying gradients)."""
        return nn.functional.softplus(self.raw) if self.positive else self.raw

    def fresh(self) -> Unknown:
        """A new Unknown with the same settings, at its initial value (one per problem instance)."""
        return Unknown(self.init, self.positive, self.lr)

    def extra_repr(self) -> str:
        return f"init={self.init}, positive={self.positive}, lr={self.lr}"


def unknown_from(value: Any, where: str) -> Unknown | None:
    """An :class:`Unknown` from a YAML mapping ``{unknown: true, init: ..., positive: ..., lr: ...}``
    (or an Unknown itself); None for an ordinary value."""
    if isinstance(value, Unknown):
        return value.fresh()
    if not isinstance(value, Mapping):
        return None
    extra = [key for key in value if key not in KEYS]
    if extra:
        raise ValueError(f"{where}.{extra[0]}: unknown key; allowed: {', '.join(KEYS)}")
    if value.get("unknown") is not True:
        raise ValueError(f"{where}: a mapping declares an unknown parameter and needs unknown: true")
    if "init" not in value:
        raise ValueError(f"{where}.init: required key is missing (the starting value)")
    positive = value.get("positive", False)
    if not isinstance(positive, bool):
        raise ValueError(f"{where}.positive: must be true or false, got {positive!r}")
    try:
        return Unknown(value["init"], positive, value.get("lr"))
    except ValueError as error:
        raise ValueError(f"{where}: {str(error).removeprefix('Unknown: ')}") from None
