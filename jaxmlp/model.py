"""The multilayer perceptron as pure functions over a pytree of parameters.

Notation follows the seed document: layer ``l`` maps activations ``a^{l-1}`` to
pre-activations ``z^l = W^l a^{l-1} + b^l``; hidden layers apply ReLU, ``a^l = σ(z^l)``;
the output layer's ``z^L`` are the logits and ``a^L = softmax(z^L)``.

Weights are stored ``(out, in)`` like the seed's ``W_jk`` (``j`` a neuron of the next
layer, ``k`` one of this layer), so the equations read as written. Examples are rows: a
batch of inputs is ``(B, n_in)`` and in code ``z = a @ W.T + b``, which is ``W a + b`` for
every row at once. Every function here accepts one example ``(n_in,)`` or a batch
``(B, n_in)``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmlp.architecture import INIT_SCHEMES, parse_sizes
from jaxmlp.errors import ConfigError


class Layer(NamedTuple):
    """One affine layer: ``w`` is ``(out, in)``, ``b`` is ``(out,)``."""

    w: jax.Array
    b: jax.Array


Params = tuple[Layer, ...]
"""The whole network: a tuple of layers, input side first. A pytree."""


def layer_sizes(params: Params) -> tuple[int, ...]:
    """The widths ``(n_in, n_1, ..., n_out)`` of a network."""
    return (params[0].w.shape[1], *tuple(layer.w.shape[0] for layer in params))


def init_layer(key: jax.Array, n_in: int, n_out: int, scheme: str, dtype) -> Layer:
    """One layer's weights and biases drawn by ``scheme``.

    ``normal``: ``W, b ~ N(0, 1)`` as in the seed. ``he``: ``W ~ N(0, 2/n_in)``, ``b = 0``
    (suits ReLU). ``glorot``: ``W ~ U(±sqrt(6/(n_in+n_out)))``, ``b = 0``.
    """
    w_key, b_key = jax.random.split(key)
    shape = (n_out, n_in)
    if scheme == "normal":
        return Layer(
            w=jax.random.normal(w_key, shape, dtype),
            b=jax.random.normal(b_key, (n_out,), dtype),
        )
    if scheme == "he":
        scale = math.sqrt(2.0 / n_in)
        # The barrier keeps XLA from folding ``scale`` into the sampler's own constants
        # when this is compiled as a whole: the product is rounded as when drawn eagerly.
        normal = jax.lax.optimization_barrier(jax.random.normal(w_key, shape, dtype))
        return Layer(w=scale * normal, b=jnp.zeros(n_out, dtype))
    if scheme == "glorot":
        limit = math.sqrt(6.0 / (n_in + n_out))
        w = jax.random.uniform(w_key, shape, dtype, minval=-limit, maxval=limit)
        return Layer(w=w, b=jnp.zeros(n_out, dtype))
    raise ConfigError(f"must be one of {', '.join(INIT_SCHEMES)}, got {scheme!r}", setting="init")


def init_params(
    key: jax.Array, sizes: Sequence[int], init: str = "normal", dtype=jnp.float32
) -> Params:
    """A fresh network with widths ``sizes`` (e.g. ``(784, 15, 10)``).

    Drawn by one compiled program, rather than one small program per split and array:
    the same bits, traced and lowered once instead of ``2 + 2 × layers`` times.
    """
    if init not in INIT_SCHEMES:
        raise ConfigError(f"must be one of {', '.join(INIT_SCHEMES)}, got {init!r}", setting="init")
    return draw_params(key, parse_sizes(sizes), init, jnp.dtype(dtype))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def draw_params(key: jax.Array, sizes: tuple[int, ...], init: str, dtype) -> Params:
    """:func:`init_params` for checked sizes and scheme, compiled."""
    keys = jax.random.split(key, len(sizes) - 1)
    return tuple(
        init_layer(layer_key, n_in, n_out, init, dtype)
        for layer_key, n_in, n_out in zip(keys, sizes[:-1], sizes[1:])
    )


def relu(z: jax.Array) -> jax.Array:
    """``σ(z) = max(z, 0)``.

    ``jax.nn.relu`` rather than ``jnp.maximum(z, 0)``: at the kink ``z = 0`` its derivative
    is 0, the convention of BP2 here, where ``maximum`` would split the gradient in halves.
    """
    return jax.nn.relu(z)


def relu_derivative(z: jax.Array) -> jax.Array:
    """``σ'(z)``: 1 where ``z > 0``, else 0 — also at the kink ``z = 0``, like ``jax.nn.relu``."""
    return (z > 0).astype(z.dtype)


def affine(layer: Layer, a: jax.Array) -> jax.Array:
    """``z = W a + b`` for one example ``(n_in,)`` or a batch of rows ``(B, n_in)``."""
    return a @ layer.w.T + layer.b


def inverted_dropout_mask(key: jax.Array, shape: tuple[int, ...], keep, dtype) -> jax.Array:
    """Inverted dropout: ``1/keep`` where kept (probability ``keep``), 0 where dropped.

    Multiplying by it keeps every unit's expected value. ``keep`` (``1 − rate``) may be a
    traced array; at ``keep = 1`` the mask is all ones.
    """
    return jax.random.bernoulli(key, keep, shape).astype(dtype) / keep


def hidden_dropout_masks(
    key: jax.Array, params: Params, batch_shape: tuple[int, ...], keep
) -> tuple[jax.Array, ...]:
    """Inverted-dropout masks for the hidden layers, each unit kept with probability ``keep``."""
    hidden = params[:-1]
    keys = jax.random.split(key, len(hidden))
    return tuple(
        inverted_dropout_mask(k, batch_shape + layer.b.shape, keep, layer.b.dtype)
        for k, layer in zip(keys, hidden)
    )


def dropout_masks(
    key: jax.Array | None, params: Params, batch_shape: tuple[int, ...], rate: float
) -> tuple[jax.Array, ...] | None:
    """:func:`hidden_dropout_masks` at dropout ``rate``; ``None`` when ``rate`` is 0 or
    ``key`` is ``None`` (no dropout)."""
    if key is None or rate == 0.0:
        return None
    return hidden_dropout_masks(key, params, batch_shape, 1.0 - rate)


class ForwardTrace(NamedTuple):
    """What one forward pass keeps: the backward pass and the gradient check read it."""

    inputs: tuple[jax.Array, ...]
    """``a^{l-1}``, the input of each layer: ``x`` first."""
    pre_activations: tuple[jax.Array, ...]
    """``z^l`` of each layer: the logits ``z^L`` last."""


def forward_trace(
    params: Params, x: jax.Array, masks: Sequence[jax.Array] | None = None
) -> ForwardTrace:
    """The forward pass, keeping ``a^{l-1}`` and ``z^l`` of every layer: the one layer loop.

    Hidden layers apply ReLU (times their dropout mask, when ``masks`` are given); the
    output layer is affine. ``x`` is one example or a batch of rows.
    """
    inputs, pre_activations = [], []
    a = x
    for index, layer in enumerate(params):
        inputs.append(a)
        z = affine(layer, a)
        pre_activations.append(z)
        if index < len(params) - 1:
            a = relu(z)
            if masks is not None:
                a = a * masks[index]
    return ForwardTrace(tuple(inputs), tuple(pre_activations))


def forward(params: Params, x: jax.Array, masks: Sequence[jax.Array] | None = None) -> jax.Array:
    """The logits ``z^L`` (softmax is in the loss): the last pre-activation of the trace."""
    return forward_trace(params, x, masks).pre_activations[-1]


def predict_proba(params: Params, x: jax.Array) -> jax.Array:
    """``a^L = softmax(z^L)``: class probabilities."""
    return jax.nn.softmax(forward(params, x), axis=-1)


def first_argmax(logits: jax.Array) -> jax.Array:
    """``jnp.argmax(logits, axis=-1)`` for finite rows (the first of equal maxima), as two
    plain reductions: XLA:CPU runs argmax's variadic (value, index) reduce as a slow
    scalar loop (5 % of a population's training step)."""
    classes = logits.shape[-1]
    is_max = logits == jnp.max(logits, axis=-1, keepdims=True)
    return jnp.min(jnp.where(is_max, jnp.arange(classes, dtype=jnp.int32), classes), axis=-1)


def predict(params: Params, x: jax.Array) -> jax.Array:
    """The most probable class."""
    return jnp.argmax(forward(params, x), axis=-1)


def one_hot_targets(y: jax.Array, num_classes: int, dtype) -> jax.Array:
    """Integer labels become one-hot rows; rows of probabilities pass through unchanged."""
    y = jnp.asarray(y)
    if jnp.issubdtype(y.dtype, jnp.integer):
        return jax.nn.one_hot(y, num_classes, dtype=dtype)
    return y.astype(dtype)


def smoothed_targets(y: jax.Array, num_classes: int, smoothing: float, dtype) -> jax.Array:
    """Label smoothing: ``(1 − ε) one_hot(y) + ε / K``. BP1 takes these rows as its ``y``."""
    return mixed_targets(y, num_classes, 1 - smoothing, smoothing / num_classes, dtype)


def mixed_targets(y: jax.Array, num_classes: int, on, floor, dtype) -> jax.Array:
    """``on · one_hot(y) + floor``: smoothed targets from their two (maybe traced) terms."""
    return jax.nn.one_hot(y, num_classes, dtype=dtype) * on + floor


def cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Mean over examples of ``E = −Σ_j y_j ln softmax(z)_j``, via ``log_softmax``.

    ``log_softmax`` subtracts the largest logit first, so logits of ±1e4 give a finite
    loss where ``log(softmax(z))`` would give ``log(0) = -inf``.
    """
    targets = one_hot_targets(y, logits.shape[-1], logits.dtype)
    per_example = -jnp.sum(targets * jax.nn.log_softmax(logits, axis=-1), axis=-1)
    return jnp.mean(per_example)


def loss(
    params: Params, x: jax.Array, y: jax.Array, masks: Sequence[jax.Array] | None = None
) -> jax.Array:
    """Mean cross-entropy of the network on ``(x, y)``; ``y`` integer labels or one-hot.

    The seed sums the per-example losses and steps by ``lr / batch``; the mean loss with
    step ``lr`` is the same update.
    """
    return loss_and_logits(params, x, y, masks)[0]


def loss_and_logits(
    params: Params, x: jax.Array, y: jax.Array, masks: Sequence[jax.Array] | None = None
) -> tuple[jax.Array, jax.Array]:
    """:func:`loss` and the logits it came from (training reports accuracy from them)."""
    logits = forward(params, x, masks)
    return cross_entropy(logits, y), logits


def accuracy(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """Fraction of examples whose most probable class is the label (integers or one-hot)."""
    y = jnp.asarray(y)
    labels = y if jnp.issubdtype(y.dtype, jnp.integer) else jnp.argmax(y, axis=-1)
    return jnp.mean(predict(params, x) == labels)
