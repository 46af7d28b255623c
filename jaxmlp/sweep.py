"""Sweeps: a grid of settings trained as populations, summarised as a table of rows.

A sweep's values come as text, as on the command line: a comma list makes a grid axis
(``lr="0.1,0.5"``), an integer setting also takes ranges (``seed="0-4"``), layer sizes take
``;`` between alternatives (``sizes="784,15,10;784,30,10"``). The grid is the product of
the axes. Its members are grouped by :class:`~jaxmlp.settings.Program`: each group is one
population, one compiled program (:mod:`jaxmlp.population`), trained one after another.

A **row** is one setting of the grid apart from the seed: its members are the same
experiment over several seeds, summarised by the mean, standard deviation, minimum and
maximum of their final validation and test accuracy. Rows are ranked by mean validation
accuracy; a member that diverged is reported and left out of its row's statistics.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jaxmlp.errors import ConfigError
from jaxmlp.settings import (
    FIELD_TYPES,
    SPECS,
    Kind,
    Settings,
    program_of,
    resolve_settings,
    shown,
)

LIST_KINDS = (Kind.PROGRAM, Kind.VALUE)
"""Settings that may take several values in a sweep."""
NOT_LISTS = ("augment_flip", "drop_last")


def takes_list(name: str) -> bool:
    """Whether a sweep's ``--name`` takes a list of values."""
    return SPECS[name].kind in LIST_KINDS and name not in NOT_LISTS


def parse_item(name: str, text: str) -> Any:
    """One value of setting ``name`` from its text."""
    kind = FIELD_TYPES[name]
    try:
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
    except ValueError:
        word = "whole number" if kind.startswith("int") else "number"
        raise ConfigError(f"has {text!r}, which is not a {word}", setting=name) from None
    return text


def parse_axis(name: str, text: str) -> list[Any]:
    """The values of one grid axis: ``"0.1,0.5"``, ``"0-4"``, ``"784,15,10;784,30,10"``.

    Raises:
      ConfigError: an empty value, a malformed range, a duplicate, a value out of range.
    """
    separator = ";" if name == "sizes" else ","
    values: list[Any] = []
    for item in text.split(separator):
        item = item.strip()
        if not item:
            raise ConfigError(f"has an empty value in {text!r}", setting=name)
        if name != "sizes" and FIELD_TYPES[name].startswith("int") and "-" in item[1:]:
            values += parse_range(name, item)
        else:
            values.append(parse_item(name, item))
    if name == "sizes":
        from jaxmlp.settings import parse_sizes

        values = [parse_sizes(value) for value in values]
    duplicates = sorted({str(v) for v in values if values.count(v) > 1})
    if duplicates:
        raise ConfigError(f"lists {', '.join(duplicates)} more than once", setting=name)
    return values


def parse_range(name: str, item: str) -> list[int]:
    """``"0-4"`` → ``[0, 1, 2, 3, 4]``."""
    low, _, high = item.partition("-")
    try:
        first, last = int(low), int(high)
    except ValueError:
        raise ConfigError(f"has {item!r}, not a range such as 0-4", setting=name) from None
    if last < first:
        raise ConfigError(f"has the empty range {item!r}", setting=name)
    return list(range(first, last + 1))


def expand_grid(
    preset: str, axes: Mapping[str, list[Any]], fixed: Mapping[str, Any] | None = None
) -> list[Settings]:
    """Every combination of the axes' values (in declaration order), each layered on the
    preset with the ``fixed`` values; checked like any run's settings."""
    names = [name for name in SPECS if name in axes]
    return [
        resolve_settings(preset, explicit={**(fixed or {}), **dict(zip(names, combination))})
        for combination in itertools.product(*(axes[name] for name in names))
    ]


def group_by_program(members: Sequence[Settings]) -> list[list[int]]:
    """Indices of ``members``, grouped by the program they share (first-seen order)."""
    groups: dict[Any, list[int]] = {}
    for index, member in enumerate(members):
        groups.setdefault(program_of([member]), []).append(index)
    return list(groups.values())


def row_key(settings: Settings) -> tuple:
    """What makes a row: every setting but the seed."""
    values = settings.to_dict()
    values.pop("seed")
    return tuple(sorted((k, str(v)) for k, v in values.items()))


@dataclasses.dataclass(frozen=True)
class MemberResult:
    """One member's outcome."""

    seed: int
    val_accuracy: float | None
    test_accuracy: float | None
    diverged: int | None
    """The epoch in which it diverged, or ``None``."""


def spread(values: list[float]) -> dict[str, float | None]:
    """``mean``, ``sd`` (sample; ``None`` below two values), ``min``, ``max``."""
    if not values:
        return {"mean": None, "sd": None, "min": None, "max": None}
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else None,
        "min": min(values),
        "max": max(values),
    }


@dataclasses.dataclass(frozen=True)
class Row:
    """One setting of the grid over its seeds."""

    settings: Settings
    members: tuple[MemberResult, ...]

    def accuracies(self, split: str) -> list[float]:
        """The final ``split`` accuracies of the members that did not diverge."""
        values = [getattr(member, f"{split}_accuracy") for member in self.members]
        ok = [m.diverged is None for m in self.members]
        return [v for v, fine in zip(values, ok) if fine and v is not None]

    def to_dict(self) -> dict[str, Any]:
        """The row as ``--json`` prints it."""
        return {
            "settings": {k: v for k, v in self.settings.to_dict().items() if k != "seed"},
            "val_accuracy": spread(self.accuracies("val")),
            "test_accuracy": spread(self.accuracies("test")),
            "members": [dataclasses.asdict(member) for member in self.members],
        }


def make_rows(members: Sequence[Settings], results: Sequence[MemberResult]) -> list[Row]:
    """The rows of a sweep, best mean validation accuracy first."""
    grouped: dict[tuple, list[int]] = {}
    for index, member in enumerate(members):
        grouped.setdefault(row_key(member), []).append(index)
    rows = [
        Row(members[indices[0]], tuple(results[i] for i in indices)) for indices in grouped.values()
    ]

    def rank(row: Row) -> float:
        mean = spread(row.accuracies("val"))["mean"]
        return -mean if mean is not None else math.inf

    return sorted(rows, key=rank)


def varying(members: Sequence[Settings]) -> list[str]:
    """The settings (but the seed) whose value differs between members."""
    return [
        name
        for name in SPECS
        if name != "seed" and len({str(getattr(member, name)) for member in members}) > 1
    ]


def shown_values(values: Sequence[Any], most: int = 8) -> str:
    """An axis's values as a header shows them: ``0.1, 0.5`` or ``0, 1, 2, …, 99 (100)``."""
    texts = [shown(value) for value in values]
    if len(texts) > most:
        return f"{', '.join(texts[:3])}, …, {texts[-1]} ({len(texts)})"
    return ", ".join(texts)


def percent(value: float | None) -> str:
    """``91.35`` (``-`` for none)."""
    return "-" if value is None else f"{100 * value:.2f}"


def format_spread(values: dict[str, float | None]) -> list[str]:
    """``mean ± sd``, ``min``, ``max`` as table cells."""
    sd = "" if values["sd"] is None else f" ± {percent(values['sd'])}"
    return [f"{percent(values['mean'])}{sd}", percent(values["min"]), percent(values["max"])]


def format_table(
    rows: Sequence[Row],
    columns: Sequence[str],
    extra: Mapping[str, Callable[[Row], str]] | None = None,
) -> str:
    """The sweep's table: one row per setting, best validation accuracy first.

    ``extra``: more columns before ``runs``, header → the cell of a row.
    """
    extra = extra or {}
    header = [*columns, "val mean ± sd", "min", "max", "test mean ± sd", "min", "max", *extra]
    header.append("runs")
    lines = []
    for row in rows:
        diverged = sum(member.diverged is not None for member in row.members)
        runs = f"{len(row.members)}" + (f" ({diverged} diverged)" if diverged else "")
        lines.append(
            [shown(getattr(row.settings, name)) for name in columns]
            + format_spread(spread(row.accuracies("val")))
            + format_spread(spread(row.accuracies("test")))
            + [cell(row) for cell in extra.values()]
            + [runs]
        )
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines)]
    text = [
        "  ".join(str(cell).rjust(width) for cell, width in zip(line, widths))
        for line in [header, *lines]
    ]
    return "\n".join([text[0], "-" * len(text[0]), *text[1:]])


@dataclasses.dataclass
class SweepOutcome:
    """What :func:`run_sweep` produced, for the members it reached.

    Attributes:
      results: per member (in grid order), its result, or ``None`` if never trained.
      histories: per member, its epoch records.
      best: ``(val_accuracy, member index, trainer, state, slot)`` of the best member.
      interrupted: how far a Ctrl-C let it get, or ``None``.
    """

    results: list[MemberResult | None]
    histories: list[list[dict[str, Any]]]
    best: tuple | None = None
    interrupted: str | None = None


def padded(indices: list[int], devices: int) -> list[int]:
    """``indices`` with the last repeated up to a multiple of ``devices`` (the copies'
    results are dropped)."""
    return indices + [indices[-1]] * (-len(indices) % devices)


def run_sweep(members: Sequence[Settings], dataset, *, mesh=None, on_epoch=None, write=None) -> SweepOutcome:
    """Trains ``members`` one population per program (:func:`group_by_program`).

    Args:
      members: the grid's runs.
      dataset: their data (they share it).
      mesh: spreads each population's members over devices (see
        :func:`jaxmlp.population.member_mesh`).
      on_epoch: ``on_epoch(number, programs, members, result)`` after each epoch of each
        population (``members``: the grid indices of its members).
      write: receives each member's epoch and test records (with ``member``, its index).

    Ctrl-C ends the sweep after the last complete epoch; the outcome says so.
    """
    from jaxmlp.population import fit_population, prepare_population

    groups = group_by_program(members)
    devices = 1 if mesh is None else mesh.devices.size
    outcome = SweepOutcome([None] * len(members), [[] for _ in members])
    write = write or (lambda record: None)
    for number, group in enumerate(groups, start=1):
        try:
            indices = padded(group, devices)
            trainer = prepare_population([members[i] for i in indices], dataset, mesh=mesh)

            def report(result, number=number, group=group):
                for slot, index in enumerate(group):
                    history = result.histories[slot]
                    if history and history[-1]["epoch"] == result.epochs_done:
                        write({**history[-1], "member": index})
                if on_epoch is not None:
                    on_epoch(number, len(groups), group, result)

            result = fit_population(trainer, on_epoch=report)
        except KeyboardInterrupt:
            outcome.interrupted = f"while program {number}/{len(groups)} was being set up"
            return outcome
        for slot, index in enumerate(group):
            history = result.histories[slot]
            val = history[-1]["val_accuracy"] if history else None
            test = result.test[slot]["test_accuracy"] if result.test else None
            diverged = result.diverged[slot]
            outcome.results[index] = MemberResult(members[index].seed, val, test, diverged)
            outcome.histories[index] = history
            if result.test:
                write({**result.test[slot], "member": index})
            if val is not None and diverged is None and (outcome.best is None or val > outcome.best[0]):
                outcome.best = (val, index, trainer, result.state, slot)
        if result.interrupted:
            outcome.interrupted = f"after epoch {result.epochs_done} of program {number}/{len(groups)}"
            return outcome
    return outcome
