"""kanpde: physics-informed training of Kolmogorov–Arnold Networks, with derivative jets."""

from kanpde.autodiff import autograd_jet
from kanpde.jet import Jet
from kanpde.nets import KAN, MLP, SIREN, FourierMLP, JetModule

__version__ = "0.1.0"

__all__ = ["KAN", "MLP", "SIREN", "FourierMLP", "JetModule", "Jet", "autograd_jet", "__version__"]
