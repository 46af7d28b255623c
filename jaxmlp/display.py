"""How numbers and settings read in tables, help texts and progress lines (no JAX)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def number(value: float) -> str:
    """``3``, ``0.25``, ``4294967296``, ``1e+30``: integers in full, other numbers short."""
    if isinstance(value, int) or (
        math.isfinite(value) and value == int(value) and abs(value) < 1e16
    ):
        return str(int(value))
    return f"{value:g}"


def percent(fraction: float | None, missing: str = "-") -> str:
    """A fraction as a percentage with two decimals, no sign: ``0.9135`` → ``91.35``."""
    return missing if fraction is None else f"{100 * fraction:.2f}"


def shown(value: Any) -> str:
    """A setting's value as ``--help`` and tables show it: ``784,15,10``, ``0.1``, ``true``."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def shown_values(values: Sequence[Any], most: int = 8) -> str:
    """Several values as a header shows them: ``0.1, 0.5`` or ``0, 1, 2, …, 99 (100)``."""
    texts = [shown(value) for value in values]
    if len(texts) > most:
        return f"{', '.join(texts[:3])}, …, {texts[-1]} ({len(texts)})"
    return ", ".join(texts)
