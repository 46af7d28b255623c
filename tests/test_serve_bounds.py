"""``jaxmlp serve`` under hostile clients: foreign hosts and origins, hostile JSON, the
standard library's own errors, slow and short requests, too many connections or images.

Every server listens on 127.0.0.1 only; every client loop is bounded in count and time.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
import time

import pytest
from test_serve import GOOD, checkpoint, data_url, drawn_digit_png, lab, request  # noqa: F401

from jaxmlp.cli import main
from jaxmlp.web import server as server_module
from jaxmlp.web.server import LabServer, host_is_ours, origin_is_ours


@contextlib.contextmanager
def serving(lab, **bounds):
    """``lab`` behind a :class:`LabServer` with ``bounds`` on 127.0.0.1; yields it."""
    httpd = LabServer(("127.0.0.1", 0), lab, **bounds)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def raw_exchange(address, data: bytes, timeout: float = 10.0) -> bytes:
    """Sends ``data`` on a fresh connection and returns everything answered until close."""
    with socket.create_connection(address, timeout=timeout) as client:
        client.sendall(data)
        return read_all(client)


def read_all(client: socket.socket) -> bytes:
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := client.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_and_json(answer: bytes) -> tuple[int, str, dict]:
    """The status, content type and JSON body of a raw HTTP answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers.get("Content-Type", ""), json.loads(body)


def post_json(address, path: str, value, headers=None) -> tuple[int, dict]:
    body = json.dumps(value).encode() if not isinstance(value, bytes) else value
    status, _, answer = request(
        address, "POST", path, body, {"Content-Type": "application/json", **(headers or {})}
    )
    return status, answer


def test_a_foreign_host_is_refused_on_every_route_and_changes_nothing(lab):
    with serving(lab) as httpd:
        address = httpd.server_address[:2]
        evil = {"Host": "evil.example"}
        for path in ("/", "/api/info", "/static/app.js"):
            status, kind, answer = request(address, "GET", path, headers=evil)
            assert (status, kind) == (403, "application/json")
            assert answer == {
                "error": f"foreign Host 'evil.example'; this server answers only {httpd.url}"
            }
        step = {"pixels": GOOD["pixels"], "label": 3}
        assert post_json(address, "/api/step", step, evil)[0] == 403
        assert post_json(address, "/api/reset", {}, evil)[0] == 403
        wrong_port = {"Host": f"127.0.0.1:{address[1] + 1}"}
        assert request(address, "GET", "/api/info", headers=wrong_port)[0] == 403
        localhost = {"Host": f"localhost:{address[1]}"}
        status, _, info = request(address, "GET", "/api/info", headers=localhost)
        assert status == 200 and info["steps"] == 0


def test_a_foreign_origin_may_not_post(lab):
    with serving(lab) as httpd:
        address = httpd.server_address[:2]
        step = {"pixels": GOOD["pixels"], "label": 3}
        status, answer = post_json(address, "/api/step", step, {"Origin": "http://evil.example"})
        assert status == 403
        assert answer == {"error": "requests from the origin 'http://evil.example' are not served"}
        assert post_json(address, "/api/reset", {}, {"Origin": "null"})[0] == 403
        own = {"Origin": httpd.url.rstrip("/")}
        assert post_json(address, "/api/step", step, own)[0] == 200
        assert request(address, "GET", "/api/info")[2]["steps"] == 1


@pytest.mark.parametrize(
    ("value", "served", "ours"),
    [
        ("127.0.0.1:8000", "127.0.0.1", True),
        ("localhost:8000", "127.0.0.1", True),
        ("[::1]:8000", "127.0.0.1", True),
        ("LOCALHOST:8000", "::1", True),
        ("127.0.0.1", "127.0.0.1", False),
        ("127.0.0.1:8001", "127.0.0.1", False),
        ("evil.example:8000", "127.0.0.1", False),
        ("evil.example:8000", "0.0.0.0", False),
        ("192.168.1.20:8000", "0.0.0.0", True),
        ("192.168.1.20:8000", "127.0.0.1", False),
        ("[fe80::1]:8000", "::", True),
        ("127.0.0.1:notaport", "127.0.0.1", False),
        ("", "127.0.0.1", False),
        (None, "127.0.0.1", False),
    ],
)
def test_which_hosts_are_ours(value, served, ours):
    assert host_is_ours(value, served, 8000) is ours


def test_which_origins_are_ours():
    assert origin_is_ours("http://127.0.0.1:8000", "127.0.0.1", 8000)
    assert not origin_is_ours("https://127.0.0.1:8000", "127.0.0.1", 8000)
    assert not origin_is_ours("http://127.0.0.1:8000.evil.example", "127.0.0.1", 8000)
    assert not origin_is_ours("null", "127.0.0.1", 8000)


@pytest.mark.parametrize(
    ("host", "warned"), [("0.0.0.0", True), ("127.0.0.1", False), ("localhost", False)]
)
def test_a_non_loopback_address_gets_a_one_line_warning(
    checkpoint, capsys, monkeypatch, host, warned
):
    def interrupted(self, poll_interval=0.5):
        raise KeyboardInterrupt

    monkeypatch.setattr(LabServer, "serve_forever", interrupted)
    assert main(["serve", str(checkpoint), "--host", host, "--port", "0"]) == 130
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == "jaxmlp serve: stopped"
    warning = (
        f"jaxmlp serve: warning: {host} is not a loopback address: anyone who can reach "
        "this machine can use the page and train the network in memory"
    )
    assert lines[:-1] == ([warning] if warned else [])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "the JSON body is nested too deeply"),
        (
            b'{"pixels": [' + b"9" * 400 + b"]}",
            "an integer of 400 digits in the JSON body; at most 20",
        ),
        (
            b'{"label": ' + b"1" * 5000 + b"}",
            "an integer of 5000 digits in the JSON body; at most 20",
        ),
        (b'{"pixels": [1e400]}', '"pixels" must hold 784 numbers (28×28), got 1'),
    ],
)
def test_hostile_but_valid_json_gets_400_and_no_bug_line(lab, capsys, body, message):
    with serving(lab) as httpd:
        status, answer = post_json(httpd.server_address[:2], "/api/backprop", body)
    assert (status, answer) == (400, {"error": message})
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b"PUT /api/info HTTP/1.0\r\n", 501, "Unsupported method ('PUT')"),
        (b"OPTIONS / HTTP/1.0\r\n", 501, "Unsupported method ('OPTIONS')"),
        (b"DELETE / HTTP/1.0\r\n", 501, "Unsupported method ('DELETE')"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.0\r\n", 414, "Request-URI Too Long"),
        (b"GET / HTTP/1.0\r\n" + b"X-A: b\r\n" * 101, 431, "Too many headers"),
        (b"GARBAGE\r\n", 400, "Bad request syntax ('GARBAGE')"),
        (b"GET / HTTP/9.9\r\n", 505, "Invalid HTTP version (9.9)"),
    ],
)
def test_the_standard_librarys_errors_are_json_too(lab, raw, status, message):
    with serving(lab) as httpd:
        answer = raw_exchange(httpd.server_address[:2], raw + b"\r\n")
    assert status_and_json(answer) == (status, "application/json", {"error": message})


def test_head_gets_a_json_501_without_a_body(lab):
    with serving(lab) as httpd:
        answer = raw_exchange(httpd.server_address[:2], b"HEAD / HTTP/1.0\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 501") and b"Content-Type: application/json" in head
    assert body == b""


def test_a_body_shorter_than_its_length_gets_408_and_no_bug_line(lab, capsys):
    with serving(lab, request_deadline_s=1.0) as httpd:
        address = httpd.server_address[:2]
        head = (
            f"POST /api/predict HTTP/1.0\r\nHost: 127.0.0.1:{address[1]}\r\n"
            "Content-Type: application/json\r\n"
        ).encode()
        started = time.monotonic()
        answer = raw_exchange(address, head + b"Content-Length: 100\r\n\r\n{}")
        assert time.monotonic() - started < 5
        assert status_and_json(answer) == (
            408,
            "application/json",
            {"error": "the request was not received within 1 s"},
        )
        with socket.create_connection(address, timeout=10) as client:
            client.sendall(head + b"Content-Length: 100\r\n\r\n{}")
            client.shutdown(socket.SHUT_WR)
            closed = status_and_json(read_all(client))
        assert closed[0] == 400
        assert closed[2] == {"error": "the body ended after 2 of its 100 bytes"}
        assert post_json(address, "/api/predict", GOOD)[0] == 200
    assert capsys.readouterr().err == ""


def test_a_client_dripping_its_headers_is_cut_off_at_the_deadline(lab):
    with (
        serving(lab, request_deadline_s=1.0) as httpd,
        socket.create_connection(httpd.server_address[:2], timeout=10) as client,
    ):
        started = time.monotonic()
        client.sendall(b"GET /api/info HTTP/1.0\r\n")
        with contextlib.suppress(OSError):
            for _ in range(40):  # at most 8 s; the deadline is 1 s
                client.sendall(b"X")
                time.sleep(0.2)
        answer = read_all(client)
        elapsed = time.monotonic() - started
    assert elapsed < 4
    assert status_and_json(answer)[:2] == (408, "application/json")


def test_connections_beyond_the_cap_get_503_at_once(lab):
    with serving(lab, max_connections=2, request_deadline_s=3.0) as httpd:
        address = httpd.server_address[:2]
        idle = [socket.create_connection(address, timeout=10) for _ in range(2)]
        try:
            time.sleep(0.3)
            started = time.monotonic()
            answer = raw_exchange(address, b"GET /api/info HTTP/1.0\r\n\r\n")
            assert time.monotonic() - started < 2
            assert status_and_json(answer) == (
                503,
                "application/json",
                {"error": "too many open connections; try again shortly"},
            )
        finally:
            for connection in idle:
                connection.close()
        for _ in range(50):  # the idle connections' threads end within a few polls
            if request(address, "GET", "/api/info")[0] == 200:
                break
            time.sleep(0.1)
        assert request(address, "GET", "/api/info")[0] == 200


def test_images_beyond_the_decoding_cap_get_503(lab, monkeypatch):
    entered, release = threading.Event(), threading.Event()
    decode = server_module.digit_from_bytes

    def slow_decode(data):
        entered.set()
        release.wait(10)
        return decode(data)

    monkeypatch.setattr(server_module, "digit_from_bytes", slow_decode)
    image = {"image": data_url(drawn_digit_png())}
    with serving(lab, max_decoding=1) as httpd:
        address = httpd.server_address[:2]
        results = []
        first = threading.Thread(
            target=lambda: results.append(post_json(address, "/api/preprocess", image))
        )
        first.start()
        assert entered.wait(10)
        busy = post_json(address, "/api/preprocess", image)
        assert post_json(address, "/api/predict", GOOD)[0] == 200
        release.set()
        first.join(10)
    assert busy == (503, {"error": "busy decoding other images; try again shortly"})
    assert results[0][0] == 200


@pytest.mark.parametrize("started", [True, False])
def test_a_ctrl_c_while_a_connection_thread_starts_gives_its_slot_back_once(
    lab, monkeypatch, started
):
    """Ctrl-C may land just after a connection's thread started (the thread gives the slot
    back) or before it could (the server does): either way the slot comes back exactly once,
    and the interrupt, not a ``ValueError`` from the semaphore, is what propagates."""
    httpd = LabServer(("127.0.0.1", 0), lab, max_connections=1)
    served = threading.Event()
    original_start = threading.Thread.start

    def start_then_interrupt(thread):
        if started:
            original_start(thread)
            thread.join()
        raise KeyboardInterrupt

    try:
        with monkeypatch.context() as patch:
            patch.setattr(
                socketserver.ThreadingMixIn, "process_request_thread", lambda *_: served.set()
            )
            patch.setattr(threading.Thread, "start", start_then_interrupt)
            with pytest.raises(KeyboardInterrupt):
                httpd.process_request(None, ("127.0.0.1", 1))
    finally:
        httpd.server_close()
    assert served.is_set() == started
    assert httpd.connection_slots.acquire(blocking=False)
    assert not httpd.connection_slots.acquire(blocking=False)
