"""The ``jaxmlp`` command line: a thin layer over the library, one module per topic."""

from jaxmlp.cli import data, export, grads, info, serve, sweep, training, view
from jaxmlp.cli.app import app, main
from jaxmlp.console import run

__all__ = [
    "app",
    "data",
    "export",
    "grads",
    "info",
    "main",
    "run",
    "serve",
    "sweep",
    "training",
    "view",
]
