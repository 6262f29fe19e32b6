"""Symbolic discovery during training (``symbolic: {discover: true}``): the KAN paper's pipeline.

1. The configured stages train with the sparsity penalty λ·(L1 + entropy) of :mod:`kanpde.nets.sparse`
   (set on the trainer by the solver before it runs).
2. :func:`finish` then prunes the network (new width), retrains it (``retrain_steps`` L-BFGS steps), and
   snaps its edges one by one, strongest first, to the library function that fits the edge best
   (a·f(b·s + c) + d): after each snap ``snap_steps`` L-BFGS steps train the affine parameters and the rest
   on the PDE loss; the snap is kept only if the loss is then at most (1 + ``snap_tolerance``) times the
   loss before any snap, otherwise the network is restored. ``final_steps`` L-BFGS steps end it.

With ``linear_first_layer``, every live first-layer edge is snapped to x (a·(b·s + c) + d, fitted to the edge)
right after the first pruning's retraining, whatever the loss, and ``retrain_steps`` more steps follow
(:func:`linearise_first_layer`): the network becomes a sum of functions of linear combinations of the inputs.

With ``prune_rounds`` R > 1, pruning goes on in rounds before the snapping (:func:`prune_in_rounds`): each round
trains ``round_steps`` L-BFGS steps with the penalty, its weight λ·``lambda_growth``^r in round r = 1 … R − 1
(edges the first pruning left weak but alive are pushed to zero, whole hidden nodes included), prunes with
the same threshold and retrains ``retrain_steps`` steps without the penalty. A round is undone (network
and all) and the rounds end when it removes no edge, or when its PDE loss ends above
(1 + ``prune_tolerance``) times the loss after the first pruning.

Every change is an event ("step N: pruned …", "step N: snapped …", "step N: kept spline …") in the history,
summary.json and the loss plot. The symbolic export reads snapped edges as their formulas.
"""

from __future__ import annotations

import copy

import torch

from kanpde import distributed
from kanpde.config import StageConfig, SymbolicConfig
from kanpde.loss import loss_terms
from kanpde.nets.library import fit_function
from kanpde.nets.sparse import best_fit, prune_, snap_edge
from kanpde.train import Trainer

__all__ = ["start", "finish", "pde_loss", "prune_in_rounds", "linearise_first_layer"]


def start(trainer: Trainer, options: SymbolicConfig) -> None:
    """Turn the sparsity penalty on for the configured stages (a KAN only)."""
    if trainer.kan is None:
        raise ValueError("symbolic.discover: needs model.type kan")
    trainer.sparsity = (options.lambda_, options.entropy) if options.lambda_ > 0 else None


def pde_loss(trainer: Trainer) -> float:
    """Σ weight·term on the current training points (all ranks), without the sparsity penalty."""
    points = distributed.shard(trainer.points(trainer.step), trainer.world)
    across = distributed.sum_over_ranks if trainer.world.parallel else None
    stage = trainer.config.stages[-1]
    terms = loss_terms(trainer.field, points, trainer.config.causal_epsilon_of(stage), trainer.config.causal_chunks,
                       across, None, {}, trainer.config.causal_min_weight, trainer.observations)
    loss = sum(trainer.weights[name] * value.detach() for name, value in terms.items())
    return float(distributed.sum_over_ranks(loss) if across is not None else loss)


def _train(trainer: Trainer, steps: int) -> None:
    """``steps`` more L-BFGS steps, as a new stage of the trainer."""
    if steps <= 0:
        return
    trainer.add_stage(StageConfig(optimizer="lbfgs", steps=steps))
    trainer.run()


@torch.no_grad()
def _layer_inputs(trainer: Trainer) -> list[torch.Tensor]:
    h = trainer.field.net_inputs(trainer.points(trainer.step).interior)
    inputs = []
    for layer in trainer.kan.layers:
        inputs.append(h)
        h = layer(h)
    return inputs


def _live_edges(trainer: Trainer) -> int:
    """Edges of the KAN that are neither removed nor masked (snapped edges count as live)."""
    return sum(layer.in_features * layer.out_features if layer.edge_mask is None
               else int(((layer.edge_mask > 0) | (layer.snap_function >= 0)).sum()) for layer in trainer.kan.layers)


def prune_in_rounds(trainer: Trainer, options: SymbolicConfig) -> int:
    """Pruning rounds 1 … ``prune_rounds`` − 1 after the first pruning (module docstring); returns the rounds
    kept. The penalty is off again on return."""
    kan, events = trainer.kan, trainer.history.events
    reference = pde_loss(trainer)
    kept = 0
    for round_ in range(1, options.prune_rounds):
        saved_layers = copy.deepcopy(list(kan.layers))
        saved = copy.deepcopy(trainer.field.state_dict())
        edges = _live_edges(trainer)
        weight = options.lambda_ * options.lambda_growth ** round_
        trainer.sparsity = (weight, options.entropy) if weight > 0 else None
        _train(trainer, options.round_steps)
        trainer.sparsity = None
        step = trainer.step
        old, new, masked = prune_(kan, _layer_inputs(trainer)[0], options.prune_threshold)
        removed = edges - _live_edges(trainer)
        loss = None
        if removed > 0:
            trainer.restart()
            _train(trainer, options.retrain_steps)
            loss = pde_loss(trainer)
        if removed > 0 and loss <= reference * (1 + options.prune_tolerance):
            kept += 1
            events.append(f"step {step}: pruning round {round_} (λ {weight:.1e}): KAN {old} -> {new}, "
                          f"{masked} more edges masked, {_live_edges(trainer)} edges left; "
                          f"loss {reference:.3e} -> {loss:.3e}")
            continue
        for index, layer in enumerate(saved_layers):  # undo the round: the network as it was before it
            kan.layers[index] = layer
        trainer.field.load_state_dict(saved)
        trainer.restart()
        why = "removed no edge" if removed <= 0 else f"raised the loss {reference:.3e} -> {loss:.3e}"
        events.append(f"step {step}: pruning round {round_} (λ {weight:.1e}) undone: it {why}; rounds end")
        break
    return kept


def linearise_first_layer(trainer: Trainer, options: SymbolicConfig) -> None:
    """Snap every live first-layer edge to x, then retrain ``retrain_steps`` steps (module docstring)."""
    layer = trainer.kan.layers[0]
    with torch.no_grad():
        h = _layer_inputs(trainer)[0]
        phi = layer.edge_values(h)
    live = layer.edge_mask if layer.edge_mask is not None else torch.ones(phi.shape[1:], dtype=h.dtype)
    edges = (live > 0).nonzero().tolist()
    before = pde_loss(trainer)
    step = trainer.step
    for i, j in edges:
        snap_edge(layer, i, j, fit_function(h[:, i].cpu().numpy(), phi[:, i, j].cpu().numpy(), "x"))
    trainer.restart()
    _train(trainer, options.retrain_steps)
    trainer.history.events.append(f"step {step}: first layer linear ({len(edges)} edges snapped to x); "
                                  f"loss {before:.3e} -> {pde_loss(trainer):.3e}")


def finish(trainer: Trainer, options: SymbolicConfig) -> None:
    """Prune, retrain and snap (module docstring), after the configured stages have run."""
    kan, events = trainer.kan, trainer.history.events
    trainer.sparsity = None
    old, new, masked = prune_(kan, _layer_inputs(trainer)[0], options.prune_threshold)
    events.append(f"step {trainer.step}: pruned KAN {old} -> {new}, {masked} more edges masked")
    trainer.restart()
    _train(trainer, options.retrain_steps)
    if options.linear_first_layer:
        linearise_first_layer(trainer, options)
    if options.prune_rounds > 1:
        prune_in_rounds(trainer, options)
    baseline = pde_loss(trainer)
    for layer in kan.layers:  # the saved states below then hold every layer's snap parameters
        layer.enable_edge_state()
    for index, layer in enumerate(kan.layers):
        with torch.no_grad():
            scores = layer.edge_values(_layer_inputs(trainer)[index]).abs().mean(0)
        live = layer.edge_mask if layer.edge_mask is not None else torch.ones_like(scores)
        edges = [(i, j) for i, j in (live > 0).nonzero().tolist()]
        for i, j in sorted(edges, key=lambda e: -float(scores[e])):
            with torch.no_grad():
                h = _layer_inputs(trainer)[index]
                phi = layer.edge_values(h)[:, i, j]
            fit = best_fit(h[:, i].cpu().numpy(), phi.cpu().numpy(), options.library, options.fit_tolerance)
            saved = copy.deepcopy(trainer.field.state_dict())
            step = trainer.step
            snap_edge(layer, i, j, fit)
            _train(trainer, options.snap_steps)
            loss = pde_loss(trainer)
            where = f"layer {index + 1} edge {i}->{j}"
            if loss <= baseline * (1 + options.snap_tolerance):
                events.append(f"step {step}: snapped {where} to {fit.name} (fit 1-R² {fit.q:.1e}); "
                              f"loss {baseline:.3e} -> {loss:.3e}")
            else:
                trainer.field.load_state_dict(saved)
                trainer.restart()
                events.append(f"step {step}: kept spline {where}: snapping it to {fit.name} "
                              f"raised the loss {baseline:.3e} -> {loss:.3e}")
    _train(trainer, options.final_steps)
