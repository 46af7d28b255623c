"""Augmentations for clothes: horizontal flips and random erasing, on and off."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import blobs_dataset, max_difference

from jaxmlp import augment, train
from jaxmlp.data import load_dataset
from jaxmlp.errors import ConfigError
from jaxmlp.settings import Settings, resolve_settings

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def small_config(**changes):
    settings = {"sizes": (16, 12, 3), "init": "he", "epochs": 2, "batch_size": 16, "lr": 0.1}
    return Settings(**{**settings, **changes})


def test_a_flip_mirrors_the_image_left_to_right_or_leaves_it():
    height, width = 3, 5
    x = jnp.arange(400 * height * width, dtype=jnp.float32).reshape(400, height * width)
    images = np.asarray(x).reshape(400, height, width)
    flipped = np.asarray(augment.flip_images(jax.random.key(0), x, (height, width)))
    flipped = flipped.reshape(400, height, width)
    mirrored = np.all(flipped == images[:, :, ::-1], axis=(1, 2))
    kept = np.all(flipped == images, axis=(1, 2))
    assert np.all(mirrored ^ kept), "every image is either mirrored or left as it is"
    assert 0.4 < mirrored.mean() < 0.6


def erased_images(probability, n=2000, key=0):
    x = jnp.ones((n, 28 * 28))
    return np.asarray(augment.erase_images(jax.random.key(key), x, (28, 28), probability))


def test_erasing_zeroes_one_rectangle_of_2_to_40_percent_of_the_image():
    zeros = erased_images(1.0).reshape(-1, 28, 28) == 0
    area = zeros.sum(axis=(1, 2))
    rows, cols = zeros.any(axis=2), zeros.any(axis=1)
    height, width = rows.sum(axis=1), cols.sum(axis=1)
    assert np.array_equal(area, height * width), "the zeros form one rectangle"
    fraction = area / 784
    assert fraction.min() >= 0.015 and fraction.max() <= 0.43
    assert fraction.min() < 0.04 and fraction.max() > 0.35, "the whole range is drawn"
    assert 0.18 < fraction.mean() < 0.24, "uniform in area: mean about 21 %"
    aspect = height / width
    assert aspect.min() >= 0.2 and aspect.max() <= 5
    assert aspect.min() < 0.5 and aspect.max() > 2


def test_erasing_happens_with_its_probability_and_not_at_all_at_zero():
    erased = (erased_images(0.3) == 0).any(axis=1)
    assert 0.26 < erased.mean() < 0.34
    np.testing.assert_array_equal(erased_images(0.0), 1.0)


def test_flips_and_erasing_leave_both_gradient_paths_equal():
    config = small_config(augment_flip=True, augment_erase=0.5, dropout=0.1)
    manual = train.fit(train.prepare(config, blobs_dataset()))
    autodiff = train.fit(train.prepare(config.replace(grad="autodiff"), blobs_dataset()))
    assert max_difference(manual.params, autodiff.params) <= 1e-5
    plain = train.fit(train.prepare(small_config(dropout=0.1), blobs_dataset()))
    assert max_difference(manual.params, plain.params) > 1e-3, "the augmentations change the data"


def test_a_member_that_does_not_erase_is_its_solo_run_without_erasing():
    erasing, not_erasing = small_config(augment_erase=0.5), small_config(augment_erase=0.0)
    population = train.fit(train.prepare([erasing, not_erasing], blobs_dataset()))
    solo = train.fit(train.prepare(not_erasing, blobs_dataset()))
    for a, b in zip(jax.tree.leaves(population.member(1).params), jax.tree.leaves(solo.params)):
        np.testing.assert_array_equal(a, b)
    assert max_difference(population.member(0).params, solo.params) > 1e-3


def test_augmentations_need_images():
    dataset = dataclasses.replace(blobs_dataset(), image_shape=None)
    for changes in ({"augment_flip": True}, {"augment_erase": 0.5}):
        with pytest.raises(ConfigError, match=next(iter(changes))):
            train.prepare(small_config(**changes), dataset)


@pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(), reason=f"no Fashion-MNIST in {FASHION_MNIST_DIR}"
)
def test_fashion_mnists_best_recipe_trains_on_its_images():
    settings = resolve_settings("best", explicit={"dataset": "fashion-mnist", "epochs": 1})
    dataset = load_dataset(
        "fashion-mnist", data_dir=FASHION_MNIST_DIR, val_size=settings.val_size, limit=1024
    )
    assert settings.augment_flip and settings.augment_shift == 0
    result = train.fit(train.prepare(settings, dataset))
    assert result.history[0]["train_accuracy"] > 0.3
