"""Lid-driven cavity reference: steady incompressible Navier–Stokes by Taylor–Hood finite elements.

    (u·∇)u − ν Δu + ∇p = 0,   ∇·u = 0   on [0, 1]²,
    u = (4x(1 − x), 0) on the lid y = 1, u = 0 on the other walls, p(0, 0) = 0.

P2 velocity / P1 pressure (inf-sup stable) on a uniform n×n mesh split into triangles,
solved by Newton's method from the lid data (quadratic convergence: five to six steps at
ν = 0.01), with scikit-fem for assembly and scipy's sparse direct solver. The fields are
sampled on a tensor grid; :func:`mesh_convergence` compares meshes n, 2n, 4n.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skfem import (
    Basis,
    BilinearForm,
    ElementTriP1,
    ElementTriP2,
    ElementVector,
    LinearForm,
    MeshTri,
    asm,
    bmat,
    condense,
    solve,
)
from skfem.helpers import ddot, div, dot, grad, mul

from kanpde.reference.registry import register_reference
from kanpde.reference.store import Reference

FIELDS = ("u", "v", "p")


def solve_cavity(n: int, nu: float = 0.01, tol: float = 1e-11, max_steps: int = 30):
    """Newton's method for Taylor–Hood P2/P1 on an n×n mesh: (velocity basis, pressure basis, U, P, steps)."""
    mesh = MeshTri.init_tensor(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1))
    velocity = Basis(mesh, ElementVector(ElementTriP2()), intorder=5)
    pressure = Basis(mesh, ElementTriP1(), intorder=5)

    @BilinearForm
    def jacobian(u, v, w):  # ν ∇u:∇v + ((w·∇)u + (u·∇)w)·v: the convection term linearised at w
        return nu * ddot(grad(u), grad(v)) + dot(mul(grad(u), w.w), v) + dot(mul(grad(w.w), u), v)

    @BilinearForm
    def divergence(u, q, w):
        return -div(u) * q

    @LinearForm
    def momentum(v, w):  # ν ∇w:∇v + (w·∇)w·v − p ∇·v
        return nu * ddot(grad(w.w), grad(v)) + dot(mul(grad(w.w), w.w), v) - w.p * div(v)

    @LinearForm
    def continuity(q, w):
        return -div(w.w) * q

    b = asm(divergence, velocity, pressure)
    nu_dofs = velocity.N
    x, y = velocity.doflocs
    first = np.zeros(nu_dofs, bool)
    first[velocity.split_indices()[0]] = True
    lid = np.isclose(y, 1.0) & first
    u = np.zeros(nu_dofs)
    u[lid] = 4 * x[lid] * (1 - x[lid])
    p = np.zeros(pressure.N)
    pin = nu_dofs + int(np.argmin(pressure.doflocs[0] ** 2 + pressure.doflocs[1] ** 2))  # p(0, 0) = 0
    fixed = np.concatenate([velocity.get_dofs().all(), [pin]])
    for step in range(1, max_steps + 1):
        w, wp = velocity.interpolate(u), pressure.interpolate(p)
        matrix = bmat([[asm(jacobian, velocity, w=w), b.T], [b, None]], "csr")
        residual = np.concatenate([asm(momentum, velocity, w=w, p=wp), asm(continuity, pressure, w=w)])
        residual[fixed] = 0
        delta = solve(*condense(matrix, -residual, D=fixed))
        u += delta[:nu_dofs]
        p += delta[nu_dofs:]
        if np.linalg.norm(delta) < tol:
            return velocity, pressure, u, p, step
    raise RuntimeError(f"cavity reference: Newton did not converge in {max_steps} steps (n={n}, ν={nu})")


def sample(n: int, points: np.ndarray, nu: float = 0.01) -> np.ndarray:
    """(u, v, p) [M, 3] of the n×n solution at ``points`` [M, 2]."""
    velocity, pressure, u, p, _ = solve_cavity(n, nu)
    parts = [basis.probes(points.T) @ u[index] for basis, index in zip(velocity.split_bases(),
                                                                        velocity.split_indices())]
    return np.stack([*parts, pressure.probes(points.T) @ p], axis=1)


def grid(resolution: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Axes and points [R², 2] (x-major) of a resolution × resolution tensor grid on [0, 1]²."""
    axis = np.linspace(0.0, 1.0, resolution)
    mesh = np.meshgrid(axis, axis, indexing="ij")
    return [axis, axis.copy()], np.stack([m.ravel() for m in mesh], axis=1)


def mesh_convergence(ns=(16, 32, 64), resolution: int = 51, nu: float = 0.01) -> dict:
    """Relative L2 change of each field on the grid from mesh n to the next (and the observed order)."""
    _, points = grid(resolution)
    values = [sample(n, points, nu) for n in ns]
    changes = {name: [float(np.linalg.norm(b[:, k] - a[:, k]) / np.linalg.norm(b[:, k]))
                      for a, b in zip(values, values[1:])] for k, name in enumerate(FIELDS)}
    orders = {name: [float(np.log2(c[i] / c[i + 1])) for i in range(len(c) - 1)] for name, c in changes.items()}
    return {"meshes": list(ns), "rel_l2_change": changes, "observed_order": orders}


def _refine(params: dict[str, Any], how: str) -> tuple[dict[str, Any], str]:
    """The doubled mesh, for :func:`kanpde.reference.self_convergence`."""
    if how not in ("default", "space"):
        raise ValueError(f"refine: the cavity reference refines its mesh only (default or space), got {how!r}")
    n = 2 * int(params.get("n", 64))
    return {**params, "n": n}, f"mesh {n}×{n}"


@register_reference("cavity", refine=_refine)
def cavity(n: int = 64, resolution: int = 101, nu: float = 0.01) -> Reference:
    """The reference of the ``cavity`` problem: u, v, p on a resolution² grid from the n×n mesh."""
    axes, points = grid(resolution)
    values = sample(n, points, nu)
    fields = {name: values[:, k].reshape(resolution, resolution) for k, name in enumerate(FIELDS)}
    return Reference.grid({"x": axes[0], "y": axes[1]}, fields,
                          attrs={"method": "Taylor-Hood P2/P1 finite elements, Newton", "resolution": n,
                                 "parameters": {"nu": nu}})
