"""Decoded datasets kept on disk, so that reading MNIST after the first time takes milliseconds.

Decoding MNIST's gzip IDX files and turning its pixels into float32 takes most of a second.
:func:`read_pair` does it once per pair of source files (images and labels) and keeps the
result as two ``.npy`` files in the user cache (``$XDG_CACHE_HOME/jaxmlp/decoded``, beside
the downloaded datasets), which later reads load memory-mapped:

- An entry's name holds a hash of the source files' resolved paths, their sizes and
  modification times (nanoseconds), and :data:`FORMAT`: a source file that changes gives
  a new name, so a stale entry is never read; writing the new entry removes the old one.
- Each file is written atomically (:func:`jaxmlp.files.atomic_write`) and the labels
  before the images, which a read needs both of: a reader sees a whole entry or none.
- An entry that cannot be read (truncated, of the wrong shape) is decoded again; a cache
  directory that cannot be written (read-only, full) only costs the decoding each time.
- The arrays returned are read-only (memory-mapped): images float32 ``(N, 784)`` in
  [0, 1], labels int32 ``(N,)``, exactly what decoding gives.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jaxmlp.data.sources import user_cache_dir
from jaxmlp.errors import OutputPathError
from jaxmlp.files import atomic_write

FORMAT = 1
"""Changes whenever what an entry holds changes, so that older entries are not read."""
CACHE_NAME = "decoded"

Pair = tuple[np.ndarray, np.ndarray]


def cache_dir() -> Path:
    """Where decoded datasets are kept: ``$XDG_CACHE_HOME/jaxmlp/decoded``."""
    return user_cache_dir(CACHE_NAME)


def source_id(paths: tuple[Path, ...]) -> str:
    """A short hash of the sources' resolved paths: the part of a name that stays the same
    when the files change."""
    joined = "\0".join(str(Path(path).resolve()) for path in paths)
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def source_version(paths: tuple[Path, ...]) -> str:
    """The sources' sizes and modification times, with :data:`FORMAT`: the part of a name
    that changes when they do."""
    stats = [os.stat(path) for path in paths]
    parts = [f"{stat.st_size}-{stat.st_mtime_ns}" for stat in stats]
    return f"v{FORMAT}-" + "-".join(parts)


def entry_paths(directory: Path, stem: str) -> tuple[Path, Path]:
    """The images and labels files of the entry ``stem``."""
    return directory / f"{stem}.images.npy", directory / f"{stem}.labels.npy"


def load_entry(directory: Path, stem: str) -> Pair | None:
    """The entry's arrays, memory-mapped, or ``None`` if it is missing or unreadable."""
    images_path, labels_path = entry_paths(directory, stem)
    try:
        images = np.load(images_path, mmap_mode="r", allow_pickle=False)
        labels = np.load(labels_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if images.ndim != 2 or labels.ndim != 1 or len(images) != len(labels):
        return None
    return images, labels


def save_array(path: Path, array: np.ndarray) -> None:
    """Writes ``array`` as a ``.npy`` file, atomically."""
    with atomic_write(path) as file:
        np.save(file, array, allow_pickle=False)


def save_entry(directory: Path, source: str, stem: str, pair: Pair) -> bool:
    """Writes the entry (labels first) and removes the source's older entries; returns
    whether it was written."""
    images_path, labels_path = entry_paths(directory, stem)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        save_array(labels_path, pair[1])
        save_array(images_path, pair[0])
    except (OSError, OutputPathError):
        return False
    for old in directory.glob(f"{source}-*.npy"):
        if old not in (images_path, labels_path):
            old.unlink(missing_ok=True)
    return True


def read_pair(images_path: Path, labels_path: Path, decode: Callable[[Path, Path], Pair]) -> Pair:
    """The decoded images and labels of two source files, from the cache when it has them.

    Args:
        images_path: The images' IDX file.
        labels_path: The labels' IDX file.
        decode: Reads the two files into float32 images ``(N, 784)`` in [0, 1] and int32
            labels; called only when the cache has no entry for them.
    """
    paths = (Path(images_path), Path(labels_path))
    try:
        version = source_version(paths)
    except OSError:
        return decode(*paths)  # which says, in one line, what is wrong with the file
    directory = cache_dir()
    source = source_id(paths)
    stem = f"{source}-{version}"
    cached = load_entry(directory, stem)
    if cached is not None:
        return cached
    pair = decode(*paths)
    if save_entry(directory, source, stem, pair):
        return load_entry(directory, stem) or pair
    return pair
