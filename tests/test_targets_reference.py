"""Targets and predictions against their documented formulas: label smoothing is
``(1 − ε) one_hot(y) + ε / K``, and ties in the logits go to the first class."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxmlp import model


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_smoothed_targets_follow_the_formula(smoothing):
    labels = np.array([0, 3, 2, 3])
    got = np.asarray(model.smoothed_targets(jnp.asarray(labels), 4, smoothing, jnp.float32))
    expected = (1 - smoothing) * np.eye(4)[labels] + smoothing / 4
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)


def test_mixed_targets_take_both_terms():
    got = np.asarray(model.mixed_targets(jnp.asarray([1]), 3, 0.7, 0.1, jnp.float32))
    np.testing.assert_allclose(got, [[0.1, 0.8, 0.1]], rtol=1e-6)


def test_first_argmax_picks_the_first_of_equal_maxima():
    logits = jnp.asarray([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [0.0, -1.0, 5.0, 5.0]])
    np.testing.assert_array_equal(model.first_argmax(logits), [1, 0, 2])
    np.testing.assert_array_equal(model.first_argmax(logits), np.argmax(np.asarray(logits), -1))
