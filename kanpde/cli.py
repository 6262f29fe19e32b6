"""Command line: parse, call the library, print, exit. Exit status 2 for bad input, 3 for divergence,
130 for Ctrl-C and 143 for SIGTERM (both leave a complete run directory with ``completed: false``).

torch is imported only once a command needs it: ``--help``, ``--version``, ``list`` and config errors
answer in well under a second (docs/results.md, "Start-up").
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import signal
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from kanpde.version import __version__

EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_TERMINATED = 2, 3, 130, 143
PROBLEMS_DIR = Path(__file__).parent / "problems"


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, batch schedulers, container stops), handled like Ctrl-C."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every bad input
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


class _Subcommands:
    """``add_parser`` with the shared ``--debug`` option on every command."""

    def __init__(self, actions, parent: argparse.ArgumentParser):
        self.actions, self.parent = actions, parent

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        return self.actions.add_parser(name, parents=[self.parent], **kwargs)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kanpde", description="Physics-informed training of Kolmogorov–Arnold Networks.")
    parser.add_argument("--version", action="version", version=f"kanpde {__version__}")
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    commands = _Subcommands(parser.add_subparsers(dest="command", required=True, parser_class=_Parser), debug)

    solve = commands.add_parser("solve", help="train a model on a problem from a YAML config",
                                description="Train a model on a problem from a YAML config and write a run directory.")
    solve.add_argument("config", help="a YAML file, or a built-in config name such as poisson.yaml")
    solve.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set train.stages.0.steps=500 (repeatable)")
    solve.add_argument("--out", help="run directory (default: output.dir or runs/<problem>-<model>-<time>)")
    solve.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides train.device")
    solve.add_argument("--quiet", action="store_true", help="no progress bar")
    solve.add_argument("--force", action="store_true", help="overwrite an existing run directory")
    solve.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")

    commands.add_parser("list", help="list the built-in problems and configs")

    compare = commands.add_parser("compare", help="train several models × seeds on one problem, write a table",
                                  description="KAN vs MLP vs SIREN vs MLP+RFF on the same problem and points.")
    compare.add_argument("config", help="a YAML file or built-in config name")
    compare.add_argument("--models", default="kan,mlp,siren,fourier_mlp", help="comma-separated model types")
    compare.add_argument("--seeds", type=int, default=3, help="initialisation seeds per model (default 3)")
    compare.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    compare.add_argument("--out", help="output folder (default runs/compare-<problem>-<time>)")
    compare.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides train.device")
    compare.add_argument("--force", action="store_true", help="overwrite existing run directories")
    compare.add_argument("--quiet", action="store_true", help="no progress bars")
    compare.add_argument("--workers", type=int, default=1,
                         help="train this many runs at a time in separate processes (default 1)")

    export = commands.add_parser("export", help="export a trained KAN as a verified formula",
                                 description="Write RUN_DIR/symbolic/: the formula and its verification.")
    export.add_argument("run_dir", help="a run directory of a KAN run")
    export.add_argument("--mode", choices=["exact", "compact"], default="exact")
    export.add_argument("--format", choices=["sympy", "latex", "python"], default="sympy")

    reference = commands.add_parser("reference", help="compute a built-in reference solution into HDF5",
                                    description="Compute (or read from the cache) a reference solution and write "
                                                "datasets x, t, u with u[i, j] = u(x[i], t[j]).")
    reference.add_argument("name", help="allen_cahn, allen_cahn_periodic, or a problem with a FEM reference "
                                        "(poisson_holes, poisson_lshape)")
    reference.add_argument("--out", required=True, help="output file, e.g. allen_cahn.h5")
    return parser


def _solve(args) -> int:
    from kanpde.config import load_config

    config = load_config(args.config, args.set)  # checked before torch is imported: errors come at once
    from kanpde.distributed import from_environment
    from kanpde.solver import solve

    summary = solve(config, out=args.out, device=args.device, quiet=args.quiet, force=args.force,
                    resume=args.resume)
    if not from_environment().is_main:  # under torchrun: rank 0 reports
        return 0
    out = args.out or config.output.dir
    ranks = f" on {summary['world_size']} ranks" if summary["world_size"] > 1 else ""
    line = (f"{summary['problem']} · {summary['model']} {summary['width']} · {summary['params']} parameters · "
            f"{summary['steps']} steps in {summary['train_seconds']:.1f} s{ranks} · "
            f"rel. L2 error {summary['rel_l2']:.3e}")
    print(line)
    print(f"run directory: {out if out else 'see summary'}")
    if summary.get("identified"):
        from kanpde.identify import describe

        print(f"identified: {describe(summary['identified'])}")
    return 0


def problem_descriptions(folder: Path = PROBLEMS_DIR) -> dict[str, str]:
    """The built-in problems' names and descriptions, read from the source without importing it (no torch).
    A class counts when it sets ``description``; its name is ``problem_name`` or the lower-cased class name."""
    found = {}
    for path in sorted(folder.glob("*.py")):
        if path.stem.startswith("_"):
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                continue
            values = {target.id: statement.value.value for statement in node.body
                      if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant)
                      for target in statement.targets if isinstance(target, ast.Name)}
            if isinstance(values.get("description"), str):
                found[values.get("problem_name", node.name.lower())] = values["description"]
    return found


_SENTENCE_END = re.compile(r"(?<!\brel)(?<!e\.g)(?<!i\.e)[.!?](?=\s|$)")


def config_description(path: Path) -> str:
    """The first sentence of a config file's leading comment block (which may span several lines)."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(lines)
    end = _SENTENCE_END.search(text)
    return text[: end.end()] if end else text


def _list(args) -> int:
    problems = problem_descriptions()
    configs = {path.name: config_description(path) for path in sorted(PROBLEMS_DIR.glob("*.yaml"))}
    width = max(map(len, [*problems, *configs]))
    for title, entries in (("built-in problems:", problems), ("built-in configs:", configs)):
        print(title)
        for name, description in entries.items():  # whole sentences, wrapped, never cut
            print(textwrap.fill(description, 110, initial_indent=f"  {name:{width}s}  ",
                                subsequent_indent=" " * (width + 4)))
    return 0


def _compare(args) -> int:
    from kanpde.config import load_config

    if args.seeds < 1:
        raise ValueError(f"--seeds: must be a positive integer, got {args.seeds}")
    if args.workers < 1:
        raise ValueError(f"--workers: must be a positive integer, got {args.workers}")
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    config = load_config(args.config, args.set)
    from kanpde.compare import compare

    table = compare(config, models, args.seeds, out=args.out, quiet=args.quiet,
                    device=args.device, force=args.force, workers=args.workers)
    print(table["markdown"])
    print(f"written: {table['table_md']}, {table['table_json']}")
    return 0


def _export(args) -> int:
    from kanpde.symbolic import export, format_report

    print(format_report(export(args.run_dir, mode=args.mode, format=args.format)))
    return 0


def _fem_reference(args) -> int:
    """A built-in problem's FEM reference (scattered points): points, values and the convergence estimate."""
    import importlib

    from kanpde.reference import reference, write_reference

    importlib.import_module(f"kanpde.problems.{args.name}")  # registers its reference
    solution = reference(args.name)
    path = write_reference(args.out, solution)
    attrs = solution.attrs
    rate = f", observed rate {attrs['observed_rate']:.2f}" if "observed_rate" in attrs else ""
    print(f"{args.name}: {len(solution.points)} points by {attrs['method']}; relative change at the last "
          f"refinement {attrs['self_convergence']:.1e}{rate}")
    print(f"written to {path}")
    return 0


FEM_PROBLEMS = ("poisson_holes", "poisson_lshape")


def _reference(args) -> int:
    from kanpde.reference import REFERENCES, reference, write_reference

    if args.name in FEM_PROBLEMS:
        return _fem_reference(args)
    if args.name not in REFERENCES:
        available = ", ".join(sorted({*REFERENCES, *FEM_PROBLEMS}))
        raise ValueError(f"name: unknown reference {args.name!r}; available: {available}")
    solution = reference(args.name)
    path = write_reference(args.out, solution)
    attrs = solution.attrs
    estimate = attrs.get("self_convergence")
    print(f"{args.name}: u {solution.u.shape} on x[{len(solution.x)}] × t[{len(solution.t)}] by "
          f"{attrs.get('method', '?')}" + (f", self-convergence {estimate:.1e}" if estimate is not None else ""))
    print(f"written to {path}")
    return 0


def _is_divergence(error: BaseException) -> bool:
    train = sys.modules.get("kanpde.train")  # imported by then if training ran at all
    return train is not None and isinstance(error, train.DivergenceError)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"solve": _solve, "list": _list, "reference": _reference, "compare": _compare,
               "export": _export}[args.command]
    debug = args.debug or bool(os.environ.get("KANPDE_TRACEBACK"))
    previous = _install_sigterm()
    try:
        return handler(args)
    except Terminated:
        print("kanpde: terminated (SIGTERM); the run directory holds the last checkpoint (continue with --resume)",
              file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("kanpde: interrupted; the run directory holds the last checkpoint (continue with --resume)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, OSError, RuntimeError) as error:
        diverged = _is_divergence(error)
        if debug or not (diverged or isinstance(error, (ValueError, TypeError, OSError))):
            raise
        print(f"kanpde: error: {error}", file=sys.stderr)
        return EXIT_DIVERGED if diverged else EXIT_BAD_INPUT
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _install_sigterm():
    """Turn SIGTERM into :class:`Terminated` while a command runs (main thread only); returns the old handler."""
    try:
        return signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (e.g. called from a worker thread)
        return None


if __name__ == "__main__":
    sys.exit(main())
