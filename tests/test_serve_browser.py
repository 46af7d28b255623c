"""``jaxmlp serve`` end to end in headless Chromium: draw a digit with the mouse, compare
the page with ``jaxmlp predict``, look at BP1–BP4, take an SGD step.

Needs Playwright (the test extra) and Debian's ``chromium`` (``.ci/run`` installs it);
skipped, with the reason, where either is missing.
"""

from __future__ import annotations

import base64
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from test_serve import random_checkpoint

from jaxmlp.cli import main
from jaxmlp.images import load_digit

SCRIPTS_DIR = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS_DIR))
try:
    screenshot = importlib.import_module("serve_screenshot")
finally:
    sys.path.remove(str(SCRIPTS_DIR))

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')"
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        screenshot.chromium_path() is None,
        reason="no chromium on the PATH (apt-get install chromium)",
    ),
]

PAGE_STATE = """() => {
  const lab = window.jaxmlpLab;
  return {png: lab.png, pixels: lab.pixels, prediction: lab.prediction,
          probabilities: lab.probabilities, canvas: document.getElementById("pad").toDataURL()};
}"""
CANVAS_PIXELS = """(canvas) => Array.from(
  canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data)"""

ALL_WHITE = """(canvas) => canvas.getContext("2d")
  .getImageData(0, 0, canvas.width, canvas.height).data.every((v) => v === 255)"""


def canvas_rgb(locator) -> np.ndarray:
    """The pixels of a canvas on the page, ``(H·W, 3)`` RGB."""
    rgba = np.asarray(locator.evaluate(CANVAS_PIXELS), np.uint8).reshape(-1, 4)
    return rgba[:, :3]


def painted(locator) -> bool:
    """Whether a canvas shows more than one colour."""
    return len(np.unique(canvas_rgb(locator), axis=0)) > 1


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return random_checkpoint(tmp_path_factory.mktemp("browser") / "random.npz")


@pytest.fixture(scope="module")
def page(checkpoint):
    """The page of ``jaxmlp serve checkpoint`` with a 3 drawn on it by mouse strokes."""
    with screenshot.serving(checkpoint) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=screenshot.chromium_path())
        page = browser.new_page(viewport={"width": 1180, "height": 900})
        page.goto(url)
        screenshot.wait_until_shown(page)
        screenshot.draw(page, screenshot.THREE)
        yield page
        browser.close()


def test_drawn_digit_gets_the_image_and_prediction_of_jaxmlp_predict(
    page, checkpoint, tmp_path, capsys
):
    state = page.evaluate(PAGE_STATE)
    assert state["png"] == state["canvas"]  # the answers are for what is on the pad now
    drawing = tmp_path / "drawing.png"
    drawing.write_bytes(base64.b64decode(state["png"].split(",", 1)[1]))

    np.testing.assert_array_equal(np.asarray(state["pixels"], np.float32), load_digit(drawing))
    preview = canvas_rgb(page.locator("#preview"))[:, 0]
    np.testing.assert_array_equal(preview, np.round(np.asarray(state["pixels"]) * 255))

    capsys.readouterr()
    assert main(["predict", str(checkpoint), str(drawing), "--top", "10", "--json"]) == 0
    [predicted] = json.loads(capsys.readouterr().out)
    assert predicted["top"][0]["class"] == state["prediction"]
    assert {row["class"]: row["probability"] for row in predicted["top"]} == dict(
        enumerate(state["probabilities"])
    )
    assert page.locator("#prediction").inner_text() == str(state["prediction"])
    assert page.locator("#probabilities .track").count() == 10
    assert page.locator("#activations canvas").count() == 2


def test_the_errors_and_gradients_render_as_pictures(page):
    assert page.locator("#bp1-table tr").count() == 1 + 10
    hidden_errors = page.locator("#hidden-errors canvas")
    assert hidden_errors.count() == 2
    assert all(painted(hidden_errors.nth(i)) for i in range(2))
    units = page.locator("#units .unit")
    assert units.count() == 8
    for i in range(8):
        unit = units.nth(i)
        weights, gradient = unit.locator("canvas.weights"), unit.locator("canvas.gradient")
        assert painted(weights) and painted(gradient)
        assert weights.evaluate("(c) => [c.width, c.height]") == [28, 28]


def test_one_sgd_step_raises_the_chosen_labels_probability(page):
    probabilities = page.evaluate("() => window.jaxmlpLab.probabilities")
    label = int(np.argsort(probabilities)[-2])
    screenshot.choose_label(page, label)
    assert page.evaluate("() => window.jaxmlpLab.backprop.label") == label
    screenshot.take_step(page)
    step = page.evaluate("() => window.jaxmlpLab.lastStep")
    assert step["label"] == label and step["steps"] == 1
    assert step["before"] == probabilities
    assert step["after"][label] > step["before"][label]
    assert page.evaluate("() => window.jaxmlpLab.probabilities") == step["after"]
    assert "→" in page.locator("#step-result").inner_text()
    assert page.locator("#steps").inner_text() == "1 step taken"

    page.locator("#reset").click()
    screenshot.wait_until_shown(page)
    assert page.evaluate("() => window.jaxmlpLab.probabilities") == probabilities
    page.locator('#labels button[data-label=""]').click()
    screenshot.wait_until_shown(page)


def test_clear_empties_the_pad_and_the_answers(page):
    page.locator("#clear").click()
    screenshot.wait_until_shown(page)
    state = page.evaluate(PAGE_STATE)
    assert state["pixels"] is None and state["prediction"] is None
    assert page.locator("#prediction").inner_text() == "–"
    assert page.locator("#units .unit").count() == 0
    assert page.locator("#pad").evaluate(ALL_WHITE)
    screenshot.draw(page, screenshot.THREE)
    assert page.evaluate(PAGE_STATE)["prediction"] is not None
