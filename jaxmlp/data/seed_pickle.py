"""Loading the seed's ``mnist.pkl.gz`` without trusting it.

The file is a gzip-compressed pickle (protocol 2, written by Python 2) of
``(train, validation, test)``, each ``(images float32 (N, 784), labels int64 (N,))``.
A pickle can call any importable function, so :class:`RestrictedUnpickler` resolves
only the few globals that numpy arrays and tuples need and refuses everything else
before anything runs.

Its pixels are the original bytes divided by 256, in [0, 1); the IDX path divides by
255, in [0, 1]. The two agree exactly up to that scaling.
"""

from __future__ import annotations

import _codecs
import gzip
import io
import os
import pickle
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from jaxmlp.data.idx import GZIP_MAGIC
from jaxmlp.errors import DatasetError

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

PIXELS = 28 * 28


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 protocol-2 pickles use it for bytes, latin-1 only."""
    if encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return _codecs.encode(text, "latin1", errors)


ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only tuples, lists, numbers, strings and numpy arrays."""

    def find_class(self, module: str, name: str) -> Any:
        """Returns an allowed global or raises ``UnpicklingError`` for any other."""
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global '{module}.{name}'") from None


def restricted_loads(content: bytes) -> Any:
    """Unpickles ``content`` with :class:`RestrictedUnpickler`, Python 2 strings as bytes."""
    return RestrictedUnpickler(io.BytesIO(content), encoding="bytes").load()


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
    try:
        raw = Path(path).read_bytes()
        content = gzip.decompress(raw) if raw.startswith(GZIP_MAGIC) else raw
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: cannot read: {error}") from None
    try:
        splits = restricted_loads(content)
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
    if images.dtype.kind != "f" or not np.all((images >= 0) & (images <= 1)):
        raise DatasetError(f"{where}: expected float pixels in [0, 1]")
    if not isinstance(labels, np.ndarray) or labels.shape != (len(images),):
        raise DatasetError(f"{where}: expected {len(images)} labels in an array of shape (N,)")
    if labels.dtype.kind not in "iu" or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise DatasetError(f"{where}: expected integer labels in 0..9")
    return images.astype(np.float32), labels.astype(np.int32)
