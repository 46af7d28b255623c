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

``pixels`` are 784 numbers in [0, 1], row by row (a flat list, or 28 rows of 28). Every
error, the standard library's own included, is a status and ``{"error": "one line"}``:
400 (malformed or hostile JSON: nested deeper than Python parses, an integer of more than
:data:`MAX_INTEGER_DIGITS` digits; wrong length, non-finite or out-of-range numbers; a
garbled request line), 403 (a foreign ``Host`` or ``Origin``), 404, 405, 408 (the request
not received within :data:`REQUEST_DEADLINE_S`), 411 (no length), 413 (a body over
:data:`MAX_BODY_BYTES`), 414 (a request line over 64 KiB), 415 (not JSON), 431 (over 100
headers), 501 (a method other than GET and POST), 503 (busy).

Only our own origin is served, against DNS rebinding: a request's ``Host`` must be the
served address, ``localhost`` or a loopback address, with the port (on a wildcard address
such as ``0.0.0.0``, any IP address or this machine's name, with the port); a POST with an
``Origin`` header must come from such an address too. Otherwise: 403.

Bounds: each connection has :data:`REQUEST_DEADLINE_S` for its whole request (request
line, headers and body, however slowly they drip in); at most :data:`MAX_CONNECTIONS`
connections are open at once (more get 503 at once); at most :data:`MAX_DECODING` images
are decoded at once (more get 503), each within :data:`jaxmlp.images.MAX_DECODED_BYTES`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import io
import ipaddress
import json
import math
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from jaxmlp.errors import DivergenceError, InputFileError, JaxmlpError, Stopped
from jaxmlp.images import digit_from_bytes
from jaxmlp.web.lab import DigitLab

MAX_BODY_BYTES = 1 << 20
"""Largest request body read (1 MiB); a drawing's PNG is a few kilobytes."""
DRAIN_LIMIT_BYTES = 16 << 20
"""An oversized body up to this size is read and dropped before the 413 answer, so that
the client sees the answer rather than a reset connection; larger ones are not read."""
REQUEST_DEADLINE_S = 30.0
"""Seconds a connection has to deliver its whole request, headers and body."""
MAX_CONNECTIONS = 32
"""Connections served at once; more are answered 503 and closed without a thread."""
MAX_DECODING = 2
"""Images decoded at once by ``/api/preprocess``; more are answered 503."""
MAX_INTEGER_DIGITS = 20
"""Longer integers in a JSON body are refused (400) rather than converted."""
SEND_TIMEOUT_S = 5.0
"""Seconds an error answer may take to send once the request's deadline has passed."""
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


class ServerInterrupted(Stopped):
    """Ctrl-C: the server has stopped (one plain line, exit 130)."""


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


def bounded_int(text: str) -> int:
    """``json.loads`` hook for integers: at most :data:`MAX_INTEGER_DIGITS` digits."""
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            f"an integer of {digits} digits in the JSON body; at most {MAX_INTEGER_DIGITS}",
        )
    return int(text)


def parse_json(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body; raises :class:`RequestError` (400) otherwise."""
    try:
        value = json.loads(
            body.decode("utf-8"), parse_constant=reject_constant, parse_int=bounded_int
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"malformed JSON: {error}") from None
    except RecursionError:
        raise RequestError(HTTPStatus.BAD_REQUEST, "the JSON body is nested too deeply") from None
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
        raise RequestError(HTTPStatus.BAD_REQUEST, '"image" must be a data:image/png;base64, URL')
    try:
        return base64.b64decode(image[len(PNG_DATA_URL) :], validate=True)
    except binascii.Error:
        raise RequestError(HTTPStatus.BAD_REQUEST, '"image" is not valid base64') from None


def split_host(value: str) -> tuple[str, int | None] | None:
    """``"name:port"`` or ``"[::1]:port"`` as (lower-case host, port); None if malformed."""
    try:
        parts = urlsplit(f"//{value.strip()}")
        return (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None


def is_ip_address(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 address rather than a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: ``localhost`` or a loopback address."""
    if host.lower() == "localhost":
        return True
    return is_ip_address(host) and ipaddress.ip_address(host).is_loopback


def is_wildcard(host: str) -> bool:
    """Whether ``host`` means every address of the machine (``0.0.0.0``, ``::``)."""
    return is_ip_address(host) and ipaddress.ip_address(host).is_unspecified


def host_is_ours(value: str | None, served_host: str, port: int) -> bool:
    """Whether a ``Host`` header (or an origin's host) names this server.

    Accepted: the served address, ``localhost`` or a loopback address, each with the port;
    when serving on a wildcard address, also any IP address and this machine's name. A DNS
    rebinding attack needs a name of its own, which none of these is.
    """
    parsed = split_host(value) if value else None
    if parsed is None or (parsed[1] or 80) != port:
        return False
    host = parsed[0]
    if host == served_host.lower() or is_loopback(host):
        return True
    return is_wildcard(served_host) and (
        is_ip_address(host) or host == socket.gethostname().lower()
    )


def origin_is_ours(origin: str, served_host: str, port: int) -> bool:
    """Whether an ``Origin`` header is ``http://`` and a host :func:`host_is_ours` accepts."""
    parts = urlsplit(origin.strip())
    return (
        parts.scheme == "http" and not parts.path and host_is_ours(parts.netloc, served_host, port)
    )


class DeadlineSocketReader(io.RawIOBase):
    """Reads a socket, each read waiting only as long as the request's deadline leaves.

    A per-read timeout alone lets a client that sends a byte every few seconds hold a
    thread forever; this bounds the whole request. ``expired`` says whether it ran out.
    """

    def __init__(self, connection: socket.socket, deadline: float):
        self.connection = connection
        self.deadline = deadline
        self.expired = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self.expired = True
            raise TimeoutError("the request's deadline passed")
        self.connection.settimeout(remaining)
        try:
            return self.connection.recv_into(buffer)
        except TimeoutError:
            self.expired = True
            raise


class LabRequestHandler(BaseHTTPRequestHandler):
    """Answers one HTTP request from the page or a script (HTTP/1.0: one per connection)."""

    server: LabServer
    server_version = "jaxmlp"
    error_content_type = "application/json"

    def setup(self) -> None:
        """Reads the request through a :class:`DeadlineSocketReader`."""
        super().setup()
        self.rfile.close()  # the standard reader's reference to the socket, unused
        self.answered = False
        self.reader = DeadlineSocketReader(
            self.connection, time.monotonic() + self.server.request_deadline_s
        )
        self.rfile = io.BufferedReader(self.reader)

    def handle_one_request(self) -> None:
        """As the standard library's, but a request cut short by its deadline gets 408."""
        super().handle_one_request()
        if self.reader.expired and not self.answered:
            with contextlib.suppress(OSError):
                self.connection.settimeout(SEND_TIMEOUT_S)
                self.send_error_json(HTTPStatus.REQUEST_TIMEOUT, self.deadline_message())

    def deadline_message(self) -> str:
        return f"the request was not received within {self.server.request_deadline_s:g} s"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the page sends a request per stroke."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        """The standard library's errors (400, 414, 431, 501...) in our JSON form."""
        if message is None:
            message = self.responses.get(code, ("error",))[0]
        if self.request_version == "HTTP/0.9":  # a garbled request line: answer with headers
            self.request_version = "HTTP/1.0"
        self.send_error_json(HTTPStatus(code), " ".join(message.split()))

    def send_body(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.answered = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: HTTPStatus, value: Any) -> None:
        body = json.dumps(value, allow_nan=False).encode()
        self.send_body(status, body, "application/json")

    def send_error_json(self, status: HTTPStatus, message: str) -> None:
        self.close_connection = True
        self.send_json(status, {"error": message})

    def refuse_foreign(self) -> bool:
        """Answers 403 and returns True when the request's Host, or a POST's Origin, is not
        ours (see :func:`host_is_ours`)."""
        served_host, port = self.server.served_host, self.server.server_address[1]
        host = self.headers.get("Host")
        if not host_is_ours(host, served_host, port):
            message = f"foreign Host {host!r}; this server answers only {self.server.url}"
            self.send_error_json(HTTPStatus.FORBIDDEN, message)
            return True
        origin = self.headers.get("Origin")
        posted_from_elsewhere = origin is not None and not origin_is_ours(origin, served_host, port)
        if self.command == "POST" and posted_from_elsewhere:
            message = f"requests from the origin {origin!r} are not served"
            self.send_error_json(HTTPStatus.FORBIDDEN, message)
            return True
        return False

    def do_GET(self) -> None:
        if self.refuse_foreign():
            return
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
        if self.refuse_foreign():
            return
        path = self.path.split("?", 1)[0]
        route = POST_ROUTES.get(path)
        try:
            body = self.read_body()
            if route is None:
                known = path in GET_PATHS
                status = HTTPStatus.METHOD_NOT_ALLOWED if known else HTTPStatus.NOT_FOUND
                raise RequestError(status, f"{path} takes GET" if known else f"no such API: {path}")
            request = parse_json(body)
            with self.server.slot_for(path):
                answer = route(self.server.lab, request)
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
        body = self.read_exactly(length)
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            raise RequestError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send JSON with Content-Type: application/json"
            )
        return body

    def read_exactly(self, length: int) -> bytes:
        """``length`` bytes of body; 408 when the deadline passes first, 400 when the client
        stops sending (closes its side) before the end."""
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            raise RequestError(HTTPStatus.REQUEST_TIMEOUT, self.deadline_message()) from None
        if len(body) < length:
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                f"the body ended after {len(body):,} of its {length:,} bytes",
            )
        return body

    def drain(self, length: int) -> None:
        """Reads and drops an oversized body of up to :data:`DRAIN_LIMIT_BYTES`."""
        remaining = length if length <= DRAIN_LIMIT_BYTES else 0
        with contextlib.suppress(TimeoutError):
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
        raise RequestError(HTTPStatus.BAD_REQUEST, f"the drawing: {error}") from None
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


HEAVY_ROUTES = {"/api/preprocess"}
"""Routes that decode an image: at most :data:`MAX_DECODING` run at once."""


class LabServer(ThreadingHTTPServer):
    """A threaded HTTP server around one :class:`DigitLab`, with the bounds of the module."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        lab: DigitLab,
        *,
        max_connections: int = MAX_CONNECTIONS,
        max_decoding: int = MAX_DECODING,
        request_deadline_s: float = REQUEST_DEADLINE_S,
    ):
        self.lab = lab
        self.served_host = address[0]
        self.request_deadline_s = request_deadline_s
        self.connection_slots = threading.BoundedSemaphore(max_connections)
        self.decoding_slots = threading.BoundedSemaphore(max_decoding)
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, LabRequestHandler)

    def process_request(self, request, client_address) -> None:
        """Serves the connection in a thread if a slot is free, else answers 503 at once."""
        if self.connection_slots.acquire(blocking=False):
            self.start_request_thread(request, client_address)
            return
        with contextlib.suppress(OSError):
            request.settimeout(SEND_TIMEOUT_S)
            request.sendall(busy_response("too many open connections; try again shortly"))
        self.shutdown_request(request)

    def start_request_thread(self, request, client_address) -> None:
        """Serves the connection in a daemon thread, which gives its slot back when done.

        The slot is given back here only if the thread never started: a Ctrl-C arriving
        just after the start must not give it back twice (``BoundedSemaphore`` refuses that
        with ``ValueError``, which replaced the interrupt and left the server hanging).
        """
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        try:
            thread.start()
        except BaseException:
            if thread.ident is None:
                self.connection_slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connection_slots.release()

    @contextlib.contextmanager
    def slot_for(self, path: str) -> Iterator[None]:
        """Holds a decoding slot for a heavy route; raises 503 :class:`RequestError` if none
        is free."""
        if path not in HEAVY_ROUTES:
            yield
            return
        if not self.decoding_slots.acquire(blocking=False):
            raise RequestError(
                HTTPStatus.SERVICE_UNAVAILABLE, "busy decoding other images; try again shortly"
            )
        try:
            yield
        finally:
            self.decoding_slots.release()

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


def busy_response(message: str) -> bytes:
    """A whole HTTP/1.0 503 answer with ``{"error": message}``."""
    body = json.dumps({"error": message}).encode()
    head = (
        "HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


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
