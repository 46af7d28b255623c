"""A training run as the command line starts it: settings, data, reporting, checkpoints.

Settings are layered: the preset, then (on ``--resume``) the checkpoint's settings, then
the flags given explicitly. Each epoch rewrites the ``--save`` checkpoint atomically,
appends one JSON line to ``--metrics-out`` and prints one line, in that order, and only
after the epoch's loss was found finite: a printed epoch is a saved epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax

from jaxmlp import checkpoint as checkpoints
from jaxmlp import parallel, train
from jaxmlp.errors import ConfigError, TrainingInterrupted


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What ``jaxmlp train`` was asked to do, beyond the :class:`~jaxmlp.train.TrainConfig`."""

    preset: str = "seed"
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    data_dir: Path | None = None
    download: bool = True
    save: Path | None = None
    resume: Path | None = None
    metrics_out: Path | None = None
    quiet: bool = False
    progress: bool = False
    parallel: parallel.ParallelOptions = dataclasses.field(default_factory=parallel.ParallelOptions)


def resolve_config(
    preset: str, overrides: dict[str, Any], saved: dict[str, Any] | None = None
) -> train.TrainConfig:
    """Preset, then the checkpoint's settings (``saved``), then explicit ``overrides``."""
    if preset not in train.PRESETS:
        raise ConfigError(f"--preset must be one of {', '.join(train.PRESETS)}, got {preset!r}")
    settings = dict(train.PRESETS[preset])
    settings.update(saved or {})
    settings.update(overrides)
    return train.TrainConfig.from_dict(settings)


def enable_compilation_cache() -> None:
    """Keeps compiled XLA programs in the user cache, so a second run starts faster."""
    from jaxmlp.data import user_cache_dir

    jax.config.update("jax_compilation_cache_dir", str(user_cache_dir("xla")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def describe(config: train.TrainConfig, dataset) -> str:
    """The run's header line."""
    gradient = "BP1–BP4 by hand" if config.grad == "manual" else "jax.grad"
    extras = [
        f"dropout {config.dropout:g}" if config.dropout else "",
        f"input dropout {config.input_dropout:g}" if config.input_dropout else "",
        f"label smoothing {config.label_smoothing:g}" if config.label_smoothing else "",
        f"shift ±{config.augment_shift}px" if config.augment_shift else "",
        f"weight decay {config.weight_decay:g}" if config.weight_decay else "",
        f"{config.schedule} schedule" if config.schedule != "constant" else "",
    ]
    return (
        f"Training {'-'.join(map(str, config.sizes))} ({config.init} init) on {dataset.name} "
        f"from {dataset.source}: {len(dataset.train)} train / {len(dataset.validation)} "
        f"validation / {len(dataset.test)} test; {config.optimizer} lr {config.lr:g}, batch "
        f"{config.batch_size}, {config.epochs} epochs, gradients by {gradient}"
        + "".join(f", {extra}" for extra in extras if extra)
    )


def format_epoch(record: dict[str, Any], epochs: int) -> str:
    """``Epoch 3/10: 9067/10000 val 90.67% (loss 0.3312)  train 89.90% (loss 0.3501)  0.11 s``."""
    width = len(str(epochs))
    head = f"Epoch {record['epoch']:>{width}}/{epochs}:"
    if record.get("val_total"):
        head += (
            f" {record['val_correct']}/{record['val_total']} val {100 * record['val_accuracy']:.2f}%"
            f" (loss {record['val_loss']:.4f}) "
        )
    return (
        f"{head} train {100 * record['train_accuracy']:.2f}% (loss {record['train_loss']:.4f})"
        f"  {record['seconds']:.2f} s"
    )


def format_test(test: dict[str, Any]) -> str:
    """``Test: 9190/10000 (91.90%), loss 0.2900``."""
    return (
        f"Test: {test['test_correct']}/{test['test_total']} "
        f"({100 * test['test_accuracy']:.2f}%), loss {test['test_loss']:.4f}"
    )


@contextlib.contextmanager
def metrics_sink(path: Path | None, append: bool) -> Iterator[Callable[[dict], None]]:
    """A function that writes one JSON line per record to ``path`` (a no-op without it)."""
    if path is None:
        yield lambda record: None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w", encoding="utf-8") as file:

        def write(record: dict) -> None:
            file.write(json.dumps(record) + "\n")
            file.flush()

        yield write


@contextlib.contextmanager
def epoch_printer(echo: Callable[[str], None], total: int, done: int, progress: bool):
    """Prints epoch lines; on a terminal, under a progress bar over the epochs."""
    if not progress:
        yield echo, lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("epochs", total=total, completed=done)
        yield bar.console.print, lambda: bar.advance(task)


def save_epoch(
    path: Path, config, data_dir: Path | None, state: train.TrainState, epoch: int, history
) -> None:
    """Writes the checkpoint after ``epoch`` complete epochs.

    Beside the settings it records the ``--data-dir`` the run read (absolute), so that
    ``evaluate``, ``plot`` and ``--resume`` find the same data without being told again.
    """
    settings = {**config.to_dict(), "data_dir": str(data_dir.resolve()) if data_dir else None}
    checkpoints.save_checkpoint(
        path,
        checkpoints.Checkpoint(
            params=jax.device_get(state.params),
            config=settings,
            epoch=epoch,
            metrics=list(history),
            opt_state_leaves=tuple(jax.device_get(jax.tree.leaves(state.opt_state))),
        ),
    )


def train_from_options(options: RunOptions, echo: Callable[[str], None] = print, dataset=None):
    """Runs ``jaxmlp train``: returns the :class:`~jaxmlp.train.TrainResult`.

    ``dataset`` replaces loading the configured one (a notebook's own data, tests).
    """
    from jaxmlp.data import load_dataset

    layout = parallel.setup(options.parallel)
    main_process = parallel.is_main_process()
    resume = checkpoints.load_checkpoint(options.resume) if options.resume else None
    saved = dict(resume.config) if resume else {}
    saved_data_dir = saved.pop("data_dir", None)
    data_dir = options.data_dir or (Path(saved_data_dir) if saved_data_dir else None)
    config = resolve_config(options.preset, options.overrides, saved)
    if resume is not None and resume.epoch >= config.epochs:
        raise ConfigError(
            f"the checkpoint has already trained {resume.epoch} epochs; pass --epochs above "
            f"{resume.epoch} to continue"
        )
    if layout is not None:
        layout.check_batch_size(config.batch_size)
    enable_compilation_cache()
    if dataset is None:
        dataset = load_dataset(
            config.dataset,
            data_dir=data_dir,
            val_size=config.val_size,
            limit=config.limit,
            download=options.download,
        )
    say = (lambda line: None) if options.quiet or not main_process else echo
    say(describe(config, dataset))
    if layout is not None:
        say(layout.describe(config.batch_size))
    done = resume.epoch if resume else 0
    history: list[dict] = list(resume.metrics) if resume else []
    with (
        metrics_sink(
            options.metrics_out if main_process else None, append=resume is not None
        ) as write_metrics,
        epoch_printer(say, config.epochs, done, options.progress) as (print_line, advance),
    ):

        def on_epoch(record: dict, state: train.TrainState) -> None:
            history.append(record)
            if options.save is not None and main_process:
                save_epoch(options.save, config, data_dir, state, record["epoch"], history)
            write_metrics(record)
            print_line(format_epoch(record, config.epochs))
            advance()

        try:
            result = train.fit(
                config, dataset, resume=resume, on_epoch=on_epoch, **parallel.fit_hooks(layout)
            )
        except TrainingInterrupted as interrupted:
            saved = (
                f"; {options.save} holds epoch {history[-1]['epoch']}"
                if options.save is not None and history
                else ""
            )
            raise TrainingInterrupted(f"{interrupted}{saved}") from None
        write_metrics(result.test)
    if main_process:
        echo(format_test(result.test))
    return result

