"""Draws a digit on the page of ``jaxmlp serve`` in headless Chromium and saves a screenshot.

    python scripts/serve_screenshot.py CHECKPOINT [--out docs/serve.png] [--label 8] [--steps 1]

starts the server in this process on a free port of 127.0.0.1, draws a 3 with mouse
strokes, picks ``--label`` for backprop, takes ``--steps`` SGD steps and writes a
screenshot of the whole page. Needs ``playwright`` (the test extra) and Debian's
``chromium`` (``apt-get install chromium``); Playwright's own browser download is not used.
The browser test (``tests/test_serve_browser.py``) drives the page with these helpers.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
Stroke = list[tuple[float, float]]


def arc(cx: float, cy: float, r: float, start: float, end: float, points: int = 14) -> Stroke:
    """Points along a circular arc; angles in degrees, clockwise on screen from 3 o'clock."""
    return [
        (cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a)))
        for a in (start + (end - start) * i / (points - 1) for i in range(points))
    ]


THREE: list[Stroke] = [
    arc(0.5, 0.33, 0.17, -160, 90) + arc(0.5, 0.66, 0.19, -90, 150),
]
"""A handwritten 3, in fractions of the drawing pad's width and height."""


def chromium_path() -> str | None:
    """Debian's ``chromium`` (or ``chromium-browser``) on the PATH, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def serving(checkpoint: str | Path) -> Iterator[str]:
    """Serves ``checkpoint`` on a free port of 127.0.0.1 in a thread; yields the page's URL."""
    from jaxmlp.runs import class_names_of, load_image_classifier
    from jaxmlp.web import DigitLab, make_server

    model = load_image_classifier(checkpoint)
    lab = DigitLab(model.params, class_names_of(model), Path(checkpoint).name)
    server = make_server(lab, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def wait_until_shown(page, timeout_ms: float = 30_000) -> None:
    """Waits until the page shows the answers for its current drawing, label and network."""
    page.wait_for_function("() => window.jaxmlpLab && window.jaxmlpLab.ready()", timeout=timeout_ms)


def draw(page, strokes: Sequence[Stroke]) -> None:
    """Draws ``strokes`` on the pad with the mouse, then waits for the page's answers."""
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=3)
        page.mouse.up()
    wait_until_shown(page)


def choose_label(page, label: int) -> None:
    """Clicks the label button for class ``label`` and waits for the new backprop."""
    page.locator(f'#labels button[data-label="{label}"]').click()
    wait_until_shown(page)


def take_step(page) -> None:
    """Clicks "One SGD step" and waits for the page to show the stepped network."""
    page.locator("#step").click()
    wait_until_shown(page)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "serve.png")
    parser.add_argument("--label", type=int, default=8, help="Label for backprop (default 8).")
    parser.add_argument("--steps", type=int, default=1, help="SGD steps to take (default 1).")
    args = parser.parse_args(argv)
    executable = chromium_path()
    if executable is None:
        print(
            "serve_screenshot: no chromium on the PATH (apt-get install chromium)", file=sys.stderr
        )
        return 1
    from playwright.sync_api import sync_playwright

    with serving(args.checkpoint) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        page = browser.new_page(viewport={"width": 1180, "height": 900})
        page.goto(url)
        wait_until_shown(page)
        draw(page, THREE)
        choose_label(page, args.label)
        for _ in range(args.steps):
            take_step(page)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out), full_page=True)
        browser.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
