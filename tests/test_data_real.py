"""The real MNIST files in ``../shared/datasets/mnist``, skipped where they are absent."""

from __future__ import annotations

import gzip
import pickle
import shutil
import time

import numpy as np
import pytest
from data_fixtures import (  # noqa: F401
    OFFICIAL_FILES,
    REAL_MNIST_DIR,
    http_server,
    needs_real_mnist,
    offline_environment,
)

from jaxmlp.data import SPECS, load_dataset, read_idx_pair, user_cache_dir
from jaxmlp.data.download import sha256_of_file

pytestmark = [pytest.mark.slow, needs_real_mnist]

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def official():
    """The official training and test sets as uint8, and how long parsing them took."""
    start = time.perf_counter()
    train = read_idx_pair(REAL_MNIST_DIR / OFFICIAL_FILES[0], REAL_MNIST_DIR / OFFICIAL_FILES[1])
    test = read_idx_pair(REAL_MNIST_DIR / OFFICIAL_FILES[2], REAL_MNIST_DIR / OFFICIAL_FILES[3])
    return train, test, time.perf_counter() - start


@pytest.mark.parametrize("name", OFFICIAL_FILES)
def test_the_files_match_the_checksums(name):
    assert sha256_of_file(REAL_MNIST_DIR / name) == SPECS["mnist"].sha256[name]


def test_counts_and_label_counts(official):
    (train_images, train_labels), (test_images, test_labels), _ = official
    assert train_images.shape == (60_000, 784) and test_images.shape == (10_000, 784)
    assert np.bincount(train_labels).tolist() == TRAIN_COUNTS
    assert np.bincount(test_labels).tolist() == TEST_COUNTS


def test_parsing_all_70000_images_is_fast(official):
    *_, seconds = official
    print(f"parsed the 70,000 MNIST images and labels in {seconds:.3f} s")
    assert seconds < 3.0


def test_load_dataset_gives_the_seed_split(official):
    (_train_images, train_labels), _, _ = official
    dataset = load_dataset("mnist", data_dir=REAL_MNIST_DIR)

    assert (len(dataset.train), len(dataset.validation), len(dataset.test)) == (
        50_000,
        10_000,
        10_000,
    )
    np.testing.assert_array_equal(dataset.validation.labels, train_labels[50_000:])
    assert dataset.train.images.max() == 1.0 and dataset.train.images.min() == 0.0
    train_counts = np.bincount(dataset.train.labels) + np.bincount(dataset.validation.labels)
    assert train_counts.tolist() == TRAIN_COUNTS


def test_a_seed_pickle_of_the_real_data_matches_the_idx_path(tmp_path, official):
    (train_images, train_labels), (test_images, test_labels), _ = official

    def pair(images, labels):
        return images.astype(np.float32) / 256, labels.astype(np.int64)

    path = tmp_path / "mnist.pkl.gz"
    seed = (
        pair(train_images[:50_000], train_labels[:50_000]),
        pair(train_images[50_000:], train_labels[50_000:]),
        pair(test_images, test_labels),
    )
    with gzip.open(path, "wb", compresslevel=0) as file:
        pickle.dump(seed, file, protocol=2)

    from_pkl = load_dataset("mnist", data_dir=path)
    from_idx = load_dataset("mnist", data_dir=REAL_MNIST_DIR)

    for name in ("train", "validation", "test"):
        pkl_split, idx_split = getattr(from_pkl, name), getattr(from_idx, name)
        np.testing.assert_array_equal(pkl_split.labels, idx_split.labels)
        np.testing.assert_array_equal(
            np.rint(pkl_split.images * 256), np.rint(idx_split.images * 255)
        )


def test_a_verified_user_cache_is_used(offline_environment):
    cache = user_cache_dir("mnist")
    shutil.copytree(REAL_MNIST_DIR, cache)

    dataset = load_dataset("mnist", limit=10, download=False)

    assert dataset.source == f"{cache} (user cache)"


def test_load_dataset_downloads_into_an_empty_cache(http_server, monkeypatch):
    for name in OFFICIAL_FILES:
        http_server.routes[f"/mnist/{name}"] = (REAL_MNIST_DIR / name).read_bytes()
    monkeypatch.setenv("JAXMLP_MNIST_MIRRORS", http_server.mirror("mnist"))

    downloaded = load_dataset("mnist", limit=100)
    cached = load_dataset("mnist", limit=100)

    assert downloaded.source == f"{user_cache_dir('mnist')} (user cache, downloaded)"
    assert cached.source == f"{user_cache_dir('mnist')} (user cache)"
    assert all(count == 1 for count in http_server.hits.values())
    np.testing.assert_array_equal(cached.test.images, downloaded.test.images)
