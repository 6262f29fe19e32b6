"""Measured data: :class:`Observations` of a field at points, and reading them from CSV, NPZ or HDF5.

A file's columns (CSV header) or datasets (NPZ keys, HDF5 top-level datasets) are named by the
problem's coordinates and fields, e.g. ``x, t, u``. Every problem with a file is a one-line
``ValueError`` naming the file and the column. Paths are relative to the current directory.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

SUFFIXES = (".csv", ".npz", ".h5", ".hdf5")


class Observations:
    """Measured values of one field at points: a loss term, the mean squared misfit
    mean((u(x_i) − y_i)²/σ²) with σ = ``noise`` (the measurements' standard deviation, if known;
    then a term near 1 means the fit is at the noise level) or 1.

    ``x`` [M, D] in the problem's coordinates, ``values`` [M]; ``name`` the loss term's name
    (default ``data_<field>``); ``source`` what error messages name (a file, or "Observations").
    """

    def __init__(self, x, values, field: str = "u", noise: float | None = None, weight: float = 1.0,
                 name: str | None = None, source: str = "Observations", columns: Sequence[str] | None = None):
        self.source, self.field = source, field
        x = torch.as_tensor(np.asarray(x, dtype=np.float64) if not isinstance(x, torch.Tensor) else x).to(
            torch.float64)
        values = torch.as_tensor(np.asarray(values, dtype=np.float64) if not isinstance(values, torch.Tensor)
                                 else values).to(torch.float64)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or values.ndim != 1 or x.shape[0] != values.shape[0] or x.shape[0] == 0:
            raise ValueError(f"{source}: x must be [M, D] and values [M] with M ≥ 1, got {tuple(x.shape)} "
                             f"and {tuple(values.shape)}")
        self.columns = tuple(columns) if columns is not None else tuple(f"x[:, {i}]" for i in range(x.shape[1]))
        for index, column in enumerate(self.columns):
            _finite(x[:, index], source, column)
        _finite(values, source, field)
        if noise is not None and not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise > 0):
            raise ValueError(f"{source}: noise must be a positive number (the measurements' standard deviation), "
                             f"got {noise!r}")
        if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
            raise ValueError(f"{source}: weight must be a finite number ≥ 0, got {weight!r}")
        self.x, self.values = x, values
        self.noise, self.weight = noise, float(weight)
        self.name = name or f"data_{field}"

    def __len__(self) -> int:
        return self.values.shape[0]

    def check(self, box, fields: Sequence[str]) -> None:
        """Fail (one line, naming the source and column) unless the field exists and every point is in ``box``."""
        if self.field not in fields:
            raise ValueError(f"{self.source}: unknown field {self.field!r}; the problem's fields: {', '.join(fields)}")
        if self.x.shape[1] != box.dim:
            raise ValueError(f"{self.source}: points have {self.x.shape[1]} coordinates, the domain "
                             f"{', '.join(box.names)} has {box.dim}")
        outside = ~box.contains(self.x, tol=1e-9 * max(1.0, *(abs(v) for v in box.lo + box.hi)))
        if bool(outside.any()):
            row = int(outside.nonzero()[0, 0])
            point = self.x[row]
            axis = next((a for a in range(box.dim) if not box.lo[a] <= float(point[a]) <= box.hi[a]), 0)
            raise ValueError(f"{self.source}: column {self.columns[axis]}, row {row + 1}: the point "
                             f"{[round(float(p), 6) for p in point]} is outside the domain {box!r}")

    def to(self, dtype: torch.dtype, device: torch.device | str) -> Observations:
        """A copy on ``device`` in ``dtype`` (the network's)."""
        copy = object.__new__(Observations)
        copy.__dict__.update(self.__dict__)
        copy.x, copy.values = self.x.to(device=device, dtype=dtype), self.values.to(device=device, dtype=dtype)
        return copy

    def part(self, rank: int, size: int) -> Observations:
        """Rank ``rank``'s contiguous share of ``size`` (data-parallel training, like the collocation points)."""
        if size == 1:
            return self
        copy = object.__new__(Observations)
        copy.__dict__.update(self.__dict__)
        copy.x, copy.values = torch.tensor_split(self.x, size)[rank], torch.tensor_split(self.values, size)[rank]
        return copy

    def misfit(self, predicted: torch.Tensor) -> torch.Tensor:
        """(u(x_i) − y_i)/σ for the field's values ``predicted`` [M] at ``self.x``."""
        error = predicted - self.values
        return error / self.noise if self.noise is not None else error

    def __repr__(self) -> str:
        return f"Observations({len(self)} of {self.field!r} from {self.source}, name={self.name!r})"


def _finite(column: torch.Tensor, source: str, name: str) -> None:
    bad = ~torch.isfinite(column)
    if bool(bad.any()):
        raise ValueError(f"{source}: column {name}, row {int(bad.nonzero()[0, 0]) + 1}: not a finite number "
                         f"({float(column[bad][0])})")


def read_columns(path: str | Path) -> dict[str, np.ndarray]:
    """The named 1-D columns of a CSV (header row), NPZ or HDF5 file, as float64 arrays."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: data file not found (paths are relative to the current directory "
                                f"{Path.cwd()})")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unknown data format {suffix or '(no suffix)'}; use {', '.join(SUFFIXES)}")
    if suffix == ".csv":
        return _read_csv(path)
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                raw = {key: f[key] for key in f.files}
        else:
            import h5py

            with h5py.File(path, "r") as f:
                raw = {key: f[key][()] for key in f if isinstance(f[key], h5py.Dataset)}
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read: {str(error).splitlines()[0]}") from None
    columns = {}
    for key, value in raw.items():
        value = np.asarray(value)
        if value.ndim != 1 or not np.issubdtype(value.dtype, np.number):
            raise ValueError(f"{path}: column {key}: must be a 1-D array of numbers, got shape "
                             f"{value.shape} of {value.dtype}")
        columns[key] = value.astype(np.float64)
    return columns


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise ValueError(f"{path}: empty file; the first row must name the columns")
    header = [cell.strip() for cell in rows[0]]
    if len(set(header)) != len(header) or not all(header):
        raise ValueError(f"{path}: the header {header} must name every column once")
    values = np.empty((len(rows) - 1, len(header)))
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}: line {number} has {len(row)} values, the header {len(header)}")
        for index, cell in enumerate(row):
            try:
                values[number - 2, index] = float(cell)
            except ValueError:
                raise ValueError(f"{path}: column {header[index]}, line {number}: not a number: "
                                 f"{cell.strip()!r}") from None
    return {name: values[:, index] for index, name in enumerate(header)}


def read_observations(path: str | Path, coords: Sequence[str], fields: Sequence[str], field: str | None = None,
                      noise: float | None = None, weight: float = 1.0, name: str | None = None) -> Observations:
    """Observations of ``field`` (default: the only field) from a file whose columns are named by
    ``coords`` and ``fields``; unknown or missing columns and unequal lengths are errors."""
    columns = read_columns(path)
    source = str(path)
    if field is None:
        if len(fields) > 1:
            raise ValueError(f"{source}: the problem has fields {', '.join(fields)}; say which with field:")
        field = fields[0]
    if field not in fields:
        raise ValueError(f"{source}: unknown field {field!r}; the problem's fields: {', '.join(fields)}")
    for column in columns:
        if column not in coords and column not in fields:
            raise ValueError(f"{source}: unknown column {column!r}; columns are named by the coordinates "
                             f"({', '.join(coords)}) and fields ({', '.join(fields)})")
    for column in (*coords, field):
        if column not in columns:
            raise ValueError(f"{source}: missing column {column!r} (need {', '.join((*coords, field))})")
    lengths = {column: len(columns[column]) for column in (*coords, field)}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{source}: columns differ in length: "
                         + ", ".join(f"{k} {v}" for k, v in lengths.items()))
    x = np.stack([columns[c] for c in coords], axis=1)
    return Observations(x, columns[field], field, noise, weight, name, source=source, columns=coords)
