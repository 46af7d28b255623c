"""PNG plots with matplotlib (the optional ``plot`` extra), imported only when drawing.

Figures are drawn on matplotlib's Agg canvas without ``pyplot``, so no window opens, no
global state changes and it works without a display. :func:`save_all_plots` writes:

- ``learning_curves.png``: loss and accuracy per epoch, train and validation (and test);
- ``confusion_matrix.png``: counts, coloured by the fraction of each true class;
- ``first_layer_weights.png``: each first-layer unit's 784 weights as a 28×28 image;
- ``misclassified.png``: the most confidently misclassified digits, true/predicted/confidence.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxmlp.errors import InputFileError, MissingDependencyError
from jaxmlp.evaluation import Evaluation, most_confident_mistakes
from jaxmlp.files import atomic_write

INSTALL_HINT = "pip install 'jaxmlp[plot]'"
LEARNING_CURVES = "learning_curves.png"
CONFUSION_MATRIX = "confusion_matrix.png"
FIRST_LAYER_WEIGHTS = "first_layer_weights.png"
MISCLASSIFIED = "misclassified.png"
SWEEP_CURVES = "sweep_curves.png"
SWEEP_ROWS_DRAWN = 10
ALL_PLOTS = (LEARNING_CURVES, CONFUSION_MATRIX, FIRST_LAYER_WEIGHTS, MISCLASSIFIED)
METRIC_FIELDS = (
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
    "lr",
    "seconds",
)
"""The numeric fields of epoch and test records; each, when present, is a finite number or
``null`` (no validation split)."""
MAX_WEIGHT_UNITS = 100
MISCLASSIFIED_COUNT = 36
DPI = 100


def has_matplotlib() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def require_matplotlib() -> None:
    """Raises MissingDependencyError, naming the extra to install, if matplotlib is absent."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingDependencyError(f"plots need matplotlib: {INSTALL_HINT}") from None


def new_figure(width: float, height: float):
    """A matplotlib Figure of ``width``×``height`` inches on an Agg canvas."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure, path: str | os.PathLike) -> Path:
    """Writes ``figure`` as a PNG at ``path`` atomically, creating its directory; returns
    the path. Only a regular file is replaced (see :func:`jaxmlp.files.atomic_write`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as file:
        figure.savefig(file, format="png")
    return path


def read_metrics_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Reads a ``--metrics-out`` JSON-lines file: one JSON object a line, blank lines skipped.

    Raises:
        InputFileError: The file is missing, a line is not a JSON object, or a record's
            field has the wrong type (see :func:`check_metrics_record`).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputFileError(
            f"metrics file {path} cannot be read ({error.__class__.__name__}: {error})"
        ) from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        where = f"metrics file {path}, line {number}"
        if not isinstance(record, dict):
            raise InputFileError(f"{where}: not a JSON object")
        records.append(check_metrics_record(record, where))
    return records


def check_metrics_record(record: dict[str, Any], where: str) -> dict[str, Any]:
    """Returns ``record`` if the fields that are plotted have the types plotting needs: an
    ``event`` string (``"epoch"`` when absent), a whole-number ``epoch`` of at least 1 in
    epoch records, and finite numbers (or ``null``) in :data:`METRIC_FIELDS`. Records of other
    events (a run's header, say) are not looked into.

    Raises:
        InputFileError: ``where`` (the file and line, say), the field and the bad value.
    """
    event = record.get("event", "epoch")
    if not isinstance(event, str):
        raise InputFileError(f"{where}: field 'event' must be a string, got {shown(event)}")
    if event not in ("epoch", "test"):
        return record
    if event == "epoch" and "epoch" not in record:
        raise InputFileError(f"{where}: an epoch record needs the field 'epoch'")
    epoch = record.get("epoch", 1)
    if event == "epoch" and not (is_whole_number(epoch) and epoch >= 1):
        raise InputFileError(
            f"{where}: field 'epoch' must be a whole number of at least 1, got {shown(epoch)}"
        )
    for field in METRIC_FIELDS:
        value = record.get(field)
        if value is not None and not is_finite_number(value):
            raise InputFileError(
                f"{where}: field '{field}' must be a finite number or null, got {shown(value)}"
            )
    return record


def is_whole_number(value: Any) -> bool:
    """Whether ``value`` is a JSON integer (not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is a JSON number (not a boolean) other than NaN and ±Infinity."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def shown(value: Any) -> str:
    """``value`` as it reads in JSON: ``"three"``, ``NaN``, ``null``."""
    return json.dumps(value)


def epoch_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-epoch records, in epoch order (a resumed run's repeated epochs: last one wins)."""
    by_epoch = {
        int(record["epoch"]): record
        for record in records
        if record.get("event", "epoch") == "epoch" and "epoch" in record
    }
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def final_test_record(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The last ``{"event": "test", ...}`` record, if any."""
    tests = [record for record in records if record.get("event") == "test"]
    return tests[-1] if tests else None


def series(records: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """The epochs and values of ``key`` in the records where it is a number."""
    points = [(r["epoch"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
    return [epoch for epoch, _ in points], [value for _, value in points]


def save_learning_curves(records: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Loss and accuracy per epoch, train and validation, with the test result if logged.

    Raises:
        InputFileError: There is no epoch record to draw.
    """
    epochs = epoch_records(records)
    if not epochs:
        raise InputFileError("the metrics hold no epoch records to plot")
    test = final_test_record(records)
    figure = new_figure(11, 4.2)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for axes, metric, title in (
        (loss_axes, "loss", "Loss (cross-entropy)"),
        (accuracy_axes, "accuracy", "Accuracy"),
    ):
        for split, style in (("train", "-o"), ("val", "-s")):
            x, y = series(epochs, f"{split}_{metric}")
            if x:
                label = "train" if split == "train" else "validation"
                axes.plot(x, y, style, markersize=3, label=label)
        if test is not None and isinstance(test.get(f"test_{metric}"), (int, float)):
            axes.axhline(test[f"test_{metric}"], color="gray", linestyle="--", label="test (final)")
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(alpha=0.3)
        axes.legend()
    if accuracy_axes.lines:
        accuracy_axes.yaxis.set_major_formatter(lambda value, _: f"{100 * value:.1f}%")
    return save_figure(figure, path)


def save_sweep_curves(
    rows: Sequence[Sequence[Sequence[dict[str, Any]]]],
    labels: Sequence[str],
    path: str | os.PathLike,
) -> Path:
    """Validation accuracy per epoch of each setting of a sweep: the mean over its runs as a
    line, the runs' minimum to maximum as a band. The first :data:`SWEEP_ROWS_DRAWN` rows
    are drawn; the title says so when there are more.

    Args:
      rows: per setting, the epoch records of each of its runs (best setting first).
      labels: per setting, its legend text.
    """
    figure = new_figure(8, 4.8)
    axes = figure.subplots()
    for histories, label in list(zip(rows, labels))[:SWEEP_ROWS_DRAWN]:
        epochs = min((len(history) for history in histories if history), default=0)
        if not epochs:
            continue
        values = np.array(
            [
                [record["val_accuracy"] for record in history[:epochs]]
                for history in histories
                if history
            ]
        )
        x = np.arange(1, epochs + 1)
        (line,) = axes.plot(x, values.mean(axis=0), "-o", markersize=3, label=label)
        axes.fill_between(
            x, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2
        )
    title = "Validation accuracy: mean over seeds, band from min to max"
    if len(rows) > SWEEP_ROWS_DRAWN:
        title += f"\n(the {SWEEP_ROWS_DRAWN} best of {len(rows)} settings)"
    axes.set_title(title)
    axes.set_xlabel("epoch")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.yaxis.set_major_formatter(lambda value, _: f"{100 * value:.1f}%")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return save_figure(figure, path)


def is_sweep_log(records: Sequence[dict[str, Any]]) -> bool:
    """Whether metrics records come from ``jaxmlp sweep`` (its records name a ``member``)."""
    return any("member" in record for record in records)


def sweep_log_rows(
    records: Sequence[dict[str, Any]], source: str | os.PathLike
) -> tuple[list[list[list[dict[str, Any]]]], list[str]]:
    """A sweep's metrics as :func:`save_sweep_curves` draws them: per setting (all but the
    seed; best mean final validation accuracy first) its members' epoch records, and labels.

    Raises:
        InputFileError: A member's records do not say its settings, a member has no
            validation accuracy, or there are more settings than one figure shows.
    """
    histories: dict[int, list[dict[str, Any]]] = {}
    settings: dict[int, dict[str, Any]] = {}
    for record in records:
        if record.get("event", "epoch") != "epoch" or "member" not in record:
            continue
        member, chosen = record["member"], record.get("settings")
        if not is_whole_number(member) or not isinstance(chosen, dict):
            raise InputFileError(
                f"{source}: a sweep's epoch record needs a whole-number 'member' and its "
                f"'settings' object; cannot tell its settings apart"
            )
        if not is_finite_number(record.get("val_accuracy")):
            raise InputFileError(
                f"{source}: member {member}, epoch {record.get('epoch')} has no validation "
                "accuracy to plot"
            )
        histories.setdefault(member, []).append(record)
        settings[member] = {name: value for name, value in chosen.items() if name != "seed"}
    if not histories:
        raise InputFileError(f"{source}: the sweep's metrics hold no epoch records to plot")
    grouped: dict[str, list[list[dict[str, Any]]]] = {}
    for member, history in histories.items():
        chosen = settings[member].items()
        label = ", ".join(f"{name} {shown_setting(value)}" for name, value in chosen)
        grouped.setdefault(label or f"all {len(histories)} runs", []).append(history)
    if len(grouped) > SWEEP_ROWS_DRAWN:
        raise InputFileError(
            f"{source} holds {len(grouped)} settings; one plot draws at most "
            f"{SWEEP_ROWS_DRAWN} (the sweep's own --out-dir draws its {SWEEP_ROWS_DRAWN} best)"
        )

    def final_mean(label: str) -> float:
        return float(np.mean([history[-1]["val_accuracy"] for history in grouped[label]]))

    labels = sorted(grouped, key=final_mean, reverse=True)
    return [grouped[label] for label in labels], labels


def shown_setting(value: Any) -> str:
    """A setting's value from a metrics record as a legend shows it: ``784,15,10``, ``0.1``."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def save_confusion_matrix(
    confusion: np.ndarray, class_names: Sequence[str], path: str | os.PathLike
) -> Path:
    """The confusion matrix with every count written in its cell, coloured by row fraction."""
    size = len(class_names)
    fractions = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    figure = new_figure(1.6 + 0.62 * size, 1.2 + 0.55 * size)
    axes = figure.subplots()
    image = axes.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    for row in range(size):
        for col in range(size):
            color = "white" if fractions[row, col] > 0.5 else "black"
            axes.text(
                col,
                row,
                f"{confusion[row, col]:,}",
                ha="center",
                va="center",
                color=color,
                fontsize=8,
            )
    slanted = max(map(len, class_names)) > 2
    axes.set_xticks(
        range(size), class_names, rotation=45 if slanted else 0, ha="right" if slanted else "center"
    )
    axes.set_yticks(range(size), class_names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    accuracy = np.trace(confusion) / max(int(confusion.sum()), 1)
    axes.set_title(f"Confusion matrix (accuracy {100 * accuracy:.2f}%)")
    figure.colorbar(image, ax=axes, label="fraction of the true class", shrink=0.8)
    return save_figure(figure, path)


def save_first_layer_weights(
    weights: np.ndarray, path: str | os.PathLike, max_units: int = MAX_WEIGHT_UNITS
) -> Path:
    """Each first-layer unit's incoming weights as a 28×28 image (red +, blue −).

    Args:
        weights: The first layer's ``(hidden, 784)`` weight matrix.
        path: Where to write the PNG.
        max_units: Draw at most this many units, the first ones.
    """
    weights = np.asarray(weights, np.float32)
    units = weights[:max_units]
    columns = math.ceil(math.sqrt(len(units)))
    rows = math.ceil(len(units) / columns)
    side = math.isqrt(weights.shape[1])
    figure = new_figure(1.0 + 0.9 * columns, 0.8 + 0.9 * rows)
    grid = figure.subplots(rows, columns, squeeze=False)
    for index, axes in enumerate(grid.flat):
        axes.set_axis_off()
        if index < len(units):
            limit = float(np.abs(units[index]).max()) or 1.0
            axes.imshow(units[index].reshape(side, side), cmap="RdBu_r", vmin=-limit, vmax=limit)
    shown = (
        f"first {len(units)} of {len(weights)}"
        if len(units) < len(weights)
        else f"all {len(weights)}"
    )
    figure.suptitle(f"First-layer weights ({shown} units; red positive, blue negative)")
    return save_figure(figure, path)


def save_misclassified(
    images: np.ndarray,
    evaluation: Evaluation,
    class_names: Sequence[str],
    path: str | os.PathLike,
    count: int = MISCLASSIFIED_COUNT,
) -> Path:
    """The ``count`` most confidently misclassified digits, each titled true → predicted (p)."""
    chosen = most_confident_mistakes(evaluation, count)
    columns = max(1, min(len(chosen), 9))
    rows = max(1, math.ceil(len(chosen) / columns))
    figure = new_figure(0.5 + 1.35 * columns, 0.7 + 1.55 * rows)
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes in grid.flat:
        axes.set_axis_off()
    for axes, index in zip(grid.flat, chosen):
        axes.imshow(np.asarray(images[index]).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
        true, predicted = (
            class_names[evaluation.labels[index]],
            class_names[evaluation.predictions[index]],
        )
        axes.set_title(
            f"{true} → {predicted}\n{100 * evaluation.confidences[index]:.1f}%  #{index}",
            fontsize=8,
        )
    title = "Most confident mistakes (true → predicted, confidence, index)"
    figure.suptitle(title if len(chosen) else "No misclassified examples")
    return save_figure(figure, path)


def save_all_plots(
    out_dir: str | os.PathLike,
    *,
    metrics: Sequence[dict[str, Any]],
    first_layer_weights: np.ndarray,
    images: np.ndarray,
    evaluation: Evaluation,
    class_names: Sequence[str],
) -> list[Path]:
    """Writes the four plots into ``out_dir``; learning curves only if there are epoch records."""
    out_dir = Path(out_dir)
    written = []
    if epoch_records(metrics):
        written.append(save_learning_curves(metrics, out_dir / LEARNING_CURVES))
    written.append(
        save_confusion_matrix(evaluation.confusion, class_names, out_dir / CONFUSION_MATRIX)
    )
    written.append(save_first_layer_weights(first_layer_weights, out_dir / FIRST_LAYER_WEIGHTS))
    written.append(save_misclassified(images, evaluation, class_names, out_dir / MISCLASSIFIED))
    return written
