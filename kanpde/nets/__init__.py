"""Trial functions: the KAN and the MLP, SIREN and Fourier-feature baselines, all jet-aware."""

from kanpde.nets.base import Activation, JetModule, Linear, Sequential
from kanpde.nets.kan import KAN, KANLayer
from kanpde.nets.mlp import MLP, FourierMLP
from kanpde.nets.siren import SIREN

__all__ = ["KAN", "KANLayer", "MLP", "FourierMLP", "SIREN", "JetModule", "Linear", "Activation", "Sequential"]
