"""Reading IDX files, the format of MNIST and Fashion-MNIST, gzip-compressed or raw.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the data in C order and
big-endian. Every problem raises :class:`~jaxmlp.errors.DatasetError` with one line
that names the file.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import os
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from jaxmlp.errors import DatasetError

GZIP_MAGIC = b"\x1f\x8b"

IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
UBYTE = 0x08
MAX_DATA_BYTES = 256 << 20
"""The most data one IDX file may declare: 5× MNIST's training images, room for EMNIST's
digits (240,000 images); a header declaring more is refused before anything is read."""
CHUNK_BYTES = 1 << 20
"""How much is read (and, for gzip, decompressed) at a time."""


def read_idx(path: str | os.PathLike, max_bytes: int = MAX_DATA_BYTES) -> np.ndarray:
    """Reads an IDX file (gzip or raw, detected by its first bytes) into an array.

    The file is streamed: no more is read or decompressed than its header declares plus
    one byte, so a gzip bomb costs at most the declared size (``max_bytes`` at worst).

    Raises:
        DatasetError: The file is unreadable, a corrupt gzip stream, or not an IDX file
            whose length matches its header; the message names the file.
    """
    with open_decompressed(path) as (stream, compressed):
        try:
            return read_idx_stream(stream, path, max_bytes)
        except (OSError, EOFError, zlib.error) as error:
            if compressed:
                raise DatasetError(f"{path}: corrupt gzip stream: {error}") from None
            raise DatasetError(f"{path}: cannot read: {error.strerror or error}") from None


@contextlib.contextmanager
def open_decompressed(path: str | os.PathLike) -> Iterator[tuple[BinaryIO, bool]]:
    """The content of ``path`` as a stream, decompressed when it starts with the gzip
    magic, and whether it was compressed."""
    try:
        file = open(path, "rb")  # noqa: SIM115 - the with-block below closes it
    except OSError as error:
        raise DatasetError(f"{path}: cannot read: {error.strerror or error}") from None
    with file:
        compressed = file.peek(len(GZIP_MAGIC))[: len(GZIP_MAGIC)] == GZIP_MAGIC
        yield (gzip.GzipFile(fileobj=file, mode="rb") if compressed else file), compressed


def parse_idx(content: bytes, path: str | os.PathLike = "<bytes>") -> np.ndarray:
    """Parses the bytes of an IDX file into an array of its declared type and shape.

    Args:
        content: The uncompressed file content.
        path: The file name used in error messages.

    Returns:
        The data, in native byte order.
    """
    return read_idx_stream(io.BytesIO(content), path, max_bytes=len(content))


def read_idx_stream(stream: BinaryIO, path: str | os.PathLike, max_bytes: int) -> np.ndarray:
    """Reads one IDX file's header and exactly the data it declares from ``stream``."""
    shape, dtype, header_size = read_idx_header(stream, path)
    size = math.prod(shape) * dtype.itemsize
    if size > max_bytes:
        raise DatasetError(
            f"{path}: header declares shape {shape} ({size:,} bytes of data), "
            f"more than the {max_bytes:,} bytes an IDX file may hold here"
        )
    data = np.empty(size, np.uint8)
    received = read_into(stream, memoryview(data))
    if received < size:
        raise DatasetError(
            f"{path}: truncated: header declares shape {shape} ({header_size + size} bytes), "
            f"file has {header_size + received} bytes"
        )
    if stream.read(1):
        raise DatasetError(
            f"{path}: more data than its header declares (shape {shape}, "
            f"{header_size + size} bytes)"
        )
    array = data.view(dtype).reshape(shape)
    return array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def read_idx_header(
    stream: BinaryIO, path: str | os.PathLike
) -> tuple[tuple[int, ...], np.dtype, int]:
    """Reads the magic number and dimensions; returns the shape, the type and the
    header's length in bytes."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise DatasetError(f"{path}: not an IDX file: only {len(magic)} bytes, no header")
    if magic[0] != 0 or magic[1] != 0:
        raise DatasetError(
            f"{path}: not an IDX file: magic number starts with 0x{magic[:2].hex()}, "
            "expected 0x0000"
        )
    type_code, ndim = magic[2], magic[3]
    if type_code not in IDX_TYPES:
        raise DatasetError(f"{path}: unknown IDX type code 0x{type_code:02x}")
    if ndim == 0:
        raise DatasetError(f"{path}: IDX header declares zero dimensions")
    header_size = 4 + 4 * ndim
    dimensions = stream.read(4 * ndim)
    if len(dimensions) < 4 * ndim:
        raise DatasetError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header_size} bytes, "
            f"file has {4 + len(dimensions)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(dimensions, dtype=">u4"))
    return shape, IDX_TYPES[type_code], header_size


def read_into(stream: BinaryIO, buffer: memoryview) -> int:
    """Fills ``buffer`` from ``stream`` a chunk at a time; returns how much was read."""
    filled = 0
    while filled < len(buffer):
        count = stream.readinto(buffer[filled : filled + CHUNK_BYTES])
        if not count:
            break
        filled += count
    return filled


def read_idx_images(path: str | os.PathLike, image_shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Reads an IDX image file of unsigned bytes.

    Returns:
        A uint8 array of shape ``(N, rows * cols)``.
    """
    images = read_idx(path)
    _require_ubyte(images, path)
    if images.ndim != 3 or images.shape[1:] != tuple(image_shape):
        raise DatasetError(
            f"{path}: expected images of shape (N, {image_shape[0]}, {image_shape[1]}), "
            f"found {images.shape}"
        )
    return images.reshape(len(images), image_shape[0] * image_shape[1])


def read_idx_labels(path: str | os.PathLike, num_classes: int = 10) -> np.ndarray:
    """Reads an IDX label file of unsigned bytes, each below ``num_classes``.

    Returns:
        A uint8 array of shape ``(N,)``.
    """
    labels = read_idx(path)
    _require_ubyte(labels, path)
    if labels.ndim != 1:
        raise DatasetError(f"{path}: expected one dimension of labels, found shape {labels.shape}")
    if labels.size and int(labels.max()) >= num_classes:
        position = int(np.argmax(labels >= num_classes))
        raise DatasetError(
            f"{path}: label {int(labels[position])} at index {position} is out of range "
            f"0..{num_classes - 1}"
        )
    return labels


def read_idx_pair(
    images_path: str | os.PathLike,
    labels_path: str | os.PathLike,
    image_shape: tuple[int, int] = (28, 28),
    num_classes: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Reads matching image and label files and checks that their counts agree."""
    images = read_idx_images(images_path, image_shape)
    if len(images) == 0:
        raise DatasetError(f"{images_path}: header declares 0 images; a split needs at least one")
    labels = read_idx_labels(labels_path, num_classes)
    if len(images) != len(labels):
        raise DatasetError(
            f"{images_path}: {len(images)} images but {labels_path} has {len(labels)} labels"
        )
    return images, labels


def encode_idx(array: np.ndarray) -> bytes:
    """Returns the IDX encoding of ``array`` (one of the IDX types); the inverse of parse_idx."""
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
    native = np.dtype(array.dtype).newbyteorder("=")
    if native not in codes or array.ndim == 0:
        raise ValueError(f"cannot encode an array of dtype {array.dtype} and shape {array.shape}")
    header = bytes([0, 0, codes[native], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=IDX_TYPES[codes[native]]).tobytes()


def _require_ubyte(array: np.ndarray, path: str | os.PathLike) -> None:
    if array.dtype != IDX_TYPES[UBYTE]:
        raise DatasetError(f"{path}: expected unsigned bytes (type 0x08), found {array.dtype.name}")
