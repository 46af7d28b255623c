"""Writing a file atomically: the one way downloads and checkpoints reach the disk.

A file is written to a temporary file beside its destination (``tempfile.mkstemp``, mode
0600), made readable like an ordinarily created file, flushed to disk and renamed over the
destination; the rename is then flushed with its directory. A crash at any moment leaves
either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

READABLE_FILE_MODE = 0o644
"""What a finished file gets instead of ``mkstemp``'s owner-only 0600."""


def fsync_directory(directory: Path) -> None:
    """Flushes a directory entry (a rename into it) to disk, where the platform allows it."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextlib.contextmanager
def atomic_write(destination: Path, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """A binary file that replaces ``destination`` only if the ``with`` block completes.

    If the block raises, the temporary file is removed and ``destination`` is left as it
    was. Creating the temporary file raises ``OSError`` before the block starts.
    """
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=suffix, dir=destination.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            yield file
            os.fchmod(file.fileno(), READABLE_FILE_MODE)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, destination)
    finally:
        Path(temporary).unlink(missing_ok=True)
    fsync_directory(destination.parent)
