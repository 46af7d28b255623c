"""Writing a file atomically: the one way downloads, checkpoints and plots reach the disk.

(Logs that grow a line at a time, such as ``--metrics-out``, use :func:`line_appender`:
each line is appended whole or not at all.)

A file is written to a temporary file beside its destination (``tempfile.mkstemp``, mode
0600), made readable like an ordinarily created file, flushed to disk and renamed over the
destination; the rename is then flushed with its directory. A crash at any moment leaves
either the old file or the new one.

Only regular files are replaced. A device node, FIFO, socket or directory at the
destination is refused with :class:`~jaxmlp.errors.OutputPathError` before anything is
written (run as root, a rename over ``/dev/null`` would replace the device). Symbolic links
are followed to decide: a link to a regular file (or a dangling link) is itself replaced by
the new file, and the file it pointed to is left as it was; a link to anything else is
refused. An error while writing (a full disk, a read-only directory) is an ``OSError`` that
names the destination, never the temporary file.

Temporary files are named ``.NAME.WRITER.XXXXXXXX.SUFFIX``, WRITER being
``HOSTID-PID`` (a hash of the host name and the writer's process id). A save first removes
the temporaries that a killed earlier save of the same destination left: those of this
host whose process is gone, and those of another host (or written by an older jaxmlp,
without WRITER) untouched for :data:`STALE_AFTER_S`. A concurrent live writer's temporary
is never removed: its process is alive, or it is still being written to.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from jaxmlp.errors import OutputPathError

READABLE_FILE_MODE = 0o644
"""What a finished file gets instead of ``mkstemp``'s owner-only 0600."""
HOST_ID = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
"""Tells this host's temporary files from those of hosts sharing the directory."""
STALE_AFTER_S = 3600.0
"""A temporary file of another host untouched this long belongs to a killed save."""
RANDOM_PART = r"[a-z0-9_]{8}"
"""What ``tempfile.mkstemp`` puts between prefix and suffix."""
FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def fsync_directory(directory: Path) -> None:
    """Flushes a directory entry (a rename into it) to disk, where the platform allows it."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def non_regular_kind(path: Path) -> str | None:
    """What ``path`` is when it exists (symbolic links followed) but is not a regular file:
    ``"a FIFO"``, ``"a directory"``, ...; ``None`` when it is a regular file or absent.

    Raises:
        OSError: ``path`` cannot be examined (a loop of links, a directory not searchable).
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in FILE_KINDS if test(mode)), "not a regular file")


def require_replaceable(path: Path) -> None:
    """Raises :class:`OutputPathError` if something other than a regular file is at ``path``."""
    kind = non_regular_kind(path)
    if kind is not None:
        raise OutputPathError(
            f"{path} is {kind}, not a regular file; jaxmlp writes only regular files"
        )


def writer_tag() -> str:
    """``HOSTID-PID``: which host and process wrote a temporary file."""
    return f"{HOST_ID}-{os.getpid()}"


def temporary_name_pattern(destination: Path, suffix: str) -> re.Pattern[str]:
    """Matches the temporary files of saves of ``destination``, and only those."""
    name, end = re.escape(destination.name), re.escape(suffix)
    writer = r"(?:(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.)?"
    return re.compile(rf"\.{name}\.{writer}{RANDOM_PART}{end}")


def process_is_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (one of another user's counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def is_stale(path: Path, host: str | None, pid: str | None, now: float) -> bool:
    """Whether the temporary file at ``path`` was left by a writer that is gone."""
    if host == HOST_ID:
        return not process_is_alive(int(pid))
    try:
        return now - path.stat().st_mtime > STALE_AFTER_S
    except OSError:
        return False


def remove_stale_temporaries(destination: Path, suffix: str = ".tmp") -> list[Path]:
    """Removes the temporaries that killed saves of ``destination`` left beside it.

    Returns:
        The files removed; one that cannot be removed is left and not reported.
    """
    pattern = temporary_name_pattern(destination, suffix)
    directory = destination.parent
    now = time.time()
    removed = []
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            path = directory / entry.name
            if match and is_stale(path, match["host"], match["pid"], now):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
    return removed


def naming(destination: Path, error: OSError) -> OSError:
    """``error`` as an ``OSError`` of the same kind whose file name is ``destination``."""
    return OSError(error.errno, error.strerror or str(error), str(destination))


@contextlib.contextmanager
def atomic_write(destination: Path, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """A binary file that replaces ``destination`` only if the ``with`` block completes.

    If the block raises, the temporary file is removed and ``destination`` is left as it
    was. Creating the temporary file raises ``OSError`` before the block starts; any
    ``OSError`` (from the block's writes too) names ``destination``.

    Raises:
        OutputPathError: Something other than a regular file is at ``destination``.
    """
    destination = Path(destination)
    require_replaceable(destination)
    remove_stale_temporaries(destination, suffix)
    try:
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{destination.name}.{writer_tag()}.", suffix=suffix, dir=destination.parent
        )
    except OSError as error:
        raise naming(destination, error) from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            yield file
            os.fchmod(file.fileno(), READABLE_FILE_MODE)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, destination)
    except OSError as error:
        raise naming(destination, error) from None
    finally:
        Path(temporary).unlink(missing_ok=True)
    fsync_directory(destination.parent)


@contextlib.contextmanager
def line_appender(path: Path) -> Iterator[Callable[[bytes], None]]:
    """A function that appends one whole line (a record) to ``path``, or none of it.

    Each line is written unbuffered; if writing fails part-way (a full disk, a file size
    limit), the file is truncated back to where the line began, so it never ends in a cut
    line, and the ``OSError`` names ``path``.
    """
    path = Path(path)
    try:
        file = open(path, "ab", buffering=0)  # noqa: SIM115 - the with-block below closes it
    except OSError as error:
        raise naming(path, error) from None
    with file:

        def append(line: bytes) -> None:
            start = file.seek(0, os.SEEK_END)
            view = memoryview(line)
            try:
                while view:
                    view = view[file.write(view) :]
            except OSError as error:
                with contextlib.suppress(OSError):
                    file.truncate(start)
                raise naming(path, error) from None

        yield append
