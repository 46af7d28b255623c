"""``jaxmlp train``: the main job."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from jaxmlp import parallel, runs
from jaxmlp.cli.app import app
from jaxmlp.train import OPTIMIZERS, PRESETS, SCHEDULES


@app.command("train")
def train_command(
    preset: str = typer.Option(
        "seed",
        help=f"Starting settings ({', '.join(PRESETS)}): 'seed' is the seed document's "
        "experiment, 'best' the README's ≥98.7% recipe. Flags override it.",
    ),
    sizes: str | None = typer.Option(None, help="Layer widths, e.g. 784,15,10."),
    epochs: int | None = typer.Option(None, help="Total epochs (on --resume: the new total)."),
    batch_size: int | None = typer.Option(None, help="Examples per mini-batch."),
    lr: float | None = typer.Option(None, help="Learning rate (peak, with a schedule)."),
    init: str | None = typer.Option(None, help="Initialisation: normal, he or glorot."),
    seed: int | None = typer.Option(None, help="Seeds initialisation, shuffling and dropout."),
    grad: str | None = typer.Option(
        None, help="manual (BP1–BP4 by hand, the default) or autodiff (jax.grad)."
    ),
    optimizer: str | None = typer.Option(None, help=f"One of {', '.join(OPTIMIZERS)}."),
    momentum: float | None = typer.Option(None, help="Momentum of --optimizer momentum."),
    weight_decay: float | None = typer.Option(
        None, help="L2 on weights (decoupled for adamw); biases exempt."
    ),
    schedule: str | None = typer.Option(None, help=f"Learning-rate schedule: {', '.join(SCHEDULES)}."),
    warmup_epochs: float | None = typer.Option(None, help="Linear warm-up before the schedule."),
    dropout: float | None = typer.Option(None, help="Dropout rate of the hidden layers."),
    input_dropout: float | None = typer.Option(None, help="Dropout rate of the input pixels."),
    label_smoothing: float | None = typer.Option(
        None, help="Train towards (1 - e) one-hot + e/K instead of one-hot targets."
    ),
    augment_shift: int | None = typer.Option(
        None, help="Shift each training image by up to N pixels at random."
    ),
    drop_last: bool | None = typer.Option(
        None, "--drop-last/--keep-last", help="Drop the ragged last batch (default: keep it)."
    ),
    dataset: str | None = typer.Option(None, help="mnist or fashion-mnist."),
    data_dir: Path | None = typer.Option(
        None, help="IDX files or the seed's mnist.pkl.gz (default: env, cache, download)."
    ),
    download: bool = typer.Option(True, help="Download the data when it is found nowhere."),
    val_size: int | None = typer.Option(
        None, help="Last N training images validate (0: train on all 60,000)."
    ),
    limit: int | None = typer.Option(None, help="Use only the first N examples of each split."),
    save: Path | None = typer.Option(None, help="Checkpoint after every epoch (atomic)."),
    resume: Path | None = typer.Option(None, help="Continue the run saved in this checkpoint."),
    metrics_out: Path | None = typer.Option(None, help="Append one JSON line per epoch here."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the test result."),
    devices: str | None = typer.Option(
        None,
        help="Data parallel over 'all' devices or N of them; the batch size must divide by "
        "the count (default: 1, or all in a multi-process run).",
    ),
    platform: str | None = typer.Option(
        None,
        help=f"Backend: {', '.join(parallel.PLATFORMS)} (default: JAX's choice, or JAX_PLATFORMS).",
    ),
    matmul_precision: str | None = typer.Option(
        None, help=f"Default matmul precision: {', '.join(parallel.MATMUL_PRECISIONS)}."
    ),
    coordinator: str | None = typer.Option(
        None, envvar="JAXMLP_COORDINATOR", help="HOST:PORT of process 0, for several hosts."
    ),
    num_processes: int | None = typer.Option(
        None, envvar="JAXMLP_NUM_PROCESSES", help="Processes in a multi-process run."
    ),
    process_id: int | None = typer.Option(
        None, envvar="JAXMLP_PROCESS_ID", help="This process's index, 0 to --num-processes - 1."
    ),
    distributed: str = typer.Option(
        "off",
        envvar="JAXMLP_DISTRIBUTED",
        help="'auto': let JAX detect the cluster (Slurm, Open MPI, TPU pod, Kubernetes).",
    ),
) -> int:
    """Train an MLP; with no flags, the seed's experiment (784-15-10, SGD, lr 0.1, 10 epochs).

    Epochs report the validation split; the test split is reported once, at the end.
    Exit codes: 0 done, 1 diverged or data/checkpoint problem, 2 bad arguments, 130 Ctrl-C.
    """
    overrides = {
        "sizes": sizes,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "init": init,
        "seed": seed,
        "grad": grad,
        "optimizer": optimizer,
        "momentum": momentum,
        "weight_decay": weight_decay,
        "schedule": schedule,
        "warmup_epochs": warmup_epochs,
        "dropout": dropout,
        "input_dropout": input_dropout,
        "label_smoothing": label_smoothing,
        "augment_shift": augment_shift,
        "drop_last": drop_last,
        "dataset": dataset,
        "val_size": val_size,
        "limit": limit,
    }
    run = runs.RunOptions(
        preset=preset,
        overrides={name: value for name, value in overrides.items() if value is not None},
        data_dir=data_dir,
        download=download,
        save=save,
        resume=resume,
        metrics_out=metrics_out,
        quiet=quiet,
        progress=sys.stdout.isatty() and not quiet,
        parallel=parallel.ParallelOptions(
            devices=devices,
            platform=platform,
            matmul_precision=matmul_precision,
            distributed=distributed,
            coordinator=coordinator,
            num_processes=num_processes,
            process_id=process_id,
        ),
    )
    runs.train_from_options(run, echo=typer.echo)
    return 0
