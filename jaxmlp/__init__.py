"""jaxmlp: a multilayer perceptron for MNIST in JAX, with backpropagation by hand.

The library a notebook imports; the ``jaxmlp`` command is a thin layer over it.
"""

__version__ = "0.1.0"

from jaxmlp.backprop import (
    autodiff_grad,
    autodiff_value_and_grad,
    bp1_output_error,
    bp2_hidden_error,
    bp3_bias_gradient,
    bp4_weight_gradient,
    manual_grad,
    manual_value_and_grad,
)
from jaxmlp.errors import CheckpointError, ConfigError, DatasetError, DivergenceError, JaxmlpError
from jaxmlp.model import (
    Layer,
    Params,
    accuracy,
    forward,
    init_params,
    loss,
    parse_sizes,
    predict,
    predict_proba,
)

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "DivergenceError",
    "JaxmlpError",
    "Layer",
    "Params",
    "accuracy",
    "autodiff_grad",
    "autodiff_value_and_grad",
    "bp1_output_error",
    "bp2_hidden_error",
    "bp3_bias_gradient",
    "bp4_weight_gradient",
    "forward",
    "init_params",
    "loss",
    "manual_grad",
    "manual_value_and_grad",
    "parse_sizes",
    "predict",
    "predict_proba",
]
