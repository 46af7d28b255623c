"""A run directory: what ``--run-dir DIR`` keeps of a training run or a sweep, together.

A training run's directory holds:

- ``config.toml``: the resolved settings (:func:`jaxmlp.config_file.settings_toml`);
  ``jaxmlp train --config DIR/config.toml`` repeats the run;
- ``run.json``: the record (:func:`run_record`): command line, versions, backend and
  devices, the data as found, start and end time, how it ended and the final figures;
- ``last.npz``: the checkpoint after the last complete epoch (rewritten every epoch);
- ``best.npz``: the checkpoint of the best validation accuracy so far;
- ``metrics.jsonl``: the start record, one record per epoch, the test result;
- ``tensorboard/``: TensorBoard event files (with the ``tensorboard`` extra);
- ``plots/``: learning curves and the other plots (with the ``plot`` extra).

A sweep's directory holds ``config.toml`` (its axes as lists), ``run.json``,
``table.txt`` and ``table.json``, ``best.npz`` (its best run), ``metrics.jsonl``,
``tensorboard/`` with one run per member and ``plots/sweep_curves.png``.

``--run-dir auto`` names a new directory ``runs/YYYY-MM-DD_HH-MM-SS`` (local time; ``-2``,
``-3``, … when taken) under the working directory (:func:`automatic_run_dir`).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jaxmlp import __version__
from jaxmlp.files import atomic_write

CONFIG = "config.toml"
RECORD = "run.json"
LAST = "last.npz"
BEST = "best.npz"
METRICS = "metrics.jsonl"
EVENTS = "tensorboard"
PLOTS = "plots"
TABLE_TEXT = "table.txt"
TABLE_JSON = "table.json"
RUN_ENTRIES = (CONFIG, RECORD, LAST, BEST, METRICS, EVENTS, PLOTS)
SWEEP_ENTRIES = (CONFIG, RECORD, TABLE_TEXT, TABLE_JSON, BEST, METRICS, EVENTS, PLOTS)
AUTOMATIC = "auto"
RUNS_ROOT = Path("runs")


def automatic_run_dir(now: datetime.datetime | None = None, root: Path = RUNS_ROOT) -> Path:
    """A new directory name under ``root`` from the local time: ``runs/2026-11-29_20-15-03``,
    with ``-2``, ``-3``, … when that exists."""
    now = now or datetime.datetime.now()
    stem = root / now.strftime("%Y-%m-%d_%H-%M-%S")
    candidate, number = stem, 1
    while os.path.lexists(candidate):
        number += 1
        candidate = stem.with_name(f"{stem.name}-{number}")
    return candidate


def chosen_run_dir(value: Path | None) -> Path | None:
    """``--run-dir``'s directory: ``auto`` names a new one (:func:`automatic_run_dir`)."""
    if value is not None and str(value) == AUTOMATIC:
        return automatic_run_dir()
    return value


def clear_run_dir(directory: Path, entries: Sequence[str] = RUN_ENTRIES) -> None:
    """Removes what an earlier run wrote into ``directory`` (``--overwrite``): only the
    entries a run directory holds, so that nothing else of the user's is lost."""
    for name in entries:
        path = directory / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif os.path.lexists(path):
            path.unlink()


def now_text() -> str:
    """The current UTC time as ISO 8601 to the second."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def environment_record() -> dict[str, Any]:
    """Versions, backend and devices of this process."""
    import jax
    import jaxlib

    devices = jax.devices()
    return {
        "jaxmlp": __version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "devices": [f"{device.platform}:{device.id} {device.device_kind}" for device in devices],
        "processes": jax.process_count(),
    }


def data_record(dataset) -> dict[str, Any]:
    """Which data a run used, as found (never ``null``): the source and the split sizes."""
    return {
        "dataset": dataset.name,
        "source": dataset.source,
        "train": len(dataset.train),
        "validation": len(dataset.validation),
        "test": len(dataset.test),
    }


def run_record(
    *,
    command: str,
    argv: Sequence[str] | None,
    settings: Mapping[str, Any],
    dataset,
    started: str,
    status: str,
    final: Mapping[str, Any] | None = None,
    ended: str | None = None,
) -> dict[str, Any]:
    """``run.json``: what ran, on what, from which data, when, and how it ended.

    Args:
      command: ``"train"`` or ``"sweep"``.
      argv: the command line (default ``sys.argv``).
      settings: the resolved settings as JSON.
      dataset: the data as loaded (its source is recorded as found).
      started: when it started (:func:`now_text`).
      status: ``running``, ``finished``, ``stopped early``, ``interrupted``, ``diverged``.
      final: the final figures (last epoch, best epoch, test result, files).
      ended: when it ended; ``None`` while it runs.
    """
    return {
        "command": command,
        "argv": list(sys.argv if argv is None else argv),
        "cwd": os.getcwd(),
        **environment_record(),
        "data": data_record(dataset),
        "settings": dict(settings),
        "started": started,
        "ended": ended,
        "status": status,
        "final": dict(final or {}),
    }


def write_json(path: Path, value: Any) -> Path:
    """Writes ``value`` as indented JSON to ``path`` atomically."""
    return write_text(path, json.dumps(value, indent=2) + "\n")


def write_text(path: Path, text: str) -> Path:
    """Writes ``text`` to ``path`` atomically, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as file:
        file.write(text.encode())
    return path


def best_val_epoch(history: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The epoch record of the best validation accuracy (the earliest of equals), if any."""
    scored = [record for record in history if record.get("val_accuracy") is not None]
    if not scored:
        return None
    return max(scored, key=lambda record: (record["val_accuracy"], -record["epoch"]))


def improved(history: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the last epoch has the best validation accuracy so far (``best.npz`` is
    rewritten then); strictly better than every earlier epoch."""
    best = best_val_epoch(history)
    return best is not None and best["epoch"] == history[-1]["epoch"]


def epochs_without_improvement(history: Sequence[Mapping[str, Any]]) -> int:
    """How many epochs have passed since the best validation accuracy."""
    best = best_val_epoch(history)
    if best is None:
        return 0
    return history[-1]["epoch"] - best["epoch"]


def should_stop_early(history: Sequence[Mapping[str, Any]], patience: int | None) -> bool:
    """``--early-stop N``: the validation accuracy has not improved for ``patience`` epochs."""
    return patience is not None and epochs_without_improvement(history) >= patience
