"""The package version (one place; ``kanpde.__version__`` and the run files read it)."""

__version__ = "0.1.0"
