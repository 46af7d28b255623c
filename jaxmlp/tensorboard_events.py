"""TensorBoard event files of a run, written with tensorboardX (no TensorFlow needed).

One :class:`RunEvents` writes one run's directory of event files:

- per epoch, the scalars of :data:`EPOCH_SCALARS` (train and validation loss and accuracy,
  the learning rate) at step = epoch, and the first layer's weights as one image
  (:func:`weights_image`);
- at the end, the test loss and accuracy as scalars at the last epoch's step;
- the run's settings as TensorBoard hparams (every setting that is set; layer sizes as
  text ``784,15,10``), with the final validation and test figures as its metrics, so that
  the HParams view compares the runs of a sweep, one directory per member
  (:func:`member_run_name`).

tensorboardX is the optional ``tensorboard`` extra; a missing one is one line naming it.
``tensorboard --logdir DIR`` shows the runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from jaxmlp.display import shown
from jaxmlp.errors import MissingDependencyError
from jaxmlp.settings import SPECS, Settings

INSTALL_HINT = "pip install 'jaxmlp[tensorboard]'"
EPOCH_SCALARS = {
    "train_loss": "loss/train",
    "val_loss": "loss/validation",
    "train_accuracy": "accuracy/train",
    "val_accuracy": "accuracy/validation",
    "lr": "learning_rate",
}
"""Epoch record field → scalar tag."""
TEST_SCALARS = {"test_loss": "loss/test", "test_accuracy": "accuracy/test"}
HPARAM_METRICS = ("accuracy/validation", "loss/validation", "accuracy/test", "loss/test")
"""The scalars the HParams view shows beside each run's settings (their last values)."""
WEIGHTS_TAG = "first_layer_weights"
MAX_WEIGHT_UNITS = 100


def require_tensorboardx():
    """The ``tensorboardX`` module; raises :class:`MissingDependencyError` naming the extra."""
    try:
        import tensorboardX
    except ImportError:
        message = f"TensorBoard logs need tensorboardX: {INSTALL_HINT}"
        raise MissingDependencyError(message) from None
    return tensorboardX


def hparam_values(settings: Settings) -> dict[str, str | float | int | bool]:
    """The settings as hparams: numbers, booleans and text; unset ones left out."""
    values: dict[str, str | float | int | bool] = {}
    for name in SPECS:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, (tuple, Path)):
            value = shown(value) if isinstance(value, tuple) else str(value)
        values[name] = value
    return values


def member_run_name(index: int, settings: Settings, varying: Sequence[str]) -> str:
    """A sweep member's run directory name: ``003_lr=0.1_seed=2``."""
    parts = [f"{index:03d}"]
    parts += [f"{name}={shown(getattr(settings, name))}" for name in (*varying, "seed")]
    return "_".join(parts).replace(os.sep, "-")


def weights_image(weights: np.ndarray, max_units: int = MAX_WEIGHT_UNITS) -> np.ndarray:
    """The first layer's units as a grid of square images, ``(1, H, W)`` float32 in [0, 1].

    Each unit's incoming weights (a row of ``weights``, ``(hidden, inputs)``) become a
    ``side × side`` tile scaled by its own largest magnitude: 0.5 is zero, 1 the most
    positive, 0 the most negative; tiles are 1 pixel apart on a 0.5 background.
    """
    weights = np.asarray(weights, np.float32)[:max_units]
    side = math.isqrt(weights.shape[1])
    if side * side != weights.shape[1]:
        side, weights = 1, weights.reshape(len(weights), -1)[:, :1]
    columns = math.ceil(math.sqrt(len(weights)))
    rows = math.ceil(len(weights) / columns)
    grid = np.full((rows * (side + 1) + 1, columns * (side + 1) + 1), 0.5, np.float32)
    for index, unit in enumerate(weights):
        limit = float(np.abs(unit).max()) or 1.0
        row, column = divmod(index, columns)
        top, left = 1 + row * (side + 1), 1 + column * (side + 1)
        tile = 0.5 + 0.5 * unit[: side * side].reshape(side, side) / limit
        grid[top : top + side, left : left + side] = tile
    return grid[None]


def finite(value: Any) -> bool:
    """Whether ``value`` is a finite number (not ``None``, not a boolean)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class RunEvents:
    """The TensorBoard event files of one run (see the module's description).

    Args:
      directory: the run's directory of event files (created).
      settings: the run's settings, written as hparams.
    """

    def __init__(self, directory: str | os.PathLike, settings: Settings):
        tensorboardx = require_tensorboardx()
        from tensorboardX.summary import hparams

        self.directory = Path(directory)
        self.writer = tensorboardx.SummaryWriter(logdir=str(self.directory), flush_secs=10)
        experiment, start, self._end = hparams(
            hparam_values(settings), dict.fromkeys(HPARAM_METRICS, 0.0)
        )
        self.writer.file_writer.add_summary(experiment)
        self.writer.file_writer.add_summary(start)
        self.last_epoch = 0

    def epoch(self, record: Mapping[str, Any], first_layer_weights: np.ndarray | None = None):
        """Writes one epoch record's scalars (and the weights' image) at step = its epoch."""
        step = int(record["epoch"])
        for field, tag in EPOCH_SCALARS.items():
            if finite(record.get(field)):
                self.writer.add_scalar(tag, record[field], step)
        if first_layer_weights is not None:
            self.writer.add_image(WEIGHTS_TAG, weights_image(first_layer_weights), step)
        self.last_epoch = step
        self.writer.flush()

    def finish(self, test: Mapping[str, Any] | None = None) -> None:
        """Writes the test figures and the end of the hparams session, and closes the files."""
        for field, tag in TEST_SCALARS.items():
            if test is not None and finite(test.get(field)):
                self.writer.add_scalar(tag, test[field], self.last_epoch)
        self.writer.file_writer.add_summary(self._end)
        self.writer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.writer.close()
