"""Reading data files costs bounded memory: gzip bombs, oversized headers and pickles that
build huge objects are refused at about the cost of the real data; empty data is an error."""

from __future__ import annotations

import gzip
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from data_fixtures import (  # noqa: F401
    REAL_MNIST_DIR,
    needs_real_mnist,
    offline_environment,
    small_arrays,
    write_idx_dataset,
)

from jaxmlp.data import load_seed_pickle, read_idx, read_idx_pair
from jaxmlp.data.idx import encode_idx
from jaxmlp.errors import DatasetError

MEMBER_BYTES = 16 << 20
BOMB_BYTES = 2 << 30
MNIST_TRAIN_HEADER = encode_idx(np.zeros((60_000, 28, 28), np.uint8))[:16]


def write_gzip_bomb(path, prefix: bytes, total: int = BOMB_BYTES):
    """``prefix`` then zeros, ``total`` bytes in all, as gzip members of 16 MiB each
    compressed once: 2 GiB of zeros make a 2 MB file in well under a second."""
    zeros = bytes(MEMBER_BYTES)
    first = gzip.compress(prefix + zeros[len(prefix) :], compresslevel=9, mtime=0)
    member = gzip.compress(zeros, compresslevel=9, mtime=0)
    with open(path, "wb") as file:
        file.write(first)
        for _ in range(total // MEMBER_BYTES - 1):
            file.write(member)
    return path


def test_an_idx_gzip_bomb_is_refused_after_its_declared_size(tmp_path):
    bomb = write_gzip_bomb(tmp_path / "train-images-idx3-ubyte.gz", MNIST_TRAIN_HEADER)
    assert bomb.stat().st_size < 5 << 20

    with pytest.raises(
        DatasetError, match=r"more data than its header declares \(shape \(60000, 28, 28\)"
    ):
        read_idx(bomb)


def test_a_header_declaring_more_than_an_idx_file_may_hold(tmp_path):
    header = encode_idx(np.zeros((1, 28, 28), np.uint8))[:16]
    header = header[:4] + (1_000_000).to_bytes(4, "big") + header[8:]
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(header))

    with pytest.raises(DatasetError, match=r"\(784,000,000 bytes of data\), more than the"):
        read_idx(path)


def test_idx_files_declaring_zero_images(tmp_path):
    images = tmp_path / "images"
    labels = tmp_path / "labels"
    images.write_bytes(encode_idx(np.zeros((0, 28, 28), np.uint8)))
    labels.write_bytes(encode_idx(np.zeros(0, np.uint8)))

    with pytest.raises(DatasetError, match=rf"^{images}: header declares 0 images"):
        read_idx_pair(images, labels)


def seed_pickle(path, content: bytes):
    path.write_bytes(gzip.compress(content))
    return path


def test_a_seed_pickle_gzip_bomb_of_zeros(tmp_path):
    bomb = write_gzip_bomb(tmp_path / "mnist.pkl.gz", b"")
    with pytest.raises(DatasetError, match="unsafe or corrupt pickle"):
        load_seed_pickle(bomb)


def test_a_seed_pickle_declaring_a_huge_string_reads_nothing_of_it(tmp_path):
    bomb = write_gzip_bomb(tmp_path / "mnist.pkl.gz", b"\x80\x02T\xff\xff\xff\x7f")
    with pytest.raises(DatasetError, match=r"larger than 441,.* bytes decompressed"):
        load_seed_pickle(bomb)


def test_a_seed_pickle_building_a_huge_list_from_few_bytes(tmp_path):
    path = seed_pickle(tmp_path / "mnist.pkl.gz", b"\x80\x02](" + b"N" * 20_000 + b"e.")
    with pytest.raises(DatasetError, match="more than 10,000 pickle operations"):
        load_seed_pickle(path)


def test_a_seed_pickle_with_empty_arrays(tmp_path):
    empty = (np.zeros((0, 784), np.float32), np.zeros(0, np.int64))
    path = seed_pickle(tmp_path / "mnist.pkl.gz", pickle.dumps((empty,) * 3, protocol=2))
    with pytest.raises(DatasetError, match=r"\(train split\): holds no images"):
        load_seed_pickle(path)


PEAK_MEMORY = textwrap.dedent(
    """
    import resource, sys
    from jaxmlp.data import load_dataset
    from jaxmlp.errors import DatasetError
    try:
        load_dataset("mnist", data_dir=sys.argv[1])
        outcome = "loaded"
    except DatasetError as error:
        outcome = str(error)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, outcome)
    """
)


def peak_mib_of_loading(data_dir) -> tuple[int, str]:
    """Loads MNIST from ``data_dir`` in a fresh interpreter: its peak RSS and the outcome."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY, str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    peak, outcome = done.stdout.strip().split(" ", 1)
    return int(peak), outcome


@pytest.mark.slow
@needs_real_mnist
def test_a_refused_gzip_bomb_costs_no_more_memory_than_the_real_data(tmp_path):
    bomb_dir = write_idx_dataset(tmp_path / "bomb", small_arrays())
    (bomb_dir / "train-images-idx3-ubyte.gz").unlink()
    write_gzip_bomb(bomb_dir / "train-images-idx3-ubyte.gz", MNIST_TRAIN_HEADER)

    real_peak, real_outcome = peak_mib_of_loading(REAL_MNIST_DIR)
    bomb_peak, bomb_outcome = peak_mib_of_loading(bomb_dir)

    assert real_outcome == "loaded"
    assert "more data than its header declares" in bomb_outcome
    assert bomb_peak <= real_peak, (bomb_peak, real_peak)
