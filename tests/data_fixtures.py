"""Helpers and fixtures for the data tests: small IDX datasets, seed pickles, a local
HTTP server, and an environment that can reach no real data and no network."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from jaxmlp.data import sources
from jaxmlp.data.idx import encode_idx

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_MNIST_DIR = REPO_ROOT.parent / "shared" / "datasets" / "mnist"
OFFICIAL_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
needs_real_mnist = pytest.mark.skipif(
    not all((REAL_MNIST_DIR / name).is_file() for name in OFFICIAL_FILES),
    reason=f"the MNIST files are not in {REAL_MNIST_DIR}",
)


def dead_port() -> int:
    """Returns a local port that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def offline_environment(tmp_path_factory, monkeypatch) -> Path:
    """No real data anywhere and no network: an empty XDG cache, no JAXMLP_DATA_DIR,
    no system dataset directories, and every dataset's mirrors on a dead local port."""
    root = tmp_path_factory.mktemp("offline")
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "cache"))
    monkeypatch.delenv("JAXMLP_DATA_DIR", raising=False)
    monkeypatch.setattr(sources, "SYSTEM_DATASET_ROOTS", (root / "system",))
    for spec in sources.SPECS.values():
        monkeypatch.setenv(spec.mirrors_env, f"http://127.0.0.1:{dead_port()}/")
    return root


def small_arrays(num_train: int = 40, num_test: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    """Random uint8 images (N, 28, 28) and labels 0..9 for a small dataset."""
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (num_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, num_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (num_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, num_test, dtype=np.uint8),
    }


def write_idx_dataset(
    directory: Path, arrays: dict[str, np.ndarray], compress: bool = True, dotted: bool = False
) -> Path:
    """Writes ``arrays`` as the four IDX files under their official names; returns ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for role, array in arrays.items():
        name = sources.OFFICIAL_STEMS[role]
        name = name.replace("-idx", ".idx") if dotted else name
        content = encode_idx(array)
        if compress:
            (directory / f"{name}.gz").write_bytes(gzip.compress(content, mtime=0))
        else:
            (directory / name).write_bytes(content)
    return directory


def write_seed_pickle(path: Path, arrays: dict[str, np.ndarray], val_size: int) -> Path:
    """Writes a ``mnist.pkl.gz`` in the seed's layout: protocol 2, pixels / 256, int64 labels."""

    def pair(images, labels):
        return images.reshape(len(images), -1).astype(np.float32) / 256, labels.astype(np.int64)

    cut = len(arrays["train_labels"]) - val_size
    content = (
        pair(arrays["train_images"][:cut], arrays["train_labels"][:cut]),
        pair(arrays["train_images"][cut:], arrays["train_labels"][cut:]),
        pair(arrays["test_images"], arrays["test_labels"]),
    )
    with gzip.open(path, "wb") as file:
        pickle.dump(content, file, protocol=2)
    return path


def python2_array_pickle(array: np.ndarray) -> bytes:
    """Pickles a 1-byte or little-endian ``array`` the way numpy under Python 2 did with
    protocol 2: ``numpy.core.multiarray._reconstruct`` and the data as a BINSTRING."""

    def short_string(text: bytes) -> bytes:
        return b"U" + bytes([len(text)]) + text

    dtype = array.dtype
    order = b"|" if dtype.itemsize == 1 else b"<"
    shape = b"(" + b"".join(b"J" + struct.pack("<i", d) for d in array.shape) + b"t"
    data = np.ascontiguousarray(array).tobytes()
    dtype_state = b"(K\x03" + short_string(order) + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    return (
        b"cnumpy.core.multiarray\n_reconstruct\n"
        b"cnumpy\nndarray\n(K\x00tU\x01b\x87R"
        b"(K\x01"
        + shape
        + b"cnumpy\ndtype\n"
        + short_string(dtype.str[1:].encode())
        + b"K\x00K\x01\x87R"
        + dtype_state
        + b"\x89T"
        + struct.pack("<I", len(data))
        + data
        + b"tb"
    )


def python2_seed_pickle(splits) -> bytes:
    """The seed's tuple of three (images, labels) pairs, pickled as by Python 2."""
    body = b"".join(
        python2_array_pickle(images) + python2_array_pickle(labels) + b"\x86"
        for images, labels in splits
    )
    return b"\x80\x02" + body + b"\x87."


@dataclass
class LocalServer:
    """A threaded HTTP server on 127.0.0.1 serving ``routes`` (path → body).

    ``truncate`` lists paths whose Content-Length promises more than is sent;
    ``hits`` counts requests by path.
    """

    routes: dict[str, bytes] = field(default_factory=dict)
    truncate: set[str] = field(default_factory=set)
    hits: dict[str, int] = field(default_factory=dict)
    url: str = ""

    def mirror(self, prefix: str) -> str:
        """The base URL of the mirror whose files live under ``/prefix/``."""
        return f"{self.url}/{prefix}/"


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    """A :class:`LocalServer`, started on a free port and stopped after the test."""
    state = LocalServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            state.hits[self.path] = state.hits.get(self.path, 0) + 1
            body = state.routes.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            extra = 1000 if self.path in state.truncate else 0
            self.send_header("Content-Length", str(len(body) + extra))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def sha256_hex(content: bytes) -> str:
    """The hex SHA-256 of ``content``."""
    return hashlib.sha256(content).hexdigest()
