"""Whole PINN training steps and time to accuracy, kanpde's trainer against DeepXDE (issue 19).

Used by ``scripts/bench.py`` (groups ``burgers-step``, ``poisson-step`` and ``accuracy``); DeepXDE, like
pykan, is an optional bench extra (``pip install -e .[bench]``, pytorch backend), never imported by kanpde.

Step contenders, on the same problem, point counts, dtype and thread count, timed round-robin by bench.py:

    kanpde-mlp-trainer   one ``kanpde.train.Trainer`` step (points, loss terms, jets, backward, Adam, the
                         finiteness checks, the history row): MLP [2,20,20,20,1] tanh, soft conditions
    kanpde-kan-trainer   the same trainer with KAN [2,10,10,1] G=10
    deepxde-mlp-f64      DeepXDE's own ``model.train_step`` (its closure: ``dde.grad`` Jacobians and Hessians,
                         losses, backward, Adam) for ``dde.nn.FNN([2,20,20,20,1], "tanh", "Glorot normal")``
    deepxde-mlp-f32      the same in float32

DeepXDE evaluates the PDE residual on its domain, boundary and initial points together (2540 + 80 + 160 = 2780
for its Burgers example) and the conditions on their own points; kanpde's trainer gets that many interior points
for its residual and the same numbers of boundary and initial points (so kanpde is not given fewer points).

Time to accuracy (group ``accuracy``, not round-robin: one run after the other, each capped at ``--budget``
seconds of training): the wall-clock and CPU seconds of training (evaluations excluded) until the relative L2 error
on the problem's evaluation grid is ≤ 1e-2 and ≤ 1e-3, checked every ``EVALUATE_EVERY`` steps, for kanpde's
built-in config with its KAN, the same config with the MLP, and DeepXDE's stock Burgers example setup (float32,
its default; on Poisson the same recipe). The budget is checked at those evaluations, so a run may overrun it by
one interval (100 L-BFGS steps of kanpde can take tens of seconds), and a threshold's time is that of the first
evaluation at or below it: an upper bound by up to one interval.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import math
import os
import time
from collections.abc import Callable

import numpy as np
import torch

from kanpde.config import config_from_dict
from kanpde.solver import BUILTIN_PROBLEMS, Evaluation, build_field, build_problem, build_sampler
from kanpde.train import Trainer

MLP_WIDTH = [2, 20, 20, 20, 1]
KAN_WIDTH, KAN_GRID = [2, 10, 10, 1], 10
STEP_CONTENDERS = ("kanpde-mlp-trainer", "kanpde-mlp-compiled-trainer", "kanpde-kan-trainer",
                   "kanpde-kan-compiled-trainer", "deepxde-mlp-f64", "deepxde-mlp-f32")
# DeepXDE's point counts: its Burgers example, and the Poisson quick start's 2000 interior and 400 boundary points
DEEPXDE_POINTS = {"burgers": {"num_domain": 2540, "num_boundary": 80, "num_initial": 160},
                  "poisson": {"num_domain": 2000, "num_boundary": 400, "num_initial": 0}}
THRESHOLDS = (1e-2, 1e-3)
EVALUATE_EVERY = 100  # steps (Adam steps, or L-BFGS iterations) between error checks in the accuracy group
DEEPXDE_ADAM_STEPS, DEEPXDE_LR = 15000, 1e-3  # DeepXDE's Burgers example, then L-BFGS


def kanpde_points(problem: str) -> dict[str, int]:
    """kanpde's point counts matching DeepXDE's: the residual on all of DeepXDE's points (see the docstring)."""
    p = DEEPXDE_POINTS[problem]
    counts = {"interior": p["num_domain"] + p["num_boundary"] + p["num_initial"], "boundary": p["num_boundary"]}
    return counts | ({"initial": p["num_initial"]} if p["num_initial"] else {})


# -- DeepXDE -------------------------------------------------------------------------------------------------------
def import_deepxde():
    """DeepXDE with its pytorch backend, or (None, the reason it cannot be used)."""
    backend = os.environ.setdefault("DDE_BACKEND", "pytorch")
    if backend != "pytorch":
        return None, f"DDE_BACKEND={backend}: the benchmark needs DeepXDE's pytorch backend"
    device = torch.get_default_device()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            import deepxde
    except Exception as error:
        return None, f"{type(error).__name__}: {error}"
    finally:
        torch.set_default_device(device)  # DeepXDE's import makes CUDA the default device where there is one
    return deepxde, None


def deepxde_version() -> str | None:
    try:
        return importlib.metadata.version("deepxde")
    except importlib.metadata.PackageNotFoundError:
        return None


def deepxde_model(dde, problem: str, dtype: torch.dtype, device: torch.device, seed: int = 0):
    """DeepXDE's stock model for ``problem`` ("burgers": its Burgers example; "poisson": the same recipe on
    kanpde's Poisson problem), compiled with Adam (lr 1e-3), and its training batch (X, y, aux)."""
    previous, previous_device = torch.get_default_dtype(), torch.get_default_device()
    torch.set_default_device(device)  # DeepXDE creates its tensors on the default device
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # DeepXDE prints what it sets
            dde.config.set_default_float(str(dtype).replace("torch.", ""))
            dde.config.set_random_seed(seed)
            data = _deepxde_data(dde, problem)
            net = dde.nn.FNN(MLP_WIDTH, "tanh", "Glorot normal")
            model = dde.Model(data, net)
            model.compile("adam", lr=DEEPXDE_LR)
    finally:
        torch.set_default_dtype(previous)
        torch.set_default_device(previous_device)
    return model, data.train_next_batch()


def _deepxde_data(dde, problem: str):
    points = DEEPXDE_POINTS[problem]
    if problem == "burgers":  # DeepXDE's examples/pinn_forward/Burgers.py
        geometry = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1), dde.geometry.TimeDomain(0, 0.99))

        def pde(x, y):
            dy_x = dde.grad.jacobian(y, x, i=0, j=0)
            dy_t = dde.grad.jacobian(y, x, i=0, j=1)
            dy_xx = dde.grad.hessian(y, x, i=0, j=0)
            return dy_t + y * dy_x - 0.01 / np.pi * dy_xx

        bc = dde.icbc.DirichletBC(geometry, lambda x: 0, lambda _, on_boundary: on_boundary)
        ic = dde.icbc.IC(geometry, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on_initial: on_initial)
        return dde.data.TimePDE(geometry, pde, [bc, ic], **points)
    geometry = dde.geometry.Rectangle([-1, -1], [1, 1])

    def poisson(x, y):
        xs, ys = x[:, 0:1], x[:, 1:2]
        pi = np.pi
        source = (-pi**2 * (1 + 4 * ys**2) * torch.sin(pi * xs) * torch.sin(pi * ys**2)
                  + 2 * pi * torch.sin(pi * xs) * torch.cos(pi * ys**2))
        return dde.grad.hessian(y, x, i=0, j=0) + dde.grad.hessian(y, x, i=1, j=1) - source

    bc = dde.icbc.DirichletBC(geometry, lambda x: 0, lambda _, on_boundary: on_boundary)
    return dde.data.PDE(geometry, poisson, [bc], num_domain=points["num_domain"],
                        num_boundary=points["num_boundary"])


def deepxde_step(dde, problem: str, dtype: torch.dtype, device: torch.device):
    """(network, one DeepXDE training step on its fixed batch)."""
    model, (x, y, aux) = deepxde_model(dde, problem, dtype, device)
    return model.net, lambda: model.train_step(x, y, aux)


# -- kanpde ---------------------------------------------------------------------------------------------------------
def kanpde_config(problem: str, model: str, stages: list[dict], dtype: torch.dtype, builtin: bool = False,
                  compile_: bool = False):
    """A kanpde config: the built-in ``<problem>.yaml`` (``builtin``; with ``model`` "mlp" its network swapped
    for the MLP) or soft conditions on DeepXDE's point counts, with the given optimizer ``stages`` (and
    ``train.compile`` if ``compile_``)."""
    net = ({"type": "mlp", "width": MLP_WIDTH, "activation": "tanh"} if model == "mlp" else
           {"type": "kan", "width": KAN_WIDTH, "grid": KAN_GRID})
    if builtin:
        data = _builtin(problem)
        if model == "mlp":
            data["model"] = net
            data["train"].pop("grid_schedule", None)
    else:
        params = {"hard": False} if problem == "burgers" else {}
        data = {"problem": {"name": problem, "params": params}, "model": net,
                "points": {**kanpde_points(problem), "sampler": "sobol"}, "train": {}}
        if problem == "poisson":
            data["train"]["loss_weights"] = {"residual": 1.0, "boundary": 1.0}
    data["train"]["stages"] = stages
    if compile_:
        data["train"]["compile"] = True
    data["train"]["dtype"] = str(dtype).replace("torch.", "")
    return config_from_dict(data)


def _builtin(problem: str) -> dict:
    import yaml

    with open(BUILTIN_PROBLEMS / f"{problem}.yaml") as handle:
        data = yaml.safe_load(handle)
    data.pop("evaluate", None)
    data.pop("output", None)
    return data


def kanpde_trainer(config, device: torch.device, **options) -> Trainer:
    problem = build_problem(config.problem)
    dtype = getattr(torch, config.train.dtype)
    field = build_field(config, problem, device)
    return Trainer(field, build_sampler(config, problem, dtype, device), config.train, progress=False, **options)


def kanpde_step(problem: str, model: str, dtype: torch.dtype, device: torch.device, compile_: bool = False):
    """(field, one trainer step): Adam lr 1e-3 in a stage too long to end. With ``compile_`` (``train.compile``)
    the first step, which compiles, is taken here; its seconds are the step function's ``setup_seconds``."""
    trainer = kanpde_trainer(kanpde_config(problem, model, [{"optimizer": "adam", "steps": 10**9, "lr": 1e-3}], dtype,
                                           compile_=compile_), device)

    def step() -> None:
        trainer.run(steps=1)

    if compile_:
        started = time.perf_counter()
        step()
        step.setup_seconds = time.perf_counter() - started
    return trainer.field, step


def step_case(contender: str, problem: str, dtype: torch.dtype, device: torch.device, dde=None):
    """(model, step) of one step contender; DeepXDE contenders fix their own dtype."""
    if contender.startswith("deepxde"):
        own = torch.float32 if contender.endswith("f32") else torch.float64
        return deepxde_step(dde, problem, own, device)
    return kanpde_step(problem, "mlp" if "mlp" in contender else "kan", dtype, device, "compiled" in contender)


# -- time to accuracy ---------------------------------------------------------------------------------------------
class Clock:
    """Training time with the evaluations left out: wall-clock and process CPU seconds."""

    def __init__(self, device: torch.device):
        self.device, self.wall, self.cpu, self._marks = device, 0.0, 0.0, None

    def resume(self) -> None:
        self._marks = (time.perf_counter(), time.process_time())

    def pause(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        wall, cpu = self._marks
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu


class _Done(Exception):
    """Both thresholds reached, or the budget spent."""


class Race:
    """Records when each threshold is first reached; ``check`` says whether to stop."""

    def __init__(self, name: str, problem: str, budget: float, evaluation: Evaluation, device: torch.device):
        self.name, self.problem, self.budget, self.evaluation = name, problem, budget, evaluation
        self.clock = Clock(device)
        self.reached: dict[str, dict | None] = {f"{t:g}": None for t in THRESHOLDS}
        self.curve: list[tuple[int, float, float]] = []  # (step, training wall s, rel L2)

    def check(self, step: int, predict: Callable[[torch.Tensor], torch.Tensor]) -> bool:
        self.clock.pause()
        with torch.no_grad():
            value = predict(self.evaluation.points).reshape(-1).to(self.evaluation.reference)
        error = float((value - self.evaluation.reference.reshape(-1)).norm() / self.evaluation.reference.norm())
        self.curve.append((step, self.clock.wall, error))
        for threshold in THRESHOLDS:
            key = f"{threshold:g}"
            if self.reached[key] is None and error <= threshold:
                self.reached[key] = {"wall_s": self.clock.wall, "cpu_s": self.clock.cpu, "step": step}
        done = all(self.reached.values()) or self.clock.wall >= self.budget or not math.isfinite(error)
        self.clock.resume()
        return done

    def result(self) -> dict:
        best = min((e for _, _, e in self.curve), default=None)
        return {"contender": self.name, "problem": self.problem, "budget_s": self.budget, "reached": self.reached,
                "train_wall_s": self.clock.wall, "train_cpu_s": self.clock.cpu,
                "steps": self.curve[-1][0] if self.curve else 0, "best_rel_l2": best,
                "final_rel_l2": self.curve[-1][2] if self.curve else None, "curve": self.curve}


def race_kanpde(problem: str, model: str, budget: float, dtype, device, evaluation) -> dict:
    """kanpde's built-in config (KAN, or the same with the MLP) until both thresholds or the budget."""
    stages = _builtin(problem)["train"]["stages"]
    config = kanpde_config(problem, model, stages, dtype, builtin=True)
    race = Race(f"kanpde-{model}", problem, budget, evaluation, device)
    holder: list[Trainer] = []

    def evaluate() -> dict:
        if race.check(holder[0].step, holder[0].field):
            raise _Done
        return {}

    trainer = kanpde_trainer(config, device, evaluate=evaluate, evaluate_every=EVALUATE_EVERY)
    holder.append(trainer)
    race.clock.resume()
    try:
        trainer.run()
        race.clock.pause()
    except _Done:
        pass
    out = race.result()
    out["config"] = {"model": config.model.type, "width": config.model.width, "stages": stages}
    return out


def race_deepxde(dde, problem: str, budget: float, device, evaluation, dtype: torch.dtype = torch.float32) -> dict:
    """DeepXDE's stock setup: Adam (lr 1e-3) 15000 steps, then L-BFGS, float32 (its default: "deepxde-stock");
    with ``dtype`` float64 the same recipe in double precision ("deepxde-f64")."""
    model, _ = deepxde_model(dde, problem, dtype, device)
    dtype_name = str(dtype).replace("torch.", "")
    name = "deepxde-stock" if dtype == torch.float32 else "deepxde-f64"
    race = Race(name, problem, budget, evaluation, device)
    state = {"step": 0}

    class Check(dde.callbacks.Callback):
        def on_epoch_end(self):
            state["step"] = model.train_state.step
            if model.train_state.step % EVALUATE_EVERY == 0 and race.check(state["step"], predict):
                model.stop_training = True

    def predict(x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(model.predict(x.detach().cpu().numpy().astype(dtype_name)))

    options = dde.optimizers.config.LBFGS_options
    options["iter_per_step"], options["fun_per_step"] = EVALUATE_EVERY, int(EVALUATE_EVERY * 1.25)
    race.clock.resume()
    with contextlib.redirect_stdout(io.StringIO()):
        model.train(iterations=DEEPXDE_ADAM_STEPS, display_every=10**9, callbacks=[Check()], verbose=0)
        if not model.stop_training:
            model.compile("L-BFGS")
            model.train(display_every=10**9, callbacks=[Check()], verbose=0)
    if race.clock._marks is not None and not model.stop_training:
        race.clock.pause()
    out = race.result()
    out["config"] = {"width": MLP_WIDTH, "activation": "tanh", "adam": [DEEPXDE_ADAM_STEPS, DEEPXDE_LR],
                     "then": "L-BFGS", "points": DEEPXDE_POINTS[problem], "dtype": dtype_name}
    return out


def run_accuracy(problems: list[str], budget: float, dtype, device, dde, deepxde_f64: bool = False) -> list[dict]:
    """Every contender of the accuracy group, one after the other (``deepxde_f64``: DeepXDE's recipe in float64
    too, after its stock float32 run)."""
    results = []
    for problem in problems:
        stages = _builtin(problem)["train"]["stages"]
        evaluation = Evaluation.build(build_problem(kanpde_config(problem, "kan", stages, dtype, True).problem),
                                      101, torch.float64, device)
        for model in ("kan", "mlp"):
            results.append(race_kanpde(problem, model, budget, dtype, device, evaluation))
            _say(results[-1])
        if dde is not None:
            for own in (torch.float32, torch.float64) if deepxde_f64 else (torch.float32,):
                results.append(race_deepxde(dde, problem, budget, device, evaluation, own))
                _say(results[-1])
    return results


def _ended(result: dict) -> bool:
    """Whether the contender's whole run ended before its budget ran out (a threshold it missed: never)."""
    return result["train_wall_s"] < result["budget_s"]


def _not_reached(result: dict) -> str:
    return f"never (ended {result['train_wall_s']:.0f} s)" if _ended(result) else f"not in {result['budget_s']:g} s"


def _say(result: dict) -> None:
    import sys

    missed = _not_reached(result)
    reached = ", ".join(f"≤{k}: " + (f"{v['wall_s']:.1f} s" if v else missed) for k, v in result["reached"].items())
    print(f"  {result['problem']} {result['contender']}: {reached} (best rel L2 {result['best_rel_l2']:.2e}, "
          f"{result['steps']} steps)", file=sys.stderr, flush=True)


def derive_accuracy(results: list[dict]) -> dict:
    """Time to 1e-2 on each problem: DeepXDE's stock run over kanpde's KAN (> 1: kanpde is faster), and the
    target (≥ 2 on burgers). A threshold not reached when the budget ran out counts as "more than the budget":
    the ratio is then a bound or unknown. One not reached by a run that ended before its budget (its whole
    recipe done) is never reached: the other contender is faster by any ratio."""
    by_name = {(r["problem"], r["contender"]): r for r in results}

    def seconds(problem, contender):
        """(wall seconds to 1e-2 or the budget, "reached" / "budget" / "ended"); (None, None) if not run."""
        result = by_name.get((problem, contender))
        if result is None:
            return None, None
        reached = result["reached"]["0.01"]
        if reached:
            return reached["wall_s"], "reached"
        return result["budget_s"], "ended" if _ended(result) else "budget"

    def cpu_seconds(problem, contender):
        return by_name[problem, contender]["reached"]["0.01"].get("cpu_s", math.nan)

    derived, targets = {}, []
    pairs = sorted({(r["problem"], r["contender"]) for r in results if r["contender"].startswith("deepxde")})
    for problem, contender in pairs:
        kan, kan_status = seconds(problem, "kanpde-kan")
        deepxde, deepxde_status = seconds(problem, contender)
        if kan is None or deepxde is None:
            continue
        label = "DeepXDE's whole stock run" if contender == "deepxde-stock" else f"the whole {contender} run"
        met = None
        if kan_status == "reached" and deepxde_status == "ended":
            value, kind, met = None, f"never ({label} ended without reaching 1e-2)", True
        elif kan_status == "ended":
            value, kind, met = None, "never (kanpde's whole KAN config ended without reaching 1e-2)", False
        elif kan_status == "budget" and deepxde_status != "reached":
            value, kind = None, "neither reached 1e-2 within the budget"
        elif kan_status == "budget":
            value, kind = deepxde / kan, "upper bound (kanpde's KAN did not reach 1e-2)"
            met = False if value < 2 else None
        elif deepxde_status == "budget":
            value, kind = deepxde / kan, "lower bound (DeepXDE did not reach 1e-2)"
            met = True if value >= 2 else None
        else:
            value, kind = deepxde / kan, "measured"
            met = value >= 2
        suffix = "" if contender == "deepxde-stock" else "_f64"
        entry = {"value": value, "kind": kind}
        if kind == "measured":  # the CPU-time ratio too: the fairer reading on a shared machine
            entry["cpu_value"] = cpu_seconds(problem, contender) / cpu_seconds(problem, "kanpde-kan")
        derived[f"{problem}_time_to_1e-2_deepxde{suffix}_over_kan"] = entry
        if problem == "burgers":
            what = "DeepXDE stock" if contender == "deepxde-stock" else "DeepXDE recipe in float64"
            targets.append({"target": f"burgers: time to rel L2 <= 1e-2, {what} / kanpde KAN >= 2",
                            "value": value, "threshold": 2, "met": met, "note": kind})
    derived["accuracy_targets"] = targets
    return derived


def print_accuracy(results: list[dict]) -> None:
    if not results:
        return
    print("\n## Time to accuracy (training seconds, evaluations excluded; wall / CPU)")
    print(f"{'problem':<8} {'contender':<14} {'to 1e-2':>22} {'to 1e-3':>22} {'best rel L2':>12} {'steps':>7}")
    for r in results:
        missed = _not_reached(r)
        cells = [f"{v['wall_s']:.1f} / {v['cpu_s']:.1f} s" if v else missed for v in r["reached"].values()]
        print(f"{r['problem']:<8} {r['contender']:<14} {cells[0]:>22} {cells[1]:>22} "
              f"{r['best_rel_l2']:>12.2e} {r['steps']:>7}")
