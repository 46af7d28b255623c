"""jaxmlp: a multilayer perceptron for MNIST in JAX, with backpropagation by hand.

The library a notebook imports (``docs/backprop_by_hand.ipynb`` uses only the names below);
the ``jaxmlp`` command is a thin layer over it. The names below are imported on first use,
so that ``import jaxmlp`` (and the command's start, which must answer Ctrl-C and check the
environment before JAX loads) does not import JAX.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "autodiff_grad": "jaxmlp.backprop",
    "autodiff_value_and_grad": "jaxmlp.backprop",
    "bp1_output_error": "jaxmlp.backprop",
    "bp2_hidden_error": "jaxmlp.backprop",
    "bp3_bias_gradient": "jaxmlp.backprop",
    "bp4_weight_gradient": "jaxmlp.backprop",
    "example_errors": "jaxmlp.backprop",
    "manual_grad": "jaxmlp.backprop",
    "manual_value_and_grad": "jaxmlp.backprop",
    "Checkpoint": "jaxmlp.checkpoint",
    "load_checkpoint": "jaxmlp.checkpoint",
    "save_checkpoint": "jaxmlp.checkpoint",
    "load_dataset": "jaxmlp.data",
    "Dataset": "jaxmlp.data",
    "Split": "jaxmlp.data",
    "PRESETS": "jaxmlp.settings",
    "Settings": "jaxmlp.settings",
    "resolve_settings": "jaxmlp.settings",
    "FitResult": "jaxmlp.train",
    "FitState": "jaxmlp.train",
    "TrainState": "jaxmlp.train",
    "Trainer": "jaxmlp.train",
    "fit": "jaxmlp.train",
    "prepare": "jaxmlp.train",
    "evaluate_params": "jaxmlp.evaluation",
    "CheckpointError": "jaxmlp.errors",
    "ConfigError": "jaxmlp.errors",
    "DatasetError": "jaxmlp.errors",
    "DivergenceError": "jaxmlp.errors",
    "JaxmlpError": "jaxmlp.errors",
    "TrainingInterrupted": "jaxmlp.errors",
    "Layer": "jaxmlp.model",
    "Params": "jaxmlp.model",
    "accuracy": "jaxmlp.model",
    "forward": "jaxmlp.model",
    "forward_trace": "jaxmlp.model",
    "init_params": "jaxmlp.model",
    "loss": "jaxmlp.model",
    "parse_sizes": "jaxmlp.model",
    "predict": "jaxmlp.model",
    "predict_proba": "jaxmlp.model",
    "relu_derivative": "jaxmlp.model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Imports an exported name's module on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'jaxmlp' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
