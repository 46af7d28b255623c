"""``jaxmlp evaluate``, ``predict``, ``show`` and ``plot`` with a network trained here on MNIST."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from data_fixtures import REAL_MNIST_DIR, needs_real_mnist
from PIL import Image

from jaxmlp import viz
from jaxmlp.checkpoint import Checkpoint, save_checkpoint
from jaxmlp.cli import main
from jaxmlp.model import accuracy, init_params, loss
from jaxmlp.settings import Settings

MNIST_DIR = REAL_MNIST_DIR
METRICS = [
    {
        "event": "epoch",
        "epoch": 1,
        "train_loss": 0.7,
        "train_accuracy": 0.8,
        "val_loss": 0.5,
        "val_accuracy": 0.86,
        "lr": 0.1,
        "seconds": 1.0,
    },
    {
        "event": "epoch",
        "epoch": 2,
        "train_loss": 0.4,
        "train_accuracy": 0.88,
        "val_loss": 0.35,
        "val_accuracy": 0.9,
        "lr": 0.1,
        "seconds": 1.0,
    },
]

pytestmark = [pytest.mark.slow, needs_real_mnist]


def sgd_train(images: np.ndarray, labels: np.ndarray, steps: int = 300, batch: int = 128):
    """A 784-64-10 network after ``steps`` plain SGD steps of ``jax.grad(loss)``."""
    params = init_params(jax.random.key(0), (784, 64, 10), "he")
    step = jax.jit(
        lambda p, x, y: jax.tree.map(lambda w, g: w - 0.1 * g, p, jax.grad(loss)(p, x, y))
    )
    rng = np.random.default_rng(0)
    for _ in range(steps):
        chosen = rng.integers(0, len(labels), batch)
        params = step(params, images[chosen], labels[chosen])
    return params


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist):
    """The path of a checkpoint of a small network trained on MNIST, and its parameters."""
    params = sgd_train(mnist.train.images, mnist.train.labels)
    settings = Settings(sizes=(784, 64, 10), data_dir=MNIST_DIR, epochs=2)
    path = tmp_path_factory.mktemp("model") / "m.npz"
    save_checkpoint(path, Checkpoint(params=params, settings=settings, epoch=2, metrics=METRICS))
    return path, params


def run(capsys, *argv) -> tuple[int, str, str]:
    """Runs the CLI in-process; returns the exit code, standard output and standard error."""
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, expected_code: int, *fragments: str) -> None:
    assert code == expected_code
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("jaxmlp: error: ")
    for fragment in fragments:
        assert fragment in err


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def dark_on_light_png_and_jpeg(digit: np.ndarray, directory: Path) -> list[Path]:
    """The digit upscaled to 140×140 on a 200×160 white page, black ink, as PNG and JPEG."""
    big = Image.fromarray(np.round(255 * digit.reshape(28, 28)).astype(np.uint8)).resize((140, 140))
    page = Image.new("L", (200, 160), 0)
    page.paste(big, (30, 10))
    inverted = Image.eval(page, lambda value: 255 - value)
    paths = [directory / "digit.png", directory / "digit.jpg"]
    for path in paths:
        inverted.save(path)
    return paths


def test_evaluate_prints_accuracy_scores_and_confusion_matrix(capsys, trained):
    code, out, err = run(capsys, "evaluate", trained[0])
    assert code == 0 and err == ""
    assert "accuracy" in out and "Per-class scores" in out and "Confusion matrix" in out
    assert "macro avg" in out and "10,000" in out


def test_evaluate_json_matches_the_model(capsys, trained, mnist):
    path, params = trained
    code, out, _ = run(capsys, "evaluate", path, "--json", "--data-dir", MNIST_DIR)
    report = json.loads(out)
    assert code == 0
    assert report["split"] == "test" and report["examples"] == 10_000
    assert report["accuracy"] > 0.85
    assert report["accuracy"] == pytest.approx(
        float(accuracy(params, mnist.test.images, mnist.test.labels))
    )
    assert report["loss"] == pytest.approx(
        float(loss(params, mnist.test.images, mnist.test.labels)), rel=1e-4
    )
    assert np.array(report["confusion_matrix"]).sum() == 10_000
    assert [entry["support"] for entry in report["per_class"]] == np.bincount(
        mnist.test.labels
    ).tolist()


def test_evaluate_validation_split(capsys, trained):
    code, out, _ = run(capsys, "evaluate", trained[0], "--split", "validation", "--json")
    assert code == 0 and json.loads(out)["split"] == "validation"


def test_evaluate_writes_plots(capsys, trained, tmp_path):
    pytest.importorskip("matplotlib")
    code, out, err = run(capsys, "evaluate", trained[0], "--json", "--out-dir", tmp_path / "docs")
    assert code == 0 and json.loads(out)["examples"] == 10_000
    assert len(err.splitlines()) == 4
    sizes = {path.name: png_size(path) for path in (tmp_path / "docs").iterdir()}
    assert sizes == {
        "learning_curves.png": (1100, 420),
        "confusion_matrix.png": (780, 670),
        "first_layer_weights.png": (820, 800),
        "misclassified.png": (1265, 690),
    }


def test_predict_rerendered_digit_gives_the_class_of_the_original(capsys, trained, mnist, tmp_path):
    path, _ = trained
    for number in (0, 1, 2):
        paths = dark_on_light_png_and_jpeg(mnist.test.images[number], tmp_path)
        code, out, _ = run(capsys, "predict", path, "--index", number, "--json", "--top", 1)
        original = json.loads(out)[0]["top"][0]["class"]
        code, out, _ = run(capsys, "predict", path, *paths, "--json")
        assert code == 0
        results = json.loads(out)
        assert [result["source"] for result in results] == [str(p) for p in paths]
        assert [result["top"][0]["class"] for result in results] == [original, original]
        assert all(len(result["top"]) == 3 for result in results)


def test_predict_prints_a_block_per_image(capsys, trained, mnist, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # short paths: a worker's longer tmp_path wraps at 80 columns
    written = dark_on_light_png_and_jpeg(mnist.test.images[0], tmp_path)
    paths = [path.relative_to(tmp_path) for path in written]
    code, out, err = run(capsys, "predict", trained[0], *paths, "--top", 2, "--show")
    assert code == 0 and err == ""
    assert str(paths[0]) in out and str(paths[1]) in out
    assert out.count("%") == 4 and viz.UPPER_HALF in out


def test_predict_index_shows_the_digit_and_label(capsys, trained, mnist):
    code, out, _ = run(capsys, "predict", trained[0], "--index", 0, "--index", 8)
    label = int(mnist.test.labels[0])
    assert code == 0
    assert f"test #0  label {label}" in out and "test #8" in out
    assert "┌" + "─" * 28 + "┐" in out


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b"not an image", "not an image"), (b"", "not an image")],
)
def test_predict_bad_file(capsys, trained, tmp_path, content, fragment):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    code, out, err = run(capsys, "predict", trained[0], path)
    assert_one_line_error(code, err, 1, str(path), fragment)
    assert out == ""


def test_predict_blank_image(capsys, trained, tmp_path):
    Image.new("RGB", (50, 40), "white").save(tmp_path / "blank.jpg")
    code, _, err = run(capsys, "predict", trained[0], tmp_path / "blank.jpg")
    assert_one_line_error(code, err, 1, "blank")


def test_predict_huge_image(capsys, trained, tmp_path):
    Image.new("1", (9000, 6000)).save(tmp_path / "huge.png")
    code, _, err = run(capsys, "predict", trained[0], tmp_path / "huge.png")
    assert_one_line_error(code, err, 1, "too large")


def test_predict_checkpoint_of_another_input_size(capsys, tmp_path):
    params = init_params(jax.random.key(0), (100, 8, 10))
    save_checkpoint(
        tmp_path / "small.npz",
        Checkpoint(params=params, settings=Settings(sizes=(100, 8, 10)), epoch=0, metrics=[]),
    )
    Image.new("L", (28, 28)).save(tmp_path / "x.png")
    code, _, err = run(capsys, "predict", tmp_path / "small.npz", tmp_path / "x.png")
    assert_one_line_error(code, err, 1, "takes 100 inputs", "784")


def test_predict_missing_checkpoint(capsys, tmp_path):
    code, _, err = run(capsys, "predict", tmp_path / "absent.npz", "--index", 0)
    assert_one_line_error(code, err, 1, "does not exist")


@pytest.mark.parametrize(
    "extra",
    [(), ("x.png", "--index", "0"), ("--index", "10000"), ("--index", "-1"), ("--top", "0")],
)
def test_predict_bad_arguments(capsys, trained, extra):
    code, _, err = run(capsys, "predict", trained[0], *extra)
    assert_one_line_error(code, err, 2)


def test_show_draws_examples_with_labels(capsys, mnist):
    code, out, _ = run(capsys, "show", "--data-dir", MNIST_DIR, "--index", 3, "--count", 2)
    labels = mnist.test.labels[3:5]
    assert code == 0
    assert f"#3: {labels[0]}" in out and f"#4: {labels[1]}" in out
    assert "\x1b" not in out and viz.FULL_BLOCK in out


def test_show_writes_a_png_grid(capsys, tmp_path):
    out_path = tmp_path / "grid" / "samples.png"
    code, out, _ = run(
        capsys,
        "show",
        "--data-dir",
        MNIST_DIR,
        "--split",
        "train",
        "--count",
        12,
        "--out",
        out_path,
    )
    assert code == 0 and out.strip() == f"wrote {out_path}"
    cell_width = 28 * 4 + viz.GRID_GAP
    cell_height = 28 * 4 + viz.CAPTION_FONT_SIZE + 6 + viz.GRID_GAP
    assert png_size(out_path) == (10 * cell_width + viz.GRID_GAP, 2 * cell_height + viz.GRID_GAP)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (("--index", "10000"), "out of range"),
        (("--index", "9999", "--count", "2"), "out of range"),
        (("--index", "1", "--index", "2", "--count", "2"), "not both"),
        (("--dataset", "cifar"), "'cifar' is not one of 'mnist', 'fashion-mnist'"),
        (("--split", "dev"), "--split"),
    ],
)
def test_show_bad_arguments(capsys, extra, fragment):
    code, _, err = run(capsys, "show", "--data-dir", MNIST_DIR, *extra)
    assert_one_line_error(code, err, 2, fragment)


def test_plot_metrics_file(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(record) + "\n" for record in METRICS))
    code, out, _ = run(capsys, "plot", metrics, "--out-dir", tmp_path / "plots")
    assert code == 0 and out.strip() == f"wrote {tmp_path / 'plots' / 'learning_curves.png'}"
    assert png_size(tmp_path / "plots" / "learning_curves.png") == (1100, 420)


def test_plot_checkpoint(capsys, trained, tmp_path):
    pytest.importorskip("matplotlib")
    code, out, _ = run(capsys, "plot", trained[0], "--out-dir", tmp_path)
    assert code == 0 and len(out.splitlines()) == 4
    assert png_size(tmp_path / "misclassified.png") == (1265, 690)


def test_plot_malformed_metrics(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "bad.jsonl").write_text('{"event": "epoch"\n')
    code, _, err = run(capsys, "plot", tmp_path / "bad.jsonl", "--out-dir", tmp_path)
    assert_one_line_error(code, err, 1, "line 1")


@pytest.mark.parametrize("command", ["plot", "evaluate"])
def test_missing_matplotlib_is_one_line(capsys, monkeypatch, trained, tmp_path, command):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run(capsys, command, trained[0], "--out-dir", tmp_path)
    assert_one_line_error(code, err, 1, "pip install 'jaxmlp[plot]'")
    assert out == ""
