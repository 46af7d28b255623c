"""``jaxmlp sweep``: a grid of runs, trained as populations, summarised as a table."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import typer

from jaxmlp import search, sweep
from jaxmlp.cli.app import COMMAND_LINE, command
from jaxmlp.cli.options import (
    TRAIN_SETTINGS,
    new_or_old,
    preset_help,
    renamed_option,
    with_settings,
)
from jaxmlp.config_file import merged, read_config, settings_toml
from jaxmlp.errors import ConfigError
from jaxmlp.presets import PRESET_NAMES
from jaxmlp.run_dir import chosen_run_dir

Preset = enum.Enum("Preset", {name: name for name in PRESET_NAMES}, type=str)
RUNS_PANEL = "Keeping the sweep"
Method = enum.Enum("Method", {name: name for name in search.METHODS}, type=str)
SEARCH = "Search"


@command("sweep")
@with_settings(
    TRAIN_SETTINGS,
    as_list=sweep.takes_list,
    defaults={"devices": "on CPU one per core, members spread over them; else 1"},
)
def sweep_command(
    preset: Preset | None = typer.Option(
        None,
        help=preset_help("of every run"),
        show_default="seed, or the --config file's",
    ),
    config: Path | None = typer.Option(
        None,
        help="A TOML file of settings; a list makes a grid axis; flags win over it.",
        rich_help_panel=RUNS_PANEL,
    ),
    print_config: bool = typer.Option(
        False,
        "--print-config",
        help="Print the grid as TOML (axes as lists), and stop.",
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
        False,
        "--overwrite",
        help="Replace an existing --metrics-out, --save-best or --out-dir file, or write into "
        "a non-empty --run-dir.",
        rich_help_panel=RUNS_PANEL,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    metrics_out: Path | None = typer.Option(
        None,
        help="JSON lines: a start record, then each run's epochs and test result.",
        rich_help_panel=RUNS_PANEL,
    ),
    save_best: Path | None = typer.Option(
        None,
        help="Save the run with the best validation accuracy as a checkpoint.",
        rich_help_panel=RUNS_PANEL,
    ),
    out_dir: Path | None = typer.Option(
        None,
        help="Write sweep_curves.png here: validation accuracy per setting, min-max band.",
        rich_help_panel=RUNS_PANEL,
    ),
    plot_dir: Path | None = renamed_option("--plot-dir", "--out-dir", panel=RUNS_PANEL),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the table."),
    method: Method = typer.Option(
        "grid",
        "--search",
        help="grid: every combination; random: --runs draws from the "
        "distributions; halving: stop the worst at each rung; pbt: population-based training.",
        rich_help_panel=SEARCH,
    ),
    drawn: int | None = typer.Option(
        None,
        "--runs",
        help="Members drawn from the distributions (each crossed with the grid's lists).",
        rich_help_panel=SEARCH,
    ),
    search_seed: int | None = typer.Option(
        None, help="Seeds the draws and PBT's choices.", show_default="0", rich_help_panel=SEARCH
    ),
    eta: int | None = typer.Option(
        None,
        help="halving: the top 1/eta (rounded up) go on at each rung.",
        show_default="3",
        rich_help_panel=SEARCH,
    ),
    rungs: str | None = typer.Option(
        None,
        help="halving: the rungs in epochs, e.g. 2,6 (below --epochs).",
        show_default="--epochs / eta^k",
        rich_help_panel=SEARCH,
    ),
    ready: int | None = typer.Option(
        None,
        help="pbt: exploit and explore every N epochs.",
        show_default="1",
        rich_help_panel=SEARCH,
    ),
    truncation: float | None = typer.Option(
        None,
        help="pbt: the bottom fraction copies the top fraction, in (0, 0.5].",
        show_default="0.2",
        rich_help_panel=SEARCH,
    ),
    perturb: str | None = typer.Option(
        None,
        help="pbt: a copied value is multiplied by one of these factors.",
        show_default="0.8,1.2",
        rich_help_panel=SEARCH,
    ),
    resample: float | None = typer.Option(
        None,
        help="pbt: the probability that a copied value is drawn afresh instead.",
        show_default="0.25",
        rich_help_panel=SEARCH,
    ),
    settings: dict[str, Any] | None = None,
) -> int:
    """Train a grid of runs, or search, and print a table of the settings over their seeds.

    The settings are train's; those shown with ',…' take a list. A comma list makes a grid
    axis (--lr 0.1,0.5 --seed 0,1); an integer setting also takes a range (--seed 0-4);
    --sizes takes ';' between alternatives (--sizes '784,100,10;784,300,10').

    With --search random, halving or pbt, a setting may take a distribution instead:
    LOW..HIGH or LOW..HIGH:log for a number (--lr 1e-3..3e-1:log, --dropout 0..0.5),
    A,B:choice for a choice (--optimizer sgd,adam:choice); --runs N draws N members.

    Runs that share their network and training settings train together, as one
    population in one compiled program. The table has one row per setting over its seeds,
    best mean validation accuracy first.

    Exit codes: 0 done, 1 data problem, 2 bad arguments, 130 Ctrl-C (after the table).
    """
    file = read_config(config, sweep=True) if config is not None else None
    chosen_preset = Preset(preset).value if preset is not None else None
    options = sweep.SweepOptions(
        preset=chosen_preset or (file.preset if file is not None else None) or "seed",
        given=merged(file, settings or {}),
        metrics_out=metrics_out,
        save_best=save_best,
        plot_dir=new_or_old("--out-dir", out_dir, "--plot-dir", plot_dir),
        as_json=as_json,
        quiet=quiet,
        run_dir=chosen_run_dir(run_dir),
        overwrite=overwrite,
        argv=tuple(COMMAND_LINE),
        method=Method(method).value,
        search={
            "runs": drawn,
            "search_seed": search_seed,
            "eta": eta,
            "rungs": rungs,
            "ready": ready,
            "truncation": truncation,
            "perturb": perturb,
            "resample": resample,
        },
    )
    if print_config:
        distributions, _ = search.split_search_space(options.given)
        if distributions:
            raise ConfigError(
                "--print-config prints a grid, not distributions such as "
                f"--{next(iter(distributions)).replace('_', '-')} "
                f"{next(iter(distributions.values())).text()}"
            )
        members, axes = sweep.grid_from_flags(options.preset, options.given)
        typer.echo(settings_toml(members[0], axes=axes, command="sweep"), nl=False)
        return 0
    sweep.sweep_from_options(options, echo=typer.echo, note=lambda line: typer.echo(line, err=True))
    return 0
