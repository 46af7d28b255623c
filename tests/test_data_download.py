"""Downloads against a local HTTP server: success, bad mirrors, and nothing half-written."""

from __future__ import annotations

import socket

import pytest
from data_fixtures import (  # noqa: F401
    OFFICIAL_FILES,
    dead_port,
    http_server,
    offline_environment,
    sha256_hex,
)

from jaxmlp.data import download_dataset
from jaxmlp.data.download import DOWNLOADED_LIST
from jaxmlp.errors import DatasetError

FILES = {name: f"content of {name}".encode() * 100 for name in OFFICIAL_FILES}
CHECKSUMS = {name: sha256_hex(content) for name, content in FILES.items()}


def serve(server, prefix: str, files: dict[str, bytes] = FILES) -> str:
    for name, content in files.items():
        server.routes[f"/{prefix}/{name}"] = content
    return server.mirror(prefix)


def download(cache, mirrors, **kwargs):
    return download_dataset(
        "mnist", cache, mirrors=mirrors, checksums=CHECKSUMS, timeout=5, **kwargs
    )


def cache_listing(cache) -> list[str]:
    """The cache's files but the list of what downloads put there."""
    if not cache.exists():
        return []
    return sorted(path.name for path in cache.iterdir() if path.name != DOWNLOADED_LIST)


def test_download_stores_verified_files(tmp_path, http_server):
    mirror = serve(http_server, "good")

    statuses = download(tmp_path / "cache", [mirror])

    for name, content in FILES.items():
        assert (tmp_path / "cache" / name).read_bytes() == content
        assert statuses[name].downloaded_from == mirror + name
    assert cache_listing(tmp_path / "cache") == sorted(FILES)
    assert (tmp_path / "cache" / DOWNLOADED_LIST).read_text().split() == sorted(FILES)


def test_files_already_present_are_verified_not_downloaded_again(tmp_path, http_server):
    mirror = serve(http_server, "good")
    download(tmp_path / "cache", [mirror])
    hits = dict(http_server.hits)

    statuses = download(tmp_path / "cache", [mirror])

    assert all(status.downloaded_from is None for status in statuses.values())
    assert http_server.hits == hits


def test_a_damaged_cached_file_is_downloaded_again(tmp_path, http_server):
    mirror = serve(http_server, "good")
    download(tmp_path / "cache", [mirror])
    damaged = tmp_path / "cache" / OFFICIAL_FILES[0]
    damaged.write_bytes(b"damaged")

    statuses = download(tmp_path / "cache", [mirror])

    assert damaged.read_bytes() == FILES[OFFICIAL_FILES[0]]
    assert statuses[OFFICIAL_FILES[0]].downloaded_from == mirror + OFFICIAL_FILES[0]


def test_checksum_mismatch_falls_through_to_the_next_mirror(tmp_path, http_server):
    bad = serve(http_server, "bad", dict.fromkeys(FILES, b"tampered"))
    good = serve(http_server, "good")

    statuses = download(tmp_path / "cache", [bad, good])

    assert all(status.downloaded_from.startswith(good) for status in statuses.values())
    assert all(http_server.hits[f"/bad/{name}"] == 1 for name in FILES)
    assert cache_listing(tmp_path / "cache") == sorted(FILES)


def test_checksum_mismatch_everywhere_leaves_nothing_in_the_cache(tmp_path, http_server):
    bad = serve(http_server, "bad", dict.fromkeys(FILES, b"tampered"))

    with pytest.raises(
        DatasetError, match=rf"tried {bad} \(SHA-256 mismatch: got [0-9a-f]{{12}}…, expected"
    ):
        download(tmp_path / "cache", [bad])

    assert cache_listing(tmp_path / "cache") == []


def test_truncated_body_is_rejected_and_not_kept(tmp_path, http_server):
    mirror = serve(http_server, "short")
    name = OFFICIAL_FILES[0]
    http_server.truncate.add(f"/short/{name}")

    with pytest.raises(
        DatasetError, match=rf"could not download {name}: .*truncated: received 3700 of 4700 bytes"
    ):
        download(tmp_path / "cache", [mirror])

    assert cache_listing(tmp_path / "cache") == []


def test_refused_connection_falls_through_to_the_next_mirror(tmp_path, http_server):
    dead = f"http://127.0.0.1:{dead_port()}/"
    good = serve(http_server, "good")

    statuses = download(tmp_path / "cache", [dead, good])

    assert all(status.downloaded_from.startswith(good) for status in statuses.values())


def test_all_mirrors_failing_gives_one_line_naming_each_and_the_offline_way(tmp_path, http_server):
    dead = f"http://127.0.0.1:{dead_port()}/"
    missing = http_server.mirror("nothing-here")

    with pytest.raises(DatasetError) as error:
        download(tmp_path / "cache", [dead, missing, "not a url"])

    message = str(error.value)
    assert "\n" not in message
    assert f"could not download {OFFICIAL_FILES[0]}: tried {dead} (" in message
    assert "Connection refused" in message
    assert f"{missing} (HTTP 404 Not Found)" in message
    assert "not a url/ (invalid URL" in message
    assert f"put the official .gz files in {tmp_path / 'cache'}" in message
    assert "--data-dir DIR" in message and "JAXMLP_DATA_DIR" in message
    assert cache_listing(tmp_path / "cache") == []


def test_mirrors_come_from_the_environment_variable(tmp_path, http_server, monkeypatch):
    good = serve(http_server, "good")
    monkeypatch.setenv(
        "JAXMLP_MNIST_MIRRORS", f"http://127.0.0.1:{dead_port()}, {good.rstrip('/')}"
    )

    statuses = download_dataset("mnist", tmp_path / "cache", checksums=CHECKSUMS, timeout=5)

    assert all(status.downloaded_from.startswith(good) for status in statuses.values())


def test_download_goes_to_the_user_cache_by_default(tmp_path, http_server, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    download_dataset("fashion-mnist", mirrors=[serve(http_server, "good")], checksums=CHECKSUMS)

    assert cache_listing(tmp_path / "xdg" / "jaxmlp" / "fashion-mnist") == sorted(FILES)


def test_an_unwritable_cache_is_a_dataset_error(tmp_path, http_server):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    with pytest.raises(DatasetError, match="cannot create cache directory"):
        download(blocker / "cache", [serve(http_server, "good")])


def test_a_mirror_that_never_answers_times_out(tmp_path):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        mirror = f"http://127.0.0.1:{silent.getsockname()[1]}/"

        with pytest.raises(DatasetError, match=rf"tried {mirror} \(timed out"):
            download_dataset(
                "mnist", tmp_path / "cache", mirrors=[mirror], checksums=CHECKSUMS, timeout=0.3
            )
