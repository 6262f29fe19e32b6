"""Classical reference solutions (numpy/scipy only) for the built-in benchmarks, with HDF5 storage and a cache.

Usage::

    from kanpde.reference import reference, write_reference

    ref = reference("allen_cahn")  # computed once, then read from $KANPDE_CACHE or ~/.cache/kanpde/references
    ref.u.shape  # (201, 101): u[i, j] = u(ref.x[i], ref.t[j])
    write_reference("allen_cahn.h5", ref)
"""

from kanpde.reference.allen_cahn import (
    allen_cahn_dirichlet,
    allen_cahn_periodic,
    default_initial_condition,
    self_convergence,
)
from kanpde.reference.burgers import burgers_cole_hopf, cole_hopf
from kanpde.reference.store import (
    REFERENCES,
    Reference,
    cache_dir,
    cache_path,
    cached,
    read_reference,
    reference,
    write_reference,
)

__all__ = [
    "REFERENCES",
    "Reference",
    "allen_cahn_dirichlet",
    "allen_cahn_periodic",
    "burgers_cole_hopf",
    "cache_dir",
    "cache_path",
    "cached",
    "cole_hopf",
    "default_initial_condition",
    "read_reference",
    "reference",
    "self_convergence",
    "write_reference",
]
