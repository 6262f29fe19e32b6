"""Loss balancing by gradient norms: learning-rate annealing (Wang, Teng & Perdikaris 2021, Algorithm 1).

Every ``every`` steps the weight of each soft-condition term L_i is reset towards

    λ̂_i = max_θ |∇_θ (λ_r L_r)| / mean_θ |∇_θ L_i|,     λ_i ← (1 − α)·λ_i + α·λ̂_i     (their eqs. 40–41)

with L_r the residual term, whose weight λ_r stays as configured (their λ_r = 1), so that no term's gradient is
swamped by the residual's; the starting weights are ``train.loss_weights``. As in the paper the weight of a term
grows as its gradient vanishes (a well-fitted boundary), without bound. Under ``torchrun`` the per-term gradients
are summed over ranks first, so every rank computes the same weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

__all__ = ["GradientNormBalancing"]


class GradientNormBalancing:
    """Learning-rate annealing of the loss weights (module docstring)."""

    def __init__(self, every: int, alpha: float, reference: str = "residual"):
        if every < 1 or not 0 < alpha <= 1:
            raise ValueError("train.loss_balancing: every must be positive and alpha in (0, 1]")
        self.every, self.alpha, self.reference = every, alpha, reference

    def due(self, step: int) -> bool:
        """Whether the weights are updated before ``step``."""
        return step % self.every == 0

    def update(self, weights: dict[str, float], terms: dict[str, torch.Tensor],
               parameters: Iterable[torch.nn.Parameter],
               across_ranks: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, float]:
        """New weights from the loss ``terms`` (with their graphs; this rank's shares under torchrun)."""
        parameters = [p for p in parameters if p.requires_grad]
        gradients = {}
        for name, term in terms.items():
            parts = (torch.autograd.grad(term, parameters, retain_graph=True, allow_unused=True)
                     if term.requires_grad else [None] * len(parameters))  # e.g. a term without points
            flat = torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                              for g, p in zip(parts, parameters)])
            gradients[name] = across_ranks(flat) if across_ranks is not None else flat
        largest = weights[self.reference] * gradients[self.reference].abs().max()
        new = dict(weights)
        for name, gradient in gradients.items():
            mean = gradient.abs().mean()
            if name == self.reference or not mean > 0:
                continue  # a term without gradient keeps its weight
            target = float(largest / mean)
            new[name] = (1 - self.alpha) * weights[name] + self.alpha * target
        return new
