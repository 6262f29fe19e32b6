"""The run directory: config.yaml, summary.json, history.csv, solution.h5, checkpoint.pt, plots/.

Every file (plots included) is written to a temporary name first and moved into place with
``os.replace``, so a run killed at any moment leaves either the old or the new file, never half
of one; files get the permissions of the user's umask. ``--force`` moves the old run's files
aside (``.replaced-<time>/``) and deletes them only once the new run has finished.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch

from kanpde.config import Config, dump_config
from kanpde.errors import first_line

FILES = ("config.yaml", "summary.json", "history.csv", "solution.h5", "checkpoint.pt")
RUN_ENTRIES = (*FILES, "plots")  # what a run writes; anything else in the folder is the user's
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: os.umask can only be read by setting it


def atomic_write(path: Path, write) -> None:
    """Write through ``write(file_path)`` into a temporary file beside ``path``, then replace it
    (mode 0666 less the umask, as ``open`` would give; mkstemp's own 0600 would hide runs from a group)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


_atomic = atomic_write


def _atomic_text(path: Path, text: str) -> None:
    _atomic(path, lambda name: Path(name).write_text(text))


class CheckpointError(ValueError):
    """A checkpoint that cannot be read back (truncated, corrupted, empty, or not kanpde's)."""


def read_checkpoint_file(path: Path) -> dict:
    """A checkpoint's state, or :class:`CheckpointError` with one line saying what is wrong with the file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # zip/pickle/EOF errors of torch.load on a damaged file
        raise CheckpointError(f"--resume: {path} is not a readable checkpoint ({first_line(error)[:120]}); "
                              "move it away to start from the beginning") from None
    if not isinstance(state, dict) or not isinstance(state.get("trainer"), dict) \
            or not {"field", "step", "history"} <= set(state["trainer"]):
        raise CheckpointError(f"--resume: {path} is not a kanpde checkpoint (no trainer state); move it away "
                              "to start from the beginning")
    return state


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: for result files outside a run directory (tables, exports)."""
    _atomic(Path(path), lambda name: Path(name).write_text(text, encoding="utf-8"))


class RunDirectory:
    """A run's output folder. An existing run is never overwritten unless ``force`` or ``resume``."""

    def __init__(self, path: str | os.PathLike, *, force: bool = False, resume: bool = False):
        self.path = Path(path)
        self.replaced: Path | None = None  # the old run's files under --force, deleted by finish()
        existing = [name for name in FILES if (self.path / name).exists()]
        if existing and not (force or resume):
            raise FileExistsError(f"--out: {self.path} already holds a run ({', '.join(existing)}); "
                                  "use --resume to continue it or --force to overwrite it")
        if self.path.exists() and not self.path.is_dir():
            raise FileExistsError(f"--out: {self.path} exists and is not a directory")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if existing and force and not resume:
                self._move_aside()
            (self.path / "plots").mkdir(exist_ok=True)
            atomic_write(self.path / ".write-test", lambda name: Path(name).write_text(""))
            (self.path / ".write-test").unlink()
        except OSError as error:
            raise ValueError(f"--out: cannot write the run directory {self.path}: "
                             f"{error.strerror or error}") from None

    def _move_aside(self) -> None:
        """--force: a forced run starts from an empty directory; the old run's files wait in a hidden
        folder until :meth:`finish` (so a failed new run has not destroyed the old one)."""
        self.replaced = self.path / f".replaced-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        self.replaced.mkdir()
        for name in RUN_ENTRIES:
            if (self.path / name).exists():
                os.replace(self.path / name, self.replaced / name)

    def finish(self) -> None:
        """The new run is complete: delete the old run's files that --force moved aside."""
        if self.replaced is not None:
            shutil.rmtree(self.replaced, ignore_errors=True)
            self.replaced = None

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    def write_config(self, config: Config) -> None:
        _atomic(self.path / "config.yaml", lambda name: dump_config(config, name))

    def write_summary(self, summary: dict) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in summary.items()}
        _atomic_text(self.path / "summary.json", json.dumps(clean, indent=2) + "\n")

    def write_history(self, rows: Sequence[dict]) -> None:
        columns: list[str] = []
        for row in rows:
            columns += [key for key in row if key not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns or ["step"], restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
        _atomic_text(self.path / "history.csv", buffer.getvalue())

    def write_checkpoint(self, state: dict) -> None:
        _atomic(self.checkpoint_path, lambda name: torch.save(state, name))

    def read_checkpoint(self) -> dict | None:
        if not self.checkpoint_path.exists():
            return None
        return read_checkpoint_file(self.checkpoint_path)

    def write_solution(self, names: Sequence[str], axes: Sequence[np.ndarray], prediction: np.ndarray,
                       reference: np.ndarray | None, attrs: dict, fields: Sequence[str] = ("u",)) -> None:
        """Evaluation grid (one dataset per coordinate), prediction, reference and error; for a system
        (prediction [..., F]) also one group per field holding its own three datasets."""
        def write(name: str) -> None:
            with h5py.File(name, "w") as f:
                for coordinate, axis in zip(names, axes):
                    f.create_dataset(coordinate, data=np.asarray(axis))
                f.create_dataset("prediction", data=prediction)
                if reference is not None:
                    f.create_dataset("reference", data=reference)
                    f.create_dataset("error", data=prediction - reference)
                f.attrs["coordinates"] = ",".join(names)
                f.attrs["fields"] = ",".join(fields)
                if len(fields) > 1:
                    for index, field in enumerate(fields):
                        group = f.create_group(field)
                        group.create_dataset("prediction", data=prediction[..., index])
                        if reference is not None:
                            group.create_dataset("reference", data=reference[..., index])
                            group.create_dataset("error", data=prediction[..., index] - reference[..., index])
                for key, value in attrs.items():
                    f.attrs[key] = value if value is not None else "none"
        _atomic(self.path / "solution.h5", write)


def read_summary(run_dir: str | os.PathLike) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text())


def read_history(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    with open(Path(run_dir) / "history.csv") as f:
        return [{k: (float(v) if v != "" else math.nan) for k, v in row.items()} for row in csv.DictReader(f)]
