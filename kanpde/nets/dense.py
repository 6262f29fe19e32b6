"""The fast path of a run of dense layers (Linear, elementwise Activation) on a second-order jet.

A :class:`~kanpde.jet.Jet` keeps its terms in a stack [N, T, C]; slicing the value, first and second
derivatives out of that layout gives strided views, and autograd answers every slice with a zero-filled
gradient of the whole stack. A run of dense layers is therefore carried in the term-major layout
[T, N, C] instead: each term is a contiguous block, one ``split`` (whose backward is one ``cat``) gives
the parts, and the bias is added to the value term only, inside the activation that follows. The
arithmetic is the same, operation for operation, as :meth:`Jet.linear` and :meth:`Jet.map` (the test
suite checks the results are bit for bit equal), so training runs do not change.

A seed jet (``seed_scale``: the inputs themselves, scaled) entering a Linear layer gives first
derivatives s_a·W[:, a] that are the same at every point and no second derivatives; they are kept as
[D, 1, C] and broadcast, instead of multiplying N·T rows by W.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from kanpde.jet import Jet, curved_axes, outer_terms


def _first_blocks(mode: str, dim: int) -> tuple[list[int], str]:
    """How a dense run keeps the first derivatives: (block sizes, the jet mode of the first block's curvature).
    A lean diagonal whose curved axes lead (Burgers' (x, t) in "diagonal:0") keeps them as a block of their own,
    so that ∂h_a·∂h_a reads a whole block rather than a slice (whose backward fills a zero gradient of the
    whole first-derivative tensor, twice per activation)."""
    curved = curved_axes(mode, dim)
    if curved is None or len(curved) == dim or curved[-1] != len(curved) - 1:
        return [dim], mode
    return [len(curved), dim - len(curved)], "diagonal"


class _Dense:
    """A jet in term-major layout: value [1, N, C], first derivatives in blocks (:func:`_first_blocks`), each
    [D_b, N or 1, C], second [S, N, C] or None (= 0); ``mode`` is the curvature's of the first block."""

    def __init__(self, value, first, second, mode):
        self.value, self.first, self.second, self.mode = value, tuple(first), second, mode

    @classmethod
    def of(cls, u: Jet) -> _Dense:
        stack = u.stack.movedim(1, 0)
        blocks, mode = _first_blocks(u.mode, u.dim)
        value, *first, second = torch.split(stack, [1, *blocks, stack.shape[0] - 1 - u.dim], dim=0)
        return cls(value, first, second if u.mode != "none" else None, mode)

    def linear(self, weight: torch.Tensor, bias: torch.Tensor | None, seed_scale: torch.Tensor | None) -> _Dense:
        """Without the bias: it is added by :meth:`activate` or :meth:`to_jet` (pending in ``self.bias``)."""
        if seed_scale is not None:  # ∂x_a = s_a e_a, ∂²x = 0: the derivatives are columns of W
            columns = (seed_scale[:, None] * weight.T).unsqueeze(1)  # [D, 1, C]
            out = _Dense(self.value @ weight.T, columns.split([b.shape[0] for b in self.first]), None, self.mode)
        else:
            out = _Dense(self.value @ weight.T, [block @ weight.T for block in self.first],
                         None if self.second is None else self.second @ weight.T, self.mode)
        out.bias = bias
        return out

    def _biased_value(self) -> torch.Tensor:
        bias = getattr(self, "bias", None)
        return self.value if bias is None else self.value + bias

    def activate(self, function) -> _Dense:
        f, df, d2f = function(self._biased_value())
        first = [df * block for block in self.first]
        if self.mode == "none":
            return _Dense(f, first, None, self.mode)
        curvature = d2f * outer_terms(self.first[0], self.first[0], self.mode, axis=0)
        second = curvature if self.second is None else curvature + df * self.second
        return _Dense(f, first, second, self.mode)

    def to_jet(self, like: Jet) -> Jet:
        value = self._biased_value()
        n = value.shape[1]
        parts = [value, *(block.expand(-1, n, -1) for block in self.first)]
        if self.mode != "none":
            second = self.second
            if second is None:  # a seed through a single Linear layer: no curvature
                size = like.stack.shape[1] - 1 - like.dim
                second = value.new_zeros(size, n, value.shape[2])
            parts.append(second)
        return Jet(torch.cat(parts, dim=0).movedim(0, 1), like.dim, like.mode, like.coords)


def dense_jet_forward(layers: Sequence, u: Jet) -> Jet:
    """The jet of ``layers`` applied to the second-order jet ``u``: each a Linear layer (``weight``, ``bias``)
    or an elementwise Activation (``function``, giving f, f', f'')."""
    state, seed_scale = _Dense.of(u), u.seed_scale
    for layer in layers:
        if hasattr(layer, "weight"):
            if getattr(state, "bias", None) is not None:  # two Linear layers in a row: settle the first bias
                state = _Dense(state._biased_value(), state.first, state.second, state.mode)
            state = state.linear(layer.weight, layer.bias, seed_scale)
        else:
            state = state.activate(layer.function)
        seed_scale = None
    return state.to_jet(u)
