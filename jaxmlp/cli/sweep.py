"""``jaxmlp sweep``: a grid of runs, trained as populations, summarised as a table."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import typer

from jaxmlp import sweep
from jaxmlp.cli.app import COMMAND_LINE, app
from jaxmlp.cli.options import TRAIN_SETTINGS, with_settings
from jaxmlp.config_file import merged, read_config, settings_toml
from jaxmlp.run_dir import chosen_run_dir
from jaxmlp.settings import PRESET_NAMES

Preset = enum.Enum("Preset", {name: name for name in PRESET_NAMES}, type=str)
RUNS_PANEL = "Keeping the sweep"


@app.command("sweep")
@with_settings(TRAIN_SETTINGS, as_list=sweep.takes_list)
def sweep_command(
    preset: Preset | None = typer.Option(
        None, help="Starting settings of every run (see 'train').",
        show_default="seed, or the --config file's",
    ),
    config: Path | None = typer.Option(
        None, help="A TOML file of settings; a list makes a grid axis; flags win over it.",
        rich_help_panel=RUNS_PANEL,
    ),
    print_config: bool = typer.Option(
        False, "--print-config", help="Print the grid as TOML (axes as lists), and stop.",
        rich_help_panel=RUNS_PANEL,
    ),
    run_dir: Path | None = typer.Option(
        None,
        help="Keep the sweep in this directory: config.toml, run.json, table.txt, table.json, "
        "best.npz, metrics.jsonl, tensorboard/ (a run per member), plots/. 'auto': "
        "runs/<date>_<time>.",
        rich_help_panel=RUNS_PANEL,
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite",
        help="Replace an existing --metrics-out or --save-best file, or a non-empty --run-dir.",
        rich_help_panel=RUNS_PANEL,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    metrics_out: Path | None = typer.Option(
        None, help="JSON lines: a start record, then each run's epochs and test result.",
        rich_help_panel=RUNS_PANEL,
    ),
    save_best: Path | None = typer.Option(
        None, help="Save the run with the best validation accuracy as a checkpoint.",
        rich_help_panel=RUNS_PANEL,
    ),
    plot_dir: Path | None = typer.Option(
        None, help="Write sweep_curves.png: validation accuracy per setting, min-max band.",
        rich_help_panel=RUNS_PANEL,
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
    file = read_config(config, sweep=True) if config is not None else None
    chosen_preset = Preset(preset).value if preset is not None else None
    options = sweep.SweepOptions(
        preset=chosen_preset or (file.preset if file is not None else None) or "seed",
        given=merged(file, settings or {}),
        metrics_out=metrics_out,
        save_best=save_best,
        plot_dir=plot_dir,
        as_json=as_json,
        quiet=quiet,
        run_dir=chosen_run_dir(run_dir),
        overwrite=overwrite,
        argv=tuple(COMMAND_LINE),
    )
    if print_config:
        members, axes = sweep.grid_from_flags(options.preset, options.given)
        typer.echo(settings_toml(members[0], axes=axes, command="sweep"), nl=False)
        return 0
    sweep.sweep_from_options(
        options, echo=typer.echo, note=lambda line: typer.echo(line, err=True)
    )
    return 0
