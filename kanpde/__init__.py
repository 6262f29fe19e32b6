"""kanpde: physics-informed training of Kolmogorov–Arnold Networks, with derivative jets."""

from kanpde.autodiff import autograd_jet  # noqa: E402
from kanpde.config import Config, ConfigError, load_config  # noqa: E402
from kanpde.field import Field  # noqa: E402
from kanpde.geometry import Box, Sampler  # noqa: E402
from kanpde.jet import Jet  # noqa: E402
from kanpde.nets import KAN, MLP, SIREN, FourierMLP, JetModule  # noqa: E402
from kanpde.problem import Dirichlet, Initial, Neumann, Periodic, Problem  # noqa: E402
from kanpde.solver import LoadedRun, load, solve  # noqa: E402
from kanpde.train import DivergenceError, Trainer  # noqa: E402
from kanpde.version import __version__  # noqa: E402

__all__ = [
    "KAN", "MLP", "SIREN", "FourierMLP", "JetModule", "Jet", "autograd_jet",
    "Box", "Sampler", "Problem", "Dirichlet", "Neumann", "Periodic", "Initial",
    "Field", "Trainer", "DivergenceError", "Config", "ConfigError", "load_config",
    "solve", "load", "LoadedRun", "export", "__version__",
]


def __getattr__(name: str):
    """``kanpde.export`` is :func:`kanpde.symbolic.export`, imported on first use (sympy is slow to import)."""
    if name == "export":
        from kanpde.symbolic import export

        return export
    raise AttributeError(f"module 'kanpde' has no attribute {name!r}")
