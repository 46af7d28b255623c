"""Reading IDX files, the format of MNIST and Fashion-MNIST, gzip-compressed or raw.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the data in C order and
big-endian. Every problem raises :class:`~jaxmlp.errors.DatasetError` with one line
that names the file.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

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


def read_file_bytes(path: str | os.PathLike) -> bytes:
    """Returns the content of ``path``, decompressed when it starts with the gzip magic."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise DatasetError(f"{path}: cannot read: {error.strerror or error}") from None
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: corrupt gzip stream: {error}") from None


def parse_idx(content: bytes, path: str | os.PathLike = "<bytes>") -> np.ndarray:
    """Parses the bytes of an IDX file into an array of its declared type and shape.

    Args:
        content: The uncompressed file content.
        path: The file name used in error messages.

    Returns:
        A read-only view of ``content`` in native byte order where possible.
    """
    if len(content) < 4:
        raise DatasetError(f"{path}: not an IDX file: only {len(content)} bytes, no header")
    if content[0] != 0 or content[1] != 0:
        raise DatasetError(
            f"{path}: not an IDX file: magic number starts with 0x{content[:2].hex()}, "
            "expected 0x0000"
        )
    type_code, ndim = content[2], content[3]
    if type_code not in IDX_TYPES:
        raise DatasetError(f"{path}: unknown IDX type code 0x{type_code:02x}")
    if ndim == 0:
        raise DatasetError(f"{path}: IDX header declares zero dimensions")
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DatasetError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header_size} bytes, "
            f"file has {len(content)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[type_code]
    expected = header_size + int(np.prod(shape, dtype=object)) * dtype.itemsize
    if len(content) < expected:
        raise DatasetError(
            f"{path}: truncated: header declares shape {shape} ({expected} bytes), "
            f"file has {len(content)} bytes"
        )
    if len(content) > expected:
        raise DatasetError(
            f"{path}: {len(content) - expected} unexpected bytes after the data of shape {shape}"
        )
    data = np.frombuffer(content, dtype=dtype, offset=header_size).reshape(shape)
    return data if dtype.itemsize == 1 else data.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file (gzip or raw, detected by its first bytes) into an array."""
    return parse_idx(read_file_bytes(path), path)


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
    return images.reshape(images.shape[0], -1)


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
