"""The IDX reader: round trips, every kind of corruption, and fuzzing."""

from __future__ import annotations

import contextlib
import gzip
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import offline_environment, small_arrays  # noqa: F401
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxmlp.data.idx import (
    encode_idx,
    parse_idx,
    read_idx,
    read_idx_images,
    read_idx_labels,
    read_idx_pair,
)
from jaxmlp.errors import DatasetError


def write(path: Path, content: bytes, compress: bool = False) -> Path:
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


@pytest.fixture
def arrays():
    return small_arrays(num_train=7, num_test=3)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_images_and_labels_round_trip(tmp_path, arrays, compress):
    images = write(tmp_path / "images", encode_idx(arrays["train_images"]), compress)
    labels = write(tmp_path / "labels", encode_idx(arrays["train_labels"]), compress)

    read_images, read_labels = read_idx_pair(images, labels)

    assert read_images.dtype == np.uint8 and read_images.shape == (7, 784)
    np.testing.assert_array_equal(read_images, arrays["train_images"].reshape(7, 784))
    np.testing.assert_array_equal(read_labels, arrays["train_labels"])


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8", "<f8"])
def test_every_idx_type_round_trips(dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype if dtype != "u1" else np.uint8)

    parsed = parse_idx(encode_idx(array))

    np.testing.assert_array_equal(parsed, array)
    assert parsed.dtype.isnative or parsed.dtype.itemsize == 1


def test_an_empty_label_file_is_valid(tmp_path):
    labels = read_idx_labels(write(tmp_path / "labels", encode_idx(np.zeros(0, np.uint8))))
    assert labels.shape == (0,)


VALID_LABELS = encode_idx(np.array([1, 2, 3], np.uint8))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "only 0 bytes, no header"),
        (b"\x00\x00", "only 2 bytes"),
        (b"\x12\x34\x08\x01" + VALID_LABELS[4:], "magic number starts with 0x1234"),
        (b"\x00\x00\x07\x01" + VALID_LABELS[4:], "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x00", "zero dimensions"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x01", "truncated IDX header"),
        (VALID_LABELS[:-1], "truncated: header declares shape (3,)"),
        (VALID_LABELS + b"\x00\x00", "more data than its header declares (shape (3,), 11 bytes)"),
        (
            b"\x00\x00\x08\x02\xff\xff\xff\xff\xff\xff\xff\xff",
            "header declares shape (4294967295, 4294967295) (18,446,744,065,119,617,025 bytes",
        ),
    ],
    ids=[
        "empty",
        "short",
        "magic",
        "type",
        "zero-dims",
        "header",
        "truncated",
        "over-long",
        "huge",
    ],
)
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_malformed_files_name_the_file_and_the_problem(tmp_path, content, message, compress):
    path = write(tmp_path / "bad-file", content, compress)

    with pytest.raises(DatasetError, match=re.escape(message)) as error:
        read_idx(path)

    assert str(error.value).startswith(f"{path}: ")
    assert "\n" not in str(error.value)


def test_images_must_be_unsigned_bytes(tmp_path):
    path = write(tmp_path / "images", encode_idx(np.zeros((2, 28, 28), ">i4")))
    with pytest.raises(DatasetError, match=r"expected unsigned bytes \(type 0x08\), found int32"):
        read_idx_images(path)


@pytest.mark.parametrize("shape", [(2, 28), (2, 28, 27), (2, 1, 28, 28)])
def test_images_must_have_the_image_shape(tmp_path, shape):
    path = write(tmp_path / "images", encode_idx(np.zeros(shape, np.uint8)))
    with pytest.raises(DatasetError, match=r"expected images of shape \(N, 28, 28\)"):
        read_idx_images(path)


def test_labels_must_be_one_dimensional(tmp_path):
    path = write(tmp_path / "labels", encode_idx(np.zeros((2, 2), np.uint8)))
    with pytest.raises(
        DatasetError, match=r"expected one dimension of labels, found shape \(2, 2\)"
    ):
        read_idx_labels(path)


def test_labels_out_of_range_are_reported_with_their_index(tmp_path):
    path = write(tmp_path / "labels", encode_idx(np.array([0, 9, 10, 3], np.uint8)))
    with pytest.raises(DatasetError, match=r"label 10 at index 2 is out of range 0\.\.9"):
        read_idx_labels(path)


def test_image_and_label_counts_must_agree(tmp_path, arrays):
    images = write(tmp_path / "images", encode_idx(arrays["train_images"]))
    labels = write(tmp_path / "labels", encode_idx(arrays["test_labels"]))
    with pytest.raises(
        DatasetError, match=re.escape(f"{images}: 7 images but {labels} has 3 labels")
    ):
        read_idx_pair(images, labels)


def test_truncated_gzip_stream(tmp_path):
    compressed = gzip.compress(VALID_LABELS * 50)
    path = write(tmp_path / "labels.gz", compressed[: len(compressed) // 2])
    with pytest.raises(DatasetError, match="corrupt gzip stream"):
        read_idx(path)


def test_gzip_stream_with_a_bad_checksum(tmp_path):
    compressed = bytearray(gzip.compress(VALID_LABELS))
    compressed[-8] ^= 0xFF  # the CRC-32 in the trailer
    path = write(tmp_path / "labels.gz", bytes(compressed))
    with pytest.raises(DatasetError, match="corrupt gzip stream: CRC check failed"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="cannot read: No such file or directory"):
        read_idx(tmp_path / "absent")


def read_bytes_as_file(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        read_idx(write(Path(directory) / "fuzzed", content))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=64) | st.binary(max_size=64).map(lambda b: b"\x1f\x8b" + b))
def test_random_bytes_raise_only_dataset_error(content):
    with contextlib.suppress(DatasetError):
        read_bytes_as_file(content)


VALID_PAIR = {
    "images": encode_idx(
        np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(2, 28, 28)
    ),
    "labels": encode_idx(np.array([3, 7], np.uint8)),
}


@settings(max_examples=150, deadline=None)
@given(
    which=st.sampled_from(sorted(VALID_PAIR)),
    compress=st.booleans(),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_mutated_valid_files_raise_only_dataset_error(which, compress, edits, cut):
    content = bytearray(gzip.compress(VALID_PAIR[which]) if compress else VALID_PAIR[which])
    for position, value in edits:
        content[position % len(content)] = value
    content = content[:cut] if cut is not None else content
    with tempfile.TemporaryDirectory() as directory:
        paths = {name: Path(directory) / name for name in VALID_PAIR}
        for name, path in paths.items():
            path.write_bytes(bytes(content) if name == which else VALID_PAIR[name])
        with contextlib.suppress(DatasetError):
            read_idx_pair(paths["images"], paths["labels"])
