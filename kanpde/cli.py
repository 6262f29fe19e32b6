"""Command line: parse, call the library, print, exit. Exit status 2 for bad input, 3 for divergence."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 3, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every bad input
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kanpde", description="Physics-informed training of Kolmogorov–Arnold Networks.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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
    from kanpde.distributed import from_environment
    from kanpde.solver import solve

    config = load_config(args.config, args.set)
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
    return 0


def _list(args) -> int:
    from kanpde.solver import BUILTIN_PROBLEMS, builtin_problems

    print("built-in problems:")
    for name, cls in builtin_problems().items():
        print(f"  {name:24s} {cls.description}")
    print("built-in configs:")
    for path in sorted(BUILTIN_PROBLEMS.glob("*.yaml")):
        first = path.read_text().splitlines()[0].lstrip("# ").strip() if path.read_text() else ""
        print(f"  {path.name:24s} {first}")
    return 0


def _compare(args) -> int:
    from kanpde.compare import compare
    from kanpde.config import load_config

    if args.seeds < 1:
        raise ValueError(f"--seeds: must be a positive integer, got {args.seeds}")
    if args.workers < 1:
        raise ValueError(f"--workers: must be a positive integer, got {args.workers}")
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    table = compare(load_config(args.config, args.set), models, args.seeds, out=args.out, quiet=args.quiet,
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

    from kanpde.reference.fem import write_fem_reference

    solution = importlib.import_module(f"kanpde.problems.{args.name}").fem_reference()
    path = write_fem_reference(args.out, solution)
    attrs = solution.attrs
    rate = f", observed rate {attrs['observed_rate']:.2f}" if "observed_rate" in attrs else ""
    print(f"{args.name}: {len(solution.values)} points by {attrs['method']}; relative change at the last "
          f"refinement {attrs['self_convergence']:.1e}{rate}")
    print(f"written to {path}")
    return 0


FEM_PROBLEMS = ("poisson_holes", "poisson_lshape")


def _reference(args) -> int:
    from kanpde.reference import REFERENCES, reference, write_reference

    if args.name in FEM_PROBLEMS:
        return _fem_reference(args)
    if args.name not in REFERENCES:
        raise ValueError(f"name: unknown reference {args.name!r}; available: {', '.join([*REFERENCES, *FEM_PROBLEMS])}")
    solution = reference(args.name)
    path = write_reference(args.out, solution)
    attrs = solution.attrs
    estimate = attrs.get("self_convergence")
    print(f"{args.name}: u {solution.u.shape} on x[{len(solution.x)}] × t[{len(solution.t)}] by "
          f"{attrs.get('method', '?')}" + (f", self-convergence {estimate:.1e}" if estimate is not None else ""))
    print(f"written to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from kanpde.train import DivergenceError  # after parsing: --help stays fast

    handler = {"solve": _solve, "list": _list, "reference": _reference, "compare": _compare,
               "export": _export}[args.command]
    try:
        return handler(args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as error:
        if os.environ.get("KANPDE_TRACEBACK"):
            raise
        print(f"kanpde: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DivergenceError as error:
        print(f"kanpde: error: {error}", file=sys.stderr)
        return EXIT_DIVERGED
    except KeyboardInterrupt:
        print("kanpde: interrupted; the run directory holds the last checkpoint (continue with --resume)",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
