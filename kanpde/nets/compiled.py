"""``train.compile``: a network's closed-form jet through ``torch.compile``.

A jet of an MLP, SIREN or Fourier-feature MLP is a chain of small elementwise products (f'·∂h,
f''·∂h∂h + f'·∂²h per activation) around a few matrix products; eager PyTorch makes one pass over memory
for each of them, forward and backward. ``torch.compile`` fuses them into a few loops: the MLP
[2,20,20,20,1] step on Burgers (2 780 points, float64, one CPU thread) takes about 0.6× the eager time
after a compilation of 20–60 s, and once more when the number of points first changes (then it compiles for
any number). Costs and gains: docs/benchmarks.md, "torch.compile of the dense jet".

A KAN is not compiled as a whole: its layers' jets go through the fused kernels of
:mod:`kanpde.nets.fused_kan` (one compilation per kernel serves every layer and number of points; an
output layer's single output takes its own), and the rest of its jet stays eager. Only second-order jets
(:class:`~kanpde.jet.Jet`) go through the compiled paths; values (evaluation) and jets of higher order
(:class:`~kanpde.taylor.TaylorJet`) stay eager.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable

import torch

from kanpde.errors import first_line
from kanpde.jet import Jet
from kanpde.nets import fused_kan
from kanpde.nets.base import JetModule
from kanpde.nets.kan import KAN

_COMPILED: weakref.WeakKeyDictionary[JetModule, Callable[[Jet], Jet]] = weakref.WeakKeyDictionary()
"""One compiled jet forward per network object (a copy of a network gets its own)."""


def jet_forward(net: JetModule) -> Callable[[Jet], Jet]:
    """``net.jet_forward``, compiled for second-order jets; eager for everything else, and for good (with
    one warning on stderr) if compilation fails, e.g. where torch.compile has no C++ compiler to use."""
    compiled = _COMPILED.get(net)
    if compiled is None:
        compiled = _COMPILED[net] = _fused_layers(net) if isinstance(net, KAN) else _with_fallback(net)
    return compiled


def _fused_layers(net: KAN) -> Callable[[Jet], Jet]:
    def forward(u: Jet) -> Jet:
        with fused_kan.enabled():
            return net.jet_forward(u)

    return forward


def _with_fallback(net: JetModule) -> Callable[[Jet], Jet]:
    state = {"compiled": torch.compile(net.jet_forward)}

    def forward(u: Jet) -> Jet:
        compiled = state["compiled"]
        if compiled is None or type(u) is not Jet or u.mode == "value":
            return net.jet_forward(u)
        try:
            return compiled(u)
        except Exception as error:  # noqa: BLE001 - the network's own code is eager-tested; the compiler failed
            state["compiled"] = None
            print(f"kanpde: warning: train.compile: torch.compile failed ({first_line(error)}); "
                  "training continues eagerly", file=sys.stderr)
            return net.jet_forward(u)

    return forward


__all__ = ["jet_forward"]
