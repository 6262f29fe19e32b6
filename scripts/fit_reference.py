#!/usr/bin/env python
"""Capacity probe: fit a config's network to the problem's exact or reference solution by regression.

    python scripts/fit_reference.py CONFIG [--adam 3000] [--lbfgs 4000] [--pinn] [--set KEY=VALUE ...]

The same field as the PINN (network, hard-constraint transform, periodic inputs) is trained on the
evaluation grid's values — no PDE residual — with Adam (lr 1e-2) then L-BFGS, printing the relative L2
error as it goes, then the PINN loss of the fitted field on the config's points. If regression reaches
an error far below the PINN's, the network can represent a better solution than the PINN finds.
``--pinn`` then trains the fitted field on the PINN loss (the config's stages): if the error grows, the
PINN loss does not favour the better solution (docs/tables.md, "Targets").
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from kanpde.config import StageConfig, load_config
from kanpde.loss import loss_terms
from kanpde.solver import Evaluation, build_field, build_problem, build_sampler
from kanpde.train import Trainer, _make_optimizer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="a YAML config or a built-in name such as allen_cahn.yaml")
    parser.add_argument("--adam", type=int, default=3000, help="Adam steps (lr 1e-2), default 3000")
    parser.add_argument("--lbfgs", type=int, default=4000, help="L-BFGS steps after Adam, default 4000")
    parser.add_argument("--every", type=int, default=500, help="print the error every this many steps")
    parser.add_argument("--pinn", action="store_true", help="then train the fitted field on the PINN loss")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = parser.parse_args(argv)
    if min(args.adam, args.lbfgs) < 0 or args.every < 1:
        parser.error("--adam, --lbfgs: must be non-negative; --every: positive")
    config = load_config(args.config, args.set)
    problem = build_problem(config.problem)
    dtype, device = getattr(torch, config.train.dtype), torch.device("cpu")
    field = build_field(config, problem, device)
    grid = Evaluation.build(problem, config.evaluate.resolution, dtype, device)
    if grid.reference is None:
        parser.error(f"config: {problem.name} has neither an exact nor a reference solution")
    target = grid.reference.reshape(grid.points.shape[0], -1)

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = (field(grid.points) - target).square().mean()
        loss.backward()
        return loss

    started = time.perf_counter()
    optimizer = _make_optimizer(StageConfig(optimizer="adam", steps=max(args.adam, 1), lr=1e-2), field.parameters())
    for step in range(1, args.adam + args.lbfgs + 1):
        if step == args.adam + 1:  # the trainer's L-BFGS: one iteration per step, strong Wolfe line search
            optimizer = _make_optimizer(StageConfig(optimizer="lbfgs", steps=args.lbfgs), field.parameters())
        loss = optimizer.step(closure)
        if step % args.every == 0 or step == args.adam + args.lbfgs:
            stage = "adam" if step <= args.adam else "lbfgs"
            error = grid.metrics(field)["rel_l2"]
            print(f"step {step} ({stage}): mse {float(loss.detach()):.3e}, rel. L2 {error:.3e}, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)

    def evaluate() -> dict[str, float]:  # called after step trainer.step, with its row not yet stored
        metrics = grid.metrics(field)
        print(f"PINN step {trainer.step}: rel. L2 {metrics['rel_l2']:.3e}, {time.perf_counter() - started:.0f} s",
              flush=True)
        return metrics

    trainer = Trainer(field, build_sampler(config, problem, dtype, device), config.train, progress=False,
                      evaluate=evaluate, evaluate_every=args.every)
    train = config.train
    terms = loss_terms(field, trainer.points(0), train.causal_epsilon_of(train.stages[0]), train.causal_chunks,
                       causal_min_weight=train.causal_min_weight)
    print("PINN loss of the fit (first stage's causal weights): "
          + ", ".join(f"{name} {float(value.detach()):.3e}" for name, value in terms.items()), flush=True)
    if args.pinn:
        trainer.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
