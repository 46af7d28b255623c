"""Terminal and PNG drawing (jaxmlp.viz) and the evaluation arithmetic (jaxmlp.evaluation)."""

from __future__ import annotations

import io
import json

import jax
import numpy as np
import pytest
from rich.console import Console

from jaxmlp import evaluation, viz
from jaxmlp.cli import view
from jaxmlp.errors import ConfigError
from jaxmlp.model import accuracy, forward, init_params, loss


def render(renderable, *, color: bool, width: int = 120) -> str:
    """What a console of ``width`` columns prints, with ANSI colours if ``color``."""
    out = io.StringIO()
    console = Console(
        file=out, width=width, force_terminal=color, color_system="truecolor" if color else None
    )
    console.print(renderable)
    return out.getvalue()


def test_halfblock_lines_pair_rows():
    image = np.array([[1, 0, 1, 0], [1, 1, 0, 0]], np.float32)
    assert viz.halfblock_lines(image) == ["█▄▀ "]


def test_odd_number_of_rows_is_padded_with_black():
    image = np.ones((3, 2), np.float32)
    assert viz.halfblock_lines(image) == ["██", "▀▀"]


def test_flat_784_image_is_28_wide_and_14_high():
    lines = viz.halfblock_lines(np.zeros(784, np.float32))
    assert len(lines) == 14 and {len(line) for line in lines} == {28}


def test_mono_digit_is_framed_and_has_no_escape_codes():
    text = render(viz.digit_text(np.linspace(0, 1, 784), color=False), color=False)
    lines = text.splitlines()
    assert len(lines) == 16 and lines[0] == "┌" + "─" * 28 + "┐"
    assert "\x1b" not in text


def test_colour_digit_uses_foreground_for_upper_and_background_for_lower_pixel():
    image = np.array([[1.0, 0.0], [0.0, 0.5]], np.float32)
    text = render(viz.digit_text(image, color=True), color=True)
    assert "\x1b[38;2;255;255;255;48;2;0;0;0m▀" in text
    assert "\x1b[38;2;0;0;0;48;2;128;128;128m▀" in text


def test_gallery_shows_captions():
    images = [np.zeros(784), np.ones(784)]
    text = render(viz.digit_gallery(images, ["#0: 7", "#1: 2"], color=False), color=False)
    assert "#0: 7" in text and "#1: 2" in text


def test_long_caption_is_cut_to_the_digit_width():
    text = viz.captioned_digit(np.zeros(784), "x" * 40, color=False).plain
    assert text.splitlines()[-1] == "x" * 27 + "…"


def test_digit_grid_image_size_mode_and_pixels():
    digits = [np.zeros(784, np.float32) for _ in range(13)]
    digits[0][0] = 1.0
    page = viz.digit_grid_image(digits, [f"#{n}" for n in range(13)], scale=3, columns=5)
    cell_width = 28 * 3 + viz.GRID_GAP
    cell_height = 28 * 3 + viz.CAPTION_FONT_SIZE + 6 + viz.GRID_GAP
    assert page.mode == "L"
    assert page.size == (5 * cell_width + viz.GRID_GAP, 3 * cell_height + viz.GRID_GAP)
    pixels = np.asarray(page)
    corner = viz.GRID_GAP
    assert (pixels[corner : corner + 3, corner : corner + 3] == 255).all()
    assert (pixels[corner + 3 : corner + 84, corner + 3 : corner + 84] == 0).all()


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    confusion = evaluation.confusion_matrix(
        np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]), 3
    )
    np.testing.assert_array_equal(confusion, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_class_scores_by_hand_and_zero_division():
    confusion = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    scores = evaluation.class_scores(confusion)
    np.testing.assert_allclose(scores.precision, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(scores.recall, [0.5, 1.0, 2 / 3])
    np.testing.assert_allclose(scores.f1, [0.5, 2 / 3, 0.8])
    np.testing.assert_array_equal(scores.support, [2, 1, 3])
    never_predicted = evaluation.class_scores(np.array([[2, 0], [1, 0]]))
    assert never_predicted.precision[1] == 0 and never_predicted.f1[1] == 0


def test_averaged_scores():
    scores = evaluation.class_scores(np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]]))
    averages = evaluation.averaged_scores(scores)
    assert averages["macro"]["precision"] == pytest.approx(2 / 3)
    assert averages["weighted"]["recall"] == pytest.approx((0.5 * 2 + 1 * 1 + 2 / 3 * 3) / 6)


@pytest.fixture(scope="module")
def random_problem():
    params = init_params(jax.random.key(0), (784, 16, 10), "he")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (257, 784)).astype(np.float32)
    labels = rng.integers(0, 10, 257).astype(np.int32)
    return params, images, labels


@pytest.mark.parametrize("chunk", [64, 257, 10_000])
def test_chunked_log_probabilities_do_not_depend_on_the_chunk(random_problem, chunk):
    params, images, _ = random_problem
    whole = jax.nn.log_softmax(forward(params, images), axis=-1)
    chunked = evaluation.chunked_log_probabilities(params, images, chunk=chunk)
    np.testing.assert_allclose(chunked, whole, rtol=1e-6, atol=1e-6)


def test_evaluation_matches_the_model(random_problem):
    params, images, labels = random_problem
    result = evaluation.evaluate_params(params, images, labels)
    assert result.total == 257
    assert result.loss == pytest.approx(float(loss(params, images, labels)), rel=1e-5)
    assert result.accuracy == pytest.approx(float(accuracy(params, images, labels)))
    assert result.confusion.sum() == 257


def test_most_confident_mistakes_come_first():
    result = evaluation.Evaluation(
        loss=0.0,
        labels=np.array([0, 1, 2, 3]),
        predictions=np.array([1, 1, 0, 0]),
        confidences=np.array([0.6, 0.99, 0.9, 0.7]),
        confusion=np.eye(4, dtype=int),
    )
    np.testing.assert_array_equal(evaluation.most_confident_mistakes(result, 5), [2, 3, 0])
    np.testing.assert_array_equal(evaluation.most_confident_mistakes(result, 1), [2])


def test_top_classes_are_sorted():
    classes, probabilities = evaluation.top_classes(np.array([[0.1, 0.6, 0.3]]), 2)
    np.testing.assert_array_equal(classes, [[1, 2]])
    np.testing.assert_allclose(probabilities, [[0.6, 0.3]])


def test_predict_images_returns_probabilities_summing_to_at_most_one(random_problem):
    params, images, labels = random_problem
    predictions = evaluation.predict_images(params, images[:3], ["a", "b", "c"], 20, labels[:3])
    assert [p.source for p in predictions] == ["a", "b", "c"]
    assert all(
        len(p.classes) == 10 and p.probabilities.sum() == pytest.approx(1, rel=1e-5)
        for p in predictions
    )
    record = predictions[0].to_dict(tuple("0123456789"))
    assert json.loads(json.dumps(record))["label"] == int(labels[0])


@pytest.mark.parametrize(
    ("indices", "count", "expected"),
    [
        (None, None, [0]),
        ([5], None, [5]),
        ([5, 2], None, [5, 2]),
        ([5], 3, [5, 6, 7]),
        (None, 2, [0, 1]),
    ],
)
def test_example_indices(indices, count, expected):
    assert view.example_indices(indices, count, 10, "test") == expected


@pytest.mark.parametrize(("indices", "count"), [([10], None), ([8], 3), ([1, 2], 2)])
def test_example_indices_errors(indices, count):
    with pytest.raises(ConfigError):
        view.example_indices(indices, count, 10, "test")


def test_tables_render_scores_and_counts():
    confusion = np.array([[5, 1], [2, 7]])
    result = evaluation.Evaluation(
        loss=0.25,
        labels=np.array([0] * 6 + [1] * 9),
        predictions=np.zeros(15, int),
        confidences=np.ones(15),
        confusion=confusion,
    )
    text = render(viz.evaluation_view(result, ("cat", "dog"), title="demo"), color=False)
    assert "accuracy 80.00% (12 / 15)" in text
    assert "0 cat" in text and "1 dog" in text
    assert "macro avg" in text and "weighted avg" in text
    scores_row, confusion_row = [
        line.split() for line in text.splitlines() if line.strip().startswith("1 dog")
    ]
    assert scores_row[-1] == "9"
    assert confusion_row[-2:] == ["2", "7"]


def test_evaluation_report_is_json(random_problem):
    params, images, labels = random_problem
    result = evaluation.evaluate_params(params, images, labels)
    report = json.loads(
        json.dumps(evaluation.evaluation_report(result, tuple("0123456789"), split="test"))
    )
    assert report["split"] == "test" and report["examples"] == 257
    assert sum(entry["support"] for entry in report["per_class"]) == 257
    assert report["correct"] == sum(report["confusion_matrix"][k][k] for k in range(10))


def test_top_classes_table_marks_the_best():
    text = render(viz.top_classes_table([3, 5], [0.75, 0.2], tuple("0123456789")), color=False)
    first, second = text.splitlines()[:2]
    assert first.split()[:2] == ["3", "75.00%"] and "█" * 15 in first
    assert second.split()[:2] == ["5", "20.00%"]
