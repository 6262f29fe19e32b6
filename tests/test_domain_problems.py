"""Problems on general domains: hard conditions by distance functions, evaluation on scattered points,
one-line errors for bad domains in YAML, FEM references, and the README's custom-domain example."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import kanpde
from kanpde.cli import main
from kanpde.field import Field
from kanpde.geometry import Disk, Rectangle, sample_boundary, sample_initial
from kanpde.nets import KAN
from kanpde.problem import Dirichlet, Problem
from kanpde.problems.heat_disk import HeatDisk
from kanpde.problems.poisson_holes import PoissonHoles
from kanpde.problems.poisson_lshape import PoissonLShape
from kanpde.solver import Evaluation

README = Path(__file__).parent.parent / "README.md"


def _field(problem: Problem) -> Field:
    torch.manual_seed(0)
    net = KAN([problem.input_features, 4, 1], grid=5).double()
    return Field(net, problem).double()


def test_hard_dirichlet_on_two_part_groups_holds_to_round_off(single_thread) -> None:
    problem = PoissonHoles()
    field = _field(problem)
    b = sample_boundary(problem.domain, 2000, "sobol", 0, dtype=torch.float64)
    with torch.no_grad():
        u = field(b.points)[:, 0]
    outer = torch.isin(b.face, torch.tensor(problem.domain.parts_of("outer")))
    assert (u[outer] - 1).abs().max() <= 1e-12 and u[~outer].abs().max() <= 1e-12
    inside = torch.tensor([[0.0, 0.0], [0.1, -0.2]], dtype=torch.float64)
    jet = field.jet(inside, "trace")
    assert torch.isfinite(jet.laplacian).all() and (jet.value[:, 0] - 1).abs().min() > 1e-6  # not forced inside


def test_hard_conditions_on_lshape_and_disk_in_time(single_thread) -> None:
    problem = PoissonLShape()
    b = sample_boundary(problem.domain, 1000, "sobol", 0, dtype=torch.float64)
    with torch.no_grad():
        assert _field(problem)(b.points).abs().max() <= 1e-12
    heat = HeatDisk()
    x0 = sample_initial(heat.domain, 500, "sobol", 0, dtype=torch.float64)
    with torch.no_grad():
        assert (_field(heat)(x0)[:, 0] - heat.exact(x0)).abs().max() <= 1e-12


class _Scattered(Problem):
    domain = Rectangle([0, 0], [1, 1]) - Disk([0.5, 0.5], 0.2)
    conditions = [Dirichlet(0.0)]
    points = np.array([[0.1, 0.1], [0.9, 0.2], [0.5, 0.9]])
    values = np.array([1.0, np.nan, 2.0])

    def residual(self, u, x):
        return u.laplacian

    def reference(self):
        return self.points, self.values


def test_evaluation_on_scattered_points_is_nan_safe_and_refuses_outside_points() -> None:
    problem = _Scattered()
    evaluation = Evaluation.build(problem, 11, torch.float64, "cpu")
    assert evaluation.axes is None and evaluation.points.shape == (2, 2)  # the NaN value is left out
    assert evaluation.reference.tolist() == [1.0, 2.0]
    outside = _Scattered()
    outside.points = np.array([[0.5, 0.5], [0.1, 0.1], [0.9, 0.2]])  # the first is in the hole
    with pytest.raises(ValueError, match=r"1 of 3 points lie outside the domain, e.g. \[0.5, 0.5\]"):
        Evaluation.build(outside, 11, torch.float64, "cpu")


def test_grid_evaluation_is_masked_to_the_domain() -> None:
    heat = HeatDisk()
    evaluation = Evaluation.build(heat, [21, 21, 3], torch.float64, "cpu")
    assert (evaluation.points[:, :2].norm(dim=1) <= 1 + 1e-12).all()  # 3-D: Sobol points, those in the domain
    output = evaluation.output  # the centre slice, as a grid with NaN outside the disk
    assert (output.points[:, :2].norm(dim=1) <= 1 + 1e-12).all() and output.inside.sum() == len(output.points)
    grid = output.on_grid(output.reference.numpy())
    assert grid.shape == (21, 21, 1) and np.isnan(grid[0, 0, 0]) and np.isfinite(grid[10, 10, 0])


@pytest.mark.parametrize("domain, message", [
    ("{disk: [[0, 0], -1]}", "problem.domain.disk: radius: must be a finite number > 0, got -1"),
    ("{polygon: [[0, 0], [1, 1], [1, 0], [0, 1]]}", "self-intersecting"),
    ("{difference: [{disk: [[0, 0], 0.1]}, {rectangle: [[-1, -1], [1, 1]]}]}", "empty"),
    ("{difference: [{rectangle: [[-0.5, -0.5], [0.5, 0.5]], name: outer}, {disk: [[0, 0], 0.1], name: hloe}]}",
     "('hole'): on: no boundary part named 'hole'; did you mean 'hloe'?"),
    ("[1, 2]", "problem.domain: must be a domain mapping"),
])
def test_bad_domain_in_yaml_one_line_exit_2(tmp_path, capsys, domain, message) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"problem: {{name: poisson_holes, domain: {domain}}}\n")
    assert main(["solve", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err
    assert not (tmp_path / "run").exists()


def test_fem_reference_converges_on_a_disk_and_an_lshape() -> None:
    pytest.importorskip("skfem")
    pytest.importorskip("triangle")
    pytest.importorskip("shapely")
    from functools import partial

    from kanpde.geometry.meshing import grid_points, on_parts, outline
    from kanpde.reference.fem import converged_poisson

    disk = Disk([0.0, 0.0], 1.0)
    points = grid_points(disk, 21)
    ref = converged_poisson(partial(outline, disk), 4.0, [(0.0, on_parts(disk, [0]))], points, 0.3, 2, 2)  # 1 − r²
    assert np.abs(ref.fields["u"] - (1 - (points**2).sum(1))).max() < 1e-4
    assert ref.attrs["self_convergence"] < 1e-3
    lshape = Rectangle([-1, -1], [1, 1]) - Rectangle([0, 0], [1, 1])
    points = grid_points(lshape, 21)
    assert not lshape.contains(np.array([[1.0, 0.5], [0.5, 1.0]])).any()  # slivers of the removed square
    ref = converged_poisson(partial(outline, lshape), 1.0, [(0.0, on_parts(lshape, lshape.boundary_parts()))],
                            points, 0.25, 3, 3)
    assert 0 < ref.attrs["observed_rate"] < 2.5 and ref.attrs["relative_changes"][1] < ref.attrs["relative_changes"][0]
    assert math.isclose(ref.fields["u"].max(), 0.1492, abs_tol=2e-3)  # the maximum of the L-shape torsion function


def test_fem_reference_is_a_cached_scattered_reference(tmp_path, monkeypatch) -> None:
    """problem_reference stores the FEM solution as a scattered Reference in $KANPDE_CACHE and reads it back."""
    pytest.importorskip("skfem")
    pytest.importorskip("triangle")
    from kanpde.geometry import domain_from_spec
    from kanpde.geometry.meshing import problem_reference, register_fem
    from kanpde.reference import registry

    monkeypatch.setenv("KANPDE_CACHE", str(tmp_path))
    disk = domain_from_spec({"disk": [[0.0, 0.0], 1.0], "name": "rim"})
    built = problem_reference("disk_test", disk, 4.0, [[0.0, "rim"]], h=0.3, levels=2, order=2, resolution=11)
    assert built.layout == "points" and built.coords == ("x", "y") and len(list(tmp_path.glob("disk_test*.h5"))) == 1
    assert np.abs(built.fields["u"] - (1 - (built.points**2).sum(1))).max() < 1e-3  # −Δu = 4, u = 0: u = 1 − r²
    again = problem_reference("disk_test", disk, 4.0, [[0.0, "rim"]], h=0.3, levels=2, order=2, resolution=11)
    assert np.array_equal(again.points, built.points) and np.array_equal(again.fields["u"], built.fields["u"])
    assert again.attrs["mesh_sizes"] == built.attrs["mesh_sizes"] and again.attrs["method"] == built.attrs["method"]
    monkeypatch.setattr(registry, "REFERENCES", dict(registry.REFERENCES))  # the registration stays in this test
    monkeypatch.setattr(registry, "_SOLVERS", dict(registry._SOLVERS))
    register_fem("disk_test", disk, 4.0, [[0.0, "rim"]], h=0.3, levels=2, order=2, resolution=11)
    registered = registry.reference("disk_test")  # the same cache file
    assert np.array_equal(registered.fields["u"], built.fields["u"]) and len(list(tmp_path.glob("*.h5"))) == 1


def test_fem_refuses_unsupported_domains() -> None:
    pytest.importorskip("skfem")
    from kanpde.geometry.meshing import outline

    with pytest.raises(ValueError, match="CSG of rectangles and polygons"):
        outline(Rectangle([-1, -1], [1, 1]) - Disk([1, 1], 0.5), 0.2)


def _python_block(section: str) -> str:
    match = re.search(rf"^## {section}[^\n]*\n(.*?)(?=^## |\Z)", README.read_text(encoding="utf-8"),
                      re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no '## {section}' section"
    blocks = re.findall(r"^```python\n(.*?)^```", match.group(1), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1
    return blocks[0]


def test_readme_custom_domain_example_runs(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(_python_block("Any domain"), "README.md:Any domain", "exec"), {"__name__": "readme_domain"})
    out = capsys.readouterr().out
    match = re.search(r"relative L2 error (\S+)", out)
    assert match and float(match.group(1)) < 1e-2, out
    assert kanpde.__version__
