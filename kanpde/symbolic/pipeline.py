"""The export orchestration: :func:`export` (what ``python -m kanpde export RUN_DIR`` calls) builds the
requested form, verifies it, writes its files (RUN_DIR/symbolic by default) and returns an
:class:`ExportResult`; :func:`format_report` prints it."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import sympy

from kanpde.field import Field
from kanpde.problem import Problem
from kanpde.results import write_text_atomic
from kanpde.symbolic.compact import CompactOptions, _domain_samples, _drop_abs, _simplify, _tidy, compact_program
from kanpde.symbolic.exact import exact_program
from kanpde.symbolic.fit import EdgeFit
from kanpde.symbolic.formula import Program, _check_kan, _output_names, _symbol
from kanpde.symbolic.refine import _refine_and_round
from kanpde.symbolic.render import _program_latex, _program_text, compact_module_source, exact_module_source
from kanpde.symbolic.verify import verify

MODES = ("exact", "compact")


FORMATS = ("sympy", "latex", "python")


_EXTENSIONS = {"sympy": "txt", "latex": "tex", "python": "py"}


# -- the public API -----------------------------------------------------------------------------
@dataclass
class ExportResult:
    """What :func:`export` produced: the formula (``expression``: a sympy expression, or a column
    Matrix for several outputs), its ``text`` in the requested format, the ``verification`` numbers
    (also in symbolic.json) and the ``paths`` of the written files."""

    mode: str
    format: str
    program: Program
    text: str
    verification: dict[str, Any]
    paths: dict[str, Path]
    coords: tuple[str, ...]
    fits: list[EdgeFit] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    includes_transform: bool = True

    @cached_property
    def expression(self) -> sympy.Expr | sympy.Matrix:
        exprs = self.program.expressions()
        return exprs[0] if len(exprs) == 1 else sympy.Matrix(exprs)

    @property
    def expressions(self) -> list[sympy.Expr]:
        return self.program.expressions()


def _resolve(source: Any, problem: Problem | None) -> tuple[Field, Path | None, Any]:
    from kanpde.solver import LoadedRun, load

    if isinstance(source, (str, os.PathLike)):
        run = load(source, problem=problem)
        return run.model, Path(source), run
    if isinstance(source, LoadedRun):
        return source.model, None, source
    if isinstance(source, Field):
        return source, None, None
    raise TypeError(f"source: expected a run directory, a LoadedRun or a kanpde.Field, got {type(source).__name__}")


def _header(mode: str, field: Field, includes_transform: bool) -> str:
    net, problem = field.net, field.problem
    return (f"kanpde symbolic export ({mode}) of a KAN {list(net.width)}, grid {net.grid}, order {net.order}; "
            f"problem {problem.name}; coordinates {', '.join(problem.coords)}"
            + ("" if includes_transform else "\nthe problem's output transform is NOT included"))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


def export(source: str | os.PathLike | Any, mode: str = "exact", format: str = "sympy",  # noqa: A002
           out_dir: str | os.PathLike | None = None, *, problem: Problem | None = None,
           resolution: int | Sequence[int] | None = None, write: bool = True, **options: Any) -> ExportResult:
    """Export a trained KAN as a formula u(coords) and verify it.

    ``source``: a run directory (loaded with :func:`kanpde.solver.load`; ``problem`` for PDEs defined
    in code), a :class:`~kanpde.solver.LoadedRun` or a :class:`~kanpde.Field`. ``mode``: "exact" or
    "compact" (module docstring; compact ``options`` are the fields of :class:`CompactOptions`).
    ``format`` ("sympy", "latex" or "python") picks the ``text`` returned; all three files
    (``<mode>.txt``, ``.tex``, ``.py``) and ``symbolic.json`` are written into ``out_dir`` (default
    RUN_DIR/symbolic; nothing is written for in-memory sources without ``out_dir``, or with
    ``write=False``). ``resolution``: the evaluation grid (default: the run's, capped at 40 000 points).
    """
    if mode not in MODES:
        raise ValueError(f"mode: must be one of {', '.join(MODES)}, got {mode!r}")
    if format not in FORMATS:
        raise ValueError(f"format: must be one of {', '.join(FORMATS)}, got {format!r}")
    if mode == "exact" and options:
        raise ValueError(f"export: options {', '.join(sorted(options))} apply to mode compact only")
    settings = CompactOptions.build(options) if mode == "compact" else None
    field, run_dir, run = _resolve(source, problem)
    _check_kan(field)
    problem = field.problem
    if problem.is_system or len(problem.hard_conditions()) > 1:  # per-field export: not yet
        raise ValueError(f"export: {problem.name} has fields {', '.join(problem.fields)} or several hard conditions; "
                         "symbolic export supports one field with at most one hard condition")
    if resolution is None and run is not None:
        resolution = run.config.evaluate.resolution
    coords = tuple(_symbol(name) for name in problem.coords)
    fits: list[EdgeFit] = []
    info: dict[str, Any] = {}
    if mode == "exact":
        program, included = exact_program(field)
        info.update(layers=len(field.net.layers), edges=sum(layer.in_features * layer.out_features
                                                             for layer in field.net.layers))
    else:
        exprs, fits, included = compact_program(field, settings)
        samples = _domain_samples(problem)
        exprs = [_tidy(e) for e in _drop_abs(exprs, coords, samples)]
        weights = dict(settings.loss_weights) if settings.loss_weights is not None else \
            dict(run.config.train.loss_weights) if run is not None else {}
        if included:
            exprs, rounding = _refine_and_round(problem, exprs, settings, weights)
            info.update(rounding)
            dropped = _drop_abs(exprs, coords, samples)
            if dropped != exprs:  # refining moved a kink out of the box: round what that uncovered
                exprs, rounding = _refine_and_round(problem, [_tidy(e) for e in dropped],
                                                    replace(settings, refine=False), weights)
                info.update({f"{key}_2": value for key, value in rounding.items()})
        exprs = _drop_abs(exprs, coords, samples)
        if settings.simplify:
            exprs = _simplify(exprs, coords)
        program = Program.from_expressions(exprs, coords, _output_names(problem))
        info.update(edges=len(fits), kept=sum(f.name != "0" for f in fits),
                    functions={name: sum(f.name == name for f in fits) for name in sorted({f.name for f in fits})})
    header = _header(mode, field, included)
    texts = {"sympy": _program_text(program, header, exact=mode == "exact"), "latex": _program_latex(program),
             "python": exact_module_source(field, header.splitlines()[0]) if mode == "exact"
             else compact_module_source(program.expressions(), problem.coords, header.splitlines()[0])}
    verification = verify(field, {mode: program}, resolution, included)
    paths: dict[str, Path] = {}
    target = Path(out_dir) if out_dir is not None else (run_dir / "symbolic" if run_dir is not None else None)
    if write and target is not None:
        target.mkdir(parents=True, exist_ok=True)
        for kind, text in texts.items():
            paths[kind] = target / f"{mode}.{_EXTENSIONS[kind]}"
            write_text_atomic(paths[kind], text)
        paths["json"] = target / "symbolic.json"
        stored = {}
        if paths["json"].exists():
            try:
                stored = json.loads(paths["json"].read_text())
            except (OSError, ValueError):
                stored = {}
        stored.update({key: value for key, value in verification.items() if key not in ("exact", "compact")})
        stored[mode] = verification[mode] | {"info": info, "files": {k: str(p) for k, p in paths.items()
                                                                      if k != "json"}}
        if fits:
            stored[mode]["edges"] = [f.as_dict() for f in fits]
            stored[mode]["options"] = {f.name: getattr(settings, f.name) for f in fields(settings)
                                       if f.name != "functions"}
        stored[mode]["formula"] = texts["sympy"] if len(texts["sympy"]) <= 20000 else None
        write_text_atomic(paths["json"], json.dumps(_json_safe(stored), indent=2) + "\n")
    return ExportResult(mode, format, program, texts[format], verification, paths, tuple(problem.coords), fits,
                        info, included)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit * 2 // 3].rsplit("\n", 1)[0]
    tail = text[-limit // 4:].split("\n", 1)[-1]
    return f"{head}\n  … ({len(text) - len(head) - len(tail):,} characters omitted) …\n{tail}"


def format_report(result: ExportResult, max_chars: int = 2000) -> str:
    """A short human report: the formula (truncated for huge exact forms) and the verified errors."""
    lines = [f"symbolic export ({result.mode}), coordinates {', '.join(result.coords)}"
             + ("" if result.includes_transform else " — WITHOUT the problem's output transform")]
    if result.mode == "compact" and result.fits:
        kept = [f for f in result.fits if f.name != "0"]
        counts = ", ".join(f"{name} ×{n}" for name, n in result.info.get("functions", {}).items() if name != "0")
        lines.append(f"edges: {len(kept)} kept of {len(result.fits)} ({counts})")
    if result.mode == "compact" or result.format != "sympy":
        body = result.text
    else:
        body = "".join(line + "\n" for line in result.text.splitlines() if not line.startswith("#"))
    if result.mode == "compact" and result.format == "sympy":
        body = "\n".join(f"{name}({', '.join(result.coords)}) = {sympy.sstr(e)}"
                         for name, e in zip(result.program.names, result.expressions))
    lines += ["", _truncate(body.rstrip("\n"), max_chars), ""]
    v = result.verification

    def fmt(value: Any) -> str:
        return "—" if value is None else f"{value:.3e}"

    grid = "×".join(str(n) for n in v.get("grid", []))
    lines.append(f"verification on the evaluation grid ({grid} points):")
    lines.append(f"  {'':8s} {'rel. L2':>10s} {'max err':>10s} {'max|Δmodel|':>12s} {'mean|res|':>10s} "
                 f"{'max|res|':>10s} {'conditions (max err)':s}")
    for name in ("model", result.mode):
        row = v.get(name, {})
        conditions = ", ".join(f"{key} {fmt(c.get('max_abs_err'))}" for key, c in row.get("conditions", {}).items())
        lines.append(f"  {name:8s} {fmt(row.get('rel_l2')):>10s} {fmt(row.get('max_abs_err')):>10s} "
                     f"{fmt(row.get('max_diff_model')) if name != 'model' else '':>12s} "
                     f"{fmt(row.get('residual_mean_abs')):>10s} {fmt(row.get('residual_max_abs')):>10s} {conditions}")
    if result.paths:
        lines.append("written: " + ", ".join(str(p) for p in result.paths.values()))
    return "\n".join(lines)
