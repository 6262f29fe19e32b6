"""Reference solutions: the :class:`Reference` container, HDF5 storage and an on-disk cache (no solver here).

A :class:`Reference` holds one or more named fields either on a tensor grid (named 1-D axes; a field's value at
``[i, j, ...]`` is its value at ``(axis_0[i], axis_1[j], ...)``) or at scattered points (coordinates ``[N, D]`` with
named columns; a field is ``[N]``). ``Reference(x=, t=, u=)`` is the classic one-field space-time grid.

HDF5 layout: every axis (grid) or the point array ``points`` (scattered) and every field is a dataset at the root,
named by its name; the attributes ``_layout`` ("grid" or "points"), ``_coords`` and ``_fields`` (JSON lists) record
the structure. A file without ``_layout`` is the original layout (datasets ``x``, ``t``, ``u``). The entries of
``attrs`` become file attributes (numbers, strings and booleans as they are, anything else -- nested dicts, lists,
``None`` -- as JSON text, listed in the attribute ``_json_attrs``).

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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "CACHE_VERSION",
    "Reference",
    "cache_dir",
    "cache_path",
    "cached",
    "read_reference",
    "write_reference",
]

#: Bumped whenever a change to the solvers alters stored values; part of every cache key.
CACHE_VERSION = 1

_JSON_ATTRS = "_json_attrs"
_RESERVED = {"points", "_layout", "_coords", "_fields", _JSON_ATTRS}


def _names(names: Sequence[str], what: str) -> tuple[str, ...]:
    out = tuple(str(name) for name in names)
    for name in out:
        if not name or "/" in name or name in _RESERVED:
            raise ValueError(f"{what}: invalid name {name!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"{what}: repeated names in {out}")
    return out


class Reference:
    """Named fields on a tensor grid or at scattered points, with metadata ``attrs``.

    * ``Reference(x=..., t=..., u=...)``: one field ``u[i, j] = u(x[i], t[j])`` (the original form);
    * :meth:`grid`: ``axes`` {name: 1-D array} (in axis order) and ``fields`` {name: array of shape
      ``[len(axis) for axis in axes]``};
    * :meth:`scattered`: ``points`` ``[N, D]`` with coordinate names ``coords`` and ``fields`` {name: ``[N]``}.

    ``attrs`` holds the metadata: ``method``, ``resolution``, ``parameters`` and, where it was computed,
    ``self_convergence`` (max abs change of the fields when the resolution is doubled).
    """

    def __init__(self, x: ArrayLike, t: ArrayLike, u: ArrayLike, attrs: dict[str, Any] | None = None):
        self._set("grid", ("x", "t"), {"x": x, "t": t}, None, {"u": u}, attrs)

    @classmethod
    def grid(cls, axes: Mapping[str, ArrayLike], fields: Mapping[str, ArrayLike],
             attrs: dict[str, Any] | None = None) -> Reference:
        """Fields on the tensor grid of ``axes`` (their order is the fields' axis order)."""
        self = cls.__new__(cls)
        self._set("grid", tuple(axes), dict(axes), None, fields, attrs)
        return self

    @classmethod
    def scattered(cls, points: ArrayLike, coords: Sequence[str], fields: Mapping[str, ArrayLike],
                  attrs: dict[str, Any] | None = None) -> Reference:
        """Fields at scattered points ``[N, D]`` whose columns are the coordinates ``coords``."""
        self = cls.__new__(cls)
        self._set("points", tuple(coords), None, points, fields, attrs)
        return self

    def _set(self, layout: str, coords: Sequence[str], axes: Mapping[str, ArrayLike] | None,
             points: ArrayLike | None, fields: Mapping[str, ArrayLike], attrs: dict[str, Any] | None) -> None:
        self.layout = layout
        self.coords = _names(coords, "coordinates")
        self.attrs: dict[str, Any] = {} if attrs is None else attrs
        if not fields:
            raise ValueError("a reference needs at least one field")
        field_names = _names(list(fields), "fields")
        if set(field_names) & set(self.coords):
            raise ValueError(f"a field and a coordinate share a name: {sorted(set(field_names) & set(self.coords))}")
        self.axes: dict[str, np.ndarray] = {}
        self.points: np.ndarray | None = None
        if axes is not None:
            for name in self.coords:
                axis = np.asarray(axes[name], dtype=float)
                if axis.ndim != 1:
                    raise ValueError(f"axis {name!r} must be 1-D, got shape {axis.shape}")
                self.axes[name] = axis
            shape = tuple(axis.size for axis in self.axes.values())
        else:
            self.points = np.asarray(points, dtype=float)
            if self.points.ndim != 2 or self.points.shape[1] != len(self.coords):
                raise ValueError(f"points must have shape [N, {len(self.coords)}] (one column per coordinate "
                                 f"{self.coords}), got {self.points.shape}")
            shape = (self.points.shape[0],)
        self.shape = shape  # of every field
        self.fields: dict[str, np.ndarray] = {}
        for name in field_names:
            value = np.asarray(fields[name], dtype=float)
            if value.shape != shape:
                expected = "(len(x), len(t))" if self.coords == ("x", "t") and layout == "grid" else "the grid"
                raise ValueError(f"{name} has shape {value.shape}, expected {expected} = {shape}")
            self.fields[name] = value

    # the original one-field space-time API
    @property
    def x(self) -> np.ndarray:
        return self._axis("x")

    @property
    def t(self) -> np.ndarray:
        return self._axis("t")

    @property
    def u(self) -> np.ndarray:
        if "u" not in self.fields:
            raise AttributeError(f"this reference has no field 'u'; fields: {list(self.fields)}")
        return self.fields["u"]

    def _axis(self, name: str) -> np.ndarray:
        if self.layout != "grid" or name not in self.axes:
            raise AttributeError(f"this reference has no grid axis {name!r}; coordinates: {self.coords}")
        return self.axes[name]

    def on_grid(self, field: str = "u") -> tuple[list[np.ndarray], np.ndarray]:
        """``(axes, values)`` of one field of a grid reference: the form of :meth:`kanpde.Problem.reference`."""
        if self.layout != "grid":
            raise ValueError("on_grid: this reference holds scattered points, not a grid")
        return list(self.axes.values()), self.fields[field]

    def __repr__(self) -> str:
        where = (" × ".join(f"{k}[{v.size}]" for k, v in self.axes.items()) if self.layout == "grid"
                 else f"{self.shape[0]} points in ({', '.join(self.coords)})")
        return f"Reference({', '.join(self.fields)} on {where})"


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
        if reference.layout == "grid":
            for name, axis in reference.axes.items():
                f.create_dataset(name, data=axis)
        else:
            f.create_dataset("points", data=reference.points)
        for name, value in reference.fields.items():
            f.create_dataset(name, data=value)
        json_keys = []
        for key, value in reference.attrs.items():
            value = _jsonable(value)
            if isinstance(value, (bool, int, float, str)):
                f.attrs[key] = value
            else:
                f.attrs[key] = json.dumps(value)
                json_keys.append(key)
        f.attrs[_JSON_ATTRS] = json.dumps(json_keys)
        f.attrs["_layout"] = reference.layout
        f.attrs["_coords"] = json.dumps(list(reference.coords))
        f.attrs["_fields"] = json.dumps(list(reference.fields))
    return path


def read_reference(path: str | os.PathLike) -> Reference:
    """Read a reference written by :func:`write_reference` (or any file with datasets ``x``, ``t``, ``u``)."""
    with h5py.File(path, "r") as f:
        raw = dict(f.attrs)
        layout = raw.pop("_layout", "grid")
        layout = layout.decode() if isinstance(layout, bytes) else str(layout)
        coords = json.loads(raw.pop("_coords", '["x", "t"]'))
        field_names = json.loads(raw.pop("_fields", '["u"]'))
        fields = {name: f[name][()] for name in field_names}
        axes = {name: f[name][()] for name in coords} if layout == "grid" else {}
        points = f["points"][()] if layout == "points" else np.empty((0, len(coords)))
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
    if layout == "grid":
        return Reference.grid(axes, fields, attrs)
    if layout == "points":
        return Reference.scattered(points, coords, fields, attrs)
    raise ValueError(f"{path}: unknown reference layout {layout!r}")


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
