"""What the settings give the compiled program: its shape (:class:`Program`) and the
per-run values it takes as arrays (:class:`RunValues`).

Settings of kind ``program`` (:class:`~jaxmlp.settings.Kind`) shape the compiled program,
so runs that share them share one. Per-run values (``value`` settings) are array
arguments: a solo run's are arrays with a member axis of one, a population's have one row
per member. Derived terms (``1 − dropout``, the warm-up in steps, …) are computed here,
on the host in float64 and rounded to float32, so a compiled program that takes them as
arrays computes what one with the constants built in would.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, NamedTuple

from jaxmlp.errors import ConfigError
from jaxmlp.settings import PROGRAM, names_of

if TYPE_CHECKING:
    from jaxmlp.settings import Settings


@dataclasses.dataclass(frozen=True)
class Program:
    """What the compiled training program depends on, beyond array shapes.

    Besides the ``program`` settings it records which optional terms the program must
    compute (dropout masks, smoothed targets, weight decay, warm-up, random erasing): a
    population whose members differ in those values computes them for all, with the value 0
    where a member has none, which leaves that member's arithmetic unchanged.
    """

    sizes: tuple[int, ...]
    init: str
    epochs: int
    batch_size: int
    optimizer: str
    schedule: str
    grad: str
    augment_shift: int
    augment_flip: bool
    drop_last: bool
    dropout: bool
    input_dropout: bool
    label_smoothing: bool
    weight_decay: bool
    warmup: bool
    augment_erase: bool


def program_of(members: list[Settings]) -> Program:
    """The program that trains every one of ``members``; they must share its settings.

    Raises:
      ConfigError: the members differ in a ``program`` setting.
    """
    first = members[0]
    for name in names_of(PROGRAM):
        values = {getattr(member, name) for member in members}
        if len(values) > 1:
            raise ConfigError(
                f"must be the same for runs that share one program, got {sorted(values)}",
                setting=name,
            )
    return Program(
        **{name: getattr(first, name) for name in names_of(PROGRAM)},
        dropout=any(member.dropout for member in members),
        input_dropout=any(member.input_dropout for member in members),
        label_smoothing=any(member.label_smoothing for member in members),
        weight_decay=any(member.weight_decay for member in members),
        warmup=any(member.warmup_epochs for member in members),
        augment_erase=any(member.augment_erase for member in members),
    )


class RunValues(NamedTuple):
    """The per-run values as arrays: scalars for one run, ``(R,)`` for a population of R.

    Derived terms are computed here, on the host in float64 and then rounded to float32 —
    ``1 − rate`` for dropout, ``1 − ε`` and ``ε / K`` for label smoothing, the warm-up in
    steps — exactly as a Python constant would be, so a compiled program that takes them
    as arrays computes what one with the constants built in does, bit for bit.
    """

    lr: Any
    momentum: Any
    weight_decay: Any
    warmup_steps: Any
    dropout_keep: Any
    """``1 − dropout``: the probability that a hidden unit is kept."""
    input_keep: Any
    """``1 − input_dropout``."""
    target_on: Any
    """``1 − ε``: the weight of the one-hot target in a smoothed target."""
    target_floor: Any
    """``ε / K``: what every class gets in a smoothed target."""
    erase_probability: Any
    """The probability that random erasing erases a rectangle of a training image."""


def warmup_steps(settings: Settings, steps_per_epoch: int) -> int:
    """The warm-up in steps, at most one step short of the whole run."""
    total = max(settings.epochs * steps_per_epoch, 1)
    return min(int(settings.warmup_epochs * steps_per_epoch), total - 1)


def run_values(members: list[Settings], steps_per_epoch: int, *, stacked: bool = True) -> RunValues:
    """The members' per-run values, one numpy array per value (a leading member axis if
    ``stacked``)."""
    import numpy as np  # here, not at the top: `jaxmlp sweep --help` need not load numpy

    def column(value, dtype=np.float32):
        array = np.asarray([value(member) for member in members]).astype(dtype)
        return array if stacked else array[0]

    return RunValues(
        lr=column(lambda s: s.lr),
        momentum=column(lambda s: s.momentum),
        weight_decay=column(lambda s: s.weight_decay),
        warmup_steps=column(lambda s: warmup_steps(s, steps_per_epoch), np.int32),
        dropout_keep=column(lambda s: 1.0 - s.dropout),
        input_keep=column(lambda s: 1.0 - s.input_dropout),
        target_on=column(lambda s: 1.0 - s.label_smoothing),
        target_floor=column(lambda s: s.label_smoothing / s.sizes[-1]),
        erase_probability=column(lambda s: s.augment_erase),
    )
