"""Range checks for numeric options, done where the command line meets the library.

Each check raises :class:`~jaxmlp.errors.ConfigError` (exit code 2) with one line naming
the option as the user wrote it, the allowed range and the value given; it returns the
value, so a check reads as an assignment::

    seed = check_seed("--seed", seed)
    batch_size = check_int("--batch-size", batch_size, minimum=1)
    rate = check_float("--dropout", rate, minimum=0.0, below=1.0)

Seeds: ``jax.random.key`` takes a 64-bit signed integer (larger ones raise
``OverflowError``), but without 64-bit mode (training's default) it keeps only the low
32 bits, so ``--seed 0`` and ``--seed 4294967296`` would be the same run. Seeds are
therefore whole numbers from 0 to :data:`MAX_SEED` = 2**32 − 1: each names one key in
either mode.
"""

from __future__ import annotations

import math

from jaxmlp.errors import ConfigError

MAX_SEED = 2**32 - 1


def check_int(
    name: str, value: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Returns ``value`` if ``minimum <= value <= maximum`` (each bound optional)."""
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ConfigError(f"{name} must be {describe_range(minimum, maximum)}, got {value}")
    return value


def check_seed(name: str, value: int) -> int:
    """Returns ``value`` if it is a seed every JAX mode tells apart: 0 to :data:`MAX_SEED`."""
    return check_int(name, value, minimum=0, maximum=MAX_SEED)


def check_float(
    name: str,
    value: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
) -> float:
    """Returns ``value`` if it is finite and within the bounds: ``minimum``/``maximum``
    inclusive, ``above``/``below`` exclusive (each optional)."""
    fits = math.isfinite(value) and all(
        (
            minimum is None or value >= minimum,
            maximum is None or value <= maximum,
            above is None or value > above,
            below is None or value < below,
        )
    )
    if not fits:
        bounds = describe_float_bounds(minimum, maximum, above, below)
        raise ConfigError(f"{name} must be a finite number{bounds}, got {value}")
    return value


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


def describe_range(minimum: int | None, maximum: int | None) -> str:
    """``"from 1 to 10"``, ``"at least 1"``, ``"at most 10"``."""
    if minimum is not None and maximum is not None:
        return f"a whole number from {minimum:,} to {maximum:,}"
    if minimum is not None:
        return f"at least {minimum:,}"
    return f"at most {maximum:,}"


def describe_float_bounds(*bounds: float | None) -> str:
    """`` in [0, 1)`` style bounds for :func:`check_float`'s message."""
    minimum, maximum, above, below = bounds
    low = f"[{minimum:g}" if minimum is not None else f"({above:g}" if above is not None else None
    high = f"{maximum:g}]" if maximum is not None else f"{below:g})" if below is not None else None
    if low and high:
        return f" in {low}, {high}"
    if low:
        return f" {'≥' if minimum is not None else '>'} {low[1:]}"
    if high:
        return f" {'≤' if maximum is not None else '<'} {high[:-1]}"
    return ""

