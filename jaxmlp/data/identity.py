"""Knowing a dataset by its files, so that MNIST and Fashion-MNIST are never mixed up.

Both datasets name their four files alike. A file is recognised by its SHA-256: that of
the official ``.gz`` file, or that of its decompressed IDX content (the same data
recompressed, as Debian ships Fashion-MNIST, or stored uncompressed). A folder whose
files are another known dataset's is refused, naming what it holds; a folder mixing
datasets (or putting a known file in another file's place) is refused, naming the odd
files; files recognised as nothing (a user's own IDX data) are read as they are.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jaxmlp.data import sources
from jaxmlp.data.idx import CHUNK_BYTES, MAX_DATA_BYTES, open_decompressed
from jaxmlp.data.sources import DatasetSpec
from jaxmlp.errors import DatasetError

UNRECOGNISED = "unrecognised files"
"""What ``data-info`` says of data whose files are no known dataset's."""
ROLE_WORDS = {
    "train_images": "training images",
    "train_labels": "training labels",
    "test_images": "test images",
    "test_labels": "test labels",
}


@dataclass(frozen=True)
class KnownFile:
    """One official file: its dataset and the role it plays there (``"train_images"``...)."""

    dataset: str
    role: str

    def describe(self) -> str:
        """``"fashion-mnist's training labels"``."""
        return f"{self.dataset}'s {ROLE_WORDS[self.role]}"


_memo: dict[tuple[str, int, int], KnownFile | None] = {}
"""Files already identified, by resolved path, size and modification time."""


def known_sums(specs: Mapping[str, DatasetSpec]) -> dict[str, KnownFile]:
    """Every known SHA-256 (official ``.gz``, known copies, decompressed content) → its file."""
    table = {}
    for spec in specs.values():
        for role, file_name in zip(sources.ROLES, spec.files, strict=True):
            for sums in (spec.sha256, spec.content_sha256, spec.copies_sha256):
                if file_name in sums:
                    table[sums[file_name]] = KnownFile(spec.name, role)
    return table


def sha256_of_stream(stream, limit: int) -> str:
    """The hex SHA-256 of at most ``limit`` + 1 bytes read from ``stream``."""
    digest = hashlib.sha256()
    remaining = limit + 1
    while remaining > 0:
        chunk = stream.read(min(CHUNK_BYTES, remaining))
        if not chunk:
            break
        digest.update(chunk)
        remaining -= len(chunk)
    return digest.hexdigest()


def identify_file(path: Path) -> KnownFile | None:
    """Which official file ``path`` is (by its own or its decompressed SHA-256), if any.

    Unreadable or corrupt files are recognised as nothing; reading them later says why.
    """
    try:
        status = os.stat(path)
    except OSError:
        return None
    key = (str(Path(path).resolve()), status.st_size, status.st_mtime_ns)
    if key not in _memo:
        _memo[key] = _identify_uncached(Path(path))
    return _memo[key]


def _identify_uncached(path: Path) -> KnownFile | None:
    table = known_sums(sources.SPECS)
    try:
        with open(path, "rb") as file:
            known = table.get(sha256_of_stream(file, MAX_DATA_BYTES))
        if known is not None:
            return known
        with open_decompressed(path) as (stream, compressed):
            return table.get(sha256_of_stream(stream, MAX_DATA_BYTES)) if compressed else None
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, DatasetError):
        return None


def identify_folder(files: Mapping[str, Path]) -> dict[str, KnownFile | None]:
    """What each file of a folder is, by role."""
    return {role: identify_file(path) for role, path in files.items()}


def check_identity(spec: DatasetSpec, files: Mapping[str, Path], where: str) -> str:
    """Refuses files that are another dataset's, or a mix; says what the files are.

    Args:
        spec: The dataset asked for.
        files: The IDX file found for each role.
        where: The folder, as the error names it.

    Returns:
        ``"mnist"`` (all four are the official files), :data:`UNRECOGNISED`, or, when only
        some are recognised, ``"unrecognised FILE, FILE"``.

    Raises:
        DatasetError: A file is another dataset's, or stands in another file's place.
    """
    known = identify_folder(files)
    odd = {
        role: file
        for role, file in known.items()
        if file is not None and (file.dataset != spec.name or file.role != role)
    }
    if odd:
        raise DatasetError(refusal(spec, files, known, odd, where))
    unknown = [files[role].name for role, file in known.items() if file is None]
    if len(unknown) == len(known):
        return UNRECOGNISED
    if unknown:
        return f"unrecognised {', '.join(unknown)}"
    return spec.name


def refusal(
    spec: DatasetSpec,
    files: Mapping[str, Path],
    known: Mapping[str, KnownFile | None],
    odd: Mapping[str, KnownFile],
    where: str,
) -> str:
    """The one-line refusal of :func:`check_identity`."""
    datasets = {file.dataset for file in known.values() if file is not None}
    in_place = all(file.role == role for role, file in odd.items())
    if len(odd) == len(known) and len(datasets) == 1 and in_place:
        other = datasets.pop()
        return (
            f"{where} holds {other}'s files, not {spec.name}'s: pass --dataset {other}, "
            f"or give a folder of {spec.name}"
        )
    listed = "; ".join(f"{files[role].name} is {file.describe()}" for role, file in odd.items())
    return f"{where} mixes datasets, so it is not read as {spec.name}: {listed}"
