"""What a network is, as plain data: its layer widths and initialisation schemes.

Shared by the model (:mod:`jaxmlp.model`) and the settings' schema
(:mod:`jaxmlp.settings`), neither of which imports the other; no JAX here.
"""

from __future__ import annotations

import numbers
from typing import Any

from jaxmlp.errors import ConfigError

INIT_SCHEMES = ("normal", "he", "glorot")
"""N(0, 1) as in the seed, He, Glorot."""


def check_sizes(sizes: tuple[int, ...]) -> str | None:
    """The problem with layer widths: fewer than an input and an output, a width below 1,
    under 2 classes; ``None`` if there is none."""
    if len(sizes) < 2:
        return "needs at least an input and an output width (e.g. 784,15,10)"
    if min(sizes) < 1:
        return f"must all be positive, got {','.join(map(str, sizes))}"
    if sizes[-1] < 2:
        return f"must end with at least 2 classes, got {sizes[-1]}"
    return None


def parse_sizes(text: Any) -> tuple[int, ...]:
    """Layer widths from ``"784,15,10"`` or a sequence of integers.

    Raises:
      ConfigError: not integers, fewer than two widths, a width below 1, under 2 classes.
    """
    if isinstance(text, str):
        try:
            sizes = tuple(int(part.strip()) for part in text.split(","))
        except ValueError:
            raise ConfigError(
                f"must be comma-separated integers such as 784,15,10, got {text!r}", setting="sizes"
            ) from None
    elif isinstance(text, (list, tuple)) and all(
        isinstance(size, numbers.Integral) and not isinstance(size, bool) for size in text
    ):
        sizes = tuple(int(size) for size in text)
    else:
        raise ConfigError(f"must be a list of integers, got {text!r}", setting="sizes")
    problem = check_sizes(sizes)
    if problem:
        raise ConfigError(problem, setting="sizes")
    return sizes
