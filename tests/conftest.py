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

import pytest
from data_fixtures import REAL_MNIST_DIR, needs_real_mnist, offline_environment  # noqa: F401

from jaxmlp.cli.startup import enable_compilation_cache
from jaxmlp.data import load_dataset

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPILATION_CACHE = REPO_ROOT / ".pytest_cache" / "jax-compilation-cache"


def pytest_configure(config):
    """Turns on the persistent compilation cache for the session, as a command does."""
    enable_compilation_cache(os.environ.get("JAX_COMPILATION_CACHE_DIR") or COMPILATION_CACHE)


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST from ``../shared/datasets/mnist`` in the seed's split (skips if absent)."""
    if not REAL_MNIST_DIR.is_dir():
        pytest.skip(f"the MNIST files are not in {REAL_MNIST_DIR}")
    return load_dataset("mnist", data_dir=REAL_MNIST_DIR)
