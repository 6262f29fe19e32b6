"""Classical reference solutions (numpy/scipy only) for the built-in benchmarks, with HDF5 storage and a cache.

Usage::

    from kanpde.reference import reference, write_reference

    ref = reference("allen_cahn")  # computed once, then read from $KANPDE_CACHE or ~/.cache/kanpde/references
    ref.u.shape  # (201, 101): u[i, j] = u(ref.x[i], ref.t[j])
    write_reference("allen_cahn.h5", ref)

Layout: :mod:`~kanpde.reference.store` (the :class:`Reference` container, HDF5, cache; no solver),
:mod:`~kanpde.reference.registry` (:func:`register_reference`, :func:`reference`, :func:`self_convergence`), and
one module per solver family: :mod:`~kanpde.reference.chebyshev` (Chebyshev collocation),
:mod:`~kanpde.reference.spectral` (Fourier pseudo-spectral + ETDRK4). Importing this package imports every
module in it (:func:`discover`), so a new solver module registers itself without being listed here.
"""

from kanpde.reference.registry import REFERENCES, discover, reference, register_reference, self_convergence
from kanpde.reference.store import Reference, cache_dir, cache_path, cached, read_reference, write_reference

discover()

from kanpde.reference.allen_cahn import default_initial_condition  # noqa: E402
from kanpde.reference.burgers import burgers_cole_hopf, cole_hopf  # noqa: E402
from kanpde.reference.chebyshev import allen_cahn_dirichlet  # noqa: E402
from kanpde.reference.spectral import allen_cahn_periodic  # noqa: E402

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
    "discover",
    "read_reference",
    "reference",
    "register_reference",
    "self_convergence",
    "write_reference",
]
