"""Small shared helpers for the tests."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp.data import Dataset, Split
from jaxmlp.model import Layer


def random_problem(seed: int, sizes, batch: int, dtype=jnp.float64, init: str = "he"):
    """Parameters, inputs in [0, 1) and integer labels for a network of ``sizes``.

    Drawn with numpy (no JAX compilation per shape); ``he`` scales weights by
    ``sqrt(2/n_in)`` with zero biases, ``normal`` is N(0, 1) for both.
    """
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in itertools.pairwise(sizes):
        scale = np.sqrt(2.0 / n_in) if init == "he" else 1.0
        w = rng.normal(size=(n_out, n_in)) * scale
        b = np.zeros(n_out) if init == "he" else rng.normal(size=n_out)
        params.append(Layer(jnp.asarray(w, dtype), jnp.asarray(b, dtype)))
    x = jnp.asarray(rng.uniform(size=(batch, sizes[0])), dtype)
    y = jnp.asarray(rng.integers(0, sizes[-1], batch), jnp.int32)
    return tuple(params), x, y


def max_difference(tree_a, tree_b) -> float:
    """The largest absolute difference between two pytrees of arrays."""
    return max(
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(jax.tree.leaves(tree_a), jax.tree.leaves(tree_b))
    )


def relative_error(tree_a, tree_b) -> float:
    """``‖a − b‖ / ‖b‖`` over all leaves together."""
    a = np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(tree_a)]).astype(np.float64)
    b = np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(tree_b)]).astype(np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def blobs_dataset(num_train=600, num_val=200, num_test=200, dim=16, classes=3, seed=0):
    """Well separated Gaussian blobs: a problem an MLP solves perfectly."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)).astype(np.float32) * 4

    def split(n):
        labels = rng.integers(0, classes, n).astype(np.int32)
        images = centres[labels] + rng.normal(size=(n, dim)).astype(np.float32) * 0.5
        return Split(images, labels)

    return Dataset(
        name="blobs",
        train=split(num_train),
        validation=split(num_val),
        test=split(num_test),
        source="generated",
        class_names=tuple(str(c) for c in range(classes)),
        image_shape=(4, 4),
    )
