"""``jaxmlp sweep``: a grid of runs, trained as populations, summarised as a table."""

from __future__ import annotations

import enum
import json
import statistics
import time
from pathlib import Path
from typing import Any

import typer

from jaxmlp import memory, sweep
from jaxmlp.cli.app import app
from jaxmlp.cli.options import TRAIN_SETTINGS, with_settings
from jaxmlp.environment import require_backend
from jaxmlp.errors import ConfigError, TrainingInterrupted
from jaxmlp.outputs import check_outputs
from jaxmlp.settings import PRESET_NAMES, Settings

Preset = enum.Enum("Preset", {name: name for name in PRESET_NAMES}, type=str)


def grid_from_flags(preset: str, given: dict[str, Any]) -> tuple[list[Settings], dict[str, list]]:
    """The members of the grid the flags describe, and its axes of more than one value."""
    axes = {
        name: sweep.parse_axis(name, text) for name, text in given.items() if sweep.takes_list(name)
    }
    fixed = {name: value for name, value in given.items() if not sweep.takes_list(name)}
    members = sweep.expand_grid(preset, axes, fixed)
    if members[0].val_size == 0:
        raise ConfigError("must be above 0: a sweep ranks its rows by validation", "val_size")
    return members, {name: values for name, values in axes.items() if len(values) > 1}


def progress_line(number: int, programs: int, epochs: int, result, seconds: float) -> str:
    """``Program 1/2, epoch 3/10: val best 91.23%, median 89.10% (2 diverged)  1.2 s``."""
    accuracies = [
        history[-1]["val_accuracy"]
        for history, diverged in zip(result.histories, result.diverged)
        if history and diverged is None
    ]
    diverged = sum(d is not None for d in result.diverged)
    where = f"Program {number}/{programs}, " if programs > 1 else ""
    summary = (
        f"val best {100 * max(accuracies):.2f}%, median {100 * statistics.median(accuracies):.2f}%"
        if accuracies
        else "every run diverged"
    )
    extra = f" ({diverged} diverged)" if diverged else ""
    return f"{where}epoch {result.epochs_done}/{epochs}: {summary}{extra}  {seconds:.1f} s"


def mesh_for(devices: str | None):
    """The member mesh ``--devices`` asks for (default: one device)."""
    from jaxmlp import population

    return population.member_mesh(None if devices == "all" else int(devices or 1))


@app.command("sweep")
@with_settings(TRAIN_SETTINGS, as_list=sweep.takes_list)
def sweep_command(
    preset: Preset = typer.Option("seed", help="Starting settings of every run (see 'train')."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    metrics_out: Path | None = typer.Option(
        None, help="JSON lines: a start record, then each run's epochs and test result."
    ),
    save_best: Path | None = typer.Option(
        None, help="Save the run with the best validation accuracy as a checkpoint."
    ),
    plot_dir: Path | None = typer.Option(
        None, help="Write sweep_curves.png: validation accuracy per setting, min-max band."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the table."),
    settings: dict[str, Any] | None = None,
) -> int:
    """Train a grid of runs: a comma list makes a grid axis (--lr 0.1,0.5), integers also
    take ranges (--seed 0-4), --sizes takes ';' between alternatives.

    Runs that share sizes, batch size, epochs, optimizer, schedule, gradient method and
    augmentation train together, as one population in one compiled program. Prints a
    table, one row per setting over its seeds, best mean validation accuracy first.
    Exit codes: 0 done, 1 data problem, 2 bad arguments, 130 Ctrl-C (after the table).
    """
    import jax

    from jaxmlp import plots, runs
    from jaxmlp.parallel import configure_backend

    members, axes = grid_from_flags(Preset(preset).value, settings or {})
    first = members[0]
    if plot_dir is not None:
        plots.require_matplotlib()
    plot_path = None if plot_dir is None else plot_dir / plots.SWEEP_CURVES
    check_outputs({"--metrics-out": metrics_out, "--save-best": save_best, "--plot-dir": plot_path})
    groups = sweep.group_by_program(members)
    needed, largest = max((memory.run_bytes(members[g[0]], members=len(g)), len(g)) for g in groups)
    memory.check_fits_memory(needed, f"a population of {largest} runs")
    configure_backend(first.platform, first.matmul_precision)
    require_backend()
    mesh = mesh_for(first.devices)
    devices = 1 if mesh is None else mesh.devices.size
    say = (lambda line: None) if quiet or as_json else typer.echo
    columns = sweep.varying(members)
    settings_count = len({sweep.row_key(member) for member in members})
    say(
        f"Sweep: {len(members)} runs ({settings_count} settings) in {len(groups)} "
        f"program{'s' * (len(groups) > 1)} on {devices} {jax.default_backend()} "
        f"device{'s' * (devices > 1)}; memory estimate {memory.mebibytes(needed)}"
        + "".join(f"; {name} {sweep.shown_values(values)}" for name, values in axes.items())
    )
    dataset = runs.load_settings_data(first)
    clock = [time.perf_counter()]

    def on_epoch(number, programs, group, result):
        now = time.perf_counter()
        epochs = members[group[0]].epochs
        say(progress_line(number, programs, epochs, result, now - clock[0]))
        clock[0] = now

    began = time.perf_counter()
    with runs.metrics_sink(metrics_out, sweep_start_record(members, axes), []) as write:

        def write_member(record):
            member = members[record["member"]]
            chosen = {name: member.to_dict()[name] for name in [*columns, "seed"]}
            write({**record, "settings": chosen})

        outcome = sweep.run_sweep(members, dataset, mesh=mesh, on_epoch=on_epoch, write=write_member)
    seconds = time.perf_counter() - began
    done = [index for index, result in enumerate(outcome.results) if result is not None]
    rows = sweep.make_rows([members[i] for i in done], [outcome.results[i] for i in done])
    if as_json:
        report = {
            "rows": [row.to_dict() for row in rows],
            "runs": len(members),
            "programs": len(groups),
            "devices": devices,
            "seconds": seconds,
            "interrupted": outcome.interrupted,
        }
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(sweep.format_table(rows, columns))
        say(f"{len(done)} runs in {seconds:.1f} s ({seconds / max(len(done), 1):.2f} s a run)")
    if save_best is not None and outcome.best is not None:
        value, index, trainer, state, slot = outcome.best
        save_member(save_best, members[index], trainer, state, slot, outcome.histories[index])
        say(f"saved the best run (validation {100 * value:.2f}%) to {save_best}")
    if plot_path is not None:
        curves = {}
        for index in done:
            curves.setdefault(sweep.row_key(members[index]), []).append(outcome.histories[index])
        labels = [
            ", ".join(f"{name} {getattr(row.settings, name)}" for name in columns) or "all runs"
            for row in rows
        ]
        ordered = [curves[sweep.row_key(row.settings)] for row in rows]
        say(f"wrote {plots.save_sweep_curves(ordered, labels, plot_path)}")
    if outcome.interrupted:
        raise TrainingInterrupted(None, done=outcome.interrupted)
    return 0


def sweep_start_record(members: list[Settings], axes: dict[str, list]) -> dict[str, Any]:
    """The metrics file's header: the first run's settings, the grid's axes, versions."""
    from jaxmlp import runs

    record = runs.start_record(members[0], 0)
    record["axes"] = {name: [str(value) for value in values] for name, values in axes.items()}
    record["runs"] = len(members)
    return record


def save_member(path: Path, settings: Settings, trainer, state, slot: int, history: list) -> None:
    """Writes one member as an ordinary checkpoint (``train --resume`` continues it)."""
    import jax
    import numpy as np

    from jaxmlp import checkpoint as checkpoints

    member = trainer.member_state(state, slot)
    checkpoints.save_checkpoint(
        path,
        checkpoints.Checkpoint(
            params=member.params,
            settings=settings,
            epoch=len(history),
            metrics=list(history),
            opt_state_leaves=tuple(np.asarray(leaf) for leaf in jax.tree.leaves(member.opt_state)),
        ),
    )
