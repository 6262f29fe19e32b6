"""Reference solutions: the :class:`Reference` container, HDF5 storage, an on-disk cache and the registry.

Layout of a stored reference (HDF5): datasets ``x`` (nx,), ``t`` (nt,) and ``u`` (nx, nt) with
``u[i, j] = u(x[i], t[j])``; the entries of ``attrs`` become file attributes (numbers, strings and booleans as
they are, anything else -- nested dicts, lists, ``None`` -- as JSON text, listed in the attribute ``_json_attrs``).

The cache lives in ``$KANPDE_CACHE`` or else ``~/.cache/kanpde/references/``; a file is named by the problem and
a hash of the builder's full argument list (explicit parameters plus the builder's defaults), and is written
atomically (temporary file in the same directory, then :func:`os.replace`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from kanpde.reference.allen_cahn import allen_cahn_dirichlet, allen_cahn_periodic
from kanpde.reference.burgers import burgers_cole_hopf

__all__ = [
    "CACHE_VERSION",
    "REFERENCES",
    "Reference",
    "cache_dir",
    "cache_path",
    "cached",
    "read_reference",
    "reference",
    "write_reference",
]

#: Bumped whenever a change to the solvers alters stored values; part of every cache key.
CACHE_VERSION = 1

_JSON_ATTRS = "_json_attrs"


@dataclass(eq=False)
class Reference:
    """A reference solution sampled on a tensor grid: ``u[i, j] = u(x[i], t[j])``.

    ``attrs`` holds the metadata: ``method``, ``resolution``, ``parameters`` and, where it was computed,
    ``self_convergence`` (max abs change of ``u`` when the resolution is doubled).
    """

    x: np.ndarray
    t: np.ndarray
    u: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x, dtype=float)
        self.t = np.asarray(self.t, dtype=float)
        self.u = np.asarray(self.u, dtype=float)
        if self.x.ndim != 1 or self.t.ndim != 1:
            raise ValueError("x and t must be 1-D")
        if self.u.shape != (self.x.size, self.t.size):
            raise ValueError(f"u has shape {self.u.shape}, expected (len(x), len(t)) = {(self.x.size, self.t.size)}")


# ----------------------------------------------------------------------------------------------------------------
# HDF5


def _jsonable(value: Any) -> Any:
    """Plain-Python (JSON-compatible) version of ``value``: numpy scalars/arrays become numbers/lists."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_reference(path: str | os.PathLike, reference: Reference) -> Path:
    """Write ``reference`` to the HDF5 file ``path`` (overwritten) and return the path."""
    path = Path(path)
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=reference.x)
        f.create_dataset("t", data=reference.t)
        f.create_dataset("u", data=reference.u)
        json_keys = []
        for key, value in reference.attrs.items():
            value = _jsonable(value)
            if isinstance(value, (bool, int, float, str)):
                f.attrs[key] = value
            else:
                f.attrs[key] = json.dumps(value)
                json_keys.append(key)
        f.attrs[_JSON_ATTRS] = json.dumps(json_keys)
    return path


def read_reference(path: str | os.PathLike) -> Reference:
    """Read a reference written by :func:`write_reference` (or any file with datasets ``x``, ``t``, ``u``)."""
    with h5py.File(path, "r") as f:
        x, t, u = (f[name][()] for name in ("x", "t", "u"))
        raw = dict(f.attrs)
    json_keys = set(json.loads(raw.pop(_JSON_ATTRS, "[]")))
    attrs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in json_keys:
            attrs[key] = json.loads(value)
        elif isinstance(value, bytes):
            attrs[key] = value.decode()
        elif isinstance(value, np.generic):
            attrs[key] = value.item()
        else:
            attrs[key] = value
    return Reference(x=x, t=t, u=u, attrs=attrs)


# ----------------------------------------------------------------------------------------------------------------
# cache


def cache_dir() -> Path:
    """The cache directory: ``$KANPDE_CACHE`` if set, else ``~/.cache/kanpde/references``."""
    env = os.environ.get("KANPDE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kanpde" / "references"


def _key_value(value: Any) -> Any:
    """A deterministic, JSON-serialisable stand-in for a parameter value (arrays by content hash)."""
    if isinstance(value, np.ndarray) or (isinstance(value, (list, tuple)) and np.asarray(value).dtype.kind in "biuf"):
        arr = np.ascontiguousarray(value)
        return {"ndarray": hashlib.sha256(arr.tobytes()).hexdigest(), "shape": list(arr.shape), "dtype": arr.dtype.str}
    if isinstance(value, Mapping):
        return {str(k): _key_value(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_key_value(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if callable(value):
        qualname = getattr(value, "__qualname__", "")
        if not qualname or "<lambda>" in qualname or "<locals>" in qualname:
            raise TypeError(f"cannot build a cache key from {value!r}: pass a module-level function")
        return {"callable": f"{value.__module__}.{qualname}"}
    raise TypeError(f"cannot build a cache key from a parameter of type {type(value).__name__}")


def _bound_params(builder: Callable[..., Reference], params: dict[str, Any]) -> dict[str, Any]:
    """Explicit parameters completed with the builder's defaults, so equal calls share one key."""
    try:
        signature = inspect.signature(builder)
    except (TypeError, ValueError):
        return dict(params)
    bound = signature.bind(**params)
    bound.apply_defaults()
    out: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        else:
            out[name] = value
    return out


def cache_path(name: str, builder: Callable[..., Reference], **params: Any) -> Path:
    """Where :func:`cached` keeps ``builder(**params)`` for the problem ``name``."""
    key = {"name": name, "version": CACHE_VERSION, "params": _key_value(_bound_params(builder, params))}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir() / f"{name}-{digest}.h5"


def cached(name: str, builder: Callable[..., Reference], **params: Any) -> Reference:
    """``builder(**params)``, computed once and then read back from the cache (see the module docstring)."""
    path = cache_path(name, builder, **params)
    if path.is_file():
        try:
            return read_reference(path)
        except OSError:  # unreadable (e.g. truncated by a crash outside our atomic write): recompute
            pass
    result = builder(**params)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".h5.tmp", dir=path.parent)
    os.close(fd)
    try:
        write_reference(tmp, result)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return result


# ----------------------------------------------------------------------------------------------------------------
# registry

#: Built-in problems -> builder functions. Their defaults are the benchmark specifications; the registered
#: builders also estimate their own error (``attrs["self_convergence"]``, a solve at doubled resolution), which
#: costs roughly 10 s (Dirichlet) and 2.5 min (periodic: 4096 and 8192 modes, 100 000 and 200 000 ETDRK4 steps;
#: 142 s of CPU measured) once, before the result is cached.
REFERENCES: dict[str, Callable[..., Reference]] = {
    "allen_cahn": partial(allen_cahn_dirichlet, estimate_error=True),
    "allen_cahn_periodic": partial(allen_cahn_periodic, estimate_error=True),
    "burgers": partial(burgers_cole_hopf, estimate_error=True),
}


def reference(name: str, **params: Any) -> Reference:
    """The reference solution of the built-in problem ``name`` (see :data:`REFERENCES`), through the cache."""
    try:
        builder = REFERENCES[name]
    except KeyError:
        raise KeyError(f"unknown reference {name!r}; known: {sorted(REFERENCES)}") from None
    return cached(name, builder, **params)
