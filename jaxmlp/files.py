"""File-system steps shared by everything that writes a file atomically.

Downloads and checkpoints are written to a temporary file beside their destination
(``tempfile.mkstemp``, mode 0600), made readable like an ordinarily created file, flushed
to disk and renamed over the destination; the rename is then flushed with its directory.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

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
