"""``jaxmlp serve``: the JSON API with good and bad requests, concurrency, and the command.

The server runs in this process on a free port of 127.0.0.1, over a small random network
saved as a checkpoint; no data set is needed.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import jax
import numpy as np
import pytest
from PIL import Image, ImageDraw

from jaxmlp.backprop import example_errors
from jaxmlp.checkpoint import Checkpoint, save_checkpoint
from jaxmlp.cli import main
from jaxmlp.evaluation import predict_probabilities
from jaxmlp.images import load_digit
from jaxmlp.model import init_params
from jaxmlp.runs import load_image_classifier
from jaxmlp.settings import Settings
from jaxmlp.web import DigitLab, make_server
from jaxmlp.web.server import MAX_BODY_BYTES

SIZES = (784, 32, 16, 10)


def random_checkpoint(path: Path) -> Path:
    """A 784-32-16-10 network with He-initialised random weights, saved at ``path``."""
    params = init_params(jax.random.key(3), SIZES, "he")
    settings = Settings(sizes=SIZES)
    return save_checkpoint(path, Checkpoint(params=params, settings=settings, epoch=0, metrics=[]))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return random_checkpoint(tmp_path_factory.mktemp("serve") / "random.npz")


@pytest.fixture
def lab(checkpoint) -> DigitLab:
    model = load_image_classifier(checkpoint)
    return DigitLab(model.params, tuple(str(k) for k in range(10)), checkpoint.name)


@contextlib.contextmanager
def serving(lab: DigitLab):
    """``lab`` served on a free port of 127.0.0.1 in a thread; yields ``(host, port)``."""
    httpd = make_server(lab, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield httpd.server_address[:2]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@pytest.fixture
def server(lab):
    with serving(lab) as address:
        yield address


def request(address, method: str, path: str, body: bytes | None = None, headers=None):
    """One HTTP request; returns ``(status, content type, parsed JSON or raw bytes)``."""
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        content = response.read()
        kind = response.getheader("Content-Type", "")
        return response.status, kind, json.loads(content) if kind == "application/json" else content
    finally:
        connection.close()


def post(address, path: str, value) -> tuple[int, dict]:
    """POSTs ``value`` as JSON; returns ``(status, answer)``."""
    body = json.dumps(value).encode()
    status, _, answer = request(address, "POST", path, body, {"Content-Type": "application/json"})
    return status, answer


def digit_pixels(seed: int = 0) -> np.ndarray:
    """A smooth random 28×28 image in [0, 1], flattened."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, 784).astype(np.float32) ** 3


def drawn_digit_png() -> bytes:
    """A PNG of a black 7 drawn on white, as the page's canvas would send it."""
    image = Image.new("RGB", (280, 280), "white")
    ImageDraw.Draw(image).line([(70, 60), (210, 60), (120, 230)], fill="black", width=18)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def test_the_page_and_its_assets_are_served_from_the_package(server):
    status, kind, page = request(server, "GET", "/")
    assert status == 200 and kind.startswith("text/html")
    assert b'<canvas id="pad"' in page
    assets = {"/static/app.js": "text/javascript", "/static/style.css": "text/css"}
    for path, expected in assets.items():
        assert f'"{path}"'.encode() in page
        status, kind, content = request(server, "GET", path)
        assert status == 200 and kind.startswith(expected) and content
        assert b"http://" not in content and b"https://" not in content  # nothing from a CDN
    assert b"https://" not in page


def test_info_names_the_network(server, checkpoint):
    status, _, info = request(server, "GET", "/api/info")
    assert status == 200
    assert info == {
        "checkpoint": checkpoint.name,
        "sizes": list(SIZES),
        "class_names": [str(k) for k in range(10)],
        "steps": 0,
    }


def test_predict_gives_the_probabilities_of_jaxmlp_predict(server, lab):
    pixels = digit_pixels()
    status, answer = post(server, "/api/predict", {"pixels": pixels.tolist()})
    assert status == 200
    expected = predict_probabilities(lab.loaded, pixels[None])[0]
    assert answer["probabilities"] == [float(p) for p in expected]
    assert answer["prediction"] == int(np.argmax(expected))
    assert [len(a) for a in answer["hidden"]] == [32, 16]
    assert min(min(a) for a in answer["hidden"]) >= 0
    status, rows = post(server, "/api/predict", {"pixels": pixels.reshape(28, 28).tolist()})
    assert status == 200 and rows["probabilities"] == answer["probabilities"]


def test_preprocess_makes_the_image_jaxmlp_predict_makes(server, tmp_path):
    png = drawn_digit_png()
    (tmp_path / "seven.png").write_bytes(png)
    status, answer = post(server, "/api/preprocess", {"image": data_url(png)})
    assert status == 200
    np.testing.assert_array_equal(
        np.asarray(answer["pixels"], np.float32), load_digit(tmp_path / "seven.png")
    )


def test_backprop_reports_bp1_to_bp4_for_the_chosen_label(server, lab):
    pixels = digit_pixels(1)
    status, answer = post(server, "/api/backprop", {"pixels": pixels.tolist(), "label": 4})
    assert status == 200 and answer["label"] == 4
    target = np.eye(10)[4]
    output = np.asarray(answer["output"])
    np.testing.assert_allclose(answer["output_error"], output - target, atol=1e-7)  # BP1
    assert answer["target"] == target.tolist()
    assert answer["loss"] == pytest.approx(-np.log(output[4]), rel=1e-5)
    deltas, _ = example_errors(lab.loaded, pixels, target.astype(np.float32))
    for sent, expected in zip(answer["hidden_errors"], deltas[:-1]):  # BP2
        np.testing.assert_allclose(sent, np.asarray(expected), rtol=1e-3, atol=1e-9)
    first = np.abs(np.asarray(deltas[0]))
    assert [unit["unit"] for unit in answer["units"]] == list(np.argsort(-first, kind="stable")[:8])
    for unit in answer["units"]:  # BP4: the gradient row is the digit scaled by δ¹ⱼ
        np.testing.assert_allclose(unit["gradient"], unit["delta"] * pixels, rtol=1e-3, atol=1e-9)
        np.testing.assert_allclose(
            unit["weights"], np.asarray(lab.loaded[0].w[unit["unit"]]), rtol=1e-3
        )
    status, default = post(server, "/api/backprop", {"pixels": pixels.tolist()})
    _, prediction = post(server, "/api/predict", {"pixels": pixels.tolist()})
    assert status == 200 and default["label"] == prediction["prediction"]


def test_a_step_raises_the_label_probability_in_memory_and_reset_undoes_it(server, checkpoint):
    saved = checkpoint.read_bytes()
    pixels = digit_pixels(2).tolist()
    _, first = post(server, "/api/predict", {"pixels": pixels})
    label = int(np.argsort(first["probabilities"])[-2])
    status, stepped = post(server, "/api/step", {"pixels": pixels, "label": label, "lr": 0.01})
    assert status == 200 and stepped["steps"] == 1 and stepped["label"] == label
    assert stepped["before"] == first["probabilities"]
    assert stepped["after"][label] > stepped["before"][label]
    _, second = post(server, "/api/predict", {"pixels": pixels})
    assert second["probabilities"] == stepped["after"] and second["steps"] == 1
    assert post(server, "/api/reset", {}) == (200, {"steps": 0})
    _, third = post(server, "/api/predict", {"pixels": pixels})
    assert third["probabilities"] == first["probabilities"] and third["steps"] == 0
    assert checkpoint.read_bytes() == saved


def test_a_step_that_would_overflow_is_refused_and_changes_nothing(lab):
    huge = jax.tree.map(lambda leaf: leaf * 1e8, lab.loaded)
    pixels = np.ones(784).tolist()
    with serving(DigitLab(huge, lab.class_names, "huge")) as address:
        _, before = post(address, "/api/predict", {"pixels": pixels})
        status, answer = post(address, "/api/step", {"pixels": pixels, "label": 0, "lr": 10})
        assert status == 400 and "learning rate 10" in answer["error"]
        _, after = post(address, "/api/predict", {"pixels": pixels})
    assert after["probabilities"] == before["probabilities"] and after["steps"] == 0


GOOD = {"pixels": [0.5] * 784}
BAD_JSON_REQUESTS = [
    ("/api/predict", b"{not json", "malformed JSON"),
    ("/api/predict", b"\xff\xfe", "malformed JSON"),
    ("/api/predict", b"[0.5, 0.5]", "must be an object"),
    ("/api/predict", b"{}", "784 numbers"),
    ("/api/predict", json.dumps({"pixels": [0.5] * 783}).encode(), "got 783"),
    ("/api/predict", json.dumps({"pixels": [[0.5] * 27] * 28}).encode(), "28 rows of 28"),
    ("/api/predict", b'{"pixels": [NaN' + b", 0.5" * 783 + b"]}", "non-finite"),
    ("/api/predict", b'{"pixels": [Infinity' + b", 0.5" * 783 + b"]}", "non-finite"),
    ("/api/predict", b'{"pixels": [1e999' + b", 0.5" * 783 + b"]}", "finite"),
    ("/api/predict", json.dumps({"pixels": [1.5] + [0.5] * 783}).encode(), "in [0, 1]"),
    ("/api/predict", json.dumps({"pixels": [-0.1] + [0.5] * 783}).encode(), "in [0, 1]"),
    ("/api/predict", json.dumps({"pixels": ["0.5"] * 784}).encode(), "numbers"),
    ("/api/predict", json.dumps({"pixels": [True] * 784}).encode(), "numbers"),
    ("/api/backprop", json.dumps({**GOOD, "label": 10}).encode(), "from 0 to 9"),
    ("/api/backprop", json.dumps({**GOOD, "label": -1}).encode(), "from 0 to 9"),
    ("/api/backprop", json.dumps({**GOOD, "label": "3"}).encode(), "from 0 to 9"),
    ("/api/backprop", json.dumps({**GOOD, "label": True}).encode(), "from 0 to 9"),
    ("/api/step", json.dumps(GOOD).encode(), 'needs a "label"'),
    ("/api/step", json.dumps({**GOOD, "label": 1, "lr": 0}).encode(), '"lr"'),
    ("/api/step", json.dumps({**GOOD, "label": 1, "lr": -0.1}).encode(), '"lr"'),
    ("/api/step", json.dumps({**GOOD, "label": 1, "lr": 11}).encode(), '"lr"'),
    ("/api/step", json.dumps({**GOOD, "label": 1, "lr": "fast"}).encode(), '"lr"'),
    ("/api/preprocess", json.dumps({"image": "not a data URL"}).encode(), "data:image/png"),
    ("/api/preprocess", json.dumps({"image": "data:image/png;base64,@@@"}).encode(), "base64"),
    ("/api/preprocess", json.dumps({"image": data_url(b"not a png")}).encode(), "not an image"),
]


@pytest.mark.parametrize("path, body, message", BAD_JSON_REQUESTS)
def test_bad_requests_get_400_with_a_json_error(server, path, body, message):
    status, kind, answer = request(server, "POST", path, body, {"Content-Type": "application/json"})
    assert (status, kind) == (400, "application/json")
    assert message in answer["error"] and "\n" not in answer["error"]
    assert post(server, "/api/predict", GOOD)[0] == 200  # still serving


def test_a_blank_drawing_is_refused(server):
    buffer = io.BytesIO()
    Image.new("RGB", (280, 280), "white").save(buffer, format="PNG")
    status, answer = post(server, "/api/preprocess", {"image": data_url(buffer.getvalue())})
    assert status == 400 and "blank" in answer["error"]


def test_a_body_over_the_size_cap_gets_413(server):
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    status, _, answer = request(
        server, "POST", "/api/predict", body, {"Content-Type": "application/json"}
    )
    assert status == 413 and "limit" in answer["error"]
    assert post(server, "/api/predict", GOOD)[0] == 200


def test_http_level_mistakes_get_json_errors(server):
    plain, json_type = {"Content-Type": "text/plain"}, {"Content-Type": "application/json"}
    body = json.dumps(GOOD).encode()
    assert request(server, "POST", "/api/predict", body, plain)[0] == 415
    assert request(server, "GET", "/api/predict")[0] == 405
    assert request(server, "POST", "/api/info", b"{}", json_type)[0] == 405
    status, kind, answer = request(server, "GET", "/nowhere")
    assert (status, kind) == (404, "application/json") and "/nowhere" in answer["error"]
    assert request(server, "GET", "/static/../lab.py")[0] == 404
    connection = http.client.HTTPConnection(*server, timeout=30)
    connection.putrequest("POST", "/api/predict")
    connection.putheader("Content-Type", "application/json")
    connection.endheaders()
    assert connection.getresponse().status == 411
    connection.close()
    assert post(server, "/api/predict", GOOD)[0] == 200


def test_an_unexpected_failure_gets_500_and_the_server_keeps_serving(server, lab, monkeypatch):
    def broken(pixels):
        raise RuntimeError("boom")

    monkeypatch.setattr(lab, "predict", broken)
    status, answer = post(server, "/api/predict", GOOD)
    assert status == 500 and answer == {"error": "RuntimeError: boom"}
    monkeypatch.undo()
    assert post(server, "/api/predict", GOOD)[0] == 200


def test_concurrent_requests_are_all_answered_and_every_step_counts(server):
    pixels = digit_pixels(3).tolist()

    def one(index: int):
        if index % 5 == 0:
            return post(server, "/api/step", {"pixels": pixels, "label": 3, "lr": 0.001})
        if index % 5 == 1:
            return post(server, "/api/backprop", {"pixels": pixels})
        return post(server, "/api/predict", {"pixels": pixels})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(40)))
    assert all(status == 200 for status, _ in answers)
    assert sorted(answer["steps"] for status, answer in answers[::5]) == list(range(1, 9))
    assert request(server, "GET", "/api/info")[2]["steps"] == 8


def test_serve_refuses_a_port_in_use_with_one_line(checkpoint, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(checkpoint), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"127.0.0.1:{port}" in err and "in use" in err


def test_serve_refuses_a_missing_checkpoint_with_one_line(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "absent.npz")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


@pytest.mark.slow  # a subprocess that starts JAX and a server
def test_the_command_serves_until_ctrl_c_then_exits_130(checkpoint):
    process = subprocess.Popen(
        [sys.executable, "-m", "jaxmlp", "serve", str(checkpoint), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    try:
        line = process.stdout.readline()
        assert line.startswith(f"Serving {checkpoint} at http://127.0.0.1:")
        url = urlsplit(line.split(" at ")[1].split()[0])
        assert url.hostname == "127.0.0.1"
        status, _, info = request((url.hostname, url.port), "GET", "/api/info")
        assert status == 200 and info["sizes"] == list(SIZES)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130
    assert err == "jaxmlp serve: stopped\n"
