"""Loading the seed's ``mnist.pkl.gz`` without trusting it.

The file is a gzip-compressed pickle (protocol 2, written by Python 2) of
``(train, validation, test)``, each ``(images float32 (N, 784), labels int64 (N,))``.
A pickle can call any importable function, so :class:`RestrictedUnpickler` resolves
only the few globals that numpy arrays and tuples need and refuses everything else
before anything runs.

Its pixels are the original bytes divided by 256, in [0, 1); the IDX path divides by
255, in [0, 1]. The two agree exactly up to that scaling.

The file is unpickled as it is decompressed, through a reader that refuses to read past
:data:`MAX_PICKLE_BYTES`, what 70,000 images and their labels can take: a gzip bomb costs
no more memory than the real file.
"""

from __future__ import annotations

import _codecs
import io
import os
import pickle
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from jaxmlp.data.idx import open_decompressed
from jaxmlp.errors import DatasetError

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

PIXELS = 28 * 28
MAX_EXAMPLES = 70_000
"""MNIST's 60,000 training and 10,000 test images."""
MAX_PICKLE_BYTES = 2 * MAX_EXAMPLES * (PIXELS * np.dtype(np.float32).itemsize + 8) + (1 << 20)
"""The most a seed pickle may hold decompressed: 70,000 float32 images and int64 labels,
twice (Python 3 writes protocol 2's bytes as latin-1 text in UTF-8, up to two bytes a
byte), plus 1 MiB for the pickle's structure: 441 MB. The seed's own file is 220 MB."""
MAX_READS = 10_000
"""The most reads the unpickler may make, about one per opcode: the seed's file needs
about 400. It bounds what opcodes alone can build (a list of a billion ``None``)."""


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 protocol-2 pickles use it for bytes, latin-1 only."""
    if encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return _codecs.encode(text, "latin1", errors)


def _empty_bytes() -> bytes:
    """``bytes()`` as Python 3 pickles ``b""`` (an empty array's data); no other call."""
    return b""


ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only tuples, lists, numbers, strings and numpy arrays."""

    def find_class(self, module: str, name: str) -> Any:
        """Returns an allowed global or raises ``UnpicklingError`` for any other."""
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global '{module}.{name}'") from None


class BoundedReader:
    """A binary stream's ``read`` and ``readline`` that raise :class:`DatasetError` instead
    of reading more than ``limit`` bytes, or more than :data:`MAX_READS` times, in all. A
    request for more than is left is refused before anything is read, so a pickle
    declaring a huge string costs nothing."""

    def __init__(self, stream: BinaryIO, limit: int, path: str | os.PathLike) -> None:
        self._stream = stream
        self._remaining = limit
        self._limit = limit
        self._reads_left = MAX_READS
        self._path = path

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative)."""
        self._count_read()
        if size is not None and size > self._remaining:
            self._refuse()
        return self._counted(self._stream.read(self._allowance(size)))

    def readline(self, size: int = -1) -> bytes:
        """One line, of at most ``size`` bytes when ``size`` is not negative."""
        self._count_read()
        return self._counted(self._stream.readline(self._allowance(size)))

    def _count_read(self) -> None:
        self._reads_left -= 1
        if self._reads_left < 0:
            raise DatasetError(
                f"{self._path}: more than {MAX_READS:,} pickle operations, far more than "
                "the seed's layout of six arrays needs"
            )

    def _allowance(self, size: int | None) -> int:
        """What may be asked of the stream: one byte past the limit reveals an excess."""
        wanted = self._remaining + 1 if size is None or size < 0 else size
        return min(wanted, self._remaining + 1)

    def _counted(self, data: bytes) -> bytes:
        self._remaining -= len(data)
        if self._remaining < 0:
            self._refuse()
        return data

    def _refuse(self) -> None:
        raise DatasetError(
            f"{self._path}: larger than {self._limit:,} bytes decompressed, more than "
            f"{MAX_EXAMPLES:,} images in the seed's layout can take"
        )


def restricted_loads(content: bytes) -> Any:
    """Unpickles ``content`` with :class:`RestrictedUnpickler`, Python 2 strings as bytes."""
    return restricted_load(io.BytesIO(content))


def restricted_load(stream: BinaryIO | BoundedReader) -> Any:
    """Unpickles one object from ``stream`` with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(stream, encoding="bytes").load()


def load_seed_pickle(
    path: str | os.PathLike,
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Loads and validates the seed's ``mnist.pkl.gz`` (gzip or raw pickle).

    Returns:
        ``((train_x, train_y), (val_x, val_y), (test_x, test_y))`` with images float32
        ``(N, 784)`` in [0, 1] and labels int32 ``(N,)`` in 0..9.

    Raises:
        DatasetError: The file is unreadable, refused, or not in the seed's layout.
    """
    with open_decompressed(path) as (stream, compressed):
        try:
            splits = restricted_load(BoundedReader(stream, MAX_PICKLE_BYTES, path))
        except DatasetError:
            raise
        except (OSError, zlib.error) as error:
            raise DatasetError(f"{path}: cannot read: {error}") from None
        except EOFError as error:
            what = "gzip stream or pickle" if compressed else "pickle"
            raise DatasetError(f"{path}: truncated {what}: {error}") from None
        except pickle.UnpicklingError as error:
            raise DatasetError(f"{path}: unsafe or corrupt pickle: {error}") from None
        except Exception as error:  # a malformed pickle can fail in many ways
            raise DatasetError(f"{path}: corrupt pickle: {type(error).__name__}: {error}") from None
    return validate_seed_splits(splits, path)


def validate_seed_splits(
    splits: Any, path: str | os.PathLike
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Checks the ``(train, validation, test)`` layout and converts each split."""
    if not isinstance(splits, (tuple, list)) or len(splits) != 3:
        raise DatasetError(f"{path}: expected a tuple (train, validation, test) in the pickle")
    return tuple(
        _validate_split(split, f"{path} ({name} split)")
        for split, name in zip(splits, ("train", "validation", "test"), strict=True)
    )


def _validate_split(split: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(split, (tuple, list)) or len(split) != 2:
        raise DatasetError(f"{where}: expected a pair (images, labels)")
    images, labels = split
    if not isinstance(images, np.ndarray) or images.ndim != 2 or images.shape[1] != PIXELS:
        raise DatasetError(f"{where}: expected images as an array of shape (N, {PIXELS})")
    if len(images) == 0:
        raise DatasetError(f"{where}: holds no images; every split needs at least one")
    if len(images) > MAX_EXAMPLES:
        raise DatasetError(f"{where}: {len(images):,} images, more than {MAX_EXAMPLES:,}")
    if images.dtype.kind != "f" or not np.all((images >= 0) & (images <= 1)):
        raise DatasetError(f"{where}: expected float pixels in [0, 1]")
    if not isinstance(labels, np.ndarray) or labels.shape != (len(images),):
        raise DatasetError(f"{where}: expected {len(images)} labels in an array of shape (N,)")
    if labels.dtype.kind not in "iu" or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise DatasetError(f"{where}: expected integer labels in 0..9")
    return images.astype(np.float32), labels.astype(np.int32)
