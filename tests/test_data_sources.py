"""Where data comes from, in order, and how it is split."""

from __future__ import annotations

import re

import numpy as np
import pytest
from data_fixtures import (  # noqa: F401
    http_server,
    offline_environment,
    small_arrays,
    write_idx_dataset,
)

from jaxmlp.data import DATASETS, Dataset, Split, load_dataset
from jaxmlp.data.sources import get_spec, mirrors_for, user_cache_dir
from jaxmlp.errors import ConfigError, DatasetError

ARRAYS = small_arrays(num_train=40, num_test=12)


@pytest.fixture
def idx_dir(tmp_path):
    return write_idx_dataset(tmp_path / "idx", ARRAYS)


def test_the_interface(idx_dir):
    dataset = load_dataset("mnist", data_dir=idx_dir, val_size=10)

    assert isinstance(dataset, Dataset) and isinstance(dataset.train, Split)
    assert DATASETS == ("mnist", "fashion-mnist")
    assert dataset.name == "mnist"
    assert (dataset.num_classes, dataset.image_shape) == (10, (28, 28))
    assert dataset.class_names == tuple("0123456789")
    assert dataset.source == f"{idx_dir.resolve()} (--data-dir)"
    for split in (dataset.train, dataset.validation, dataset.test):
        assert split.images.dtype == np.float32 and split.labels.dtype == np.int32
        assert split.images.shape == (len(split), 784) and split.labels.shape == (len(split),)
        assert split.images.min() >= 0.0 and split.images.max() <= 1.0


def test_the_seed_split_validates_on_the_last_training_examples(idx_dir):
    dataset = load_dataset("mnist", data_dir=idx_dir, val_size=10)
    train_images = ARRAYS["train_images"].reshape(40, 784)

    np.testing.assert_array_equal(dataset.train.images, train_images[:30] / np.float32(255))
    np.testing.assert_array_equal(dataset.validation.images, train_images[30:] / np.float32(255))
    np.testing.assert_array_equal(dataset.validation.labels, ARRAYS["train_labels"][30:])
    np.testing.assert_array_equal(dataset.test.labels, ARRAYS["test_labels"])


def test_val_size_zero_trains_on_everything(idx_dir):
    dataset = load_dataset("mnist", data_dir=idx_dir, val_size=0)
    assert (len(dataset.train), len(dataset.validation), len(dataset.test)) == (40, 0, 12)
    assert dataset.validation.images.shape == (0, 784)


def test_limit_caps_every_split_at_its_first_examples(idx_dir):
    dataset = load_dataset("mnist", data_dir=idx_dir, val_size=10, limit=5)
    assert (len(dataset.train), len(dataset.validation), len(dataset.test)) == (5, 5, 5)
    np.testing.assert_array_equal(dataset.validation.labels, ARRAYS["train_labels"][30:35])


@pytest.mark.parametrize("val_size", [-1, 60_000, 40, 1.5, True])
def test_val_size_out_of_range_is_a_config_error(idx_dir, val_size):
    with pytest.raises(ConfigError, match="val_size must be"):
        load_dataset("mnist", data_dir=idx_dir, val_size=val_size)


@pytest.mark.parametrize("limit", [0, -3, 2.5])
def test_bad_limit_is_a_config_error(idx_dir, limit):
    with pytest.raises(ConfigError, match="limit must be a positive integer"):
        load_dataset("mnist", data_dir=idx_dir, val_size=10, limit=limit)


def test_unknown_dataset_is_a_config_error():
    with pytest.raises(
        ConfigError, match="dataset must be one of mnist, fashion-mnist, got 'cifar'"
    ):
        load_dataset("cifar")


def test_fashion_mnist_has_its_class_names(idx_dir):
    dataset = load_dataset("fashion-mnist", data_dir=idx_dir, val_size=10)
    assert dataset.class_names[0] == "T-shirt/top" and dataset.class_names[-1] == "Ankle boot"
    assert len(dataset.class_names) == 10


@pytest.mark.parametrize(("compress", "dotted"), [(False, False), (True, True), (False, True)])
def test_raw_and_dotted_file_names_are_found(tmp_path, compress, dotted):
    directory = write_idx_dataset(tmp_path / "idx", ARRAYS, compress=compress, dotted=dotted)
    assert len(load_dataset("mnist", data_dir=directory, val_size=10).test) == 12


def test_a_data_dir_may_hold_the_dataset_in_a_subdirectory(tmp_path):
    write_idx_dataset(tmp_path / "datasets" / "fashion-mnist", ARRAYS)
    dataset = load_dataset("fashion-mnist", data_dir=tmp_path / "datasets", val_size=10)
    assert dataset.source == f"{(tmp_path / 'datasets' / 'fashion-mnist').resolve()} (--data-dir)"


def test_a_missing_data_dir_is_an_error_without_download(tmp_path, http_server, monkeypatch):
    monkeypatch.setenv("JAXMLP_MNIST_MIRRORS", http_server.mirror("mnist"))
    with pytest.raises(DatasetError, match=f"^--data-dir {tmp_path / 'absent'} does not exist$"):
        load_dataset("mnist", data_dir=tmp_path / "absent")
    assert http_server.hits == {}


def test_a_data_dir_lacking_files_names_them(idx_dir):
    (idx_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        DatasetError, match=r"lacks the mnist IDX files t10k-labels-idx1-ubyte\[\.gz\]$"
    ):
        load_dataset("mnist", data_dir=idx_dir, val_size=10)


def test_a_data_dir_that_is_another_file_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match=re.escape("is a file but not a .pkl.gz")):
        load_dataset("mnist", data_dir=tmp_path / "notes.txt")


def test_the_environment_variable_is_used_without_data_dir(idx_dir, monkeypatch):
    monkeypatch.setenv("JAXMLP_DATA_DIR", str(idx_dir))
    assert load_dataset("mnist", val_size=10).source == f"{idx_dir.resolve()} (JAXMLP_DATA_DIR)"


def test_data_dir_wins_over_the_environment_variable(tmp_path, idx_dir, monkeypatch):
    monkeypatch.setenv("JAXMLP_DATA_DIR", str(tmp_path / "absent"))
    assert load_dataset("mnist", data_dir=idx_dir, val_size=10).source.endswith("(--data-dir)")


def test_a_system_directory_is_used_when_the_cache_is_empty(offline_environment):
    system = write_idx_dataset(offline_environment / "system" / "fashion-mnist", ARRAYS)
    dataset = load_dataset("fashion-mnist", val_size=10, download=False)
    assert dataset.source == f"{system} (system)"


def test_offline_with_nothing_found_lists_every_way_to_provide_data():
    with pytest.raises(DatasetError) as error:
        load_dataset("mnist", download=False)
    message = str(error.value)
    assert "\n" not in message
    for way in (
        "--data-dir",
        "JAXMLP_DATA_DIR",
        str(user_cache_dir("mnist")),
        "jaxmlp download --dataset mnist",
    ):
        assert way in message


def test_a_failed_download_is_one_line_naming_the_mirrors():
    with pytest.raises(
        DatasetError,
        match=r"could not download train-images-idx3-ubyte\.gz: tried http://127\.0\.0\.1:\d+/ \(",
    ):
        load_dataset("mnist")


def test_user_cache_dir_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert user_cache_dir("mnist") == tmp_path / "jaxmlp" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir("mnist") == tmp_path / "home" / ".cache" / "jaxmlp" / "mnist"


def test_mirrors_default_to_the_official_order(monkeypatch):
    spec = get_spec("mnist")
    monkeypatch.delenv(spec.mirrors_env)
    assert mirrors_for(spec)[0] == "https://storage.googleapis.com/cvdf-datasets/mnist/"
    assert mirrors_for(spec)[-1] == "http://yann.lecun.com/exdb/mnist/"
    assert mirrors_for(spec, ["http://a/b"]) == ("http://a/b/",)
    assert get_spec("fashion-mnist").mirrors_env == "JAXMLP_FASHION_MNIST_MIRRORS"
