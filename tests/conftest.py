"""Suite-wide set-up: no test reaches the network, the user's cache or real system data.

JAX runs on one CPU device here; tests that need several devices start a subprocess.
Compiled programs are kept in a persistent compilation cache shared by every test of the
session and the sessions after it (``.pytest_cache/jax-compilation-cache``, or
``JAX_COMPILATION_CACHE_DIR`` when set): a program that a test rebuilds (a new trainer, a
test that clears JAX's caches) is compiled once.

The suite runs in pytest-xdist worker processes (``-n auto`` in ``pyproject.toml``), one a
core and at most :data:`MAX_WORKERS`; ``-n 0`` runs it in this process. The workers share the
compilation cache, so each writes its entries atomically (:func:`write_cache_entries_atomically`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pytest
from data_fixtures import REAL_MNIST_DIR, needs_real_mnist, offline_environment  # noqa: F401

from jaxmlp.cli.startup import enable_compilation_cache
from jaxmlp.data import load_dataset

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPILATION_CACHE = REPO_ROOT / ".pytest_cache" / "jax-compilation-cache"
NO_XLA_CACHES = "none"
"""For ``jax_persistent_cache_enable_xla_caches``. By default JAX also names a GPU autotuning
cache inside the cache folder in the options it compiles with, and so in every entry's key:
a command run in a test moves the cache option to that test's own folder, and the programs
compiled after it in that worker would never be found again. (Nothing on CPU uses it.)"""
MAX_WORKERS = 4
"""The most test processes ``-n auto`` starts: each holds a JAX runtime of its own (about
0.5 GB) and XLA's threads, and a big machine gains little from more."""


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker a core this process may use, at most :data:`MAX_WORKERS`
    (``PYTEST_XDIST_AUTO_NUM_WORKERS``, when set, decides instead)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return min(len(os.sched_getaffinity(0)), MAX_WORKERS)


def write_cache_entries_atomically() -> None:
    """JAX 0.10 writes a compilation cache entry in place (``LRUCache.put``), so a worker
    reading an entry that another is still writing would find it truncated (a warning and a
    recompilation, or :mod:`jaxmlp.compile_cache` deleting it). Here each entry is written to
    a temporary file beside it and renamed. Left as it is where JAX's cache differs."""
    from jax._src import lru_cache

    jax_put = getattr(lru_cache.LRUCache, "put", None)
    if jax_put is None or getattr(jax_put, "atomic", False):
        return

    def put(self, key: str, value: bytes) -> None:
        if self.eviction_enabled or not isinstance(self.path, Path):
            return jax_put(self, key, value)
        final = self.path / f"{key}{lru_cache._CACHE_SUFFIX}"
        if final.exists():
            return None
        descriptor, temporary = tempfile.mkstemp(dir=final.parent, prefix=f".{key}.")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(value)
            os.replace(temporary, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        return None

    put.atomic = True
    lru_cache.LRUCache.put = put


def share_cache_with_subprocesses(directory: str) -> None:
    """Python processes that the tests start (``python -c`` probes on four CPU devices) keep
    their programs in the suite's cache too, through JAX's own variables. A ``jaxmlp``
    command started as a process still uses its test's own user cache."""
    os.environ["JAX_COMPILATION_CACHE_DIR"] = directory
    os.environ["JAX_PERSISTENT_CACHE_ENABLE_XLA_CACHES"] = NO_XLA_CACHES
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def pytest_configure(config):
    """Turns on the persistent compilation cache for the session, as a command does, and
    opens it now: a command run in a test points JAX's cache option at that test's own
    user cache, which JAX ignores once its cache is open."""
    import jax

    directory = os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(COMPILATION_CACHE)
    share_cache_with_subprocesses(directory)
    write_cache_entries_atomically()
    jax.config.update("jax_persistent_cache_enable_xla_caches", NO_XLA_CACHES)
    enable_compilation_cache(directory)
    jax.jit(lambda x: x + 1)(0)


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST from ``../shared/datasets/mnist`` in the seed's split (skips if absent)."""
    if not REAL_MNIST_DIR.is_dir():
        pytest.skip(f"the MNIST files are not in {REAL_MNIST_DIR}")
    return load_dataset("mnist", data_dir=REAL_MNIST_DIR)
