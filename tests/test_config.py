"""Tests for kanpde.config: defaults, one-line errors naming the key path, overrides, round trip, fuzzing."""

from __future__ import annotations

import copy
import dataclasses
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kanpde import config as cfgmod
from kanpde.config import (
    Config,
    ConfigError,
    StageConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
)

MINIMAL = {"problem": {"name": "poisson"}}

DEFAULTS = {
    "problem": {"name": "poisson", "params": {}, "domain": None},
    "model": {"type": "kan", "width": [2, 10, 1], "grid": 5, "order": 3, "grid_eps": 0.02,
              "grid_range": [-1.0, 1.0], "activation": "tanh", "omega0": 30.0, "sigma": 1.0, "features": 64,
              "grid_monitor": "quantile"},
    "points": {"interior": 2000, "boundary": 400, "initial": 400, "sampler": "sobol", "resample_every": 0,
               "seed": None, "adaptive": None},
    "train": {"seed": 0, "dtype": "float64", "device": "auto", "derivatives": "jet", "compile": False,
              "stages": [{"optimizer": "adam", "steps": 1000, "lr": 1e-3, "decay": "none", "decay_rate": 0.1,
                          "decay_every": 1000, "history_size": 50,
                          "causal_epsilon": None, "points": None, "loss_weights": {}}],
              "grid_schedule": {}, "grid_update_every": 0, "grid_update_until": 0, "loss_weights": {},
              "loss_balancing": None, "residual_modes": None, "propagated_residual": None, "max_recoveries": 3,
              "causal_epsilon": 0.0,
              "causal_min_weight": 0.05, "causal_chunks": 16,
              "time_windows": 1, "time_windows_until": 0, "tf32": False},
    "evaluate": {"every": 100, "resolution": 101},
    "output": {"dir": None, "checkpoint_every": 500, "plots": True},
    "data": [],
    "symbolic": None,
}


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error(data: Any = None, **kwargs: Any) -> str:
    """The ConfigError message raised by config_from_dict, asserting it is one line."""
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, **kwargs)
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    return message


def with_value(path: tuple, value: Any, base: dict | None = None) -> dict:
    """Copy of ``base`` (default: MINIMAL) with the node at ``path`` set (intermediate dicts created)."""
    data = copy.deepcopy(MINIMAL if base is None else base)
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
    node[path[-1]] = value
    return data


def dotted(path: tuple) -> str:
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".")


# ---------------------------------------------------------------------------------------------- defaults, loading


def test_minimal_file_gets_every_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "problem:\n  name: poisson\nmodel:\n"))
    assert config_to_dict(config) == DEFAULTS
    assert config.source == str(tmp_path / "run.yaml")
    assert config.model.width == (2, 10, 1) and isinstance(config.train.stages[0], StageConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.model.grid = 7  # type: ignore[misc]


def test_stage_lr_default_depends_on_optimizer_and_ints_become_floats() -> None:
    config = config_from_dict(with_value(("train", "stages"), [{"optimizer": "lbfgs", "steps": 5},
                                                                {"optimizer": "adam", "steps": 5, "lr": 2}]))
    assert [s.lr for s in config.train.stages] == [1.0, 2.0] and isinstance(config.train.stages[1].lr, float)


def test_scientific_string_is_accepted_as_float(tmp_path: Path) -> None:
    text = "problem: {name: p, params: {kappa: 1e-3}}\ntrain:\n  stages: [{optimizer: adam, steps: 10, lr: 1e-3}]\n"
    assert yaml.safe_load(text)["train"]["stages"][0]["lr"] == "1e-3"  # the PyYAML quirk this guards against
    config = load_config(write(tmp_path, text))
    assert config.train.stages[0].lr == 1e-3 and config.problem.params["kappa"] == 1e-3
    assert "lr: must be a positive finite number, got 'abc'" in error(with_value(("train", "stages"), [
        {"optimizer": "adam", "steps": 1, "lr": "abc"}]))


def test_builtin_lookup_with_and_without_suffix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "problem: {name: poisson}\n", "poisson.yaml")
    write(tmp_path, "problem: {name: heat}\n", "heat.yaml")
    monkeypatch.setattr(cfgmod, "BUILTIN_DIR", tmp_path)
    monkeypatch.chdir(tmp_path / "..")
    assert load_config("poisson").problem.name == "poisson"
    assert load_config("heat.yaml").source == str(tmp_path / "heat.yaml")
    with pytest.raises(ConfigError, match=r"^config: file not found: nodir/poisson \(built-in configs: heat.yaml, "
                                          r"poisson.yaml\)$"):
        load_config("nodir/poisson")  # a path with a directory part is never looked up among built-ins


def test_missing_file_lists_builtins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cfgmod, "BUILTIN_DIR", tmp_path)
    write(tmp_path, "problem: {name: poisson}\n", "poisson.yaml")
    with pytest.raises(ConfigError) as info:
        load_config("foo.yaml")
    assert str(info.value) == "config: file not found: foo.yaml (built-in configs: poisson.yaml)"


def test_malformed_yaml_is_one_line_with_position(tmp_path: Path) -> None:
    path = write(tmp_path, "problem:\n  name: poisson\nmodel:\n  width: [2, 10\n  grid: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid YAML at line 5, column 7: ") and "\n" not in message


@pytest.mark.parametrize("text", ["- problem\n- model\n", "just a string\n", ""])
def test_non_mapping_document_names_the_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"^{path}: top-level document must be a mapping, got "):
        load_config(path)
    assert error([1, 2], source="x.yaml") == "x.yaml: top-level document must be a mapping, got [1, 2]"


# ---------------------------------------------------------------------------------------------- validation errors


@pytest.mark.parametrize(("path", "value", "expected"), [
    (("model", "gird"), 3, "model.gird: unknown key; did you mean 'grid'?"),
    (("modle",), {}, "modle: unknown key; did you mean 'model'?"),
    (("train", "xyzzy"), 1, "train.xyzzy: unknown key; allowed: seed, dtype,"),
    (("model", "type"), "kann", "model.type: must be one of 'kan', 'mlp', 'siren', 'fourier_mlp', got 'kann'"),
    (("model", "width"), "2,10,1", "model.width: must be a list of"),
    (("output", "plots"), "yes", "output.plots: must be true or false, got 'yes'"),
    (("model",), 3, "model: must be a mapping with keys type, width,"),
    (("model", "grid"), True, "model.grid: must be a positive integer, got true"),
    (("points", "boundary"), False, "points.boundary: must be a non-negative integer, got false"),
    (("train", "seed"), 1.0, "train.seed: must be a non-negative integer, got 1.0"),
    (("model", "grid"), -3, "model.grid: must be a positive integer, got -3"),
    (("model", "width"), [2, 0, 1], "model.width[1]: must be a positive integer, got 0"),
    (("model", "width"), [2], "model.width: must be a list of 2 to"),
    (("model", "grid_eps"), 1.5, "model.grid_eps: must be a number in [0, 1], got 1.5"),
    (("model", "grid_range"), [1, -1], "model.grid_range: must be [lo, hi] with lo < hi, got [1, -1]"),
    (("model", "grid_range"), [0, math.inf], "model.grid_range[1]: must be a finite number, got inf"),
    (("model", "sigma"), math.nan, "model.sigma: must be a positive finite number, got nan"),
    (("model", "omega0"), "-inf", "model.omega0: must be a positive finite number, got '-inf'"),
    (("model", "grid"), 10**9, "model.grid: must be a positive integer <= 1000, got 1000000000"),
    (("points", "interior"), 10**10, "points.interior: must be a positive integer <= 10000000, got"),
    (("model", "sigma"), 10**400, "model.sigma: must be a positive finite number, got 1000"),
    (("train", "loss_weights"), {"residual": -1}, "train.loss_weights.residual: must be a non-negative finite"),
    (("train", "grid_schedule"), {"x": 3}, "train.grid_schedule: keys must be a non-negative integer, got 'x'"),
    (("train", "grid_schedule"), {100: 0}, "train.grid_schedule.100: must be a positive integer, got 0"),
    (("train", "stages"), [], "train.stages: must be a non-empty list of stage mappings, got []"),
    (("train", "stages"), [{"optimizer": "sgd", "steps": 1}], "train.stages[0].optimizer: must be one of 'adam',"),
    (("train", "stages"), [{"optimizer": "adam"}], "train.stages[0].steps: required key is missing (must be a"),
    (("train", "stages"), [{"optimizer": "adam", "steps": 10**30}],
     "train.stages[0].steps: must be a positive integer <= 1000000000, got 1000000000000000000000000000000"),
    (("train", "stages"), [{"optimizer": "adam", "steps": 1}, {"optimizer": "lbfgs", "steps": 1, "lr": math.nan}],
     "train.stages[1].lr: must be a positive finite number, got nan"),
    (("train", "stages"), ["adam"], "train.stages[0]: must be a mapping with keys optimizer, steps,"),
    (("train", "stages"), [{"optimizer": "lbfgs", "steps": 1, "points": {"interior": 0}}],
     "train.stages[0].points.interior: must be a positive integer, got 0"),
    (("train", "stages"), [{"optimizer": "lbfgs", "steps": 1, "points": {"method": "grid"}}],
     "train.stages[0].points.method: unknown key; allowed: interior, boundary, initial, resample_every"),
    (("problem",), {}, "problem.name: required key is missing (must be a non-empty string)"),
    (("problem", "params"), {"a": [{"b": 1}]},
     "problem.params.a[0]: must be a scalar, a list of scalars or {unknown: true, init: ...}"),
    (("evaluate", "resolution"), [64, 0], "evaluate.resolution[1]: must be a positive integer, got 0"),
    (("output", "dir"), "", "output.dir: must be a non-empty string or null, got ''"),
])
def test_invalid_value_is_reported_with_its_path(path: tuple, value: Any, expected: str) -> None:
    assert error(with_value(path, value)).startswith(expected)


def test_missing_problem_section() -> None:
    assert error({"model": {}}).startswith("problem: required key is missing (must be a mapping with keys name")


# ---------------------------------------------------------------------------------------------- overrides


def test_overrides_index_lists_add_params_and_fill_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "problem: {name: poisson, params: {k: 1}}\n")
    config = load_config(path, [
        "train.stages.0.steps=500",  # stages absent from the file: starts from the default stage
        "train.stages[1]={optimizer: lbfgs, steps: 20}",  # index == length appends
        "model.width=[2,5,1]", "model.width.1=7", "model.type=mlp",
        "problem.params.kappa=0.5", "problem.params.k=2",
        "train.grid_schedule.200=10", "train.grid_schedule.200=12",
        "output.dir=out/run", "evaluate.resolution=[50, 60]",
    ])
    assert [(s.optimizer, s.steps, s.lr) for s in config.train.stages] == [("adam", 500, 1e-3), ("lbfgs", 20, 1.0)]
    assert config.model.width == (2, 7, 1) and config.model.type == "mlp"
    assert config.problem.params == {"k": 2, "kappa": 0.5}
    assert config.train.grid_schedule == {200: 12}
    assert config.output.dir == "out/run" and config.evaluate.resolution == (50, 60)
    assert load_config(path).train.stages[0].steps == 1000  # the file itself is untouched


@pytest.mark.parametrize(("override", "expected"), [
    ("foo", "--set foo: expected KEY=VALUE"),
    ("=3", "--set =3: expected KEY=VALUE"),
    ("model..grid=3", "--set model..grid=3: expected KEY=VALUE"),
    ("model.gird=3", "model.gird: unknown key; did you mean 'grid'? (in --set model.gird=3)"),
    ("trian.seed=3", "trian: unknown key; did you mean 'train'?"),
    ("train.stages.3.steps=1", "--set train.stages.3.steps=1: train.stages: expected a list index in 0..1, got '3'"),
    ("train.stages.lr=1", "--set train.stages.lr=1: train.stages: expected a list index in 0..1, got 'lr'"),
    ("model.grid.x=1", "--set model.grid.x=1: model.grid is a single value, not a mapping or list"),
    ("model.width=[2,", "--set model.width=[2,: invalid YAML at line 1"),
    ("model.grid=-1", "model.grid: must be a positive integer, got -1"),
])
def test_bad_override(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(apply_overrides(MINIMAL, [override]))
    assert str(info.value).startswith(expected) and len(str(info.value).splitlines()) == 1


# ---------------------------------------------------------------------------------------------- round trip


def test_round_trip_through_dict_and_yaml(tmp_path: Path) -> None:
    data = with_value(("train",), {"stages": [{"optimizer": "adam", "steps": 3, "lr": "1e-2", "decay": "step"},
                                              {"optimizer": "lbfgs", "steps": 2}],
                                   "grid_schedule": {"20": 10, 5: 8}, "loss_weights": {"residual": 0.01}})
    data["problem"]["params"] = {"center": [[0.5, 0.5]], "label": "x", "flag": True, "none": None}
    data["evaluate"] = {"resolution": [11, 12]}
    config = config_from_dict(data, source="mine")
    plain = config_to_dict(config)
    assert config_from_dict(plain) == config and plain["train"]["grid_schedule"] == {5: 8, 20: 10}
    dump_config(config, tmp_path / "sub" / "config.yaml")
    assert "width: [2, 10, 1]" in (tmp_path / "sub" / "config.yaml").read_text()
    assert load_config(tmp_path / "sub" / "config.yaml") == config


# ---------------------------------------------------------------------------------------------- property tests


BASE = config_to_dict(config_from_dict(with_value(("train", "stages"), [{"optimizer": "adam", "steps": 1}] * 2)))


def node_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a config dict (sections, fields, list items), excluding the free ``problem.params``."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    out = []
    for key, child in children:
        if prefix + (key,) != ("problem", "params"):
            out += [prefix + (key,), *node_paths(child, prefix + (key,))]
    return out


PATHS = node_paths(BASE)
BAD_SCALARS = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf]), st.integers(max_value=-1),
                        st.floats(max_value=-1e-300, allow_infinity=False))
# Invalid for every field: negative or non-finite numbers, non-empty lists of them, mappings with them as values.
ALWAYS_BAD = st.one_of(BAD_SCALARS, st.lists(BAD_SCALARS, min_size=1, max_size=3),
                       st.dictionaries(st.text(min_size=1, max_size=5), BAD_SCALARS, min_size=1, max_size=2))
ANY = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                   lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                   max_leaves=8)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(path=st.sampled_from(PATHS), value=ALWAYS_BAD)
def test_any_malformed_value_raises_config_error_naming_the_path(path: tuple, value: Any) -> None:
    finite = all(math.isfinite(x) for x in (value if isinstance(value, list) else [value]) if not isinstance(x, dict))
    assume(not (path[:2] == ("model", "grid_range") and finite))  # negative bounds are fine for grid_range
    message = error(with_value(path, value, BASE))
    assert message.startswith(dotted(path)), (path, message)


@FAST
@given(path=st.sampled_from(PATHS + [("problem", "params", "p"), ("x",)]), value=ANY)
def test_arbitrary_values_give_a_config_or_a_one_line_config_error(path: tuple, value: Any) -> None:
    try:
        assert isinstance(config_from_dict(with_value(path, value, BASE)), Config)
    except ConfigError as err:
        assert len(str(err).splitlines()) == 1


@FAST
@given(text=st.text(max_size=60), override=st.text(max_size=30))
def test_arbitrary_yaml_text_and_overrides_never_escape_as_other_errors(text: str, override: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "fuzz.yaml")
        path.write_text("problem: {name: p}\n" + text, encoding="utf-8")
        for overrides in ([], [override]):
            try:
                load_config(path, overrides)
            except ConfigError as err:
                assert len(str(err).splitlines()) == 1


def test_tf32_is_a_flag_and_ignored_in_float64():
    from kanpde.checks import check_config
    from kanpde.solver import build_problem

    config = config_from_dict({"problem": {"name": "poisson"}, "train": {"tf32": True}})
    assert config.train.tf32 is True and config_from_dict({"problem": {"name": "poisson"}}).train.tf32 is False
    said = []
    check_config(config, build_problem(config.problem), said.append)
    assert [s for s in said if s.startswith("train.tf32")]
    with pytest.raises(ConfigError, match=r"^train\.tf32: must be"):
        config_from_dict({"problem": {"name": "poisson"}, "train": {"tf32": "yes"}})
