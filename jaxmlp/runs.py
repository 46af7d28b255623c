"""A training run as the command line starts it, and the way back from a checkpoint to data.

Settings are layered by :func:`jaxmlp.settings.resolve_settings`: the preset, then (on
``--resume``) the checkpoint's settings, then the values given explicitly. Each epoch
rewrites the ``--save`` checkpoint atomically, appends one JSON line to ``--metrics-out``
and prints one line, in that order, and only after the epoch's loss was found finite: a
printed epoch is a saved epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxmlp import __version__, keeping, parallel, timings, train
from jaxmlp import checkpoint as checkpoints
from jaxmlp.display import percent
from jaxmlp.errors import (
    CheckpointError,
    ConfigError,
    DivergenceError,
    TrainingInterrupted,
)
from jaxmlp.files import atomic_write, line_appender
from jaxmlp.memory import check_fits_memory, run_bytes
from jaxmlp.settings import Settings, resolve_settings, resume_conflicts


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What ``jaxmlp train`` was asked to do.

    Attributes:
      preset: the settings' starting point.
      explicit: setting name → value given explicitly (``None``: not given).
      save: the checkpoint to rewrite after every epoch.
      resume: the checkpoint to continue.
      metrics_out: the JSON-lines file of the run's records.
      quiet: print only the test result.
      progress: draw a progress bar (on a terminal).
      cluster: how this process joins a multi-process run.
      run_dir: the run directory that keeps everything (see :mod:`jaxmlp.run_dir`).
      overwrite: replace an earlier run's outputs.
      early_stop: stop when validation accuracy has not improved for this many epochs.
      as_json: print only the final record, as one JSON object.
      argv: the command line, for the run's record (default ``sys.argv``).
    """

    preset: str = "seed"
    explicit: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    save: Path | None = None
    resume: Path | None = None
    metrics_out: Path | None = None
    quiet: bool = False
    progress: bool = False
    cluster: parallel.ClusterOptions = dataclasses.field(default_factory=parallel.ClusterOptions)
    run_dir: Path | None = None
    overwrite: bool = False
    early_stop: int | None = None
    as_json: bool = False
    argv: tuple[str, ...] | None = None


def describe(settings: Settings, dataset) -> str:
    """The run's header line."""
    gradient = "BP1–BP4 by hand" if settings.grad == "manual" else "jax.grad"
    extras = [
        f"dropout {settings.dropout:g}" if settings.dropout else "",
        f"input dropout {settings.input_dropout:g}" if settings.input_dropout else "",
        f"label smoothing {settings.label_smoothing:g}" if settings.label_smoothing else "",
        f"shift ±{settings.augment_shift}px" if settings.augment_shift else "",
        "flips" if settings.augment_flip else "",
        f"random erasing {settings.augment_erase:g}" if settings.augment_erase else "",
        f"weight decay {settings.weight_decay:g}" if settings.weight_decay else "",
        f"{settings.schedule} schedule" if settings.schedule != "constant" else "",
    ]
    return (
        f"Training {'-'.join(map(str, settings.sizes))} ({settings.init} init) on {dataset.name} "
        f"from {dataset.source}: {len(dataset.train)} train / {len(dataset.validation)} "
        f"validation / {len(dataset.test)} test; {settings.optimizer} lr {settings.lr:g}, batch "
        f"{settings.batch_size}, {settings.epochs} epochs, gradients by {gradient}"
        + "".join(f", {extra}" for extra in extras if extra)
    )


def format_epoch(record: dict[str, Any], epochs: int) -> str:
    """``Epoch 3/10: 9067/10000 val 90.67% (loss 0.3312)  train 89.90% (loss 0.3501)  0.11 s``."""
    width = len(str(epochs))
    head = f"Epoch {record['epoch']:>{width}}/{epochs}:"
    if record.get("val_total"):
        head += (
            f" {record['val_correct']}/{record['val_total']} val {percent(record['val_accuracy'])}%"
            f" (loss {record['val_loss']:.4f}) "
        )
    return (
        f"{head} train {percent(record['train_accuracy'])}% (loss {record['train_loss']:.4f})"
        f"  {record['seconds']:.2f} s"
    )


def format_test(test: dict[str, Any]) -> str:
    """``Test: 9190/10000 (91.90%), loss 0.2900``."""
    return (
        f"Test: {test['test_correct']}/{test['test_total']} "
        f"({percent(test['test_accuracy'])}%), loss {test['test_loss']:.4f}"
    )


def start_record(settings: Settings, resumed_from: int, dataset=None) -> dict[str, Any]:
    """The header of a run (or a resume) in its metrics file: settings, the data as found
    (``data``: its source, never ``null``, and split sizes), versions, device."""
    import jaxlib

    from jaxmlp.run_dir import data_record

    device = jax.devices()[0]
    return {
        "event": "start",
        "resumed_from_epoch": resumed_from,
        "settings": settings.to_dict(),
        **({"data": data_record(dataset)} if dataset is not None else {}),
        "jaxmlp": __version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(),
        "device": device.device_kind,
        "devices": jax.device_count(),
        "processes": jax.process_count(),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def read_metrics_records(path: Path) -> list[dict[str, Any]]:
    """The records of an existing metrics file (none if it does not exist)."""
    if not path.exists():
        return []
    from jaxmlp.plots import read_metrics_log

    return read_metrics_log(path)


def records_before_resume(existing: list[dict], history: list[dict], epoch: int) -> list[dict]:
    """What a resumed run's metrics file keeps: everything up to the checkpoint's epoch.

    Test records (an earlier run's end) and epochs after the checkpoint's (trained but
    not saved) are dropped; epochs the checkpoint holds but the file lacks (a run killed
    between its save and its metrics line) are taken from the checkpoint.
    """
    kept = [
        record
        for record in existing
        if record.get("event") != "test"
        and not (record.get("event") == "epoch" and record.get("epoch", 0) > epoch)
    ]
    present = {record.get("epoch") for record in kept if record.get("event") == "epoch"}
    return kept + [record for record in history if record["epoch"] not in present]


@contextlib.contextmanager
def metrics_sink(
    path: Path | None, header: dict[str, Any], earlier: list[dict[str, Any]]
) -> Iterator[Callable[[dict], None]]:
    """A function that appends one JSON line per record to ``path`` (a no-op without it).

    The file is first rewritten, atomically, with the ``earlier`` records and ``header``.
    """
    if path is None:
        yield lambda record: None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as file:
        for record in [*earlier, header]:
            file.write((json.dumps(record) + "\n").encode())
    with line_appender(path) as append:
        yield lambda record: append((json.dumps(record) + "\n").encode())


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


def save_epoch(path: Path, settings: Settings, state: train.TrainState, history) -> None:
    """Writes one member's checkpoint (``state`` without the member axis) after the epochs
    in ``history``.

    The settings are stored whole, the data directory absolute, so that ``evaluate``,
    ``plot`` and ``--resume`` find the same data without being told again.
    """
    data_dir = settings.data_dir.resolve() if settings.data_dir is not None else None
    checkpoints.save_checkpoint(
        path,
        checkpoints.Checkpoint(
            params=jax.device_get(state.params),
            settings=settings.replace(data_dir=data_dir),
            epoch=history[-1]["epoch"],
            metrics=list(history),
            opt_state_leaves=tuple(jax.device_get(jax.tree.leaves(state.opt_state))),
        ),
    )


def settings_for_run(
    options: RunOptions,
) -> tuple[Settings, checkpoints.Checkpoint | None]:
    """The run's settings and the checkpoint it resumes (if any).

    Raises:
      ConfigError: an explicit value that would change the resumed run's program or
        values, a checkpoint that has already trained its epochs, a bad value.
    """
    if options.resume is None:
        return resolve_settings(options.preset, explicit=options.explicit), None
    resume = checkpoints.load_checkpoint(keeping.resume_source(options.resume)[0])
    if not resume.opt_state_leaves:
        raise CheckpointError(
            f"checkpoint {options.resume} holds no optimizer state (parameters only); "
            "it cannot be resumed"
        )
    conflicts = resume_conflicts(resume.settings, options.explicit)
    if conflicts:
        name, given, stored = conflicts[0]
        shown = ",".join(map(str, stored)) if name == "sizes" else stored
        raise ConfigError(
            f"is {given if name != 'sizes' else ','.join(map(str, given))} but the checkpoint "
            f"{options.resume} was trained with {shown}; a resumed run keeps its settings "
            "(only the epochs, per-run values, data directory and devices may change)",
            setting=name,
        )
    settings = resolve_settings(options.preset, resume.settings, options.explicit)
    if resume.epoch >= settings.epochs:
        raise ConfigError(
            f"the checkpoint has already trained {resume.epoch} epochs; pass --epochs above "
            f"{resume.epoch} to continue"
        )
    return settings, resume


def train_from_options(
    options: RunOptions,
    echo: Callable[[str], None] = print,
    dataset=None,
    note: Callable[[str], None] | None = None,
):
    """Runs ``jaxmlp train``: returns the :class:`~jaxmlp.train.FitResult` (one member).

    ``dataset`` replaces loading the configured one (a notebook's own data, tests);
    ``note`` prints notices and, with ``--json``, the closing line (default: standard error).
    """
    note = note or (lambda line: print(line, file=sys.stderr))
    plan = keeping.plan_outputs(
        run_dir=options.run_dir,
        save=options.save,
        metrics_out=options.metrics_out,
        resume=options.resume,
        overwrite=options.overwrite,
    )
    settings, resume = settings_for_run(options)
    keeping.check_early_stop(options.early_stop, settings)
    check_fits_memory(run_bytes(settings), f"training {'-'.join(map(str, settings.sizes))}")
    layout = parallel.setup(settings, options.cluster)
    main_process = parallel.is_main_process()
    if dataset is None:
        inherited = resume is not None and options.explicit.get("data_dir") is None
        origin = "the resumed checkpoint's data directory" if inherited else "--data-dir"
        with timings.phase("data"):
            dataset = load_settings_data(settings, origin)
    with timings.phase("prepare"):
        trainer = timed_trainer(train.prepare(settings, dataset, layout=layout))
    quiet = options.quiet or options.as_json or not main_process
    say = (lambda line: None) if quiet else echo
    say(describe(settings, dataset))
    if layout is not None:
        say(f"Data parallel over {layout.describe(settings.batch_size)}")
    if not main_process:
        plan = keeping.OutputPlan()
    keeping.prepare_run_dir(plan, options.overwrite)
    keeper = keeping.RunKeeper(
        plan,
        keeping.kept(settings),
        dataset,
        argv=options.argv,
        early_stop=options.early_stop,
        note=note,
    )
    keeper.start()
    done = resume.epoch if resume else 0
    history: list[dict] = list(resume.metrics) if resume else []
    state = trainer.restored_state(resume.params, resume.opt_state_leaves) if resume else None
    earlier = (
        records_before_resume(read_metrics_records(plan.metrics), history, done)
        if resume and plan.metrics is not None
        else []
    )
    with (
        metrics_sink(plan.metrics, start_record(settings, done, dataset), earlier) as write_metrics,
        epoch_printer(say, settings.epochs, done, options.progress) as (print_line, advance),
    ):

        def on_epoch(progress: train.FitState) -> bool:
            history = progress.histories[0]
            member = functools.cache(lambda: trainer.member_state(progress.state, 0))
            stop = keeper.on_epoch(
                history,
                lambda path: save_epoch(path, settings, member(), history),
                lambda: member().params[0].w,
            )
            write_metrics(history[-1])
            print_line(format_epoch(history[-1], settings.epochs))
            advance()
            if stop:
                print_line(keeper.stopped_early)
            return stop

        start = trainer.start(state, epoch=done, histories=[history])
        try:
            result = train.fit(trainer, start, on_epoch=on_epoch)
        except TrainingInterrupted as interrupted:
            keeper.abandon(latest_history(interrupted, history), "interrupted")
            raise TrainingInterrupted(
                interrupted.completed_epoch,
                keeper.saved,
                hint=keeper.resume_hint(),
                progress=interrupted.progress,
            ) from None
        except DivergenceError as diverged:
            keeper.abandon(latest_history(diverged, history), "diverged")
            raise
        write_metrics(result.test)
    record = keeper.finish(
        result.history,
        result.test,
        plots=lambda directory: save_run_plots(directory, result, dataset),
    )
    if main_process:
        report_end(options, keeper, record, result, echo, note)
    return result


def timed_trainer(trainer: train.Trainer) -> train.Trainer:
    """``trainer``, its epochs and evaluations counted as the ``train`` and ``evaluate``
    phases when timings are recorded (:mod:`jaxmlp.timings`)."""
    return dataclasses.replace(
        trainer,
        run_epoch=timings.timed("train", trainer.run_epoch),
        evaluate=timings.timed("evaluate", trainer.evaluate),
    )


def latest_history(error: Exception, history: list[dict]) -> list[dict]:
    """The solo run's records as far as an interrupted or diverged fit got."""
    progress = getattr(error, "progress", None)
    return progress.histories[0] if progress is not None else history


def save_run_plots(directory: Path, result: train.TrainResult, dataset) -> list[Path]:
    """A run directory's plots: learning curves, confusion matrix and mistakes on the test
    split, first-layer weights."""
    from jaxmlp import plots
    from jaxmlp.evaluation import evaluate_params

    plots.require_matplotlib()
    params = jax.device_get(result.params)
    return plots.save_all_plots(
        directory,
        metrics=result.history,
        first_layer_weights=np.asarray(params[0].w),
        images=dataset.test.images,
        evaluation=evaluate_params(params, dataset.test.images, dataset.test.labels),
        class_names=dataset.class_names,
    )


def report_end(options: RunOptions, keeper, record: dict, result, echo, note) -> None:
    """The test line and what was written where; with ``--json``, the record instead (and
    the written line on standard error, as with ``--quiet``)."""
    summary = keeper.summary()
    if options.as_json:
        echo(json.dumps(record))
        if summary:
            note(summary)
        return
    echo(format_test(result.test))
    if summary:
        (note if options.quiet else echo)(summary)


def load_settings_data(settings: Settings, data_dir_origin: str = "--data-dir"):
    """The dataset the settings name, split as they say.

    ``data_dir_origin`` names where the settings' data directory came from, for messages.
    """
    from jaxmlp.data import load_dataset

    return load_dataset(
        settings.dataset,
        data_dir=settings.data_dir,
        val_size=settings.val_size,
        limit=settings.limit,
        download=settings.download,
        data_dir_origin=data_dir_origin,
    )


def load_image_classifier(path: str | os.PathLike) -> checkpoints.Checkpoint:
    """Loads a checkpoint and checks that it classifies its dataset's images into its classes.

    Raises:
        CheckpointError: The file is not a checkpoint, or its network does not fit.
    """
    from jaxmlp.data import IMAGE_SHAPE

    checkpoint = checkpoints.load_checkpoint(path)
    sizes, name = checkpoint.settings.sizes, checkpoint.settings.dataset
    height, width = IMAGE_SHAPE
    if sizes[0] != height * width:
        raise CheckpointError(
            f"checkpoint {path} takes {sizes[0]} inputs, but {name} images have "
            f"{height}×{width} = {height * width} pixels"
        )
    classes = len(class_names_of(checkpoint))
    if sizes[-1] != classes:
        raise CheckpointError(
            f"checkpoint {path} has {sizes[-1]} outputs, but {name} has {classes} classes"
        )
    return checkpoint


def class_names_of(checkpoint: checkpoints.Checkpoint) -> tuple[str, ...]:
    """The class names of the checkpoint's dataset, by label."""
    from jaxmlp.data.sources import get_spec

    return get_spec(checkpoint.settings.dataset).class_names


def load_training_data(checkpoint: checkpoints.Checkpoint, data: Mapping[str, Any] | None = None):
    """The dataset a checkpoint was trained on, split as in training but whole (no limit).

    ``data`` may hold ``dataset``, ``data_dir`` and ``download`` given now: a directory or
    download choice replaces the checkpoint's; a dataset must be the checkpoint's own.

    Raises:
      ConfigError: ``data`` names another dataset than the checkpoint's.
    """
    data = dict(data or {})
    trained = checkpoint.settings
    asked = data.pop("dataset", trained.dataset)
    if asked != trained.dataset:
        raise ConfigError(
            f"is {asked} but the checkpoint was trained on {trained.dataset}", setting="dataset"
        )
    origin = "--data-dir" if "data_dir" in data else "the checkpoint's data directory"
    return load_settings_data(trained.replace(limit=None, **data), origin)
