"""``jaxmlp train``: the main job."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Any

import typer

from jaxmlp.cli.app import COMMAND_LINE, command
from jaxmlp.cli.options import TRAIN_SETTINGS, preset_help, with_settings
from jaxmlp.config_file import merged, read_config, settings_toml
from jaxmlp.presets import PRESET_NAMES
from jaxmlp.run_dir import chosen_run_dir

Preset = enum.Enum("Preset", {name: name for name in PRESET_NAMES}, type=str)
RUNS_PANEL = "Keeping the run"


@command("train")
@with_settings(TRAIN_SETTINGS, defaults={"devices": "1; all with --num-processes"})
def train_command(
    preset: Preset | None = typer.Option(
        None,
        help=preset_help("of the run"),
        show_default="seed, or the --config file's",
    ),
    config: Path | None = typer.Option(
        None,
        help="A TOML file of settings (names as in --print-config); flags win over it.",
        rich_help_panel=RUNS_PANEL,
    ),
    print_config: bool = typer.Option(
        False,
        "--print-config",
        help="Print the resolved settings as TOML, and stop.",
        rich_help_panel=RUNS_PANEL,
    ),
    run_dir: Path | None = typer.Option(
        None,
        help="Keep the run in this directory: config.toml, run.json, last.npz, best.npz, "
        "metrics.jsonl, tensorboard/, plots/. 'auto': runs/<date>_<time>.",
        rich_help_panel=RUNS_PANEL,
    ),
    save: Path | None = typer.Option(
        None, help="Checkpoint after every epoch (atomic).", rich_help_panel=RUNS_PANEL
    ),
    resume: Path | None = typer.Option(
        None,
        help="Continue the run kept in this run directory or checkpoint, and save it back "
        "there with its settings (per-run values, data and devices may change; --epochs "
        "is the new total).",
        rich_help_panel=RUNS_PANEL,
    ),
    metrics_out: Path | None = typer.Option(
        None,
        help="JSON lines: a start record, one per epoch, the test result.",
        rich_help_panel=RUNS_PANEL,
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace an existing --save or --metrics-out file, or a non-empty --run-dir.",
        rich_help_panel=RUNS_PANEL,
    ),
    early_stop: int | None = typer.Option(
        None,
        min=1,
        metavar="N",
        help="Stop when validation accuracy has not improved for N epochs.",
        rich_help_panel=RUNS_PANEL,
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print only the final record, as one JSON object."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the test result."),
    coordinator: str | None = typer.Option(
        None,
        envvar="JAXMLP_COORDINATOR",
        help="HOST:PORT of process 0, for several hosts.",
        rich_help_panel="Several processes",
    ),
    num_processes: int | None = typer.Option(
        None,
        envvar="JAXMLP_NUM_PROCESSES",
        help="Processes in a multi-process run.",
        rich_help_panel="Several processes",
    ),
    process_id: int | None = typer.Option(
        None,
        envvar="JAXMLP_PROCESS_ID",
        help="This process's index, 0 to --num-processes - 1.",
        rich_help_panel="Several processes",
    ),
    distributed: str = typer.Option(
        "off",
        envvar="JAXMLP_DISTRIBUTED",
        metavar="<off|auto>",
        help="'auto': let JAX detect the cluster (Slurm, Open MPI, TPU pod, Kubernetes).",
        rich_help_panel="Several processes",
    ),
    settings: dict[str, Any] | None = None,
) -> int:
    """Train an MLP; with no flags, the seed's experiment (784-15-10, SGD, lr 0.1, 10 epochs).

    Epochs report the validation split; the test split is reported once, at the end.
    Nothing is written unless asked (--run-dir, --save, --metrics-out), and nothing
    existing is replaced without --overwrite.

    Exit codes: 0 done, 1 diverged or data/checkpoint problem, 2 bad arguments, 130 Ctrl-C.
    """
    from jaxmlp import parallel, runs

    file = read_config(config) if config is not None else None
    chosen_preset = Preset(preset).value if preset is not None else None
    run = runs.RunOptions(
        preset=chosen_preset or (file.preset if file is not None else None) or "seed",
        explicit=merged(file, settings or {}),
        save=save,
        resume=resume,
        metrics_out=metrics_out,
        quiet=quiet,
        progress=sys.stdout.isatty() and not quiet and not as_json,
        cluster=parallel.ClusterOptions(
            distributed=distributed,
            coordinator=coordinator,
            num_processes=num_processes,
            process_id=process_id,
        ),
        run_dir=chosen_run_dir(run_dir),
        overwrite=overwrite,
        early_stop=early_stop,
        as_json=as_json,
        argv=tuple(COMMAND_LINE),
    )
    if print_config:
        typer.echo(settings_toml(runs.settings_for_run(run)[0]), nl=False)
        return 0
    runs.train_from_options(run, echo=typer.echo, note=lambda line: typer.echo(line, err=True))
    return 0
