"""One network pass per jet mode and step (kanpde.loss): the soft conditions and observations read in one mode are
evaluated together, a condition on the interior points takes the residual's jet, and the loss terms and their
gradients are those of one pass per set of points."""

from __future__ import annotations

import math

import pytest
import torch

import kanpde
import kanpde.loss
from kanpde.field import Field
from kanpde.geometry import Sampler
from kanpde.loss import condition_error, loss_terms
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


def _counted(field: Field, monkeypatch) -> list:
    calls, jet = [], field.jet

    def counted(x, mode):
        calls.append((mode, x.shape[0]))
        return jet(x, mode)

    monkeypatch.setattr(field, "jet", counted)
    return calls


def _separately(field: Field, points) -> dict[str, torch.Tensor]:
    """Every loss term from a network pass of its own (residual, condition, data set)."""
    problem = field.problem
    terms = {"residual": kanpde.loss.residual(field, points.interior).square().mean()}
    for condition in problem.soft_conditions:
        terms[condition.name] = condition.weight * condition_error(field, condition, points).square().mean()
    for data in problem.data:
        terms[data.name] = data.misfit(field(data.x)[:, 0]).square().mean()
    return terms


def _terms_match_separate_passes(field: Field, points, monkeypatch) -> list:
    """Assert that ``loss_terms`` gives the terms and gradients of one pass per set of points; return its passes."""
    parameters = list(field.parameters())
    reference = _separately(field, points)
    reference_gradients = torch.autograd.grad(sum(reference.values()), parameters)
    calls = _counted(field, monkeypatch)
    terms = loss_terms(field, points)
    gradients = torch.autograd.grad(sum(terms.values()), parameters)
    assert list(terms) == list(reference) == field.problem.loss_terms()
    for name in terms:
        assert torch.allclose(terms[name], reference[name], rtol=1e-12, atol=1e-14), name
    for g, g_ref in zip(gradients, reference_gradients):
        assert torch.allclose(g, g_ref, rtol=1e-10, atol=1e-13)
    return calls


@pytest.mark.parametrize("derivatives", ["jet", "autograd"])
@pytest.mark.parametrize("net", [lambda: KAN([2, 4, 1], grid=4), lambda: MLP([2, 8, 8, 1])])
def test_one_pass_per_mode_gives_the_terms_and_gradients_of_one_pass_per_set(net, derivatives, monkeypatch):
    torch.manual_seed(0)
    problem = Mixed()
    field = Field(net().double(), problem, derivatives=derivatives)
    points = Sampler(problem.box, 50, 20, 10, seed=3, dtype=torch.float64).sample(0)
    calls = _terms_match_separate_passes(field, points, monkeypatch)
    # the residual; the values (x = 0, the initial values, the point, the data: 20·½ + 10 + 1 + 30 points);
    # the first derivatives (x = 1, the initial rate: 10 + 10 points, the initial points once per mode);
    # the 'full' condition; the periodic pair on its own
    boundary = int((points.boundary[:, 0] == 0).sum())
    assert calls == [("diagonal", 50), ("value", boundary + 10 + 1 + 30), ("none", 20 - boundary + 10),
                     ("full", 20 - boundary), ("none", boundary), ("none", boundary)]


def test_a_condition_on_the_interior_points_takes_the_residuals_jet(monkeypatch):
    class Constrained(Mixed):
        conditions = [kanpde.Condition(lambda u, x: u.d("x") - 1.0, on="interior", name="slope")]

    problem = Constrained()
    field = Field(MLP([2, 6, 1]).double(), problem)
    points = Sampler(problem.box, 40, 0, 0, seed=5, dtype=torch.float64).sample(0)
    calls = _counted(field, monkeypatch)
    terms = loss_terms(field, points)
    assert calls == [("diagonal", 40), ("value", 30)]  # the residual's pass, and the data's
    expected = (field.jet(points.interior, "none").d("x") - 1.0).square().mean()
    assert torch.allclose(terms["slope"], expected, rtol=1e-12)


@pytest.mark.parametrize("reads, residual_mode, own_pass", [
    ("xx", "diagonal", False),      # u_xx ("diagonal:0") is in the whole diagonal
    ("xx", "full", False),          # and in the whole Hessian
    ("xx", ("t", "xx"), False),     # and in the lean "diagonal:0" itself
    ("tt", ("t", "xx"), True),      # u_tt ("diagonal:1") is not in "diagonal:0": a pass of its own
])
def test_a_lean_condition_on_the_interior_points_shares_a_jet_that_holds_it(reads, residual_mode, own_pass,
                                                                            monkeypatch):
    class Lean(Mixed):
        derivatives = residual_mode
        conditions = [kanpde.Condition(lambda u, x: u.d(*reads), on="interior", name="curved")]
        observations = []

    problem = Lean()
    assert problem.condition_modes["curved"] == ("diagonal:0" if reads == "xx" else "diagonal:1")
    field = Field(MLP([2, 6, 1]).double(), problem)
    points = Sampler(problem.box, 40, 0, 0, seed=5, dtype=torch.float64).sample(0)
    calls = _counted(field, monkeypatch)
    terms = loss_terms(field, points)
    assert calls == [(problem.derivatives, 40)] + ([("diagonal:1", 40)] if own_pass else [])
    expected = field.jet(points.interior, problem.condition_modes["curved"]).d(*reads).square().mean()
    assert torch.allclose(terms["curved"], expected, rtol=1e-12)


@pytest.mark.parametrize("interior, rides", [(240, True), (150, False)])
def test_under_compile_few_value_points_ride_in_the_residuals_pass(interior, rides, monkeypatch):
    """With ``train.compile`` the value-only sets (here 20·½ + 10 + 1 + 30 points) join the residual's jet
    pass when they have at most a quarter as many points as the residual; the terms and gradients stay those
    of one pass per set of points. (The compiled jet is swapped for the eager one: the planning is tested.)"""
    import kanpde.field

    monkeypatch.setattr(kanpde.field.compiled, "jet_forward", lambda net: net.jet_forward)
    torch.manual_seed(0)
    problem = Mixed()
    field = Field(KAN([2, 4, 1], grid=4).double(), problem, compile=True)
    points = Sampler(problem.box, interior, 20, 10, seed=3, dtype=torch.float64).sample(0)
    calls = _terms_match_separate_passes(field, points, monkeypatch)
    boundary = int((points.boundary[:, 0] == 0).sum())
    values = boundary + 10 + 1 + 30
    assert (calls[0] == ("diagonal", interior + values)) == rides
    assert (("value", values) in calls) != rides
