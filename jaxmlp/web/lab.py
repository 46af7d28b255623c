"""The network behind ``jaxmlp serve``: predict, backprop and SGD steps on one digit.

A :class:`DigitLab` holds the checkpoint's parameters in memory. Reads take a snapshot of
them under a lock and compute outside it; an SGD step computes and swaps the parameters
under the lock, so concurrent requests see either the old network or the new one. The
checkpoint file is never written: :meth:`DigitLab.reset` goes back to what was loaded.

Every number comes from the library's own functions: probabilities from
:func:`jaxmlp.evaluation.predict_probabilities` (what ``jaxmlp predict`` prints), the
errors δ from :func:`jaxmlp.backprop.example_errors` (BP1, then BP2 backwards), the
first layer's weight gradient from :func:`jaxmlp.backprop.bp4_weight_gradient`, and the
SGD step from :func:`jaxmlp.backprop.manual_value_and_grad`.
"""

from __future__ import annotations

import threading
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp.backprop import (
    bp4_weight_gradient,
    example_errors,
    forward_trace,
    manual_value_and_grad,
)
from jaxmlp.errors import DivergenceError
from jaxmlp.evaluation import predict_probabilities
from jaxmlp.model import Params, cross_entropy, layer_sizes

TOP_UNITS = 8
"""How many first-layer units the backprop view shows (those with the largest ``|δ¹ⱼ|``)."""
SIGNIFICANT_DIGITS = 4
"""Pictures of δ, weights and gradients are sent rounded to this many significant digits."""


@jax.jit
def hidden_activations(params: Params, x: jax.Array) -> tuple[jax.Array, ...]:
    """``a¹ … a^{L-1}`` of one example: the inputs of every layer after the first."""
    return forward_trace(params, x).inputs[1:]


@jax.jit
def backprop_one(params: Params, x: jax.Array, target: jax.Array):
    """For one example and a one-hot target: loss, ``aᴸ``, every δ, and ``∂E/∂W¹``.

    BP4 for one example is the outer product ``δ¹ xᵀ``, here as a batch of one.
    """
    deltas, trace = example_errors(params, x, target)
    logits = trace.pre_activations[-1]
    first_layer_gradient = bp4_weight_gradient(deltas[0][None], x[None])
    return cross_entropy(logits, target), jax.nn.softmax(logits), deltas, first_layer_gradient


@jax.jit
def sgd_step(params: Params, x: jax.Array, label: jax.Array, lr: jax.Array) -> Params:
    """``θ ← θ − η ∂E/∂θ`` on one example, with the BP1–BP4 gradient."""
    _, grads = manual_value_and_grad(params, x, label)
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


def rounded(values: Any) -> list:
    """``values`` as nested lists of floats rounded to :data:`SIGNIFICANT_DIGITS` digits."""
    array = np.asarray(values, np.float64)
    flat = [float(f"{value:.{SIGNIFICANT_DIGITS}g}") for value in array.ravel().tolist()]
    return np.asarray(flat).reshape(array.shape).tolist()


class DigitLab:
    """A network to try digits on: predict, backprop on a chosen label, SGD steps, reset.

    Args:
        params: The network (from a checkpoint); it must take 784 pixels.
        class_names: The name of each class, by label.
        name: What to call the network on the page (the checkpoint's path).
    """

    def __init__(self, params: Params, class_names: tuple[str, ...], name: str):
        self.loaded = params
        self.class_names = tuple(class_names)
        self.name = name
        self.sizes = layer_sizes(params)
        self.dtype = params[0].w.dtype
        self._params = params
        self._steps = 0
        self._lock = threading.Lock()
        self._warm_up()

    def _warm_up(self) -> None:
        """Compiles every function once, so that the first stroke gets a quick answer."""
        pixels = np.zeros(self.sizes[0], np.float32)
        self.predict(pixels)
        self.backprop(pixels, 0)
        sgd_step(self.loaded, jnp.asarray(pixels, self.dtype), jnp.int32(0), self.dtype.type(0.1))

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return self.sizes[-1]

    def snapshot(self) -> tuple[Params, int]:
        """The current parameters and how many SGD steps led to them."""
        with self._lock:
            return self._params, self._steps

    def info(self) -> dict[str, Any]:
        """The network's name, layer widths, class names and steps taken."""
        _, steps = self.snapshot()
        return {
            "checkpoint": self.name,
            "sizes": list(self.sizes),
            "class_names": list(self.class_names),
            "steps": steps,
        }

    def predict(self, pixels: np.ndarray) -> dict[str, Any]:
        """The prediction, class probabilities and hidden activations of one image.

        Args:
            pixels: ``(784,)`` in [0, 1].
        """
        params, steps = self.snapshot()
        probabilities = predict_probabilities(params, pixels[None])[0]
        hidden = hidden_activations(params, jnp.asarray(pixels, self.dtype))
        return {
            "prediction": int(np.argmax(probabilities)),
            "probabilities": [float(p) for p in probabilities],
            "hidden": [rounded(a) for a in hidden],
            "steps": steps,
        }

    def backprop(self, pixels: np.ndarray, label: int) -> dict[str, Any]:
        """BP1–BP4 for one image and a chosen label.

        Returns:
            ``loss``; ``output`` (``aᴸ``), ``target`` (``y``) and ``output_error`` (BP1's
            ``δᴸ``); ``hidden_errors`` (BP2's ``δˡ``, first layer first); ``units``: for the
            :data:`TOP_UNITS` first-layer units with the largest ``|δ¹ⱼ|``, their index,
            ``δ¹ⱼ`` (BP3: the bias gradient), weights ``W¹ⱼ`` and gradient ``δ¹ⱼ xᵀ``
            (BP4), each as 784 numbers.
        """
        params, steps = self.snapshot()
        target = jax.nn.one_hot(label, self.num_classes, dtype=self.dtype)
        loss, output, deltas, gradient = backprop_one(
            params, jnp.asarray(pixels, self.dtype), target
        )
        first = np.asarray(deltas[0])
        order = np.argsort(-np.abs(first), kind="stable")[:TOP_UNITS]
        weights = np.asarray(params[0].w)
        gradient = np.asarray(gradient)
        return {
            "label": label,
            "loss": float(loss),
            "output": [float(a) for a in np.asarray(output)],
            "target": [float(y) for y in np.asarray(target)],
            "output_error": [float(d) for d in np.asarray(deltas[-1])],
            "hidden_errors": [rounded(delta) for delta in deltas[:-1]],
            "units": [
                {
                    "unit": int(unit),
                    "delta": float(first[unit]),
                    "weights": rounded(weights[unit]),
                    "gradient": rounded(gradient[unit]),
                }
                for unit in order
            ],
            "steps": steps,
        }

    def step(self, pixels: np.ndarray, label: int, lr: float) -> dict[str, Any]:
        """One SGD step on this image and label; the probabilities before and after.

        Raises:
            DivergenceError: The step would make the network's output NaN or infinite
                (a learning rate far too large); the network is left as it was.
        """
        x = jnp.asarray(pixels, self.dtype)
        with self._lock:
            before = predict_probabilities(self._params, pixels[None])[0]
            stepped = sgd_step(self._params, x, jnp.int32(label), self.dtype.type(lr))
            after = predict_probabilities(stepped, pixels[None])[0]
            if not np.all(np.isfinite(after)):
                raise DivergenceError(
                    f"a step with learning rate {lr:g} makes the output NaN; try a smaller one"
                )
            self._params = stepped
            self._steps += 1
            steps = self._steps
        return {
            "label": label,
            "lr": lr,
            "before": [float(p) for p in before],
            "after": [float(p) for p in after],
            "prediction": int(np.argmax(after)),
            "steps": steps,
        }

    def reset(self) -> dict[str, Any]:
        """Goes back to the loaded parameters."""
        with self._lock:
            self._params = self.loaded
            self._steps = 0
        return {"steps": 0}
