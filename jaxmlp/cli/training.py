"""``jaxmlp train``: the main job."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Any

import typer

from jaxmlp import parallel, runs
from jaxmlp.cli.app import app
from jaxmlp.cli.options import TRAIN_SETTINGS, with_settings
from jaxmlp.outputs import check_outputs
from jaxmlp.presets import PRESET_NAMES

Preset = enum.Enum("Preset", {name: name for name in PRESET_NAMES}, type=str)


@app.command("train")
@with_settings(TRAIN_SETTINGS)
def train_command(
    preset: Preset = typer.Option(
        "seed",
        help="Starting settings: 'seed' is the seed document's experiment, 'best' the "
        "README's best recipe for the chosen --dataset (≥99% on MNIST, ≥90.5% on "
        "Fashion-MNIST). Flags override it.",
    ),
    save: Path | None = typer.Option(None, help="Checkpoint after every epoch (atomic)."),
    resume: Path | None = typer.Option(
        None, help="Continue the run saved in this checkpoint (its settings; --epochs may rise)."
    ),
    metrics_out: Path | None = typer.Option(
        None, help="JSON lines: a start record, one per epoch, the test result."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the test result."),
    coordinator: str | None = typer.Option(
        None, envvar="JAXMLP_COORDINATOR", help="HOST:PORT of process 0, for several hosts.",
        rich_help_panel="Several processes",
    ),
    num_processes: int | None = typer.Option(
        None, envvar="JAXMLP_NUM_PROCESSES", help="Processes in a multi-process run.",
        rich_help_panel="Several processes",
    ),
    process_id: int | None = typer.Option(
        None, envvar="JAXMLP_PROCESS_ID", help="This process's index, 0 to --num-processes - 1.",
        rich_help_panel="Several processes",
    ),
    distributed: str = typer.Option(
        "off",
        envvar="JAXMLP_DISTRIBUTED",
        help="'auto': let JAX detect the cluster (Slurm, Open MPI, TPU pod, Kubernetes).",
        rich_help_panel="Several processes",
    ),
    settings: dict[str, Any] | None = None,
) -> int:
    """Train an MLP; with no flags, the seed's experiment (784-15-10, SGD, lr 0.1, 10 epochs).

    Epochs report the validation split; the test split is reported once, at the end.
    Exit codes: 0 done, 1 diverged or data/checkpoint problem, 2 bad arguments, 130 Ctrl-C.
    """
    check_outputs({"--save": save, "--metrics-out": metrics_out})
    run = runs.RunOptions(
        preset=Preset(preset).value,
        explicit=settings or {},
        save=save,
        resume=resume,
        metrics_out=metrics_out,
        quiet=quiet,
        progress=sys.stdout.isatty() and not quiet,
        cluster=parallel.ClusterOptions(
            distributed=distributed,
            coordinator=coordinator,
            num_processes=num_processes,
            process_id=process_id,
        ),
    )
    runs.train_from_options(run, echo=typer.echo)
    return 0
