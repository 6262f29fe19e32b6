"""User-defined problems: parameters, validation of the definition, hard conditions and the Field's jets,
and the soft-condition loss terms against direct computations (float64, fixed seeds)."""

from __future__ import annotations

import math

import pytest
import torch
from user_problem import Heat, Poisson2D

import kanpde
from kanpde import Box, Dirichlet, Field, Initial, Neumann, Periodic, Problem, autograd_jet
from kanpde.geometry import Sampler, sample_boundary, sample_initial, sample_interior
from kanpde.jet import Jet
from kanpde.loss import loss_terms
from kanpde.nets import KAN, MLP
from kanpde.nets.base import JetModule

DTYPE = torch.float64
JET_TOL = 1e-10
EXACT_TOL = 1e-14


pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


# -- helpers ----------------------------------------------------------------------------------


def jet_sin(u: Jet) -> Jet:
    v = u.value
    return u.apply(torch.sin(v), torch.cos(v), -torch.sin(v))


def jet_exp(u: Jet, rate: float) -> Jet:
    """exp(rate·u)."""
    e = torch.exp(rate * u.value)
    return u.apply(e, rate * e, rate * rate * e)


class ExactNet(JetModule):
    """N(ξ) = f(x(ξ)): reproduces a function of the *physical* coordinates through the Field's box map
    ξ = 2(x − lo)/(hi − lo) − 1, so the Field built on it is exactly f (derivatives included)."""

    def __init__(self, box: Box, function):
        super().__init__()
        self.in_features = box.dim
        self.lo, self.half = box.lo, [w / 2 for w in box.widths]
        self.function = function

    def jet_forward(self, xi: Jet) -> Jet:
        coords = [(xi[a : a + 1] + 1.0) * self.half[a] + self.lo[a] for a in range(xi.dim)]
        return self.function(*coords)


def sin_exp(x: Jet, y: Jet) -> Jet:
    """u* = sin(x)·exp(y/2), the solution of Poisson2D."""
    return jet_sin(x) * jet_exp(y, 0.5)


def heat_solution(kappa: float):
    def function(x: Jet, t: Jet) -> Jet:
        return jet_exp(t, -kappa * math.pi**2) * jet_sin(x * math.pi)
    return function


class PeriodicNet(JetModule):
    """N(ξ) = sin(πξ₀)·(1 + ξ₁²) + ξ₁: periodic in ξ₀ (hence in x over the box), not in ξ₁."""

    in_features = 2

    def jet_forward(self, xi: Jet) -> Jet:
        x, y = xi[0:1], xi[1:2]
        return jet_sin(x * math.pi) * (y * y + 1.0) + y


def random_kan(width=(2, 4, 1), seed: int = 0) -> KAN:
    """A KAN with O(1) spline coefficients, so its splines matter as much as its silu part."""
    torch.manual_seed(seed)
    kan = KAN(list(width), grid=5).to(DTYPE)
    with torch.no_grad():
        for layer in kan.layers:
            layer.coef.normal_(0.0, 0.5)
    return kan


def random_mlp(width=(2, 8, 1), seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(list(width)).to(DTYPE)


def rel_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    assert actual.shape == expected.shape, (tuple(actual.shape), tuple(expected.shape))
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-300))


BOX = Box([0.0, -1.0], [2.0, 3.0], ("x", "y"))


def lift(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x[:, 0]) + x[:, 1] ** 2 - 0.5 * x[:, 0] * x[:, 1]


class HardPoisson(Problem):
    box = BOX
    derivatives = "full"
    conditions = [Dirichlet(lift, hard=True)]

    def residual(self, u, x):
        return u.laplacian


class HardHeat(Heat):
    conditions = [Dirichlet(0.0), Initial(lambda x: torch.cos(2 * x[:, 0]) + x[:, 0], hard=True)]


class PeriodicField(Problem):
    """The field is built periodic in x (the network sees cos πξ, sin πξ)."""

    box = BOX
    periodic = ("x",)
    conditions = [Dirichlet(0.0, faces=("y=-1", "y=3"))]

    def residual(self, u, x):
        return u.laplacian


# -- parameters -------------------------------------------------------------------------------


def test_parameters_defaults_and_overrides():
    assert Heat().kappa == 0.1
    assert Heat().label == "heat"
    heat = Heat(kappa=0.2)
    assert heat.kappa == 0.2
    assert heat.params == {"kappa": 0.2, "label": "heat"}
    assert Heat.params == {"kappa": 0.1, "label": "heat"}  # the class default is not modified
    assert Heat().kappa == 0.1
    integer = Heat(kappa=1)
    assert integer.kappa == 1.0 and isinstance(integer.kappa, float)  # a float parameter stays a float
    assert Heat(label="other").label == "other"
    assert "kappa=0.2" in repr(heat)
    assert heat.name == "heat" and Heat.problem_name == "heat"
    assert heat.coords == ("x", "t")


def test_unknown_parameter_names_key_and_suggests():
    with pytest.raises(ValueError, match=r"problem\.params\.kapa") as info:
        Heat(kapa=0.2)
    assert "did you mean 'kappa'" in str(info.value)
    with pytest.raises(ValueError, match=r"problem\.params\.zzz"):
        Poisson2D(zzz=1.0)


@pytest.mark.parametrize("value", ["fast", True, math.nan, math.inf, None, [0.1]])
def test_non_numeric_value_for_numeric_parameter(value):
    with pytest.raises(ValueError, match=r"problem\.params\.kappa"):
        Heat(kappa=value)


# -- validation of the definition -------------------------------------------------------------


def test_missing_residual_is_a_type_error_naming_the_class():
    class NoResidual(Problem):
        box = BOX

    with pytest.raises(TypeError, match="NoResidual"):
        NoResidual()


def test_missing_box_is_a_type_error_naming_the_class():
    class NoBox(Problem):
        def residual(self, u, x):
            return u.laplacian

    with pytest.raises(TypeError, match="NoBox"):
        NoBox()


def test_reflections_name_known_coordinates_and_do_not_mix():
    class EvenZ(Poisson2D):
        even = ("z",)

    class OddAndEven(Poisson2D):
        odd, even = ("x",), ("y",)

    with pytest.raises(ValueError, match="EvenZ.even: unknown coordinate 'z'"):
        EvenZ()
    with pytest.raises(ValueError, match="odd .* and even .* cannot be combined"):
        OddAndEven()


def test_bad_derivatives_mode():
    class BadMode(Poisson2D):
        derivatives = "hessian"

    with pytest.raises(ValueError, match=r"BadMode\.derivatives"):
        BadMode()


@pytest.mark.parametrize("conditions", [
    [Dirichlet(0.0), Neumann(0.0, faces="x=0", name="boundary")],
    [Dirichlet(0.0, faces="x=0", name="side"), Dirichlet(1.0, faces="x=2", name="side")],
    [Dirichlet(0.0, name="residual")],
])
def test_duplicate_condition_names(conditions):
    class Duplicate(Poisson2D):
        pass

    Duplicate.conditions = conditions
    with pytest.raises(ValueError, match="used twice"):
        Duplicate()


def test_two_hard_conditions_of_one_kind_are_refused():
    class TwoHard(Heat):
        conditions = [Dirichlet(0.0, hard=True), Initial(0.0, hard=True, name="first"),
                      Initial(1.0, hard=True, name="second")]

    with pytest.raises(ValueError, match="TwoHard.*two hard conditions"):
        TwoHard()


def test_hard_dirichlet_conditions_on_a_common_part_are_refused():
    class Overlap(Heat):
        conditions = [Dirichlet(0.0, on="x=0", hard=True, name="left"),
                      Dirichlet(0.0, on=["x=0", "x=1"], hard=True, name="both")]

    with pytest.raises(ValueError, match="Overlap.*common boundary part"):
        Overlap()


def test_a_hard_condition_on_a_predicate_is_refused():
    class Predicate(Heat):
        conditions = [Dirichlet(0.0, on=lambda x: x[:, 0] < 0.5, hard=True)]

    with pytest.raises(ValueError, match="Predicate.*not a predicate"):
        Predicate()


@pytest.mark.parametrize("make_net", [random_kan, random_mlp])
def test_hard_dirichlet_conditions_on_different_parts_combine(make_net):
    class TwoSides(Heat):
        conditions = [Dirichlet(lambda x: 1.0 + x[:, 1], on="x=0", hard=True, name="left"),
                      Dirichlet(-2.0, on="x=1", hard=True, name="right"),
                      Initial(lambda x: 1.0 - 3.0 * x[:, 0], hard=True)]

    field = Field(make_net(), TwoSides()).to(DTYPE)
    t = torch.linspace(0.0, 0.5, 7, dtype=torch.float64)[:, None]
    left = field(torch.cat([torch.zeros_like(t), t], dim=1))[:, 0]
    right = field(torch.cat([torch.ones_like(t), t], dim=1))[:, 0]
    start = field(torch.stack([torch.linspace(0.0, 1.0, 7, dtype=torch.float64), torch.zeros(7, dtype=torch.float64)],
                              dim=1))[:, 0]
    assert torch.allclose(left, 1.0 + t[:, 0], atol=1e-6)
    assert torch.allclose(right, torch.full_like(right, -2.0), atol=1e-6)
    assert torch.allclose(start, 1.0 - 3.0 * torch.linspace(0.0, 1.0, 7, dtype=torch.float64), atol=1e-6)


def test_periodic_with_unknown_axis():
    class BadPeriodic(Poisson2D):
        conditions = [Periodic("z")]

    with pytest.raises(ValueError, match="'z'"):
        BadPeriodic()


def test_initial_without_time():
    class NoTime(Poisson2D):
        conditions = [Initial(0.0)]

    with pytest.raises(ValueError, match="NoTime.*space-time"):
        NoTime()


def test_unknown_face_and_foreign_condition():
    class BadFace(Poisson2D):
        conditions = [Dirichlet(0.0, faces="x=7")]

    with pytest.raises(ValueError, match="x=7"):
        BadFace()

    class Foreign(Poisson2D):
        conditions = [("dirichlet", 0.0)]

    with pytest.raises(TypeError, match="Foreign.conditions"):
        Foreign()


def test_valid_definitions_list_their_loss_terms():
    assert Heat().loss_terms() == ["residual", "boundary", "initial"]
    assert HardHeat().loss_terms() == ["residual", "boundary"]
    assert HardPoisson().loss_terms() == ["residual"]


# -- hard conditions --------------------------------------------------------------------------


@pytest.mark.parametrize("make_net", [random_kan, random_mlp])
def test_hard_dirichlet_holds_exactly_on_the_boundary(make_net):
    field = Field(make_net(), HardPoisson()).to(DTYPE)
    boundary = sample_boundary(BOX, 400, "uniform", 0, dtype=DTYPE).points
    with torch.no_grad():
        values = field(boundary)[:, 0]
    assert values.shape == (400,)
    assert (values - lift(boundary)).abs().max() <= EXACT_TOL
    inside = sample_interior(BOX, 200, "uniform", 1, dtype=DTYPE)
    with torch.no_grad():
        assert (field(inside)[:, 0] - lift(inside)).abs().max() > 1e-3  # the network does contribute


def test_hard_dirichlet_on_some_faces_only():
    class SomeFaces(HardPoisson):
        conditions = [Dirichlet(lift, faces=("x=0", "y=3"), hard=True)]

    problem = SomeFaces()
    field = Field(random_kan(), problem).to(DTYPE)
    points = sample_boundary(BOX, 400, "uniform", 0, dtype=DTYPE)
    with torch.no_grad():
        error = (field(points.points)[:, 0] - lift(points.points)).abs()
    chosen = torch.isin(points.face, torch.tensor([BOX.face_index("x=0"), BOX.face_index("y=3")]))
    assert error[chosen].max() <= EXACT_TOL
    assert error[~chosen].max() > 1e-3


@pytest.mark.parametrize("make_net", [random_kan, random_mlp])
def test_hard_initial_holds_exactly_at_t0(make_net):
    problem = HardHeat()
    field = Field(make_net(), problem).to(DTYPE)
    x0 = sample_initial(problem.box, 300, "uniform", 0, dtype=DTYPE)
    assert bool((x0[:, 1] == problem.box.t0).all())
    target = torch.cos(2 * x0[:, 0]) + x0[:, 0]
    with torch.no_grad():
        assert (field(x0)[:, 0] - target).abs().max() <= EXACT_TOL
        later = x0.clone()
        later[:, 1] = 0.3
        assert (field(later)[:, 0] - (torch.cos(2 * later[:, 0]) + later[:, 0])).abs().max() > 1e-3


# -- the Field's jets against nested autograd of its plain forward ----------------------------


PROBLEMS = {"hard-dirichlet": HardPoisson, "hard-initial": HardHeat, "soft": Poisson2D, "periodic": PeriodicField}


@pytest.mark.parametrize("derivatives", ["jet", "autograd"])
@pytest.mark.parametrize("mode", ["full", "diagonal", "trace", "none"])
@pytest.mark.parametrize("net_kind", ["kan", "mlp"])
@pytest.mark.parametrize("problem_key", list(PROBLEMS))
def test_field_jet_matches_autograd_of_forward(problem_key, net_kind, mode, derivatives):
    problem = PROBLEMS[problem_key]()
    width = (problem.input_features, 4, 1)
    net = random_kan(width, seed=3) if net_kind == "kan" else random_mlp((width[0], 8, 1), seed=3)
    field = Field(net, problem, derivatives=derivatives).to(DTYPE)
    x = sample_interior(problem.box, 64, "uniform", 2, dtype=DTYPE)
    jet = field.jet(x, mode)
    reference = autograd_jet(field, x, mode)
    assert jet.mode == mode and jet.coords == problem.coords
    assert jet.stack.shape == reference.stack.shape == (64, jet.stack.shape[1], 1)
    assert rel_error(jet.stack, reference.stack) <= JET_TOL
    assert jet.stack[:, 1:].abs().max() > 1e-3  # non-trivial derivatives
    if mode == "full":  # named derivatives read the right entries
        assert rel_error(jet.d(problem.coords[0], problem.coords[1])[:, 0], reference.hess[:, 0, 0, 1]) <= JET_TOL
        assert rel_error(jet.d(problem.coords[1])[:, 0], reference.grad[:, 0, 1]) <= JET_TOL


def test_periodic_field_is_periodic_in_value_and_derivatives():
    field = Field(random_kan((3, 4, 1), seed=5), PeriodicField()).to(DTYPE)
    y = torch.linspace(-1, 3, 17, dtype=DTYPE)
    lo = torch.stack([torch.zeros_like(y), y], dim=1)
    hi = torch.stack([torch.full_like(y, 2.0), y], dim=1)
    a, b = field.jet(lo, "full"), field.jet(hi, "full")
    assert (a.stack - b.stack).abs().max() <= 1e-12 * a.stack.abs().max()


# -- soft conditions: loss terms against direct computations ----------------------------------


def points_of(problem: Problem, interior=300, boundary=200, initial=0, seed=0):
    return Sampler(problem.box, interior, boundary, initial, method="sobol", seed=seed, dtype=DTYPE).sample(0)


def test_exact_net_reproduces_the_function():
    problem = Poisson2D()
    field = Field(ExactNet(problem.box, sin_exp), problem)
    x = sample_interior(problem.box, 50, "uniform", 0, dtype=DTYPE)
    jet = field.jet(x, "full")
    u = Poisson2D.solution(x)
    assert rel_error(jet.value[:, 0], u) <= 1e-14
    assert rel_error(jet.grad[:, 0, 0], torch.cos(x[:, 0]) * torch.exp(x[:, 1] / 2)) <= 1e-14
    assert rel_error(jet.grad[:, 0, 1], u / 2) <= 1e-14
    assert rel_error(jet.laplacian[:, 0], -0.75 * u) <= 1e-13


def test_residual_and_dirichlet_terms():
    problem = Poisson2D()
    field = Field(ExactNet(problem.box, sin_exp), problem)
    points = points_of(problem)
    terms = loss_terms(field, points)
    assert list(terms) == ["residual", "boundary"]
    assert all(value.ndim == 0 for value in terms.values())
    assert terms["residual"] <= 1e-26  # u* solves Δu + 3/4 u = 0
    assert terms["boundary"] <= 1e-28  # and matches its own boundary values
    # another parameter: the residual is then (a − 3/4)·u* = u*
    terms = loss_terms(Field(field.net, Poisson2D(a=1.75)), points)
    expected = Poisson2D.solution(points.interior).square().mean()
    assert abs(float(terms["residual"]) - float(expected)) <= 1e-12 * float(expected)


class Mixed(Poisson2D):
    conditions = [Dirichlet(0.0, name="wall"), Neumann(0.5, faces=("x=0", "y=3"), name="flux")]


def test_dirichlet_and_neumann_terms_against_manual_computation():
    problem = Mixed()
    field = Field(ExactNet(problem.box, sin_exp), problem)
    points = points_of(problem, boundary=300)
    terms = loss_terms(field, points)
    assert list(terms) == problem.loss_terms() == ["residual", "wall", "flux"]
    xb = points.boundary
    wall = Poisson2D.solution(xb).square().mean()  # every face, target 0
    assert abs(float(terms["wall"]) - float(wall)) <= 1e-12 * float(wall)
    left, top = points.boundary_face == BOX.face_index("x=0"), points.boundary_face == BOX.face_index("y=3")
    assert left.sum() > 10 and top.sum() > 10
    u_x = torch.cos(xb[:, 0]) * torch.exp(xb[:, 1] / 2)
    u_y = Poisson2D.solution(xb) / 2
    normal_derivative = torch.cat([-u_x[left], u_y[top]])  # outward normals (−1, 0) and (0, +1)
    flux = (normal_derivative - 0.5).square().mean()
    assert abs(float(terms["flux"]) - float(flux)) <= 1e-12 * float(flux)


def test_initial_term_and_parameter_in_residual():
    points = points_of(Heat(), interior=300, boundary=100, initial=100)
    field = Field(ExactNet(Heat.box, heat_solution(0.1)), Heat())
    terms = loss_terms(field, points)
    assert list(terms) == ["residual", "boundary", "initial"]
    assert terms["residual"] <= 1e-24 and terms["boundary"] <= 1e-28 and terms["initial"] <= 1e-28
    # the same field for κ = 0.2: u_t − 0.2 u_xx = 0.1 π² u
    terms = loss_terms(Field(field.net, Heat(kappa=0.2)), points)
    expected = (0.1 * math.pi**2 * Heat(kappa=0.1).exact(points.interior)).square().mean()
    assert abs(float(terms["residual"]) - float(expected)) <= 1e-12 * float(expected)
    # a wrong initial target: the term is the mean squared difference on the initial points only
    class Shifted(Heat):
        conditions = [Dirichlet(0.0), Initial(lambda x: torch.sin(torch.pi * x[:, 0]) + x[:, 0])]

    terms = loss_terms(Field(field.net, Shifted()), points)
    expected = points.initial[:, 0].square().mean()
    assert abs(float(terms["initial"]) - float(expected)) <= 1e-12 * float(expected)


def test_periodic_term():
    class PeriodicX(Problem):
        box = BOX
        conditions = [Periodic("x")]

        def residual(self, u, x):
            return u.laplacian

    class PeriodicY(PeriodicX):
        conditions = [Periodic("y")]

    points = points_of(PeriodicX(), boundary=400)
    terms = loss_terms(Field(PeriodicNet(), PeriodicX()), points)
    assert list(terms) == ["residual", "periodic"]
    assert terms["periodic"] <= 1e-28
    # not periodic in y: u(ξ₀, −1) − u(ξ₀, 1) = −2 and ∂u/∂y differs by 0.5·(−4 sin πξ₀) (dξ₁/dy = 1/2)
    terms = loss_terms(Field(PeriodicNet(), PeriodicY()), points)
    xi0 = points.boundary[points.boundary_face == BOX.face_index("y.lo")][:, 0] - 1.0  # ξ₀ = x − 1
    assert len(xi0) > 50
    expected = torch.cat([torch.full_like(xi0, -2.0), -2 * torch.sin(math.pi * xi0)]).square().mean()
    assert abs(float(terms["periodic"]) - float(expected)) <= 1e-12 * float(expected)


@pytest.mark.parametrize("bad", [
    lambda r: r.sum(),
    lambda r: r[:-1],
    lambda r: 1.0,
    lambda r: r.reshape(1, -1),
])
def test_residual_of_wrong_shape(bad):
    class BadShape(Poisson2D):
        def residual(self, u, x):
            return bad(super().residual(u, x))

    problem = BadShape()
    field = Field(random_kan(), problem).to(DTYPE)
    with pytest.raises(ValueError, match=r"BadShape\.residual"):
        loss_terms(field, points_of(problem, interior=20, boundary=8))


def test_vector_residual_is_accepted():
    class TwoResiduals(Poisson2D):
        def residual(self, u, x):
            r = super().residual(u, x)
            return torch.stack([r, 2 * r], dim=1)

    problem = TwoResiduals(a=1.75)
    points = points_of(problem)
    terms = loss_terms(Field(ExactNet(problem.box, sin_exp), problem), points)
    expected = (5 * Poisson2D.solution(points.interior).square()).mean() / 2  # mean over [N, 2]
    assert abs(float(terms["residual"]) - float(expected)) <= 1e-12 * float(expected)


def test_public_api_exports():
    for name in ("Problem", "Dirichlet", "Neumann", "Periodic", "Initial", "Field", "autograd_jet", "Box"):
        assert hasattr(kanpde, name)
