"""One network pass per step (kanpde.loss): the residual, the soft conditions and the observations that read
no more derivatives than the residual come from one evaluation on all their points, and give the same loss
terms and gradients as one pass per set of points."""

from __future__ import annotations

import math

import pytest
import torch

import kanpde
import kanpde.loss
from kanpde.field import Field
from kanpde.geometry import Sampler
from kanpde.loss import loss_terms
from kanpde.nets import KAN, MLP

pytestmark = pytest.mark.usefixtures("single_thread")
PI = math.pi


class Mixed(kanpde.Problem):
    """u_t = 0.1 u_xx + f on [0, 1] × [0, 1] with one condition of every kind: a value (Dirichlet), a first
    derivative (Neumann), an initial value and rate, a point, a periodic pair, a general condition reading
    u_xx (a 'full' jet: more than the residual's 'diagonal', so a pass of its own) and measured data."""

    box = kanpde.Box.space_time([0.0], [1.0], 0.0, 1.0)
    derivatives = "diagonal"
    conditions = [
        kanpde.Dirichlet(lambda x: torch.sin(PI * x[:, 1]), on="x=0"),
        kanpde.Neumann(0.5, on="x=1"),
        kanpde.Initial(lambda x: torch.sin(PI * x[:, 0])),
        kanpde.Initial(0.0, derivative="t", weight=0.3),
        kanpde.PointValue(at=(0.5, 0.5), value=0.2),
        kanpde.Periodic("x", weight=2.0),
        kanpde.Condition(lambda u, x: u.hess[:, 0, 0] - 1.0, on="x=1", name="curvature", derivatives="full"),
    ]
    observations = [kanpde.Observations(torch.rand(30, 2, generator=torch.Generator().manual_seed(1),
                                                   dtype=torch.float64), torch.linspace(0, 1, 30))]

    def residual(self, u, x):
        return u.d("t") - 0.1 * u.d("x", "x") - torch.cos(x[:, 0])


def _terms_and_gradients(field: Field, points, monkeypatch, together: bool):
    calls = []
    jet = field.jet

    def counted(x, mode):
        calls.append(mode)
        return jet(x, mode)

    with monkeypatch.context() as patch:
        patch.setattr(field, "jet", counted)
        if not together:
            patch.setattr(kanpde.loss, "_reads_within", lambda mode, jet_mode: False)
        terms = loss_terms(field, points)
        gradients = torch.autograd.grad(sum(terms.values()), list(field.parameters()))
    return {name: value.detach() for name, value in terms.items()}, gradients, calls


@pytest.mark.parametrize("net", [lambda: KAN([2, 4, 1], grid=4), lambda: MLP([2, 8, 8, 1])])
def test_one_pass_gives_the_terms_and_gradients_of_separate_passes(net, monkeypatch):
    torch.manual_seed(0)
    problem = Mixed()
    field = Field(net().double(), problem)
    points = Sampler(problem.box, 50, 20, 10, seed=3, dtype=torch.float64).sample(0)
    together, gradients, calls = _terms_and_gradients(field, points, monkeypatch, together=True)
    apart, reference, separate = _terms_and_gradients(field, points, monkeypatch, together=False)
    assert list(together) == list(apart) == problem.loss_terms()
    for name in together:
        assert torch.allclose(together[name], apart[name], rtol=1e-12, atol=1e-14), name
    for g, g_ref in zip(gradients, reference):
        assert torch.allclose(g, g_ref, rtol=1e-10, atol=1e-13)
    # one pass for everything 'diagonal' holds, two for the periodic pair, one for the 'full' condition
    assert calls == ["diagonal", "none", "none", "full"]
    assert len(separate) == 1 + 8 + 1  # the residual, seven conditions (the periodic pair twice), the data


def test_nested_autograd_keeps_one_pass_per_set_of_points(monkeypatch):
    """derivatives: autograd (the reference path) evaluates every set of points on its own."""
    problem = Mixed()
    field = Field(KAN([2, 3, 1], grid=3).double(), problem, derivatives="autograd")
    points = Sampler(problem.box, 20, 10, 6, seed=4, dtype=torch.float64).sample(0)
    _, _, calls = _terms_and_gradients(field, points, monkeypatch, together=True)
    assert len(calls) == 10 and calls[0] == "diagonal"
