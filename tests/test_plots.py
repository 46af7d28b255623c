"""PNG plots (jaxmlp.plots): valid images of the expected size; metrics logs; missing matplotlib."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image

from jaxmlp import plots
from jaxmlp.errors import InputFileError, MissingDependencyError
from jaxmlp.evaluation import Evaluation, confusion_matrix

pytest.importorskip("matplotlib")

RECORDS = [
    {
        "event": "epoch",
        "epoch": 1,
        "train_loss": 0.9,
        "train_accuracy": 0.7,
        "val_loss": 0.8,
        "val_accuracy": 0.75,
        "lr": 0.1,
        "seconds": 1.0,
    },
    {
        "event": "epoch",
        "epoch": 2,
        "train_loss": 0.5,
        "train_accuracy": 0.85,
        "val_loss": None,
        "val_accuracy": None,
        "lr": 0.1,
        "seconds": 1.0,
    },
    {
        "event": "test",
        "test_loss": 0.6,
        "test_accuracy": 0.82,
        "test_correct": 82,
        "test_total": 100,
    },
]


def png_size(path) -> tuple[int, int]:
    """The size of a PNG file, after checking that Pillow decodes it as one."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.mode in ("RGB", "RGBA")
        image.load()
        return image.size


@pytest.fixture
def small_evaluation() -> Evaluation:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 200)
    predictions = np.where(rng.uniform(size=200) < 0.8, labels, rng.integers(0, 10, 200))
    return Evaluation(
        loss=0.5,
        labels=labels,
        predictions=predictions,
        confidences=rng.uniform(0.1, 1.0, 200),
        confusion=confusion_matrix(labels, predictions, 10),
    )


def test_learning_curves(tmp_path):
    path = plots.save_learning_curves(RECORDS, tmp_path / "curves.png")
    assert png_size(path) == (1100, 420)


def test_learning_curves_need_epochs(tmp_path):
    with pytest.raises(InputFileError, match="no epoch records"):
        plots.save_learning_curves(RECORDS[2:], tmp_path / "curves.png")


@pytest.mark.parametrize("names", [tuple("0123456789"), ("T-shirt/top",) + ("Ankle boot",) * 9])
def test_confusion_matrix(tmp_path, small_evaluation, names):
    path = plots.save_confusion_matrix(
        small_evaluation.confusion, names, tmp_path / "deep" / "cm.png"
    )
    assert png_size(path) == (780, 670)


@pytest.mark.slow
@pytest.mark.parametrize(("units", "size"), [(64, (820, 800)), (300, (1000, 980)), (3, (280, 260))])
def test_first_layer_weights(tmp_path, units, size):
    weights = np.random.default_rng(0).normal(size=(units, 784))
    assert png_size(plots.save_first_layer_weights(weights, tmp_path / "w.png")) == size


@pytest.mark.slow
def test_misclassified_gallery(tmp_path, small_evaluation):
    images = np.random.default_rng(1).uniform(size=(200, 784))
    path = plots.save_misclassified(
        images, small_evaluation, tuple("0123456789"), tmp_path / "m.png"
    )
    assert png_size(path) == (1265, 690)


def test_misclassified_gallery_without_mistakes(tmp_path):
    perfect = Evaluation(0.0, np.arange(3), np.arange(3), np.ones(3), np.eye(3, dtype=int))
    path = plots.save_misclassified(
        np.zeros((3, 784)), perfect, ("a", "b", "c"), tmp_path / "m.png"
    )
    assert png_size(path) == (185, 225)


@pytest.mark.slow
def test_save_all_plots_skips_curves_without_metrics(tmp_path, small_evaluation):
    written = plots.save_all_plots(
        tmp_path,
        metrics=[],
        first_layer_weights=np.zeros((16, 784)),
        images=np.zeros((200, 784)),
        evaluation=small_evaluation,
        class_names=tuple("0123456789"),
    )
    assert [path.name for path in written] == [
        plots.CONFUSION_MATRIX,
        plots.FIRST_LAYER_WEIGHTS,
        plots.MISCLASSIFIED,
    ]


def test_read_metrics_log(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(record) for record in RECORDS) + "\n\n")
    assert plots.read_metrics_log(path) == RECORDS


@pytest.mark.parametrize("bad_line", ["{not json", "[1, 2]", "3"])
def test_read_metrics_log_names_the_bad_line(tmp_path, bad_line):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n" + bad_line + "\n")
    with pytest.raises(InputFileError, match="line 2: not a JSON object"):
        plots.read_metrics_log(path)


def test_read_metrics_log_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="cannot be read"):
        plots.read_metrics_log(tmp_path / "absent.jsonl")


def test_epoch_records_of_a_resumed_run_keep_the_last_of_each_epoch():
    resumed = [*RECORDS[:2], dict(RECORDS[1], train_loss=0.4)]
    assert [record["train_loss"] for record in plots.epoch_records(resumed)] == [0.9, 0.4]


def test_missing_matplotlib_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'jaxmlp\[plot\]'"):
        plots.save_learning_curves(RECORDS, tmp_path / "curves.png")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"event": "epoch", "epoch": "three"},
            "field 'epoch' must be a whole number of at least 1, got \"three\"",
        ),
        ({"epoch": 1.5}, "field 'epoch' must be a whole number of at least 1, got 1.5"),
        ({"epoch": True}, "field 'epoch' must be a whole number of at least 1, got true"),
        ({"epoch": 0}, "field 'epoch' must be a whole number of at least 1, got 0"),
        ({"event": "epoch"}, "an epoch record needs the field 'epoch'"),
        (
            {"epoch": 2, "val_accuracy": "0.9"},
            "field 'val_accuracy' must be a finite number or null, got \"0.9\"",
        ),
        (
            {"epoch": 2, "train_loss": float("nan")},
            "field 'train_loss' must be a finite number or null, got NaN",
        ),
        (
            {"event": "test", "test_accuracy": [1]},
            "field 'test_accuracy' must be a finite number or null, got [1]",
        ),
        ({"event": 7}, "field 'event' must be a string, got 7"),
    ],
)
def test_read_metrics_log_names_the_line_and_the_bad_field(tmp_path, record, message):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(InputFileError) as refused:
        plots.read_metrics_log(path)
    assert str(refused.value) == f"metrics file {path}, line 2: {message}"


def test_records_of_other_events_are_not_looked_into(tmp_path):
    path = tmp_path / "metrics.jsonl"
    header = {"event": "header", "settings": {"epoch": "anything"}, "lr": "not plotted"}
    path.write_text(json.dumps(header) + "\n" + json.dumps(RECORDS[0]) + "\n")
    assert plots.read_metrics_log(path) == [header, RECORDS[0]]


def test_plot_of_a_metrics_line_whose_epoch_is_not_a_number(tmp_path, capsys):
    from jaxmlp.cli import main

    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n" + json.dumps(dict(RECORDS[1], epoch="2")) + "\n")

    code = main(["plot", str(path), "--out-dir", str(tmp_path / "plots")])

    assert code == 1
    assert capsys.readouterr().err == (
        f"jaxmlp: error: metrics file {path}, line 2: field 'epoch' must be a whole number "
        'of at least 1, got "2"\n'
    )
    assert not (tmp_path / "plots").exists()
