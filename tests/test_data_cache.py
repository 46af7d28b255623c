"""The decoded-dataset cache: the same arrays as decoding, read back memory-mapped, rebuilt
when a source file changes, and no failure when the cache cannot be written."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import small_arrays, write_idx_dataset

from jaxmlp.data import cache, load_dataset
from jaxmlp.data.load import decode_pair


@pytest.fixture
def idx_dir(tmp_path) -> Path:
    return write_idx_dataset(tmp_path / "idx", small_arrays(num_train=30, num_test=7))


def counting_decoder():
    calls = []

    def decode(images_path, labels_path):
        calls.append(Path(images_path).name)
        return decode_pair(images_path, labels_path)

    return decode, calls


def files_of(directory: Path) -> tuple[Path, Path]:
    return directory / "train-images-idx3-ubyte.gz", directory / "train-labels-idx1-ubyte.gz"


def test_the_second_read_comes_from_the_cache_with_the_same_arrays(idx_dir):
    decode, calls = counting_decoder()
    first = cache.read_pair(*files_of(idx_dir), decode)
    second = cache.read_pair(*files_of(idx_dir), decode)
    expected = decode_pair(*files_of(idx_dir))

    assert calls == ["train-images-idx3-ubyte.gz"]
    assert isinstance(second[0], np.memmap) and not second[0].flags.writeable
    for got in (first, second):
        assert got[0].dtype == np.float32 and got[1].dtype == np.int32
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])


def test_a_changed_source_file_is_decoded_again_and_the_old_entry_removed(idx_dir):
    decode, calls = counting_decoder()
    cache.read_pair(*files_of(idx_dir), decode)
    before = sorted(cache.cache_dir().iterdir())
    changed = small_arrays(num_train=30, num_test=7, seed=1)
    write_idx_dataset(idx_dir, changed)
    images, labels = files_of(idx_dir)
    os.utime(images, ns=(1, 1))  # a different modification time, whatever the clock says

    got = cache.read_pair(images, labels, decode)

    assert len(calls) == 2
    np.testing.assert_array_equal(got[1], changed["train_labels"])
    after = sorted(cache.cache_dir().iterdir())
    assert len(after) == 2 and not set(before) & set(after)


def test_an_unwritable_cache_still_reads_the_data(idx_dir, monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    decode, calls = counting_decoder()

    got = [cache.read_pair(*files_of(idx_dir), decode) for _ in range(2)]

    assert len(calls) == 2
    np.testing.assert_array_equal(got[1][1], small_arrays(num_train=30, num_test=7)["train_labels"])


def test_a_damaged_entry_is_decoded_again(idx_dir):
    decode, calls = counting_decoder()
    cache.read_pair(*files_of(idx_dir), decode)
    entry = next(cache.cache_dir().glob("*.images.npy"))
    entry.write_bytes(entry.read_bytes()[:100])

    got = cache.read_pair(*files_of(idx_dir), decode)

    assert len(calls) == 2
    np.testing.assert_array_equal(got[0], decode_pair(*files_of(idx_dir))[0])


def test_load_dataset_gives_the_same_splits_cached_and_not(idx_dir):
    first = load_dataset("mnist", data_dir=idx_dir, val_size=5, limit=20)
    second = load_dataset("mnist", data_dir=idx_dir, val_size=5, limit=20)
    assert any(cache.cache_dir().iterdir())
    for name, split in first.splits.items():
        again = second.splits[name]
        assert split.images.dtype == again.images.dtype == np.float32
        np.testing.assert_array_equal(split.images, again.images)
        np.testing.assert_array_equal(split.labels, again.labels)
