"""Measures the peak memory of ``jaxmlp serve`` under hostile and worst-case images.

Starts ``jaxmlp serve`` on 127.0.0.1 (a small random checkpoint), then sends each case to
``/api/preprocess`` from a local client and prints a Markdown table: the case, the
statuses answered, the first error, and the server's peak resident memory during the case
(Linux ``VmHWM``, reset before each case through ``/proc/PID/clear_refs``). Run from the
repository root: ``python scripts/measure_serve_memory.py``. Every request goes to
127.0.0.1; the script sends a fixed number of requests and stops the server at the end.
"""

from __future__ import annotations

import base64
import http.client
import json
import struct
import subprocess
import sys
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import jax

from jaxmlp.checkpoint import Checkpoint, save_checkpoint
from jaxmlp.model import init_params
from jaxmlp.settings import Settings

SIZES = (784, 32, 16, 10)
COLOR_TYPES = {"L": (0, 1), "RGB": (2, 3), "RGBA": (6, 4)}


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, mode: str = "L", bit_depth: int = 8, header_only=False) -> bytes:
    """A PNG of a white bar on black (or only its header, with a few bytes of data)."""
    color_type, bands = COLOR_TYPES[mode]
    row_bytes = width * bands * bit_depth // 8
    if header_only:
        data = zlib.compress(bytes(64))
    else:
        compressor = zlib.compressobj(9)
        dark, ink = b"\0" + bytes(row_bytes), b"\0" + b"\xff" * row_bytes
        parts = [
            compressor.compress(ink if height // 3 <= row < 2 * height // 3 else dark)
            for row in range(height)
        ]
        data = b"".join(parts) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def post_image(address, image: bytes) -> tuple[int, str]:
    body = json.dumps({"image": "data:image/png;base64," + base64.b64encode(image).decode()})
    connection = http.client.HTTPConnection(*address, timeout=120)
    try:
        connection.request(
            "POST", "/api/preprocess", body.encode(), {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        answer = json.loads(response.read())
        return response.status, answer.get("error", "")
    finally:
        connection.close()


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def main() -> None:
    cases = [
        ("1×50,000,000 8-bit, header only", [png(1, 50_000_000, header_only=True)]),
        ("7000² 16-bit gray", [png(7000, 7000, bit_depth=16)]),
        ("3 × 7000² 16-bit gray at once", [png(7000, 7000, bit_depth=16)] * 3),
        ("largest accepted: 7000² 8-bit gray", [png(7000, 7000)]),
        ("largest accepted: 3340² 16-bit gray", [png(3340, 3340, bit_depth=16)]),
        ("largest accepted: 3660² RGB", [png(3660, 3660, "RGB")]),
        ("largest accepted: 4000² RGBA", [png(4000, 4000, "RGBA")]),
        ("8 × 7000² 8-bit gray at once", [png(7000, 7000)] * 8),
        ("8 × 4000² RGBA at once", [png(4000, 4000, "RGBA")] * 8),
    ]
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "random.npz"
        params = init_params(jax.random.key(3), SIZES, "he")
        save_checkpoint(
            checkpoint,
            Checkpoint(params=params, settings=Settings(sizes=SIZES), epoch=0, metrics=[]),
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "jaxmlp", "serve", str(checkpoint), "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            url = urlsplit(server.stdout.readline().split(" at ")[1].split()[0])
            address = (url.hostname, url.port)
            print(f"idle server: peak {peak_kib(server.pid) / 1024:.0f} MiB\n")
            print("| case | PNG bytes | statuses | message | server peak RSS |")
            print("|---|---|---|---|---|")
            for name, images in cases:
                reset_peak(server.pid)
                with ThreadPoolExecutor(len(images)) as pool:
                    answers = list(pool.map(lambda image: post_image(address, image), images))
                statuses = ", ".join(str(status) for status, _ in answers)
                message = next((error for _, error in answers if error), "")
                peak = peak_kib(server.pid) / 1024
                print(f"| {name} | {len(images[0]):,} | {statuses} | {message} | {peak:.0f} MiB |")
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
