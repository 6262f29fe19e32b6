"""Finite-element references for steady Poisson problems −Δu = f on 2-D domains, u = g on the boundary.

Meshing: ``triangle`` (Shewchuk's quality Delaunay mesher) on the domain's boundary polygon with
edges of length ≈ h; assembly and solve: scikit-fem, P3 elements (P2 and P4 on request) on a
quadratic mesh (``MeshTri2``: the mid-edge nodes of curved boundaries are moved onto the curve, so
circles are resolved to O(h³)). On the four-holes benchmark P3 converged at rate ≈ 4 (P2: ≈ 2.7;
P4 is no better than P3, the quadratic geometry limits it). :func:`converged_poisson` solves at
h, h/2, h/4 and reports the change of the values at the stored points and the observed rate; the
stored values are the finest solve's.

The domain comes in as an *outline* (boundary loops, hole points, curved parts) and the Dirichlet
data as predicates on points, so this module needs no geometry code: kanpde.geometry.meshing turns
domains into outlines. The libraries are optional dependencies (``pip install kanpde[fem]``);
they are imported when a reference is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from kanpde.reference.store import Reference

Value = float | Callable[[np.ndarray], np.ndarray]
Predicate = Callable[[np.ndarray, float], np.ndarray]
"""Which boundary nodes [N, 2] a Dirichlet condition covers, given the mesh size h."""
Outline = Callable[[float], tuple[list[np.ndarray], list[np.ndarray], list[tuple[Callable, Callable]]]]
"""The boundary for mesh size h: closed loops of vertices (outer first), one point inside each hole, and
(signed distance, projection) pairs of the curved boundaries that mid-edge nodes are moved onto."""

__all__ = ["mesh", "poisson_fem", "probe", "converged_poisson"]


def _libraries():
    try:
        import skfem
        import triangle
    except ImportError as error:
        raise ValueError(f"reference: FEM references need scikit-fem and triangle ({error}); "
                         "install them with: pip install 'kanpde[fem]'") from None
    return skfem, triangle


# -- meshing ------------------------------------------------------------------------------------
def mesh(outline: Outline, h: float):
    """An isoparametric quadratic triangle mesh (skfem ``MeshTri2``) of a 2-D domain, edges ≈ h."""
    skfem, triangle = _libraries()
    loops, hole_points, curved = outline(h)
    segments, start = [], 0
    for loop in loops:
        n = len(loop)
        segments.append(start + np.stack([np.arange(n), (np.arange(n) + 1) % n], axis=1))
        start += n
    pslg = {"vertices": np.concatenate(loops), "segments": np.concatenate(segments)}
    if hole_points:
        pslg["holes"] = np.array(hole_points)
    tri = triangle.triangulate(pslg, f"pq30a{h * h * math.sqrt(3) / 4:.12f}")
    linear = skfem.MeshTri(tri["vertices"].T.copy(), tri["triangles"].T.copy())
    quadratic = skfem.MeshTri2.from_mesh(linear)
    facet_dofs = quadratic.dofs.get_facet_dofs(quadratic.boundary_facets()).flatten()
    doflocs = quadratic.doflocs.copy()
    for signed, project in curved:
        x = doflocs[:, facet_dofs].T
        near = np.abs(signed(x)) < h
        doflocs[:, facet_dofs[near]] = project(x[near]).T
    return skfem.MeshTri2(doflocs, quadratic.t)


# -- solving ------------------------------------------------------------------------------------
def _values(value: Value, x: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.asarray(value(x) if callable(value) else value, dtype=float), (len(x),))


def poisson_fem(outline: Outline, source: Value, dirichlet: Sequence[tuple[Value, Predicate]], h: float,
                order: int = 3):
    """Solve −Δu = f with u = g_i where predicate i holds, by P``order`` FEM at mesh size h; returns
    (basis, dof values). Together the predicates must cover every boundary node."""
    skfem, _ = _libraries()
    from skfem.models.poisson import laplace

    element = {2: skfem.ElementTriP2, 3: skfem.ElementTriP3, 4: skfem.ElementTriP4}[order]()
    basis = skfem.Basis(mesh(outline, h), element, intorder=2 * order)

    @skfem.LinearForm
    def load(v, w):
        x = np.stack([w.x[0].ravel(), w.x[1].ravel()], axis=1)
        return _values(source, x).reshape(w.x[0].shape) * v

    A, b = laplace.assemble(basis), load.assemble(basis)
    boundary = basis.get_dofs().flatten()
    x_b = basis.doflocs[:, boundary].T
    u, assigned = np.zeros(basis.N), np.zeros(len(boundary), bool)
    for value, predicate in dirichlet:
        on = predicate(x_b, h)
        u[boundary[on]] = _values(value, x_b[on])
        assigned |= on
    if not assigned.all():
        raise ValueError(f"reference: {int((~assigned).sum())} boundary nodes are on no Dirichlet part; the FEM "
                         "reference needs u given on the whole boundary")
    u = skfem.solve(*skfem.condense(A, b, x=u, D=boundary))
    return basis, u


def probe(basis, u: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The FE function at points [P, 2]: the cell is found on the straight-sided mesh (nearest cells by
    centroid, best barycentric fit), then the quadratic map is inverted by Newton's method (a point a
    hair outside its curved cell is extrapolated by that cell's polynomial)."""
    from scipy.spatial import cKDTree

    m = basis.mesh
    corners = m.doflocs[:, m.t]  # [2, 3, cells]: vertices come first in MeshTri2's dofs
    centroids = corners.mean(axis=1).T
    _, near = cKDTree(centroids).query(points, k=min(8, len(centroids)))
    best, score = near[:, 0].copy(), np.full(len(points), -np.inf)
    for j in range(near.shape[1]):
        c = near[:, j]
        a, b_, c_ = (corners[:, i, c].T for i in range(3))
        det = (b_[:, 0] - a[:, 0]) * (c_[:, 1] - a[:, 1]) - (b_[:, 1] - a[:, 1]) * (c_[:, 0] - a[:, 0])
        l1 = ((points[:, 0] - a[:, 0]) * (c_[:, 1] - a[:, 1]) - (points[:, 1] - a[:, 1]) * (c_[:, 0] - a[:, 0])) / det
        l2 = ((b_[:, 0] - a[:, 0]) * (points[:, 1] - a[:, 1]) - (b_[:, 1] - a[:, 1]) * (points[:, 0] - a[:, 0])) / det
        fit = np.minimum(np.minimum(l1, l2), 1 - l1 - l2)
        better = fit > score
        best[better], score[better] = c[better], fit[better]
    x, local = points.T[:, :, None], np.full((2, len(points), 1), 1 / 3)
    for _ in range(30):  # Newton on the quadratic map (skfem's invF clips and stops at the element's edge)
        step = np.einsum("ijkl,jkl->ikl", basis.mapping.invDF(local, best), x - basis.mapping.F(local, best))
        local = local + step
        if np.abs(step).max() < 1e-14:
            break
    phis = np.array([basis.elem.gbasis(basis.mapping, local, k, tind=best)[0].ravel() for k in range(basis.Nbfun)])
    return (phis * u[basis.element_dofs[:, best]]).sum(0)


def converged_poisson(outline: Outline, source: Value, dirichlet: Sequence[tuple[Value, Predicate]],
                      points: np.ndarray, h: float, levels: int = 3, order: int = 3,
                      coords: Sequence[str] = ("x", "y")) -> Reference:
    """Solve at h, h/2, …, h/2^(levels−1); the field ``u`` at ``points`` (columns ``coords``) from the finest,
    as a scattered :class:`Reference`. ``attrs``: the relative
    max change between the last two levels (``self_convergence``), the observed rate from the last three,
    and the error estimate change/(2^rate − 1) (Richardson) when the rate is positive."""
    sizes = [h / 2**k for k in range(levels)]
    values = []
    for size in sizes:
        basis, u = poisson_fem(outline, source, dirichlet, size, order)
        values.append(probe(basis, u, points))
    scale = float(np.max(np.abs(values[-1])))
    changes = [float(np.max(np.abs(b - a))) / scale for a, b in zip(values[:-1], values[1:])]
    attrs: dict[str, Any] = {"method": f"P{order} FEM (scikit-fem, quadratic isoparametric mesh; mesher: triangle)",
                             "mesh_sizes": sizes, "dofs_finest": int(basis.N), "relative_changes": changes,
                             "self_convergence": changes[-1]}
    if len(changes) >= 2 and changes[-1] > 0:
        rate = math.log2(changes[-2] / changes[-1])
        attrs["observed_rate"] = rate
        if rate > 0:
            attrs["error_estimate"] = changes[-1] / (2**rate - 1)
    attrs["resolution"] = f"h = {sizes[-1]:g}, P{order}"
    return Reference.scattered(points, coords, {"u": values[-1]}, attrs)
