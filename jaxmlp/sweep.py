"""Sweeps: a grid of settings trained as populations, summarised as a table of rows.

A sweep's values come as text, as on the command line: a comma list makes a grid axis
(``lr="0.1,0.5"``), an integer setting also takes ranges (``seed="0-4"``), layer sizes take
``;`` between alternatives (``sizes="784,15,10;784,30,10"``). The grid is the product of
the axes, at most :data:`MAX_GRID_SIZE` members. Its members are grouped by
:class:`~jaxmlp.program.Program`: each group is one population, one compiled program
(:func:`jaxmlp.train.prepare`), trained one after another.
:func:`sweep_from_options` is ``jaxmlp sweep``: the grid, the table, the best run.

A **row** is one setting of the grid apart from the seed: its members are the same
experiment over several seeds, summarised by the mean, standard deviation, minimum and
maximum of their final validation and test accuracy. Rows are ranked by mean validation
accuracy; a member that diverged is reported and left out of its row's statistics.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jaxmlp.architecture import parse_sizes
from jaxmlp.display import percent, shown, shown_values
from jaxmlp.errors import ConfigError, DivergenceError, TrainingInterrupted
from jaxmlp.program import program_of
from jaxmlp.settings import FIELD_TYPES, SPECS, Kind, Settings, check_setting, resolve_settings

MAX_GRID_SIZE = 4096
"""The most members one sweep may have; larger ranges and grids are refused unexpanded."""
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

    Ranges are checked from their ends (against the setting's range, and their length
    against :data:`MAX_GRID_SIZE`) before any is expanded; duplicates are found in one pass.

    Raises:
      ConfigError: an empty value, a malformed range, a range or list longer than a grid
        may be, a duplicate, a value out of range.
    """
    separator = ";" if name == "sizes" else ","
    pieces: list[range | Any] = []
    for item in text.split(separator):
        item = item.strip()
        if not item:
            raise ConfigError(f"has an empty value in {text!r}", setting=name)
        if name != "sizes" and FIELD_TYPES[name].startswith("int") and "-" in item[1:]:
            pieces.append(parse_range(name, item))
        else:
            pieces.append(parse_item(name, item))
    count = sum(len(piece) if isinstance(piece, range) else 1 for piece in pieces)
    if count > MAX_GRID_SIZE:
        raise ConfigError(
            f"has {count:,} values in {shown_text(text)}; a sweep has at most "
            f"{MAX_GRID_SIZE:,} members",
            setting=name,
        )
    values = [v for piece in pieces for v in (piece if isinstance(piece, range) else [piece])]
    if name == "sizes":
        values = [parse_sizes(value) for value in values]
    duplicates = sorted({str(value) for value, times in Counter(values).items() if times > 1})
    if duplicates:
        raise ConfigError(f"lists {', '.join(duplicates)} more than once", setting=name)
    return values


def shown_text(text: str, most: int = 40) -> str:
    """``text`` quoted, cut to ``most`` characters."""
    return repr(text if len(text) <= most else text[: most - 1] + "…")


def parse_range(name: str, item: str) -> range:
    """``"0-4"`` → ``range(0, 5)``, its ends checked against the setting's range."""
    low, _, high = item.partition("-")
    try:
        first, last = int(low), int(high)
    except ValueError:
        problem = f"has {shown_text(item)}, not a range such as 0-4"
        raise ConfigError(problem, setting=name) from None
    if last < first:
        raise ConfigError(f"has the empty range {shown_text(item)}", setting=name)
    check_setting(name, first)
    check_setting(name, last)
    return range(first, last + 1)


def check_grid_size(axes: Mapping[str, Sequence[Any]]) -> None:
    """Raises ConfigError if the product of the axes' lengths exceeds :data:`MAX_GRID_SIZE`."""
    size = math.prod(len(values) for values in axes.values())
    if size > MAX_GRID_SIZE:
        lengths = " × ".join(f"{len(values)} {name}" for name, values in axes.items())
        raise ConfigError(
            f"the grid has {size:,} members ({lengths}); a sweep has at most {MAX_GRID_SIZE:,}"
        )


def expand_grid(
    preset: str, axes: Mapping[str, list[Any]], fixed: Mapping[str, Any] | None = None
) -> list[Settings]:
    """Every combination of the axes' values (in declaration order), each layered on the
    preset with the ``fixed`` values; checked like any run's settings."""
    check_grid_size(axes)
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
    """``indices`` with the last repeated up to a multiple of ``devices`` (copies dropped)."""
    return indices + [indices[-1]] * (-len(indices) % devices)


def run_sweep(
    members: Sequence[Settings], dataset, *, devices=None, on_epoch=None, write=None
) -> SweepOutcome:
    """Trains ``members`` one population per program (:func:`group_by_program`).

    Args:
      members: the grid's runs.
      dataset: their data (they share it).
      devices: ``--devices`` (members first, then each member's batch; default: on CPU, the
        CPU devices that take members, one per core at most; else one device).
      on_epoch: ``on_epoch(number, programs, members, progress)`` after each epoch of each
        population (``members``: the grid indices of its members).
      write: receives each member's epoch and test records (with ``member``, its index).

    Raises:
      TrainingInterrupted: Ctrl-C, after the last complete epoch; ``progress`` is the
        outcome so far.
    """
    from jaxmlp import parallel, train

    groups = group_by_program(members)
    outcome = SweepOutcome([None] * len(members), [[] for _ in members])
    write = write or (lambda record: None)
    for number, group in enumerate(groups, start=1):
        layout = parallel.device_layout(devices, len(group), spread_members=True)
        slots = padded(group, 1 if layout is None else layout.members)

        def report(progress, number=number, group=group):
            for slot, index in enumerate(group):
                history = progress.histories[slot]
                if history and history[-1]["epoch"] == progress.epoch:
                    write({**history[-1], "member": index})
            if on_epoch is not None:
                on_epoch(number, len(groups), group, progress)

        try:
            trainer = train.prepare([members[i] for i in slots], dataset, layout=layout)
            result = train.fit(trainer, on_epoch=report)
            progress, tests = result.progress, result.tests
        except DivergenceError as error:
            progress, tests = error.progress, None
        except TrainingInterrupted as error:
            if error.progress is not None:
                record_group(outcome, members, group, trainer, error.progress, None, write)
            done = error.completed_epoch
            outcome.interrupted = (
                f"after epoch {done} of program {number}/{len(groups)}"
                if done
                else f"in program {number}/{len(groups)} before its first epoch ended"
            )
            raise TrainingInterrupted(None, done=outcome.interrupted, progress=outcome) from None
        except KeyboardInterrupt:
            outcome.interrupted = f"while program {number}/{len(groups)} was being set up"
            raise TrainingInterrupted(None, done=outcome.interrupted, progress=outcome) from None
        record_group(outcome, members, group, trainer, progress, tests, write)
    return outcome


def record_group(outcome, members, group, trainer, progress, tests, write) -> None:
    """Adds one population's members to ``outcome`` (and writes their test records)."""
    for slot, index in enumerate(group):
        history = progress.histories[slot]
        val = history[-1]["val_accuracy"] if history else None
        test = tests[slot]["test_accuracy"] if tests else None
        diverged = progress.diverged[slot]
        outcome.results[index] = MemberResult(members[index].seed, val, test, diverged)
        outcome.histories[index] = history
        if tests:
            write({**tests[slot], "member": index})
        if val is not None and diverged is None and (outcome.best is None or val > outcome.best[0]):
            outcome.best = (val, index, trainer, progress.state, slot)


def grid_from_flags(
    preset: str, given: Mapping[str, Any]
) -> tuple[list[Settings], dict[str, list]]:
    """The members of the grid the flags describe, and its axes of more than one value."""
    axes = {name: parse_axis(name, text) for name, text in given.items() if takes_list(name)}
    fixed = {name: value for name, value in given.items() if not takes_list(name)}
    members = expand_grid(preset, axes, fixed)
    if members[0].val_size == 0:
        raise ConfigError("must be above 0: a sweep ranks its rows by validation", "val_size")
    return members, {name: values for name, values in axes.items() if len(values) > 1}


def progress_line(number: int, programs: int, epochs: int, progress, seconds: float) -> str:
    """``Program 1/2, epoch 3/10: val best 91.23%, median 89.10% (2 diverged)  1.2 s``."""
    accuracies = [
        history[-1]["val_accuracy"]
        for history, diverged in zip(progress.histories, progress.diverged)
        if history and diverged is None
    ]
    diverged = sum(d is not None for d in progress.diverged)
    where = f"Program {number}/{programs}, " if programs > 1 else ""
    summary = (
        f"val best {percent(max(accuracies))}%, median {percent(statistics.median(accuracies))}%"
        if accuracies
        else "every run diverged"
    )
    extra = f" ({diverged} diverged)" if diverged else ""
    return f"{where}epoch {progress.epoch}/{epochs}: {summary}{extra}  {seconds:.1f} s"


@dataclasses.dataclass(frozen=True)
class SweepOptions:
    """What ``jaxmlp sweep`` was asked to do.

    Attributes:
      preset: every run's starting settings.
      given: setting name → value given (text for the settings that take lists).
      metrics_out: the JSON-lines file of every run's records.
      save_best: where to save the run with the best validation accuracy.
      plot_dir: where to write the sweep's curves (``--out-dir``).
      as_json: print one JSON object instead of the table.
      quiet: print only the table.
      run_dir: the run directory that keeps the sweep (see :mod:`jaxmlp.run_dir`).
      overwrite: replace an earlier sweep's outputs.
      argv: the command line, for the run's record.
      method: ``--search``: ``grid``, ``random``, ``halving`` or ``pbt``.
      search: the search flags (``runs``, ``search_seed``, ``eta``, ``rungs``, ``ready``,
        ``truncation``, ``perturb``, ``resample``; absent or ``None``: not given).
    """

    preset: str = "seed"
    given: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    metrics_out: Path | None = None
    save_best: Path | None = None
    plot_dir: Path | None = None
    as_json: bool = False
    quiet: bool = False
    run_dir: Path | None = None
    overwrite: bool = False
    argv: tuple[str, ...] | None = None
    method: str = "grid"
    search: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def sweep_from_options(
    options: SweepOptions,
    echo: Callable[[str], None] = print,
    dataset=None,
    note: Callable[[str], None] | None = None,
):
    """Runs ``jaxmlp sweep``: prints the table (or JSON); returns the report.

    ``note`` prints notices and, with ``--json``, the closing line (default: standard error).
    ``options.method`` chooses how the members are found and trained: a grid (every
    member to the end, one population per program), random search (members drawn from
    distributions, then as a grid), successive halving or PBT (one population, acting
    between epochs: :mod:`jaxmlp.search_loop`).

    Raises:
      ConfigError: a bad grid, search or output path, a grid that does not fit in memory.
      OutputPathError: an output would replace an earlier one without ``overwrite``.
      TrainingInterrupted: Ctrl-C, after the table of what was complete.
    """
    import jax

    from jaxmlp import keeping, memory, parallel, plots, runs, search_loop
    from jaxmlp.outputs import check_not_replacing, check_outputs

    note = note or (lambda line: print(line, file=sys.stderr))
    members, axes, distributions, plan = search_loop.members_from_flags(
        options.preset, options.given, options.method, options.search
    )
    first = members[0]
    if plan.method in search_loop.ONE_POPULATION and first.devices is not None:
        raise ConfigError(f"--search {plan.method} trains on one device; leave out --devices")
    metrics_out, save_best, plot_dir = keeping.plan_sweep_outputs(
        run_dir=options.run_dir,
        metrics_out=options.metrics_out,
        save_best=options.save_best,
        plot_dir=options.plot_dir,
        overwrite=options.overwrite,
    )
    if options.plot_dir is not None:
        plots.require_matplotlib()
    elif plot_dir is not None and not plots.has_matplotlib():
        note(f"note: no plots: {plots.INSTALL_HINT}")
        plot_dir = None
    plot_path = None if plot_dir is None else plot_dir / plots.SWEEP_CURVES
    check_outputs({"--metrics-out": metrics_out, "--save-best": save_best, "--out-dir": plot_path})
    if options.run_dir is None:
        check_not_replacing({"--out-dir": plot_path}, overwrite=options.overwrite)
    groups = group_by_program(members)
    needed, largest = max((memory.run_bytes(members[g[0]], members=len(g)), len(g)) for g in groups)
    memory.check_fits_memory(needed, f"a population of {largest} runs")
    layout = parallel.setup(
        first,
        parallel.ClusterOptions(),
        members=max(map(len, groups)),
        spread_members=plan.method not in search_loop.ONE_POPULATION,
    )
    devices = 1 if layout is None else layout.num_devices
    say = (lambda line: None) if options.quiet or options.as_json else echo
    columns = varying(members)
    settings_count = len({row_key(member) for member in members})
    say(
        f"Sweep: {len(members)} runs ({settings_count} settings) in {len(groups)} "
        f"program{'s' * (len(groups) > 1)} on {devices} {jax.default_backend()} "
        f"device{'s' * (devices > 1)}; memory estimate {memory.mebibytes(needed)}"
        + "".join(f"; {name} {shown_values(values)}" for name, values in axes.items())
        + search_loop.plan_text(plan, distributions)
    )
    dataset = runs.load_settings_data(first) if dataset is None else dataset
    keeper = None
    if options.run_dir is not None and parallel.is_main_process():
        keeper = keeping.SweepKeeper(options.run_dir, members, axes, argv=options.argv, note=note)
        keeper.start(dataset, options.overwrite)
    clock = [time.perf_counter()]

    def lap() -> float:
        now, then = time.perf_counter(), clock[0]
        clock[0] = now
        return now - then

    def on_epoch(number, programs, group, progress):
        say(progress_line(number, programs, members[group[0]].epochs, progress, lap()))

    def on_search_epoch(running, outcome):
        say(search_loop.progress_line(first.epochs, running, outcome, lap()))

    def on_event(event):
        for line in search_loop.event_lines(event):
            say(line)

    began = time.perf_counter()
    interrupted = None
    start = sweep_start_record(members, axes, dataset)
    start["search"] = search_loop.plan_record(plan, distributions)
    with runs.metrics_sink(metrics_out, start, []) as write:

        def write_member(record):
            if "member" not in record:
                write(record)
                return
            member = members[record["member"]]
            chosen = {name: member.to_dict()[name] for name in [*columns, "seed"]}
            write({**record, "settings": {**chosen, **record.get("values", {})}})
            if keeper is not None and record.get("event", "epoch") in ("epoch", "test"):
                keeper.member_record(record)

        hooks = {"on_epoch": on_search_epoch, "on_event": on_event, "write": write_member}
        try:
            if plan.method == "halving":
                outcome = search_loop.run_halving(members, dataset, plan, **hooks)
            elif plan.method == "pbt":
                outcome = search_loop.run_pbt(members, dataset, plan, distributions, **hooks)
            else:
                outcome = run_sweep(
                    members, dataset, devices=first.devices, on_epoch=on_epoch, write=write_member
                )
        except TrainingInterrupted as error:
            interrupted, outcome = error, error.progress
    seconds = time.perf_counter() - began
    final = getattr(outcome, "members", None) or members
    columns = varying(final)
    done = [index for index, result in enumerate(outcome.results) if result is not None]
    rows = make_rows([final[i] for i in done], [outcome.results[i] for i in done])
    network_epochs = sum(len(history) for history in outcome.histories)
    report = {
        "rows": [row.to_dict() for row in rows],
        "runs": len(members),
        "programs": len(groups),
        "devices": devices,
        "seconds": seconds,
        "interrupted": outcome.interrupted,
        "search": search_loop.search_report(plan, distributions, outcome, network_epochs),
    }
    halving = plan.method == "halving"
    table = format_table(
        rows, columns, search_loop.epochs_column(final, outcome.histories) if halving else None
    )
    if options.as_json:
        echo(json.dumps(report, indent=2))
    else:
        echo(table)
        say(
            f"{len(done)} runs in {seconds:.1f} s ({seconds / max(len(done), 1):.2f} s a run); "
            f"{network_epochs} network-epochs"
        )
        if plan.method == "pbt" and outcome.best is not None:
            index = outcome.best[1]
            schedule = search_loop.schedule_text(outcome.schedules[index])
            say(f"Best member {index}'s values by epoch: {schedule}")
    best = None
    if save_best is not None and outcome.best is not None:
        value, index, trainer, state, slot = outcome.best
        best = {"member": index, "val_accuracy": value, "settings": final[index].to_dict()}
        history = (
            outcome.checkpoint_history(index) if plan.method == "pbt" else outcome.histories[index]
        )
        save_member(
            save_best, keeping.kept(final[index]), trainer.member_state(state, slot), history
        )
        if keeper is None:
            say(f"saved the best run (validation {percent(value)}%) to {save_best}")
    if plot_path is not None:
        curves: dict[tuple, list] = {}
        for index in done:
            curves.setdefault(row_key(final[index]), []).append(outcome.histories[index])
        labels = [
            ", ".join(f"{name} {getattr(row.settings, name)}" for name in columns) or "all runs"
            for row in rows
        ]
        ordered = [curves[row_key(row.settings)] for row in rows]
        written = plots.save_sweep_curves(ordered, labels, plot_path)
        if keeper is None:
            say(f"wrote {written}")
    if keeper is not None:
        keeper.finish(report, table, best)
        (note if options.as_json or options.quiet else echo)(keeper.summary(best))
    if interrupted is not None:
        raise interrupted
    return report


def sweep_start_record(
    members: list[Settings], axes: dict[str, list], dataset=None
) -> dict[str, Any]:
    """The metrics file's header: the first run's settings, the grid's axes, versions."""
    from jaxmlp import runs

    record = runs.start_record(members[0], 0, dataset)
    record["axes"] = {name: [str(value) for value in values] for name, values in axes.items()}
    record["runs"] = len(members)
    return record


def save_member(path: Path, settings: Settings, state, history: list) -> None:
    """Writes one member (its state without the member axis) as an ordinary checkpoint
    (``train --resume`` continues it)."""
    import jax
    import numpy as np

    from jaxmlp import checkpoint as checkpoints

    checkpoints.save_checkpoint(
        path,
        checkpoints.Checkpoint(
            params=state.params,
            settings=settings,
            epoch=len(history),
            metrics=list(history),
            opt_state_leaves=tuple(np.asarray(leaf) for leaf in jax.tree.leaves(state.opt_state)),
        ),
    )
