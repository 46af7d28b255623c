"""Checking a command's output paths before it does any work.

A command that writes files calls :func:`check_outputs` first, with every path it will
write under the flag (or description) that names it::

    check_outputs({"--save": save, "--metrics-out": metrics_out})
    check_outputs({"--out-dir": [out_dir / name for name in plots.ALL_PLOTS]})

so that a bad path costs nothing: no epoch trained, no data downloaded. Each problem is
one :class:`~jaxmlp.errors.OutputPathError` line (exit code 2) naming the flag and the path:

- something other than a regular file is there (device, FIFO, socket, directory; see
  :mod:`jaxmlp.files` for symbolic links);
- its directory cannot be made: the nearest existing ancestor is not a directory, or is
  not writable and searchable (``os.access``) by this process;
- two outputs are one file: the same directory entry, the same file behind symbolic
  links, or hard links to one file.

The checks tell a mistake early; the writers (:func:`jaxmlp.files.atomic_write`) still
refuse a non-regular file that appears later.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from jaxmlp.errors import OutputPathError
from jaxmlp.files import non_regular_kind

PathLike = str | os.PathLike
Outputs = Mapping[str, PathLike | Iterable[PathLike] | None]
"""Each output's flag (or description) and the path, or paths, written under it; ``None``
when the output is off."""


def check_outputs(outputs: Outputs) -> None:
    """Checks every output path; see the module's description.

    Args:
        outputs: ``{"--save": path, "--out-dir": [path, ...], "--metrics-out": None}``:
            the label used in messages, and the file (or files) written under it.

    Raises:
        OutputPathError: The first problem found, as one line naming its flag and path.
    """
    claimed: dict[object, tuple[str, Path]] = {}
    for flag, path in labelled_paths(outputs):
        check_output_file(flag, path)
        for identity in identities(path):
            if identity in claimed:
                other_flag, other_path = claimed[identity]
                raise OutputPathError(
                    f"{flag} {path} and {other_flag} {other_path} are the same file; "
                    "give each output its own path"
                )
            claimed[identity] = (flag, path)


def labelled_paths(outputs: Outputs) -> Iterator[tuple[str, Path]]:
    """Each ``(flag, path)`` of ``outputs``, a flag's several paths one by one."""
    for flag, value in outputs.items():
        if value is None:
            continue
        paths = [value] if isinstance(value, (str, os.PathLike)) else value
        for path in paths:
            yield flag, Path(path)


def check_output_file(flag: str, path: Path) -> None:
    """Raises :class:`OutputPathError` unless ``path`` can be written as a regular file."""
    try:
        kind = non_regular_kind(path)
    except OSError as error:
        raise OutputPathError(f"{flag} {path}: cannot be examined: {error.strerror}") from None
    if kind is not None:
        raise OutputPathError(f"{flag} {path} is {kind}, not a regular file")
    check_directory_creatable(flag, path)


def check_directory_creatable(flag: str, path: Path) -> None:
    """Raises :class:`OutputPathError` unless ``path``'s directory exists writable or can
    be created under its nearest existing ancestor."""
    directory = path.absolute().parent
    ancestor = nearest_existing(directory)
    if not ancestor.is_dir():
        raise OutputPathError(f"{flag} {path}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        action = "write into" if ancestor == directory else f"create {directory} in"
        raise OutputPathError(f"{flag} {path}: no permission to {action} {ancestor}")


def nearest_existing(directory: Path) -> Path:
    """``directory`` or its closest ancestor that exists (``/`` at worst)."""
    while not os.path.lexists(directory) and directory != directory.parent:
        directory = directory.parent
    return directory


def identities(path: Path) -> set[object]:
    """What makes two paths one file: the directory entry, the file behind symbolic links,
    and the device and inode of an existing file."""
    absolute = Path(os.path.abspath(path))
    found: set[object] = {
        Path(os.path.realpath(absolute.parent)) / absolute.name,
        Path(os.path.realpath(absolute)),
    }
    try:
        status = os.stat(absolute)
    except OSError:
        return found
    found.add((status.st_dev, status.st_ino))
    return found


OVERWRITE_FLAG = "--overwrite"


def check_not_replacing(
    files: Outputs | None = None,
    directories: Outputs | None = None,
    *,
    overwrite: bool = False,
) -> None:
    """Refuses to replace what an earlier command wrote, unless ``overwrite`` says so.

    Call it before any work, like :func:`check_outputs`: an existing file (or link) in
    ``files``, or a non-empty directory in ``directories``, is one
    :class:`~jaxmlp.errors.OutputPathError` line (exit code 2) naming its flag, the path
    and :data:`OVERWRITE_FLAG`.

    Args:
        files: ``{"--save": path, ...}``: files the command would replace.
        directories: ``{"--run-dir": path}``: directories the command would write into.
        overwrite: the user asked to replace them.

    Raises:
        OutputPathError: The first existing output, when ``overwrite`` is false.
    """
    if overwrite:
        return
    for flag, path in labelled_paths(files or {}):
        if os.path.lexists(path):
            raise OutputPathError(
                f"{flag} {path} already exists; pass {OVERWRITE_FLAG} to replace it"
            )
    for flag, path in labelled_paths(directories or {}):
        if path.is_dir() and any(path.iterdir()):
            raise OutputPathError(
                f"{flag} {path} is not empty; pass {OVERWRITE_FLAG} to write into it"
            )
