"""Lean second-order jets: a residual that reads u_t and u_xx gets a jet carrying u_xx but not u_tt
(mode "diagonal:0"). The declared or traced derivatives resolve to the leanest layout; the lean jet of a
field holds exactly the numbers of the whole diagonal's; training reads them and goes the same way."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close

import kanpde
from kanpde import Field, autograd_jet
from kanpde.checks import _components
from kanpde.config import config_from_dict
from kanpde.jet import num_terms
from kanpde.nets import KAN, MLP
from kanpde.problems.burgers import Burgers
from kanpde.solver import build_field, build_problem, build_sampler
from kanpde.train import Trainer

pytestmark = pytest.mark.usefixtures("single_thread")


class _TimeFirst(kanpde.Problem):
    """u_t = u_xx with the time axis first, its derivatives found by tracing."""

    box = kanpde.Box([0.0, 0.0], [1.0, 1.0], names=("t", "x"))
    derivatives = "auto"

    def residual(self, u, x):
        return u.d("t") - u.d("x", "x")


class _ReadsUtt(kanpde.Problem):
    """Declares u_t and u_xx but reads u_tt: the jet does not carry it."""

    box = kanpde.Box.space_time([0.0], [1.0], t0=0.0, t1=1.0, names=("x", "t"))
    derivatives = ("t", "xx")

    def residual(self, u, x):
        return u.d("t", "t") - u.d("x", "x")


@pytest.mark.parametrize("name, mode", [("burgers", "diagonal:0"), ("heat1d", "diagonal:0"),
                                        ("allen_cahn", "diagonal:0"), ("heat_disk", "diagonal:0,1"),
                                        ("heat_inverse", "diagonal:0,1"), ("wave", "diagonal"),
                                        ("poisson", "trace")])
def test_built_in_problems_carry_the_second_derivatives_they_read(name, mode):
    problem = build_problem(config_from_dict({"problem": {"name": name}}).problem)
    assert problem.derivatives == mode
    assert _components(problem) == num_terms(mode, problem.box.dim)  # the memory estimate counts those terms


def test_traced_derivatives_give_the_lean_mode_on_any_axis():
    assert _TimeFirst().derivatives == "diagonal:1"  # u_xx of the second axis, not u_tt of the first


def test_a_derivative_not_declared_is_refused_by_name():
    problem = _ReadsUtt()
    field = Field(MLP([2, 4, 1]).double(), problem)
    x = torch.rand(5, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"\('t', 't'\) is not carried .*'diagonal:0'.*add it to the problem"):
        problem.residual(field.jet(x, problem.derivatives), x)


@pytest.mark.parametrize("net", ["kan", "mlp", "autograd"])
@pytest.mark.parametrize("hard", [True, False])
def test_the_lean_jet_of_a_field_is_the_whole_diagonal_without_u_tt(net, hard):
    """Through the network, the box map and the hard conditions' output transform: the lean jet's terms are
    the whole diagonal's (u, u_x, u_t, u_xx), and nested autograd's."""
    torch.manual_seed(0)
    network = KAN([2, 5, 5, 1], grid=5) if net == "kan" else MLP([2, 8, 8, 1])
    field = Field(network.double(), Burgers(hard=hard), "autograd" if net == "autograd" else "jet").double()
    x = torch.rand(50, 2, dtype=torch.float64) * torch.tensor([2.0, 1.0], dtype=torch.float64) - torch.tensor(
        [1.0, 0.0], dtype=torch.float64)
    lean, whole = field.jet(x, "diagonal:0"), field.jet(x, "diagonal")
    assert lean.stack.shape[1] == 4
    assert_close(lean.stack, whole.stack[:, :4], 1e-14)  # u, u_x, u_t, then u_xx (u_tt is the 5th)
    assert_close(lean.stack, autograd_jet(field, x, "diagonal:0").stack, 1e-11)
    assert_close(Burgers(hard=hard).residual(lean, x), Burgers(hard=hard).residual(whole, x), 1e-14)


def _losses(derivatives, model: str) -> torch.Tensor:
    config = config_from_dict({
        "problem": {"name": "burgers", "params": {"hard": False}},
        "model": {"type": "kan", "width": [2, 6, 1], "grid": 5} if model == "kan" else
                 {"type": "mlp", "width": [2, 12, 12, 1]},
        "points": {"interior": 300, "boundary": 40, "initial": 40},
        "train": {"stages": [{"optimizer": "adam", "steps": 12, "lr": 1e-2}], "seed": 3}})
    problem = build_problem(config.problem)
    problem.derivatives = derivatives  # what the class declares, resolved: the lean mode, or the whole diagonal
    trainer = Trainer(build_field(config, problem, torch.device("cpu")),
                      build_sampler(config, problem, torch.float64, torch.device("cpu")), config.train, progress=False)
    trainer.run()
    return torch.tensor([row["loss"] for row in trainer.history.rows])


@pytest.mark.parametrize("model", ["kan", "mlp"])
def test_training_with_the_lean_jet_goes_as_with_the_whole_diagonal(model):
    lean, whole = _losses("diagonal:0", model), _losses("diagonal", model)
    assert len(lean) == 12 and lean[-1] < lean[0]
    assert torch.allclose(lean, whole, rtol=1e-12, atol=0)


def test_a_lean_mode_can_be_declared_by_name():
    class Declared(_ReadsUtt):
        derivatives = "diagonal:0"

        def residual(self, u, x):
            return u.d("t") - u.d("x", "x")

    class Whole(Declared):
        derivatives = "diagonal:0,1"  # every axis: the plain diagonal

    class OutOfRange(Declared):
        derivatives = "diagonal:2"

    class Condition(Declared):
        conditions = [kanpde.Condition(lambda u, x: u.d("x", "x"), on="x=1", name="bend", derivatives="diagonal:0")]

    assert Declared().derivatives == "diagonal:0" and Whole().derivatives == "diagonal"
    assert Condition().condition_modes == {"bend": "diagonal:0"}
    with pytest.raises(ValueError, match=r"^OutOfRange\.derivatives: 'diagonal:2' must list distinct axes below 2"):
        OutOfRange()
