"""``jaxmlp evaluate``, ``predict``, ``show`` and ``plot``: see and use a trained network."""

from __future__ import annotations

import enum
import json
import zipfile
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from jaxmlp.cli.app import command
from jaxmlp.cli.options import DATA_SETTINGS, new_or_old, renamed_option, with_settings
from jaxmlp.environment import require_backend
from jaxmlp.errors import ConfigError, InputFileError
from jaxmlp.files import atomic_write
from jaxmlp.outputs import check_not_replacing, check_outputs
from jaxmlp.settings import Settings

MAX_SHOWN = 1000
FROM_CHECKPOINT = dict.fromkeys(DATA_SETTINGS, "the checkpoint's")
"""The data settings' defaults of a command that reads a checkpoint: its own."""


class SplitName(enum.StrEnum):
    """A dataset split."""

    train = "train"
    validation = "validation"
    test = "test"


def console(*, stderr: bool = False) -> Console:
    """A rich console on standard output (or error); colour only on a terminal."""
    return Console(highlight=False, stderr=stderr)


def has_color(out: Console) -> bool:
    """Whether ``out`` renders colours (a terminal, or ``FORCE_COLOR`` set; not ``NO_COLOR``)."""
    return out.color_system is not None


def split_of(dataset: Any, name: str):
    """The split ``name`` of ``dataset``; raises ConfigError if it is empty."""
    split = getattr(dataset, name)
    if len(split.labels) == 0:
        raise ConfigError(
            f"the {name} split of {dataset.name} is empty (trained with --val-size 0?)"
        )
    return split


def example_indices(
    indices: list[int] | None, count: int | None, size: int, split: str
) -> list[int]:
    """Which examples of a split of ``size`` to take.

    Args:
        indices: Explicit indices; a single one with ``count`` starts a run of ``count``.
        count: How many consecutive examples (from index 0 when no index is given).
        size: The number of examples in the split.
        split: The split's name, for error messages.

    Raises:
        ConfigError: Several indices together with ``count``, or an index out of range.
    """
    indices = list(indices or [])
    if len(indices) > 1 and count is not None:
        raise ConfigError("give several --index values or one --index with --count, not both")
    if count is not None:
        start = indices[0] if indices else 0
        indices = list(range(start, start + count))
    indices = indices or [0]
    outside = [index for index in indices if not 0 <= index < size]
    if outside:
        raise ConfigError(
            f"example {outside[0]} is out of range: the {split} split has {size:,} examples "
            f"(indices 0 to {size - 1})"
        )
    return indices


def note_limit(model, examples: int, split: str) -> None:
    """Tells, on standard error, that a checkpoint trained with ``--limit`` is scored whole."""
    if model.settings.limit is not None:
        typer.echo(
            f"note: the checkpoint was trained with --limit {model.settings.limit}; this scores "
            f"the whole {split} split ({examples:,} examples)",
            err=True,
        )


def plot_files(directory: Path | None, names: tuple[str, ...] | None = None) -> list[Path] | None:
    """The PNG files a plot directory receives (``names``: all plots; ``None`` without a
    directory)."""
    from jaxmlp import plots

    names = plots.ALL_PLOTS if names is None else names
    return None if directory is None else [directory / name for name in names]


def report_written(paths: list[Path], *, stderr: bool = False) -> None:
    """Prints one ``wrote PATH`` line per file written."""
    for path in paths:
        typer.echo(f"wrote {path}", err=stderr)


@command("evaluate")
@with_settings(DATA_SETTINGS, defaults=FROM_CHECKPOINT)
def evaluate(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by 'jaxmlp train'."),
    split: SplitName = typer.Option(SplitName.test, help="The split to evaluate on."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    out_dir: Path | None = typer.Option(
        None, help="Also write the four PNG plots (see 'jaxmlp plot') into this directory."
    ),
    plot_dir: Path | None = renamed_option("--plot-dir", "--out-dir"),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace existing plots in --out-dir."
    ),
    settings: dict[str, Any] | None = None,
) -> None:
    """Accuracy, loss, per-class precision/recall/F1 and the confusion matrix on a split."""
    import numpy as np

    from jaxmlp import plots, viz
    from jaxmlp.evaluation import evaluate_params, evaluation_report
    from jaxmlp.runs import load_image_classifier, load_training_data

    plot_dir = new_or_old("--out-dir", out_dir, "--plot-dir", plot_dir)
    if plot_dir is not None:
        plots.require_matplotlib()
    check_outputs({"--out-dir": plot_files(plot_dir)})
    check_not_replacing({"--out-dir": plot_files(plot_dir)}, overwrite=overwrite)
    require_backend()
    model = load_image_classifier(checkpoint)
    dataset = load_training_data(model, settings)
    examples = split_of(dataset, split.value)
    note_limit(model, len(examples), split.value)
    result = evaluate_params(model.params, examples.images, examples.labels)
    if as_json:
        report = evaluation_report(
            result,
            dataset.class_names,
            checkpoint=str(checkpoint),
            dataset=dataset.name,
            split=split.value,
        )
        typer.echo(json.dumps(report, indent=2))
    else:
        title = f"{checkpoint}: {dataset.name} {split.value} split, {result.total:,} examples"
        console().print(viz.evaluation_view(result, dataset.class_names, title=title))
    if plot_dir is not None:
        written = plots.save_all_plots(
            plot_dir,
            metrics=model.metrics,
            first_layer_weights=np.asarray(model.params[0].w),
            images=examples.images,
            evaluation=result,
            class_names=dataset.class_names,
        )
        report_written(written, stderr=as_json)


@command("predict")
@with_settings(DATA_SETTINGS, defaults=FROM_CHECKPOINT)
def predict(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by 'jaxmlp train'."),
    images: list[Path] | None = typer.Argument(
        None,
        metavar="IMAGE",
        help="Pictures of single digits (PNG, JPEG, ...; any size, either polarity).",
    ),
    index: list[int] | None = typer.Option(
        None, "--index", min=0, help="Predict dataset example N instead of files (repeatable)."
    ),
    split: SplitName = typer.Option(SplitName.test, help="The split --index counts in."),
    top: int = typer.Option(3, min=1, help="How many of the most probable classes to list."),
    show: bool = typer.Option(
        False, "--show", help="Draw the preprocessed 28×28 image too (always on with --index)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the predictions as JSON."),
    settings: dict[str, Any] | None = None,
) -> None:
    """The most probable classes of pictures of digits, preprocessed the way MNIST was.

    Each picture is made grayscale, inverted if its background is light,
    cropped to the digit, scaled to fit 20×20 and centred by centre of mass
    in 28×28.
    """
    import numpy as np

    from jaxmlp import viz
    from jaxmlp.evaluation import predict_images
    from jaxmlp.images import load_digit
    from jaxmlp.runs import class_names_of, load_image_classifier, load_training_data

    if images and index:
        raise ConfigError("give IMAGE files or --index, not both")
    if not images and not index:
        raise ConfigError("give one or more IMAGE files, or --index N for a dataset example")
    require_backend()
    model = load_image_classifier(checkpoint)
    if images:
        class_names = class_names_of(model)
        pixels = np.stack([load_digit(path) for path in images])
        predictions = predict_images(model.params, pixels, [str(path) for path in images], top)
    else:
        dataset = load_training_data(model, settings)
        class_names = dataset.class_names
        examples = split_of(dataset, split.value)
        chosen = example_indices(index, None, len(examples.labels), split.value)
        sources = [f"{split.value} #{number}" for number in chosen]
        predictions = predict_images(
            model.params, examples.images[chosen], sources, top, examples.labels[chosen]
        )
    if as_json:
        typer.echo(json.dumps([p.to_dict(class_names) for p in predictions], indent=2))
        return
    out = console()
    for prediction in predictions:
        view = viz.prediction_view(
            prediction, class_names, show_image=show or bool(index), color=has_color(out)
        )
        out.print(view)


@command("show")
@with_settings(DATA_SETTINGS)
def show(
    split: SplitName = typer.Option(SplitName.test, help="The split to draw examples from."),
    index: list[int] | None = typer.Option(
        None,
        "--index",
        min=0,
        help="Example to draw (repeatable; with --count, the first of a run).",
    ),
    count: int | None = typer.Option(
        None, min=1, max=MAX_SHOWN, help="Draw this many consecutive examples (from --index or 0)."
    ),
    out: Path | None = typer.Option(
        None, help="Write a PNG grid of the examples with their labels instead of drawing them."
    ),
    scale: int = typer.Option(4, min=1, max=16, help="With --out: pixels per MNIST pixel."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
    settings: dict[str, Any] | None = None,
) -> None:
    """Draw dataset examples with their labels, in the terminal or as a PNG grid.

    The terminal drawing uses Unicode half-blocks (two pixels a character):
    in gray levels where the terminal shows colour, else in black and white.
    """
    from jaxmlp import viz
    from jaxmlp.runs import load_settings_data

    check_outputs({"--out": out})
    check_not_replacing({"--out": out}, overwrite=overwrite)
    data = load_settings_data(Settings(**(settings or {})))
    examples = split_of(data, split.value)
    chosen = example_indices(index, count, len(examples.labels), split.value)
    pictures = examples.images[chosen]
    captions = [
        f"#{number}: {viz.class_label(int(label), data.class_names[label])}"
        for number, label in zip(chosen, examples.labels[chosen])
    ]
    if out is None:
        terminal = console()
        terminal.print(viz.digit_gallery(pictures, captions, color=has_color(terminal)))
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as file:
        viz.digit_grid_image(pictures, captions, scale=scale).save(file, format="PNG")
    report_written([out])


@command("plot")
@with_settings(DATA_SETTINGS, defaults=FROM_CHECKPOINT)
def plot(
    source: Path = typer.Argument(
        ..., help="A metrics file (--metrics-out of 'jaxmlp train', JSON lines) or a checkpoint."
    ),
    out_dir: Path | None = typer.Option(
        None,
        help="Directory to write the PNG files into.",
        show_default="plots/ next to SOURCE",
    ),
    split: SplitName = typer.Option(
        SplitName.test, help="With a checkpoint: the split of the confusion matrix and mistakes."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace existing plots in --out-dir."
    ),
    settings: dict[str, Any] | None = None,
) -> None:
    """Write PNG plots: learning curves, confusion matrix, weights, mistakes.

    From a metrics file: learning_curves.png; from a sweep's (--metrics-out of 'jaxmlp
    sweep'), sweep_curves.png: every setting's mean validation accuracy with a min-max band
    over its seeds. From a checkpoint, also confusion_matrix.png,
    first_layer_weights.png and misclassified.png (evaluated on --split). Existing plots
    are kept unless --overwrite.

    Needs matplotlib, the 'plot' extra of jaxmlp.
    """
    import numpy as np

    from jaxmlp import plots
    from jaxmlp.evaluation import evaluate_params
    from jaxmlp.runs import load_image_classifier, load_training_data

    plots.require_matplotlib()
    if not source.is_file():
        raise InputFileError(f"{source} does not exist or is not a file")
    out_dir = out_dir if out_dir is not None else source.parent / "plots"
    if not zipfile.is_zipfile(source):
        report_written([plot_metrics_file(source, out_dir, overwrite=overwrite)])
        return
    check_outputs({"--out-dir": plot_files(out_dir)})
    check_not_replacing({"--out-dir": plot_files(out_dir)}, overwrite=overwrite)
    require_backend()
    model = load_image_classifier(source)
    data = load_training_data(model, settings)
    examples = split_of(data, split.value)
    written = plots.save_all_plots(
        out_dir,
        metrics=model.metrics,
        first_layer_weights=np.asarray(model.params[0].w),
        images=examples.images,
        evaluation=evaluate_params(model.params, examples.images, examples.labels),
        class_names=data.class_names,
    )
    report_written(written)


def plot_metrics_file(source: Path, out_dir: Path, *, overwrite: bool = False) -> Path:
    """Draws a metrics file: a sweep's settings as sweep_curves.png, else a run's
    learning_curves.png; returns the file written (an existing one only with
    ``overwrite``)."""
    from jaxmlp import plots

    records = plots.read_metrics_log(source)
    sweep = plots.is_sweep_log(records)
    path = out_dir / (plots.SWEEP_CURVES if sweep else plots.LEARNING_CURVES)
    check_outputs({"--out-dir": path})
    check_not_replacing({"--out-dir": path}, overwrite=overwrite)
    if sweep:
        rows, labels = plots.sweep_log_rows(records, source)
        return plots.save_sweep_curves(rows, labels, path)
    return plots.save_learning_curves(records, path)
