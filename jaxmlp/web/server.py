"""The HTTP side of ``jaxmlp serve``: the page, its assets and a small JSON API.

Standard library only (``http.server.ThreadingHTTPServer``): one thread per request, the
page and its script and style served from the package's ``static`` folder (no CDN, so it
works offline). Every POST carries JSON (``Content-Type: application/json``, which a
web page of another origin cannot send without the permission this server never
grants). Routes:

=====================  ==========================================================
``GET /``              the page
``GET /static/NAME``   its script and style
``GET /api/info``      the checkpoint, layer widths, class names, SGD steps taken
``POST /api/preprocess``  ``{"image": "data:image/png;base64,..."}`` → ``{"pixels"}``:
                       the 28×28 image the network sees, by ``jaxmlp predict``'s steps
``POST /api/predict``  ``{"pixels"}`` → ``{"prediction", "probabilities", "hidden"}``
``POST /api/backprop`` ``{"pixels", "label"}`` → BP1–BP4 on that image (see
                       :meth:`DigitLab.backprop`); ``label`` defaults to the prediction
``POST /api/step``     ``{"pixels", "label", "lr"}``: one SGD step, in memory only
                       (``lr`` defaults to :data:`DEFAULT_LEARNING_RATE`)
``POST /api/reset``    back to the checkpoint's parameters
=====================  ==========================================================

``pixels`` are 784 numbers in [0, 1], row by row (a flat list, or 28 rows of 28). Bad
requests get a status and ``{"error": "one line"}``: 400 (malformed JSON, wrong length,
non-finite or out-of-range numbers), 404, 405, 411 (no length), 413 (a body over
:data:`MAX_BODY_BYTES`), 415 (not JSON).
"""

from __future__ import annotations

import base64
import binascii
import errno
import json
import math
import socket
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import numpy as np

from jaxmlp.errors import DivergenceError, InputFileError, JaxmlpError
from jaxmlp.images import digit_from_bytes
from jaxmlp.web.lab import DigitLab

MAX_BODY_BYTES = 1 << 20
"""Largest request body read (1 MiB); a drawing's PNG is a few kilobytes."""
DRAIN_LIMIT_BYTES = 16 << 20
"""An oversized body up to this size is read and dropped before the 413 answer, so that
the client sees the answer rather than a reset connection; larger ones are not read."""
REQUEST_TIMEOUT_S = 30
IMAGE_PIXELS = 28 * 28
DEFAULT_LEARNING_RATE = 0.01
"""One example's share of a seed training step (learning rate 0.1, batch 10)."""
MAX_LEARNING_RATE = 10.0
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
PNG_DATA_URL = "data:image/png;base64,"


class ServerError(JaxmlpError):
    """The server cannot start: the port is taken, the host is unknown."""


class ServerInterrupted(JaxmlpError):
    """Ctrl-C: the server has stopped."""

    exit_code = 130


class RequestError(Exception):
    """A request the API refuses: an HTTP status and a one-line reason."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


def static_file(name: str) -> bytes:
    """The bytes of one of the page's assets, shipped as package data."""
    return resources.files("jaxmlp.web").joinpath("static", name).read_bytes()


def reject_constant(name: str):
    """``json.loads`` hook for ``NaN`` and ``Infinity``, which JSON proper does not have."""
    raise RequestError(HTTPStatus.BAD_REQUEST, f"non-finite number {name} in the JSON body")


def parse_json(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body; raises :class:`RequestError` (400) otherwise."""
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"malformed JSON: {error}") from None
    if not isinstance(value, dict):
        raise RequestError(HTTPStatus.BAD_REQUEST, "the JSON body must be an object")
    return value


def is_number(value: Any) -> bool:
    """Whether a parsed JSON value is a number (``true`` and ``false`` are not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_pixels(request: dict[str, Any]) -> np.ndarray:
    """``request["pixels"]`` as a float32 ``(784,)`` array; raises :class:`RequestError`.

    Accepts 784 numbers, or 28 rows of 28, each finite and in [0, 1].
    """
    pixels = request.get("pixels")
    if not isinstance(pixels, list):
        raise RequestError(HTTPStatus.BAD_REQUEST, '"pixels" must be a list of 784 numbers')
    if len(pixels) == 28 and all(isinstance(row, list) for row in pixels):
        if any(len(row) != 28 for row in pixels):
            raise RequestError(HTTPStatus.BAD_REQUEST, '"pixels" given as rows needs 28 rows of 28')
        pixels = [value for row in pixels for value in row]
    if len(pixels) != IMAGE_PIXELS:
        raise RequestError(
            HTTPStatus.BAD_REQUEST, f'"pixels" must hold 784 numbers (28×28), got {len(pixels)}'
        )
    if not all(is_number(value) for value in pixels):
        raise RequestError(HTTPStatus.BAD_REQUEST, '"pixels" must all be numbers')
    array = np.asarray(pixels, np.float64)
    if not np.all(np.isfinite(array)):
        raise RequestError(HTTPStatus.BAD_REQUEST, '"pixels" must all be finite')
    if array.min() < 0 or array.max() > 1:
        raise RequestError(HTTPStatus.BAD_REQUEST, '"pixels" must all be in [0, 1]')
    return array.astype(np.float32)


def parse_label(request: dict[str, Any], num_classes: int) -> int | None:
    """``request["label"]``: a class number, or ``None`` when absent or null."""
    label = request.get("label")
    if label is None:
        return None
    if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < num_classes:
        raise RequestError(
            HTTPStatus.BAD_REQUEST, f'"label" must be a class number from 0 to {num_classes - 1}'
        )
    return label


def parse_learning_rate(request: dict[str, Any]) -> float:
    """``request["lr"]``, a number in (0, :data:`MAX_LEARNING_RATE`]; by default 0.01."""
    lr = request.get("lr", DEFAULT_LEARNING_RATE)
    if not is_number(lr) or not (0 < lr <= MAX_LEARNING_RATE and math.isfinite(lr)):
        raise RequestError(
            HTTPStatus.BAD_REQUEST, f'"lr" must be a number in (0, {MAX_LEARNING_RATE:g}]'
        )
    return float(lr)


def parse_png(request: dict[str, Any]) -> bytes:
    """The PNG bytes of ``request["image"]``, a ``data:image/png;base64,`` URL."""
    image = request.get("image")
    if not isinstance(image, str) or not image.startswith(PNG_DATA_URL):
        raise RequestError(
            HTTPStatus.BAD_REQUEST, '"image" must be a data:image/png;base64, URL'
        )
    try:
        return base64.b64decode(image[len(PNG_DATA_URL) :], validate=True)
    except binascii.Error:
        raise RequestError(HTTPStatus.BAD_REQUEST, '"image" is not valid base64') from None


class LabRequestHandler(BaseHTTPRequestHandler):
    """Answers one HTTP request from the page or a script (HTTP/1.0: one per connection)."""

    server: LabServer
    server_version = "jaxmlp"
    timeout = REQUEST_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the page sends a request per stroke."""

    def send_body(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: HTTPStatus, value: Any) -> None:
        body = json.dumps(value, allow_nan=False).encode()
        self.send_body(status, body, "application/json")

    def send_error_json(self, status: HTTPStatus, message: str) -> None:
        self.close_connection = True
        self.send_json(status, {"error": message})

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            self.send_body(HTTPStatus.OK, static_file("index.html"), STATIC_FILES["index.html"])
        elif path.startswith("/static/") and path[len("/static/") :] in STATIC_FILES:
            name = path[len("/static/") :]
            self.send_body(HTTPStatus.OK, static_file(name), STATIC_FILES[name])
        elif path == "/api/info":
            self.send_json(HTTPStatus.OK, self.server.lab.info())
        elif path in POST_ROUTES:
            self.send_error_json(HTTPStatus.METHOD_NOT_ALLOWED, f"{path} takes POST")
        else:
            self.send_error_json(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        route = POST_ROUTES.get(path)
        try:
            body = self.read_body()
            if route is None:
                known = path in GET_PATHS
                status = HTTPStatus.METHOD_NOT_ALLOWED if known else HTTPStatus.NOT_FOUND
                raise RequestError(status, f"{path} takes GET" if known else f"no such API: {path}")
            answer = route(self.server.lab, parse_json(body))
            encoded = json.dumps(answer, allow_nan=False).encode()
        except RequestError as error:
            self.send_error_json(error.status, str(error))
            return
        except Exception as error:  # a bug: say so, answer, and keep serving
            message = f"{type(error).__name__}: {error}"
            print(f"jaxmlp serve: {path}: {message}", file=sys.stderr)
            self.send_error_json(HTTPStatus.INTERNAL_SERVER_ERROR, message)
            return
        self.send_body(HTTPStatus.OK, encoded, "application/json")

    def read_body(self) -> bytes:
        """The request body, after checking its declared length and type."""
        declared = self.headers.get("Content-Length")
        if declared is None:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "the request needs a Content-Length")
        try:
            length = int(declared)
        except ValueError:
            length = -1
        if length < 0:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"bad Content-Length {declared!r}")
        if length > MAX_BODY_BYTES:
            self.drain(length)
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the body has {length:,} bytes; the limit is {MAX_BODY_BYTES:,}",
            )
        body = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            raise RequestError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send JSON with Content-Type: application/json"
            )
        return body

    def drain(self, length: int) -> None:
        """Reads and drops an oversized body of up to :data:`DRAIN_LIMIT_BYTES`."""
        remaining = length if length <= DRAIN_LIMIT_BYTES else 0
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)


def preprocess(lab: DigitLab, request: dict[str, Any]) -> dict[str, Any]:
    """A PNG of the canvas → the 28×28 image ``jaxmlp predict`` would make of it."""
    try:
        pixels = digit_from_bytes(parse_png(request))
    except InputFileError as error:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"the drawing {error}") from None
    return {"pixels": [float(p) for p in pixels]}


def predict(lab: DigitLab, request: dict[str, Any]) -> dict[str, Any]:
    return lab.predict(parse_pixels(request))


def backprop(lab: DigitLab, request: dict[str, Any]) -> dict[str, Any]:
    pixels = parse_pixels(request)
    label = parse_label(request, lab.num_classes)
    if label is None:
        label = lab.predict(pixels)["prediction"]
    return lab.backprop(pixels, label)


def step(lab: DigitLab, request: dict[str, Any]) -> dict[str, Any]:
    pixels = parse_pixels(request)
    label = parse_label(request, lab.num_classes)
    if label is None:
        raise RequestError(HTTPStatus.BAD_REQUEST, 'a step needs a "label"')
    try:
        return lab.step(pixels, label, parse_learning_rate(request))
    except DivergenceError as error:
        raise RequestError(HTTPStatus.BAD_REQUEST, str(error)) from None


def reset(lab: DigitLab, request: dict[str, Any]) -> dict[str, Any]:
    return lab.reset()


POST_ROUTES = {
    "/api/preprocess": preprocess,
    "/api/predict": predict,
    "/api/backprop": backprop,
    "/api/step": step,
    "/api/reset": reset,
}
GET_PATHS = {"/", "/api/info"} | {f"/static/{name}" for name in STATIC_FILES}


class LabServer(ThreadingHTTPServer):
    """A threaded HTTP server around one :class:`DigitLab`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], lab: DigitLab):
        self.lab = lab
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, LabRequestHandler)

    @property
    def url(self) -> str:
        """The page's address, with the port actually bound (``--port 0`` picks one)."""
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up is no error; anything else is one line on stderr."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        print(f"jaxmlp serve: {type(error).__name__}: {error}", file=sys.stderr)


def make_server(lab: DigitLab, host: str = "127.0.0.1", port: int = 8000) -> LabServer:
    """Binds the server (not yet serving: call ``serve_forever``).

    Raises:
        ServerError: The port is taken, the host unknown, or binding not allowed.
    """
    try:
        return LabServer((host, port), lab)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            reason = "the port is in use (choose another with --port)"
        else:
            reason = error.strerror or str(error)
        raise ServerError(f"cannot listen on {host}:{port}: {reason}") from None
