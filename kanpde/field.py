"""The trial function: physical coordinates → [-1, 1]^D → network → hard conditions."""

from __future__ import annotations

import torch
from torch import nn

from kanpde.autodiff import autograd_jet
from kanpde.jet import Jet
from kanpde.nets import compiled
from kanpde.nets.base import JetModule
from kanpde.problem import Problem, did_you_mean
from kanpde.taylor import Derivatives, TaylorJet
from kanpde.univariate import sin_series


def _channel(u: Jet, index: int) -> Jet:
    """The jet of one output channel (channel axis dropped), of the same kind as ``u`` (any order)."""
    return u._like(u.stack[:, :, index])


class SystemJet:
    """The jet of several named fields (channels [outputs]); ``u["p"]`` or ``u.field("p")`` is one
    field's jet, with ``.value``, ``.d(...)`` and ``.laplacian`` as for a single field. Anything else
    (``u.value`` [N, outputs], ``u.stack``, ...) is read from the jet of all the fields."""

    def __init__(self, jet: Jet, names: tuple[str, ...]):
        self.jet, self.names = jet, tuple(names)

    def field(self, name: str) -> Jet:
        if name not in self.names:
            raise ValueError(f"unknown field {name!r}{did_you_mean(name, self.names)}")
        return _channel(self.jet, self.names.index(name))

    def __getitem__(self, key):
        return self.field(key) if isinstance(key, str) else self.jet[key]

    def __getattr__(self, name: str):
        return getattr(self.jet, name)


def field_jet(u: Jet, problem: Problem, field: str | None = None) -> Jet | SystemJet:
    """What a residual or condition sees of the network's jet ``u`` [N, T, outputs]: the jet of
    ``field``, of the only field (channel axis dropped), or of the whole system (:class:`SystemJet`)."""
    if field is not None:
        return _channel(u, problem.fields.index(field))
    return _channel(u, 0) if problem.outputs == 1 else SystemJet(u, problem.fields)


class Field(nn.Module):
    """u(x) = T(N(ξ(x)), x): the problem's box mapped to [-1, 1]^D, the network N, and the
    problem's output transform T (hard conditions). Derivatives are with respect to x.

    ``derivatives="jet"`` carries them forward in closed form; ``"autograd"`` uses nested
    autograd (the reference, and the fallback for networks that do not propagate jets).
    ``compile`` (``train.compile``) runs the network's second-order jets through ``torch.compile``
    (:mod:`kanpde.nets.compiled`; for a KAN, its layers' fused kernels, :mod:`kanpde.nets.fused_kan`).
    """

    def __init__(self, net: nn.Module, problem: Problem, derivatives: str = "jet", compile: bool = False):
        super().__init__()
        if derivatives not in ("jet", "autograd"):
            raise ValueError(f"train.derivatives: must be jet or autograd, got {derivatives!r}")
        if derivatives == "jet" and not isinstance(net, JetModule):
            raise ValueError("train.derivatives: 'jet' needs a kanpde network; use 'autograd' for other modules")
        self.net, self.problem, self.derivatives = net, problem, derivatives
        self.compile = compile and derivatives == "jet"
        box = problem.box
        self.register_buffer("_lo", torch.tensor(box.lo, dtype=torch.float64))
        self.register_buffer("_scale", torch.tensor(box.scale, dtype=torch.float64))
        self.periodic_axes = [box.names.index(name) for name in problem.periodic]
        self.odd_axes = [box.names.index(name) for name in problem.odd]
        self.even_axes = [box.names.index(name) for name in problem.even]
        # the problem's unknown parameters train with the network (a new Field starts them afresh)
        for name, unknown in problem.unknowns.items():
            problem.unknowns[name] = unknown.fresh()
        self.unknowns = nn.ModuleDict(problem.unknowns)

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """ξ = 2(x − lo)/(hi − lo) − 1 ∈ [-1, 1]^D."""
        return (x - self._lo) * self._scale - 1

    def net_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """What the network sees at physical points ``x`` [N, D]: ξ, periodic coordinates as (cos πξ, sin πξ)."""
        return self._inputs(Jet.seed(self.to_unit(x), "value")).value

    def _inputs(self, u: Jet) -> Jet:
        """The network's inputs: ξ, with each periodic coordinate replaced by (cos πξ, sin πξ)."""
        if not self.periodic_axes:
            return u
        parts = []
        for axis in range(u.dim):
            xi = u[axis : axis + 1]
            if axis in self.periodic_axes:  # d^k/dξ^k of cos πξ and sin πξ, up to the jet's order
                order = max(xi.order, 2)
                parts += [xi.apply(*sin_series(xi.value, order, torch.pi, phase=1)),
                          xi.apply(*sin_series(xi.value, order, torch.pi))]
            else:
                parts.append(xi)
        return Jet.cat(parts)

    def _network(self, xi: torch.Tensor, seed, forward) -> Jet:
        """N at the mapped points ``xi`` [N, D], from ``seed(ξ, scale)`` (the jet of the inputs) and ``forward``
        (the network on the jet of its inputs); for a problem odd (even) in some coordinates, (N(ξ) ∓ N(Rξ))/2
        with R the reflection of those coordinates about the box's centre (seeded as −ξ_a with scale −s_a:
        exact derivatives at any order)."""
        u = forward(self._inputs(seed(xi, self._scale)))
        reflected = self.odd_axes or self.even_axes
        if not reflected:
            return u
        sign = torch.ones_like(self._scale)
        sign[reflected] = -1
        mirror = forward(self._inputs(seed(xi * sign, self._scale * sign)))
        return (u - mirror if self.odd_axes else u + mirror) * 0.5

    def jet(self, x: torch.Tensor, mode: str) -> Jet:
        """The field's jet at physical points ``x`` [N, D], channels [outputs], with coordinate names."""
        coords = self.problem.coords
        if self.derivatives == "autograd" or mode == "value":
            def values(p: torch.Tensor) -> torch.Tensor:
                return self._network(self.to_unit(p), lambda q, _: Jet.seed(q, "value"),
                                     lambda h: Jet.seed(self.net(h.value), "value")).value

            u = autograd_jet(values, x, mode, coords)
        else:
            jet_seed = TaylorJet.seed if isinstance(mode, Derivatives) else Jet.seed  # any order, or the fused ≤ 2
            forward = compiled.jet_forward(self.net) if self.compile else self.net.jet_forward
            u = self._network(self.to_unit(x), lambda q, s: jet_seed(q, mode, coords, scale=s), forward)
        return self.problem.output_transform(u, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Values [N, outputs] at physical points ``x``."""
        return self.jet(x, "value").value
