"""What ``jaxmlp train`` keeps of a run: where its outputs go, and writing them as it goes.

:func:`plan_outputs` decides the files before any work and refuses to replace what an
earlier command wrote (:func:`jaxmlp.outputs.check_not_replacing`): an existing
``--save`` checkpoint or ``--metrics-out`` file, a non-empty ``--run-dir``, unless
``--overwrite``. ``--resume X`` continues the run where it was kept: X's run directory
when X is one (or ``last.npz``/``best.npz`` in one), else the checkpoint X itself; those
outputs, and a ``--metrics-out`` file being continued, are not "replaced".

:class:`RunKeeper` then writes, after each epoch, the checkpoint (``last.npz`` in a run
directory), ``best.npz`` when validation accuracy improved, the TensorBoard events, and
says when ``--early-stop`` patience ran out; at the end ``run.json``, the plots and one
line saying what was written where (see :mod:`jaxmlp.run_dir` for a directory's layout).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxmlp import run_dir as layout
from jaxmlp.config_file import settings_toml
from jaxmlp.errors import ConfigError, MissingDependencyError
from jaxmlp.outputs import check_not_replacing, check_outputs
from jaxmlp.settings import Settings


@dataclasses.dataclass(frozen=True)
class OutputPlan:
    """Where a training run's outputs go.

    Attributes:
      run_dir: the run directory (``None``: none).
      checkpoint: rewritten after every epoch (``run_dir/last.npz`` or ``--save``).
      best: the best validation accuracy's checkpoint (run directories only).
      metrics: the JSON-lines metrics file.
      resume: the checkpoint the run continues.
      continuing: the outputs are those of the resumed run (nothing is cleared).
    """

    run_dir: Path | None = None
    checkpoint: Path | None = None
    best: Path | None = None
    metrics: Path | None = None
    resume: Path | None = None
    continuing: bool = False


def same_path(a: Path | None, b: Path | None) -> bool:
    """Whether ``a`` and ``b`` name one file or directory."""
    return a is not None and b is not None and os.path.realpath(a) == os.path.realpath(b)


def resume_source(resume: Path) -> tuple[Path, Path | None]:
    """The checkpoint ``--resume`` names, and the run directory it belongs to (if any)."""
    if resume.is_dir():
        return resume / layout.LAST, resume
    if resume.name in (layout.LAST, layout.BEST) and (resume.parent / layout.RECORD).is_file():
        return resume, resume.parent
    return resume, None


def plan_outputs(
    *,
    run_dir: Path | None = None,
    save: Path | None = None,
    metrics_out: Path | None = None,
    resume: Path | None = None,
    overwrite: bool = False,
) -> OutputPlan:
    """Where the run's outputs go; every check done before any work.

    Raises:
      ConfigError: ``--run-dir`` with ``--save`` or ``--metrics-out``.
      OutputPathError: an output cannot be written, or would replace an earlier one
        without ``--overwrite``.
    """
    if run_dir is not None and (save is not None or metrics_out is not None):
        flag = "--save" if save is not None else "--metrics-out"
        raise ConfigError(
            f"give --run-dir or {flag}, not both: a run directory keeps its checkpoint as "
            f"{layout.LAST} and its metrics as {layout.METRICS}"
        )
    source, source_dir = resume_source(resume) if resume is not None else (None, None)
    if resume is not None and run_dir is None and save is None:
        run_dir, save = (source_dir, None) if source_dir is not None else (None, source)
    plan = OutputPlan(
        run_dir=run_dir,
        checkpoint=run_dir / layout.LAST if run_dir is not None else save,
        best=run_dir / layout.BEST if run_dir is not None else None,
        metrics=run_dir / layout.METRICS if run_dir is not None else metrics_out,
        resume=source,
        continuing=same_path(run_dir, source_dir) or same_path(save, source),
    )
    check_plan(plan, run_dir_given=run_dir, overwrite=overwrite)
    return plan


def check_plan(plan: OutputPlan, *, run_dir_given: Path | None, overwrite: bool) -> None:
    """:func:`check_outputs` on every file, then the refusal to replace earlier outputs."""
    if plan.run_dir is not None:
        names = [
            plan.run_dir / name
            for name in (layout.CONFIG, layout.RECORD, layout.LAST, layout.BEST, layout.METRICS)
        ]
        check_outputs({"--run-dir": names})
    else:
        check_outputs({"--save": plan.checkpoint, "--metrics-out": plan.metrics})
    if plan.continuing:
        return
    resuming = plan.resume is not None
    check_not_replacing(
        {
            "--save": plan.checkpoint if plan.run_dir is None else None,
            "--metrics-out": plan.metrics if plan.run_dir is None and not resuming else None,
        },
        {"--run-dir": run_dir_given},
        overwrite=overwrite,
    )


def prepare_run_dir(plan: OutputPlan, overwrite: bool) -> None:
    """Clears what an earlier run left in the run directory (``--overwrite``; not when the
    run continues there), and creates it."""
    if plan.run_dir is None:
        return
    if overwrite and not plan.continuing and plan.run_dir.is_dir():
        layout.clear_run_dir(plan.run_dir)
    plan.run_dir.mkdir(parents=True, exist_ok=True)


def events_or_note(plan: OutputPlan, settings: Settings, note: Callable[[str], None]):
    """The run's TensorBoard writer, or ``None`` (no run directory, or tensorboardX is
    missing: then ``note`` says so in one line)."""
    if plan.run_dir is None:
        return None
    from jaxmlp.tensorboard_events import RunEvents

    try:
        return RunEvents(plan.run_dir / layout.EVENTS, settings)
    except MissingDependencyError as missing:
        note(f"note: no TensorBoard events: {missing}")
        return None


class RunKeeper:
    """Writes a run's outputs as it trains (see the module's description).

    Args:
      plan: from :func:`plan_outputs`.
      settings: the run's settings (data directory absolute).
      dataset: the data as loaded (``run.json`` records its source).
      argv: the command line, for ``run.json``.
      early_stop: ``--early-stop`` patience in epochs (``None``: off).
      note: prints a notice (standard error).
    """

    def __init__(
        self,
        plan: OutputPlan,
        settings: Settings,
        dataset,
        *,
        argv: Sequence[str] | None = None,
        early_stop: int | None = None,
        note: Callable[[str], None] = print,
    ):
        self.plan = plan
        self.settings = settings
        self.dataset = dataset
        self.argv = argv
        self.early_stop = early_stop
        self.note = note
        self.started = layout.now_text()
        self.saved: tuple[Path, int] | None = None
        self.best: Mapping[str, Any] | None = None
        self.stopped_early: str | None = None
        self.events = None

    def start(self) -> None:
        """Writes ``config.toml`` and a ``run.json`` that says the run is running."""
        if self.plan.run_dir is None:
            return
        layout.write_text(self.plan.run_dir / layout.CONFIG, settings_toml(self.settings))
        self.write_record("running")
        self.events = events_or_note(self.plan, self.settings, self.note)

    def on_epoch(
        self,
        history: list[dict[str, Any]],
        save: Callable[[Path], None],
        first_layer_weights: Callable[[], np.ndarray],
    ) -> bool:
        """Keeps one epoch: checkpoint, best checkpoint, events. Returns whether to stop
        early (and then says why in :attr:`stopped_early`)."""
        record = history[-1]
        if self.plan.checkpoint is not None:
            save(self.plan.checkpoint)
            self.saved = (self.plan.checkpoint, record["epoch"])
        self.best = layout.best_val_epoch(history)
        if self.plan.best is not None and layout.improved(history):
            save(self.plan.best)
        if self.events is not None:
            self.events.epoch(record, first_layer_weights())
        if layout.should_stop_early(history, self.early_stop):
            best = layout.best_val_epoch(history)
            self.stopped_early = (
                f"Stopping early: validation accuracy has not improved for {self.early_stop} "
                f"epoch{'s' * (self.early_stop > 1)} (best {100 * best['val_accuracy']:.2f}% "
                f"in epoch {best['epoch']})"
            )
            return True
        return False

    def final(self, history: list[dict[str, Any]], test: Mapping[str, Any] | None) -> dict:
        """The final figures: epochs done, the epoch the checkpoint holds (one fewer when
        Ctrl-C came before its save), last and best epoch, test result, files."""
        best = layout.best_val_epoch(history)
        return {
            "epochs": history[-1]["epoch"] if history else 0,
            "checkpoint_epoch": self.saved[1] if self.saved is not None else None,
            "last_epoch": history[-1] if history else None,
            "best_epoch": best,
            "test": dict(test) if test is not None else None,
            "stopped_early": self.stopped_early,
            "files": self.files(),
        }

    def files(self) -> dict[str, str]:
        """What the run wrote, by role."""
        plan = self.plan
        found = {
            "run_dir": plan.run_dir,
            "checkpoint": plan.checkpoint if self.saved is not None else None,
            "best": plan.best if plan.best is not None and plan.best.exists() else None,
            "metrics": plan.metrics,
        }
        return {role: str(path) for role, path in found.items() if path is not None}

    def record(self, status: str, final: Mapping[str, Any] | None = None, ended=None) -> dict:
        """``run.json``'s content now."""
        return layout.run_record(
            command="train",
            argv=self.argv,
            settings=self.settings.to_dict(),
            dataset=self.dataset,
            started=self.started,
            status=status,
            final=final,
            ended=ended,
        )

    def write_record(self, status: str, final: Mapping[str, Any] | None = None) -> dict:
        """Writes ``run.json`` (run directories only) and returns the record."""
        ended = None if status == "running" else layout.now_text()
        record = self.record(status, final, ended)
        if self.plan.run_dir is not None:
            layout.write_json(self.plan.run_dir / layout.RECORD, record)
        return record

    def finish(
        self,
        history: list[dict[str, Any]],
        test: Mapping[str, Any],
        plots: Callable[[Path], list[Path]] | None = None,
    ) -> dict:
        """Ends a completed run: test figures into the events, plots, ``run.json``.

        Args:
          history: every epoch's record.
          test: the test record.
          plots: writes the plots into a directory and returns them (run directories only;
            skipped with a note without matplotlib).
        Returns:
          The final record (``run.json``'s content).
        """
        if self.events is not None:
            self.events.finish(test)
        if self.plan.run_dir is not None and plots is not None:
            try:
                plots(self.plan.run_dir / layout.PLOTS)
            except MissingDependencyError as missing:
                self.note(f"note: no plots: {missing}")
        status = "stopped early" if self.stopped_early else "finished"
        return self.write_record(status, self.final(history, test))

    def abandon(self, history: list[dict[str, Any]], status: str) -> None:
        """Records a run that ended without its test (Ctrl-C, divergence) in ``run.json``."""
        if self.events is not None:
            self.events.writer.close()
        if self.plan.run_dir is not None:
            self.write_record(status, self.final(history, None))

    def resume_hint(self) -> str | None:
        """How to continue an interrupted run: ``jaxmlp train --resume X``."""
        if self.saved is None:
            return None
        target = self.plan.run_dir if self.plan.run_dir is not None else self.saved[0]
        return f"continue with: jaxmlp train --resume {shlex.quote(str(target))}"

    def summary(self) -> str | None:
        """One line saying what was written where (``None`` when nothing was)."""
        plan = self.plan
        if plan.run_dir is not None:
            parts = [layout.CONFIG, layout.RECORD]
            if self.saved is not None:
                parts.append(f"{layout.LAST} (epoch {self.saved[1]})")
            if self.best is not None and plan.best is not None and plan.best.exists():
                parts.append(
                    f"{layout.BEST} (epoch {self.best['epoch']}, validation "
                    f"{100 * self.best['val_accuracy']:.2f}%)"
                )
            parts.append(layout.METRICS)
            parts += [
                f"{name}/"
                for name in (layout.EVENTS, layout.PLOTS)
                if (plan.run_dir / name).is_dir()
            ]
            return f"wrote {plan.run_dir}: {', '.join(parts)}"
        parts = []
        if self.saved is not None:
            parts.append(f"{self.saved[0]} (epoch {self.saved[1]})")
        if plan.metrics is not None:
            parts.append(str(plan.metrics))
        return f"wrote {', '.join(parts)}" if parts else None


def check_early_stop(patience: int | None, settings: Settings) -> None:
    """``--early-stop`` needs a validation split to watch.

    Raises:
      ConfigError: patience given with ``--val-size 0``.
    """
    if patience is not None and settings.val_size == 0:
        raise ConfigError(
            "--early-stop watches validation accuracy, but --val-size is 0 (no validation split)"
        )


class SweepKeeper:
    """Writes a sweep's run directory (see :mod:`jaxmlp.run_dir`): ``config.toml`` with
    the grid's axes as lists, ``run.json``, the table as text and JSON, and one TensorBoard
    run per member (scalars and settings) named by its settings; the sweep itself writes
    ``metrics.jsonl``, ``best.npz`` and ``plots/`` there.

    Args:
      run_dir: the directory (created, or cleared of a run's entries with ``overwrite``).
      members: the grid's runs.
      axes: the grid's axes of more than one value.
      argv: the command line, for ``run.json``.
      note: prints a notice (standard error).
    """

    def __init__(
        self,
        run_dir: Path,
        members: Sequence[Settings],
        axes: Mapping[str, Sequence[Any]],
        *,
        argv: Sequence[str] | None = None,
        note: Callable[[str], None] = print,
    ):
        from jaxmlp.sweep import varying

        self.run_dir = run_dir
        self.members = list(members)
        self.axes = dict(axes)
        self.columns = varying(self.members)
        self.argv = argv
        self.note = note
        self.started = layout.now_text()
        self.dataset = None
        self.events: dict[int, Any] = {}
        self.tensorboard = True

    def start(self, dataset, overwrite: bool) -> None:
        """Creates the directory, writes ``config.toml`` and a ``run.json`` saying it runs."""
        if overwrite and self.run_dir.is_dir():
            layout.clear_run_dir(self.run_dir, layout.SWEEP_ENTRIES)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.dataset = dataset
        first = kept(self.members[0])
        text = settings_toml(first, axes=self.axes, command="sweep")
        layout.write_text(self.run_dir / layout.CONFIG, text)
        self.write_record("running")

    def member_record(self, record: Mapping[str, Any]) -> None:
        """One member's epoch or test record, into its TensorBoard run."""
        if not self.tensorboard:
            return
        index = record["member"]
        if index not in self.events:
            from jaxmlp.tensorboard_events import RunEvents, member_run_name

            name = member_run_name(index, self.members[index], self.columns)
            try:
                self.events[index] = RunEvents(
                    self.run_dir / layout.EVENTS / name, self.members[index]
                )
            except MissingDependencyError as missing:
                self.note(f"note: no TensorBoard events: {missing}")
                self.tensorboard = False
                return
        if record.get("event", "epoch") == "test":
            self.events.pop(index).finish(record)
        else:
            self.events[index].epoch(record)

    def write_record(self, status: str, final: Mapping[str, Any] | None = None) -> dict:
        """Writes ``run.json``: the first member's settings, the axes, the runs."""
        record = layout.run_record(
            command="sweep",
            argv=self.argv,
            settings=kept(self.members[0]).to_dict(),
            dataset=self.dataset,
            started=self.started,
            status=status,
            final=final,
            ended=None if status == "running" else layout.now_text(),
        )
        record["axes"] = {
            name: [str(value) for value in values] for name, values in self.axes.items()
        }
        record["runs"] = len(self.members)
        layout.write_json(self.run_dir / layout.RECORD, record)
        return record

    def finish(self, report: Mapping[str, Any], table: str, best: Mapping[str, Any] | None) -> None:
        """Writes the table (text and JSON) and the final ``run.json``."""
        for events in self.events.values():
            events.writer.close()
        layout.write_text(self.run_dir / layout.TABLE_TEXT, table + "\n")
        layout.write_json(self.run_dir / layout.TABLE_JSON, report)
        status = "interrupted" if report.get("interrupted") else "finished"
        self.write_record(
            status,
            {
                "best": best,
                "runs": report.get("runs"),
                "seconds": report.get("seconds"),
                "interrupted": report.get("interrupted"),
            },
        )

    def summary(self, best: Mapping[str, Any] | None) -> str:
        """One line saying what was written where."""
        parts = [layout.CONFIG, layout.RECORD, layout.TABLE_TEXT, layout.TABLE_JSON]
        if best is not None and (self.run_dir / layout.BEST).exists():
            parts.append(
                f"{layout.BEST} (member {best['member']}, validation "
                f"{100 * best['val_accuracy']:.2f}%)"
            )
        parts.append(layout.METRICS)
        events = self.run_dir / layout.EVENTS
        if events.is_dir():
            parts.append(f"{layout.EVENTS}/ ({len(list(events.iterdir()))} runs)")
        if (self.run_dir / layout.PLOTS).is_dir():
            parts.append(f"{layout.PLOTS}/")
        return f"wrote {self.run_dir}: {', '.join(parts)}"


def kept(settings: Settings) -> Settings:
    """The settings as a run keeps them: the data directory absolute, so that ``evaluate``,
    ``--resume`` and ``--config DIR/config.toml`` find the same data from anywhere."""
    data_dir = settings.data_dir.resolve() if settings.data_dir is not None else None
    return settings.replace(data_dir=data_dir)


def plan_sweep_outputs(
    *,
    run_dir: Path | None,
    metrics_out: Path | None,
    save_best: Path | None,
    plot_dir: Path | None,
    overwrite: bool,
) -> tuple[Path | None, Path | None, Path | None]:
    """A sweep's metrics file, best checkpoint and plot directory (a run directory's own
    when given); the checks of :func:`plan_outputs`.

    Raises:
      ConfigError: ``--run-dir`` with another output flag.
      OutputPathError: as :func:`plan_outputs`.
    """
    if run_dir is not None:
        given = [
            flag
            for flag, value in (
                ("--metrics-out", metrics_out),
                ("--save-best", save_best),
                ("--out-dir", plot_dir),
            )
            if value is not None
        ]
        if given:
            raise ConfigError(
                f"give --run-dir or {given[0]}, not both: a sweep's run directory keeps its "
                f"metrics, best run and plots"
            )
        metrics_out, save_best = run_dir / layout.METRICS, run_dir / layout.BEST
        plot_dir = run_dir / layout.PLOTS
        check_outputs(
            {
                "--run-dir": [
                    run_dir / name
                    for name in (
                        layout.CONFIG,
                        layout.RECORD,
                        layout.TABLE_TEXT,
                        layout.TABLE_JSON,
                        layout.BEST,
                        layout.METRICS,
                    )
                ]
            }
        )
        check_not_replacing(directories={"--run-dir": run_dir}, overwrite=overwrite)
    else:
        check_not_replacing(
            {"--metrics-out": metrics_out, "--save-best": save_best}, overwrite=overwrite
        )
    return metrics_out, save_best, plot_dir
