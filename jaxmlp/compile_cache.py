"""Keeping JAX's persistent compilation cache free of damaged entries.

JAX (0.10.2, ``jax._src.lru_cache.LRUCache.put``) writes each entry straight to its final
name, ``KEY-cache``, so a run stopped by a full disk leaves a truncated entry, and every
later run that compiles the same program warns "Error reading persistent compilation
cache entry … truncated stream". JAX offers no hook to write entries atomically, so
:func:`remove_damaged_entries` checks each entry it has not checked before (decompressing
it as JAX would) and deletes the damaged ones; :data:`CHECKED_LIST` remembers the sound
ones, so each entry is read once. Deleting an entry that another process is still
writing costs only a recompilation.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from jaxmlp.files import atomic_write

ENTRY_SUFFIX = "-cache"
"""The suffix of JAX's cache entries."""
CHECKED_LIST = ".jaxmlp-checked"
"""The names of the entries found sound, one a line, in the cache folder."""
TIME_BYTES = 4
"""JAX appends the compilation time to each entry's data in this many bytes."""


def entry_reader():
    """JAX's own reader of a cache entry's bytes (a private function: ``None`` where a JAX
    version lacks it, and then no entry is judged)."""
    try:
        from jax._src.compilation_cache import decompress_executable
    except ImportError:
        return None
    return decompress_executable


def is_sound_entry(path: Path, decompress) -> bool:
    """Whether the cache entry at ``path`` decompresses as JAX will read it."""
    try:
        return len(decompress(path.read_bytes())) > TIME_BYTES
    except Exception:  # zlib, zstd and I/O all fail differently: any failure is a damaged entry
        return False


def checked_names(directory: Path) -> set[str]:
    """The entries of ``directory`` already found sound."""
    try:
        return set((directory / CHECKED_LIST).read_text().split())
    except (OSError, UnicodeDecodeError):
        return set()


def remove_damaged_entries(directory: str | Path | None) -> list[Path]:
    """Deletes the damaged entries of the compilation cache in ``directory``.

    Returns:
        The entries deleted. A cache that cannot be read or written is left as it is.
    """
    decompress = entry_reader()
    if directory is None or decompress is None:
        return []
    directory = Path(directory)
    try:
        entries = sorted(directory.glob(f"*{ENTRY_SUFFIX}"))
    except OSError:
        return []
    known = checked_names(directory)
    sound, removed = set(), []
    for entry in entries:
        if entry.name in known or is_sound_entry(entry, decompress):
            sound.add(entry.name)
            continue
        with contextlib.suppress(OSError):
            entry.unlink()
            removed.append(entry)
    if sound != known:
        with contextlib.suppress(OSError), atomic_write(directory / CHECKED_LIST) as file:
            file.write("".join(f"{name}\n" for name in sorted(sound)).encode())
    return removed


def removal_line(removed: list[Path]) -> str:
    """The one line that reports what :func:`remove_damaged_entries` deleted."""
    count = len(removed)
    entries = "entry" if count == 1 else "entries"
    return (
        f"jaxmlp: removed {count} damaged compilation cache {entries} from "
        f"{removed[0].parent} (left by a run that could not finish writing them)"
    )
