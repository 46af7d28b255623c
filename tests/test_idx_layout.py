"""IDX images are rows × columns in C order: a non-square file shows a swap of the two."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from jaxmlp.data.idx import encode_idx, read_idx, read_idx_images, read_idx_pair
from jaxmlp.errors import DatasetError

ROWS, COLS = 3, 5


def non_square_images(count: int = 4) -> np.ndarray:
    return np.arange(count * ROWS * COLS, dtype=np.uint8).reshape(count, ROWS, COLS)


def test_the_header_is_big_endian_dimensions_in_order():
    content = encode_idx(non_square_images())
    assert content[:4] == bytes([0, 0, 0x08, 3])
    assert [int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(3)] == [4, 3, 5]
    assert content[16:] == non_square_images().tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_non_square_images_read_as_rows_of_columns(tmp_path, compress):
    images = non_square_images()
    content = encode_idx(images)
    path = tmp_path / "images.idx"
    path.write_bytes(gzip.compress(content) if compress else content)

    np.testing.assert_array_equal(read_idx(path), images)
    flat = read_idx_images(path, (ROWS, COLS))
    assert flat.shape == (4, ROWS * COLS)
    np.testing.assert_array_equal(flat[1, :COLS], images[1, 0])  # first row, all its columns
    np.testing.assert_array_equal(flat.reshape(4, ROWS, COLS)[:, :, 0], images[:, :, 0])


def test_reading_with_rows_and_columns_swapped_is_refused(tmp_path):
    path = tmp_path / "images.idx"
    path.write_bytes(encode_idx(non_square_images()))
    with pytest.raises(DatasetError, match=r"expected images of shape \(N, 5, 3\)"):
        read_idx_images(path, (COLS, ROWS))


def test_a_pair_keeps_each_label_with_its_image(tmp_path):
    images = non_square_images(6)
    labels = np.array([5, 0, 4, 1, 9, 2], np.uint8)
    (tmp_path / "i.idx").write_bytes(encode_idx(images))
    (tmp_path / "l.idx").write_bytes(encode_idx(labels))
    got_images, got_labels = read_idx_pair(tmp_path / "i.idx", tmp_path / "l.idx", (ROWS, COLS))
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_array_equal(got_images, images.reshape(6, -1))
