"""kanpde: physics-informed training of Kolmogorov–Arnold Networks, with derivative jets.

The public names are imported on first use (PEP 562), so ``python -m kanpde --help``, ``--version``,
``list`` and config validation answer without importing torch (seconds on a loaded machine).
"""

from __future__ import annotations

import importlib
import importlib.util

from kanpde.version import __version__

_HOME = {  # public name -> the module that defines it
    "autograd_jet": "kanpde.autodiff", "Config": "kanpde.config", "ConfigError": "kanpde.config",
    "load_config": "kanpde.config", "Field": "kanpde.field", "Box": "kanpde.geometry", "Sampler": "kanpde.geometry",
    "Jet": "kanpde.jet", "KAN": "kanpde.nets", "MLP": "kanpde.nets", "SIREN": "kanpde.nets",
    "FourierMLP": "kanpde.nets", "JetModule": "kanpde.nets", "Condition": "kanpde.conditions",
    "Dirichlet": "kanpde.conditions", "Initial": "kanpde.conditions", "Neumann": "kanpde.conditions",
    "Robin": "kanpde.conditions", "Periodic": "kanpde.conditions", "PointValue": "kanpde.conditions",
    "Problem": "kanpde.problem", "Derivatives": "kanpde.taylor", "TaylorJet": "kanpde.taylor",
    "LoadedRun": "kanpde.solver", "load": "kanpde.solver", "solve": "kanpde.solver",
    "DivergenceError": "kanpde.train", "Trainer": "kanpde.train", "export": "kanpde.symbolic",
    "Observations": "kanpde.data", "Unknown": "kanpde.unknown",
}

__all__ = [*_HOME, "__version__"]


def __getattr__(name: str):
    """Import a public name's module on first use (sympy and torch are slow to import)."""
    if name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
        globals()[name] = value
        return value
    if importlib.util.find_spec(f"kanpde.{name}") is not None:  # a submodule, as ``kanpde.solver``
        return importlib.import_module(f"kanpde.{name}")
    raise AttributeError(f"module 'kanpde' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
