"""The seed's ``mnist.pkl.gz``: it loads like the IDX files and cannot run code."""

from __future__ import annotations

import builtins
import gzip
import os
import pickle
import pickletools
import re

import numpy as np
import pytest
from data_fixtures import (  # noqa: F401
    offline_environment,
    python2_seed_pickle,
    small_arrays,
    write_idx_dataset,
    write_seed_pickle,
)

from jaxmlp.data import load_dataset, load_seed_pickle
from jaxmlp.data.seed_pickle import ALLOWED_GLOBALS, restricted_loads
from jaxmlp.errors import DatasetError


def seed_splits(num: int = 4):
    rng = np.random.default_rng(1)
    return tuple(
        (
            rng.integers(0, 256, (num, 784)).astype(np.float32) / 256,
            rng.integers(0, 10, num).astype(np.int64),
        )
        for _ in range(3)
    )


def pickled_globals(content: bytes) -> set[str]:
    return {arg for op, arg, _ in pickletools.genops(content) if op.name == "GLOBAL"}


def test_python3_protocol2_pickles_of_arrays_use_only_allowed_globals():
    content = pickle.dumps(seed_splits(), protocol=2)
    allowed = {f"{module} {name}" for module, name in ALLOWED_GLOBALS}
    assert pickled_globals(content) <= allowed


def test_a_pickle_written_like_python2_numpy_loads(tmp_path):
    splits = seed_splits()
    content = python2_seed_pickle(splits)
    assert "numpy.core.multiarray _reconstruct" in pickled_globals(content)
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(content))

    loaded = load_seed_pickle(path)

    for (images, labels), (expected_images, expected_labels) in zip(loaded, splits, strict=True):
        assert images.dtype == np.float32 and labels.dtype == np.int32
        np.testing.assert_array_equal(images, expected_images)
        np.testing.assert_array_equal(labels, expected_labels)


def test_seed_pickle_matches_the_idx_files_up_to_the_scaling(tmp_path):
    arrays = small_arrays(num_train=40, num_test=12)
    idx_dir = write_idx_dataset(tmp_path / "idx", arrays)
    pkl = write_seed_pickle(tmp_path / "mnist.pkl.gz", arrays, val_size=10)

    from_idx = load_dataset("mnist", data_dir=idx_dir, val_size=10)
    from_pkl = load_dataset("mnist", data_dir=pkl, val_size=10)

    assert from_pkl.source == f"{pkl.resolve()} (--data-dir, seed pickle)"
    for name in ("train", "validation", "test"):
        idx_split, pkl_split = getattr(from_idx, name), getattr(from_pkl, name)
        assert len(idx_split) == len(pkl_split) > 0
        np.testing.assert_array_equal(pkl_split.labels, idx_split.labels)
        np.testing.assert_array_equal(
            np.rint(pkl_split.images * 256), np.rint(idx_split.images * 255)
        )
        assert pkl_split.images.max() < 1.0


def test_seed_pickle_can_be_split_differently(tmp_path):
    arrays = small_arrays(num_train=40, num_test=12)
    pkl = write_seed_pickle(tmp_path / "mnist.pkl.gz", arrays, val_size=10)

    dataset = load_dataset("mnist", data_dir=pkl, val_size=0)

    assert (len(dataset.train), len(dataset.validation), len(dataset.test)) == (40, 0, 12)


class CreatesFile:
    def __init__(self, call, path):
        self.call, self.path = call, path

    def __reduce__(self):
        if self.call is os.system:
            return os.system, (f"touch {self.path}",)
        return builtins.open, (str(self.path), "w")


@pytest.mark.parametrize("call", [os.system, builtins.open], ids=["os.system", "builtins.open"])
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_a_malicious_pickle_is_refused_and_runs_nothing(tmp_path, call, protocol):
    marker = tmp_path / "pwned"
    payload = ((np.zeros((1, 784), np.float32), CreatesFile(call, marker)), None, None)
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(payload, protocol=protocol)))

    with pytest.raises(
        DatasetError,
        match=r"unsafe or corrupt pickle: refusing to load global "
        r"'(posix|os|nt|io|builtins|__builtin__)\.(system|open)'",
    ):
        load_seed_pickle(path)

    assert not marker.exists()


def test_codecs_encode_is_allowed_only_for_latin1():
    refused = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x06\x00\x00\x00base64\x86R."
    with pytest.raises(
        pickle.UnpicklingError, match=re.escape("refusing _codecs.encode with encoding 'base64'")
    ):
        restricted_loads(refused)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"train": 1}, "expected a tuple"),
        ((1, 2, 3), r"\(train split\): expected a pair"),
        (
            ((np.zeros((2, 3)), np.zeros(2)),) * 3,
            r"expected images as an array of shape \(N, 784\)",
        ),
        (((np.full((2, 784), 2.0), np.zeros(2, int)),) * 3, r"expected float pixels in \[0, 1\]"),
        (((np.zeros((2, 784)), np.zeros(3, int)),) * 3, "expected 2 labels"),
        (((np.zeros((2, 784)), np.array([0, 10])),) * 3, r"expected integer labels in 0\.\.9"),
        (((np.zeros((2, 784)), np.zeros(2)),) * 3, r"expected integer labels"),
    ],
    ids=["dict", "not-pairs", "shape", "range", "count", "label-range", "label-dtype"],
)
def test_pickles_not_in_the_seed_layout_are_rejected(tmp_path, content, message):
    path = tmp_path / "mnist.pkl"
    path.write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(DatasetError, match=message):
        load_seed_pickle(path)


@pytest.mark.parametrize("damage", ["truncated-gzip", "truncated-pickle", "garbage"])
def test_corrupt_files_raise_dataset_error(tmp_path, damage):
    content = pickle.dumps(seed_splits(), protocol=2)
    data = {
        "truncated-gzip": gzip.compress(content)[:200],
        "truncated-pickle": gzip.compress(content[: len(content) // 2]),
        "garbage": b"not a pickle at all",
    }[damage]
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(data)
    with pytest.raises(DatasetError, match=str(path)):
        load_seed_pickle(path)
