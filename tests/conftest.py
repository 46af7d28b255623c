"""Suite-wide set-up: no test reaches the network, the user's cache or real system data.

JAX runs on one CPU device here; tests that need several devices start a subprocess.
"""

from __future__ import annotations

import pytest
from data_fixtures import REAL_MNIST_DIR, needs_real_mnist, offline_environment  # noqa: F401

from jaxmlp.data import load_dataset


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST from ``../shared/datasets/mnist`` in the seed's split (skips if absent)."""
    if not REAL_MNIST_DIR.is_dir():
        pytest.skip(f"the MNIST files are not in {REAL_MNIST_DIR}")
    return load_dataset("mnist", data_dir=REAL_MNIST_DIR)
