"""Suite-wide set-up: no test reaches the network, the user's cache or real system data.

JAX runs on one CPU device here; tests that need several devices start a subprocess.
Compiled programs are kept in a persistent compilation cache shared by every test of the
session and the sessions after it (``.pytest_cache/jax-compilation-cache``, or
``JAX_COMPILATION_CACHE_DIR`` when set): a program that a test rebuilds (a new trainer, a
test that clears JAX's caches) is compiled once.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import pytest
from data_fixtures import REAL_MNIST_DIR, needs_real_mnist, offline_environment  # noqa: F401

from jaxmlp.data import load_dataset

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPILATION_CACHE = REPO_ROOT / ".pytest_cache" / "jax-compilation-cache"


def pytest_configure(config):
    """Turns on the persistent compilation cache for the session."""
    jax.config.update(
        "jax_compilation_cache_dir",
        os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(COMPILATION_CACHE),
    )
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST from ``../shared/datasets/mnist`` in the seed's split (skips if absent)."""
    if not REAL_MNIST_DIR.is_dir():
        pytest.skip(f"the MNIST files are not in {REAL_MNIST_DIR}")
    return load_dataset("mnist", data_dir=REAL_MNIST_DIR)
