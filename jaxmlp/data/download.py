"""Downloading dataset files from mirrors into the user cache, verified by SHA-256.

Each file is streamed to a temporary ``.part`` file beside its destination, hashed on
the way, fsynced and renamed into place only when its SHA-256 matches; anything else
removes the temporary file, so the cache never holds a file a later run would trust
wrongly. Mirrors are tried in order, and all failing gives one line naming each.

Each file a download puts in place is listed in the folder's :data:`DOWNLOADED_LIST`. A
file there that fails verification is downloaded again only if that list names it and it
is no other known dataset's file (a copy of our own, damaged since); any other (another
dataset's file, a user's own) is never replaced, and the error says what it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from jaxmlp import __version__
from jaxmlp.data.identity import identify_file
from jaxmlp.data.sources import DATA_DIR_ENV, get_spec, mirrors_for, user_cache_dir
from jaxmlp.errors import DatasetError
from jaxmlp.files import atomic_write

CHUNK_BYTES = 1 << 20
DOWNLOADED_LIST = ".jaxmlp-downloaded"
"""The names of the files downloads put in a folder, one a line."""
MAX_DOWNLOAD_BYTES = 128 << 20
DEFAULT_TIMEOUT_S = 30.0


class TransferError(Exception):
    """One mirror failed to deliver one file; the message says why, in a few words."""


@dataclass(frozen=True)
class FileStatus:
    """What :func:`download_dataset` did for one file.

    Attributes:
        path: Where the verified file is.
        downloaded_from: The URL it came from, or None if it was already present.
    """

    path: Path
    downloaded_from: str | None


def sha256_of_file(path: Path) -> str:
    """Returns the hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_verified(path: Path, sha256: str) -> bool:
    """Whether ``path`` is a file whose SHA-256 is ``sha256``."""
    return path.is_file() and sha256_of_file(path) == sha256


def download_dataset(
    name: str,
    cache_dir: str | os.PathLike | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: bool | None = None,
) -> dict[str, FileStatus]:
    """Makes sure the official files of dataset ``name`` are in ``cache_dir``, verified.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        cache_dir: Defaults to the user cache, ``$XDG_CACHE_HOME/jaxmlp/<name>``.
        mirrors: Base URLs to try in order; defaults to ``JAXMLP_<NAME>_MIRRORS`` or the
            built-in list.
        checksums: SHA-256 of each file by name; defaults to the official ones.
        timeout: Seconds to wait on a connection or a read.
        progress: Show a progress bar; defaults to whether stderr is a terminal.

    Returns:
        The status of each file, by file name.

    Raises:
        DatasetError: A file could be fetched from no mirror, the cache is unwritable, or
            it holds a file of that name that is not this dataset's.
    """
    spec = get_spec(name)
    directory = Path(cache_dir) if cache_dir is not None else user_cache_dir(name)
    checksums = dict(checksums) if checksums is not None else spec.sha256
    urls = mirrors_for(spec, mirrors)
    show_progress = sys.stderr.isatty() if progress is None else progress
    statuses = {}
    for file_name in spec.files:
        path = directory / file_name
        if is_verified(path, checksums[file_name]):
            statuses[file_name] = FileStatus(path, None)
            continue
        refuse_foreign_file(path, spec.name)
        url = fetch_from_mirrors(
            file_name, urls, path, checksums[file_name], timeout, show_progress
        )
        record_download(directory, file_name)
        statuses[file_name] = FileStatus(path, url)
    return statuses


def downloaded_names(directory: Path) -> set[str]:
    """The files that downloads put in ``directory``, as its :data:`DOWNLOADED_LIST` says."""
    try:
        return set((directory / DOWNLOADED_LIST).read_text().split())
    except (OSError, UnicodeDecodeError):
        return set()


def record_download(directory: Path, file_name: str) -> None:
    """Adds ``file_name`` to the folder's :data:`DOWNLOADED_LIST`."""
    names = sorted(downloaded_names(directory) | {file_name})
    with atomic_write(directory / DOWNLOADED_LIST) as file:
        file.write("".join(f"{name}\n" for name in names).encode())


def refuse_foreign_file(path: Path, dataset: str) -> None:
    """Raises DatasetError unless ``path`` is absent or a damaged copy a download put there."""
    if not os.path.lexists(path):
        return
    known = identify_file(path) if path.is_file() else None
    if known is None and path.name in downloaded_names(path.parent):
        return
    what = f"is {known.describe()}" if known is not None else "is not the official file"
    raise DatasetError(
        f"{path} {what}; a download never replaces a file it did not put there: move it "
        f"away, or download {dataset} into another --cache-dir"
    )


def fetch_from_mirrors(
    file_name: str,
    mirrors: Sequence[str],
    destination: Path,
    sha256: str,
    timeout: float,
    progress: bool,
) -> str:
    """Downloads ``file_name`` from the first mirror that delivers it intact.

    Returns:
        The URL it was downloaded from.

    Raises:
        DatasetError: Every mirror failed; the message lists each with its reason.
    """
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetError(
            f"cannot create cache directory {destination.parent}: {error.strerror}"
        ) from None
    failures = []
    for mirror in mirrors:
        url = mirror + file_name
        try:
            download_verified(url, destination, sha256, timeout, progress)
            return url
        except TransferError as error:
            failures.append(f"{mirror} ({error})")
    tried = "; ".join(failures) or "no mirrors configured"
    raise DatasetError(
        f"could not download {file_name}: tried {tried}. Offline, put the official .gz files "
        f"in {destination.parent}, or pass --data-dir DIR or set {DATA_DIR_ENV} to a directory "
        "holding them"
    )


def download_verified(
    url: str, destination: Path, sha256: str, timeout: float, progress: bool
) -> None:
    """Streams ``url`` into ``destination`` atomically if its SHA-256 is ``sha256``.

    Raises:
        TransferError: The transfer failed, was truncated, or the checksum differs;
            ``destination`` is then left as it was.
    """
    file = None
    try:
        with atomic_write(destination, suffix=".part") as file:
            digest = stream_url(url, file, timeout, progress)
            if digest != sha256:
                raise TransferError(
                    f"SHA-256 mismatch: got {digest[:12]}…, expected {sha256[:12]}…"
                )
    except OSError as error:
        if file is None:
            raise DatasetError(
                f"cannot write to cache directory {destination.parent}: {error.strerror}"
            ) from None
        raise TransferError(f"cannot store {destination}: {error.strerror or error}") from None


def stream_url(url: str, file: BinaryIO, timeout: float, progress: bool) -> str:
    """Writes the body of ``url`` to ``file`` and returns its hex SHA-256.

    Raises:
        TransferError: Connection, HTTP or timeout errors, or a body shorter than its
            Content-Length or larger than :data:`MAX_DOWNLOAD_BYTES`.
    """
    digest = hashlib.sha256()
    received = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": f"jaxmlp/{__version__}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            expected = _content_length(response)
            with _progress_bar(url, expected, progress) as advance:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    received += len(chunk)
                    if received > MAX_DOWNLOAD_BYTES:
                        raise TransferError(f"body larger than {MAX_DOWNLOAD_BYTES} bytes")
                    digest.update(chunk)
                    file.write(chunk)
                    advance(len(chunk))
    except urllib.error.HTTPError as error:
        raise TransferError(f"HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise TransferError(_one_line(error.reason)) from None
    except TimeoutError:
        raise TransferError(f"timed out after {timeout:g} s") from None
    except http.client.HTTPException as error:
        raise TransferError(f"connection failed: {type(error).__name__}") from None
    except OSError as error:
        raise TransferError(_one_line(error)) from None
    except ValueError as error:
        raise TransferError(f"invalid URL: {_one_line(error)}") from None
    if expected is not None and received != expected:
        raise TransferError(f"truncated: received {received} of {expected} bytes")
    return digest.hexdigest()


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value is not None and value.isdigit() else None


@contextlib.contextmanager
def _progress_bar(url: str, total: int | None, enabled: bool) -> Iterator:
    if not enabled:
        yield lambda size: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(url.rsplit("/", 1)[-1], total=total)
        yield lambda size: bar.advance(task, size)


def _one_line(reason: object) -> str:
    return " ".join(str(reason).split())
