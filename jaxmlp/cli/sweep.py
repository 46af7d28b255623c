"""``jaxmlp sweep``: a grid of runs, trained as populations, summarised as a table."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import typer

from jaxmlp import sweep
from jaxmlp.cli.app import app
from jaxmlp.cli.options import TRAIN_SETTINGS, with_settings
from jaxmlp.presets import PRESET_NAMES

Preset = enum.Enum("Preset", {name: name for name in PRESET_NAMES}, type=str)


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
    options = sweep.SweepOptions(
        preset=Preset(preset).value,
        given=settings or {},
        metrics_out=metrics_out,
        save_best=save_best,
        plot_dir=plot_dir,
        as_json=as_json,
        quiet=quiet,
    )
    sweep.sweep_from_options(options, echo=typer.echo)
    return 0
