"""What a run will hold in memory, estimated from its settings before anything is allocated.

The estimate adds up the arrays a training program keeps alive — the dataset on the
device, every member's parameters and optimizer state (and their copies while an epoch
updates them), an epoch's shuffle, a step's activations and gradients, the evaluation's
largest chunk — and a fixed allowance for JAX and XLA themselves. A run whose estimate
exceeds the memory available is refused before it starts (:func:`check_fits_memory`),
with the estimate in the message, instead of failing minutes later.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence

from jaxmlp.errors import ConfigError

FLOAT_BYTES = 4
RUNTIME_BYTES = 400 << 20
"""JAX, XLA and the compiled programs themselves (measured: ~350 MiB for a seed-config run)."""
OPTIMIZER_COPIES = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}
"""Parameter-sized arrays each optimizer keeps (momentum: one trace; Adam: two moments)."""
SHUFFLE_COPIES = 3
"""Arrays of one index per training example while an epoch shuffles (keys, sort, order)."""


def parameter_count(sizes: Sequence[int]) -> int:
    """Weights and biases of a network of layer widths ``sizes``."""
    return sum(n_in * n_out + n_out for n_in, n_out in itertools.pairwise(sizes))


def training_bytes(
    sizes: Sequence[int],
    batch_size: int,
    optimizer: str,
    num_examples: int,
    dataset_floats: int,
    members: int = 1,
    eval_chunk_floats: int = 0,
) -> int:
    """The bytes a training program of ``members`` networks needs at its peak.

    Args:
      sizes: layer widths.
      batch_size: examples per step.
      optimizer: the optimizer's name (its state's size).
      num_examples: training examples per epoch (the shuffle's size).
      dataset_floats: floats of every split on the device (shared by all members).
      members: networks trained together.
      eval_chunk_floats: the largest activation block of an evaluation.
    """
    params = parameter_count(sizes)
    state = params * (2 + OPTIMIZER_COPIES[optimizer])
    state_with_update = 2 * state
    activations = batch_size * sum(sizes) * 4
    shuffle = num_examples * SHUFFLE_COPIES
    per_member = state_with_update + params + activations + shuffle
    floats = dataset_floats + members * per_member + 3 * eval_chunk_floats
    return RUNTIME_BYTES + FLOAT_BYTES * floats


def available_bytes() -> int | None:
    """The memory the system can give a new allocation now (``MemAvailable``), if known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_elements(name: str, count: int, limit: int, what: str) -> int:
    """Returns ``count`` if at most ``limit``; else one line saying what ``name`` asks for.

    Args:
        name: The option(s) responsible, e.g. ``"--sizes 784,100000000,10"``.
        count: How many elements (parameters, activations, ...) they need.
        limit: The most that may be allocated.
        what: What is counted, e.g. ``"parameters"``.
    """
    if count > limit:
        raise ConfigError(f"{name} needs {count:,} {what}, more than the {limit:,} allowed")
    return count


def mebibytes(count: int) -> str:
    """``1,234 MiB``."""
    return f"{count / (1 << 20):,.0f} MiB"


def check_fits_memory(needed: int, what: str, available: int | None = None) -> None:
    """Raises :class:`ConfigError` when ``needed`` bytes exceed the memory available."""
    available = available_bytes() if available is None else available
    if available is not None and needed > available:
        raise ConfigError(
            f"{what} needs about {mebibytes(needed)} of memory, but {mebibytes(available)} "
            "is available; use smaller --sizes, --batch-size or fewer runs"
        )


OFFICIAL_TEST = 10_000
"""Examples in the official test files of MNIST and Fashion-MNIST."""


def run_bytes(settings, members: int = 1) -> int:
    """:func:`training_bytes` of a run of ``settings`` (``members`` of them together),
    from the official split sizes, before any data is read."""
    from jaxmlp.data.load import OFFICIAL_TRAIN_SIZE
    from jaxmlp.evaluation import EVAL_CHUNK

    limit = settings.limit if settings.limit is not None else OFFICIAL_TRAIN_SIZE
    num_train = min(OFFICIAL_TRAIN_SIZE - settings.val_size, limit)
    examples = num_train + min(settings.val_size, limit) + min(OFFICIAL_TEST, limit)

    return training_bytes(
        settings.sizes,
        settings.batch_size,
        settings.optimizer,
        num_train,
        examples * settings.sizes[0],
        members,
        min(EVAL_CHUNK, examples) * max(settings.sizes[1:]) * members,
    )
