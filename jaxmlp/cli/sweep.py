"""``jaxmlp sweep``: a grid of runs, trained as populations, summarised as a table."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import typer

from jaxmlp import search, sweep
from jaxmlp.cli.app import app
from jaxmlp.cli.options import TRAIN_SETTINGS, with_settings
from jaxmlp.settings import PRESET_NAMES

Preset = enum.Enum("Preset", {name: name for name in PRESET_NAMES}, type=str)
Method = enum.Enum("Method", {name: name for name in search.METHODS}, type=str)
SEARCH = "Search"


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
    method: Method = typer.Option(
        "grid", "--search", help="grid: every combination; random: --runs draws from the "
        "distributions; halving: stop the worst at each rung; pbt: population-based training.",
        rich_help_panel=SEARCH,
    ),
    drawn: int | None = typer.Option(
        None, "--runs", help="Members drawn from the distributions (each crossed with the "
        "grid's lists).", rich_help_panel=SEARCH,
    ),
    search_seed: int | None = typer.Option(
        None, help="Seeds the draws and PBT's choices.", show_default="0", rich_help_panel=SEARCH
    ),
    eta: int | None = typer.Option(
        None, help="halving: the top 1/eta (rounded up) go on at each rung.", show_default="3",
        rich_help_panel=SEARCH,
    ),
    rungs: str | None = typer.Option(
        None, help="halving: the rungs in epochs, e.g. 2,6 (below --epochs).",
        show_default="--epochs / eta^k", rich_help_panel=SEARCH,
    ),
    ready: int | None = typer.Option(
        None, help="pbt: exploit and explore every N epochs.", show_default="1",
        rich_help_panel=SEARCH,
    ),
    truncation: float | None = typer.Option(
        None, help="pbt: the bottom fraction copies the top fraction, in (0, 0.5].",
        show_default="0.2", rich_help_panel=SEARCH,
    ),
    perturb: str | None = typer.Option(
        None, help="pbt: a copied value is multiplied by one of these factors.",
        show_default="0.8,1.2", rich_help_panel=SEARCH,
    ),
    resample: float | None = typer.Option(
        None, help="pbt: the probability that a copied value is drawn afresh instead.",
        show_default="0.25", rich_help_panel=SEARCH,
    ),
    settings: dict[str, Any] | None = None,
) -> int:
    """Train a grid of runs: a comma list makes a grid axis (--lr 0.1,0.5), integers also
    take ranges (--seed 0-4), --sizes takes ';' between alternatives.

    Runs that share sizes, batch size, epochs, optimizer, schedule, gradient method and
    augmentation train together, as one population in one compiled program. Prints a
    table, one row per setting over its seeds, best mean validation accuracy first.

    A setting may take a distribution instead of a list (--lr 1e-3..3e-1:log, --dropout
    0..0.5, --optimizer sgd,adam:choice) with --search random, halving or pbt and --runs N.
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
        method=Method(method).value,
        search={
            "runs": drawn, "search_seed": search_seed, "eta": eta, "rungs": rungs,
            "ready": ready, "truncation": truncation, "perturb": perturb, "resample": resample,
        },
    )
    sweep.sweep_from_options(options, echo=typer.echo)
    return 0
