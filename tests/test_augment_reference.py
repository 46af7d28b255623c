"""Augmentations and dropout against what they are documented to do, checked image by image
with numpy: a flip is a left–right mirror, a shift a zero-filled translation, erasing one
zeroed rectangle, dropout ``0`` or ``x / keep``; each is random and a function of its key."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmlp import augment
from jaxmlp.model import inverted_dropout_mask

SHAPE = (5, 7)  # not square: rows and columns cannot be confused
BATCH = 48


def distinct_images(batch: int = BATCH) -> np.ndarray:
    """Images whose pixels are all different and non-zero: any move of a pixel shows."""
    count = SHAPE[0] * SHAPE[1]
    return (np.arange(1, batch * count + 1, dtype=np.float32) / (batch * count)).reshape(
        batch, count
    )


def as_images(rows: np.ndarray) -> np.ndarray:
    return np.asarray(rows).reshape(-1, *SHAPE)


def shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``image`` moved down ``dy`` and right ``dx`` pixels, zero-filled."""
    height, width = image.shape
    out = np.zeros_like(image)
    out[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = image[
        max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
    ]
    return out


def test_shuffle_is_a_permutation_that_depends_on_the_key():
    n = 1000
    first = np.asarray(augment.shuffled_indices(jax.random.key(0), n))
    again = np.asarray(augment.shuffled_indices(jax.random.key(0), n))
    other = np.asarray(augment.shuffled_indices(jax.random.key(1), n))
    assert sorted(first.tolist()) == list(range(n))
    np.testing.assert_array_equal(first, again)
    assert (first != other).mean() > 0.9 and (first != np.arange(n)).mean() > 0.9


def test_flip_mirrors_left_right_about_half_of_the_images():
    x = distinct_images()
    out = as_images(augment.flip_images(jax.random.key(3), jnp.asarray(x), SHAPE))
    images = as_images(x)
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)]
    unchanged = [np.array_equal(o, i) for o, i in zip(out, images)]
    assert all(m or u for m, u in zip(mirrored, unchanged))
    assert 0.2 < np.mean(mirrored) < 0.8


@pytest.mark.parametrize("shift", [1, 2])
def test_shift_translates_each_image_with_zero_fill(shift):
    x = distinct_images()
    out = as_images(augment.shift_images(jax.random.key(4), jnp.asarray(x), SHAPE, shift))
    moves = []
    for o, image in zip(out, as_images(x)):
        found = [
            (dy, dx)
            for dy in range(-shift, shift + 1)
            for dx in range(-shift, shift + 1)
            if np.array_equal(o, shifted(image, dy, dx))
        ]
        assert len(found) == 1, "not a translation by at most the shift"
        moves.append(found[0])
    assert len(set(moves)) > (2 * shift + 1) ** 2 // 2
    assert {dy for dy, _ in moves} == {dx for _, dx in moves} == set(range(-shift, shift + 1))


def test_erasing_zeroes_one_rectangle_of_each_image():
    x = distinct_images()
    out = as_images(augment.erase_images(jax.random.key(5), jnp.asarray(x), SHAPE, 1.0))
    area = SHAPE[0] * SHAPE[1]
    for o, image in zip(out, as_images(x)):
        zero = o == 0
        rows, cols = np.nonzero(zero)
        assert zero.any()
        box = zero[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all(), "the erased pixels are not one rectangle"
        np.testing.assert_array_equal(o[~zero], image[~zero])
        assert zero.sum() <= max(1, round(augment.ERASE_AREA[1] * area * 2))


def test_erasing_with_probability_zero_changes_nothing_and_half_erases_some():
    x = jnp.asarray(distinct_images())
    np.testing.assert_array_equal(augment.erase_images(jax.random.key(6), x, SHAPE, 0.0), x)
    half = as_images(augment.erase_images(jax.random.key(6), x, SHAPE, 0.5))
    erased = np.mean([(image == 0).any() for image in half])
    assert 0.2 < erased < 0.8


@pytest.mark.parametrize("keep", [0.5, 0.8])
def test_input_dropout_keeps_pixels_scaled_by_one_over_keep(keep):
    x = distinct_images(200)
    out = np.asarray(augment.drop_inputs(jax.random.key(7), jnp.asarray(x), keep))
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / keep, rtol=1e-6)
    assert abs(kept.mean() - keep) < 0.03
    assert len({row.tobytes() for row in kept}) == len(kept), "examples share a mask"


def test_dropout_masks_are_zero_or_one_over_keep_and_depend_on_the_key():
    keep = 0.75
    mask = np.asarray(inverted_dropout_mask(jax.random.key(8), (400, 50), keep, jnp.float32))
    other = np.asarray(inverted_dropout_mask(jax.random.key(9), (400, 50), keep, jnp.float32))
    assert set(np.unique(mask).tolist()) == {0.0, np.float32(1 / keep)}
    assert abs((mask != 0).mean() - keep) < 0.02
    assert (mask != other).mean() > 0.2
    ones = np.asarray(inverted_dropout_mask(jax.random.key(8), (10, 5), 1.0, jnp.float32))
    np.testing.assert_array_equal(ones, np.ones((10, 5), np.float32))
