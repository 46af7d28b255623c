"""A full disk (simulated by a file size limit, ``ulimit -f``): errors name their file,
the metrics file keeps only whole lines, and the compilation cache is not poisoned."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from data_fixtures import small_arrays, write_idx_dataset
from jax._src.compilation_cache import compress_executable

from jaxmlp import compile_cache
from jaxmlp.compile_cache import CHECKED_LIST, removal_line, remove_damaged_entries
from jaxmlp.files import line_appender

APPEND_UNDER_A_LIMIT = """
import resource, sys
from jaxmlp.files import line_appender
resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))
with line_appender(sys.argv[1]) as append:
    for number in range(20):
        try:
            append(b"x" * 30 + b"\\n")
        except OSError as error:
            print(error.filename, error.errno)
            break
"""


@pytest.mark.slow
def test_a_failed_append_leaves_no_partial_line_and_names_the_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b"head\n")

    done = subprocess.run(
        [sys.executable, "-c", APPEND_UNDER_A_LIMIT, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert done.stdout.split() == [str(path), str(errno.EFBIG)]
    assert path.read_bytes() == b"head\n" + (b"x" * 30 + b"\n") * 3  # the 4th was cut, then removed


def test_an_append_to_a_full_device_names_the_file():
    with pytest.raises(OSError) as caught, line_appender(Path("/dev/full")) as append:
        append(b"a line\n")
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, "/dev/full")


def entry(directory: Path, name: str, data: bytes) -> Path:
    path = directory / f"jit_{name}-{'0' * 64}-cache"
    path.write_bytes(data)
    return path


def test_damaged_cache_entries_are_removed_and_sound_ones_read_once(tmp_path, monkeypatch):
    sound = compress_executable(b"an executable" * 100 + b"time")
    kept = entry(tmp_path, "kept", sound)
    cut = entry(tmp_path, "cut", sound[: len(sound) // 2])
    empty = entry(tmp_path, "empty", b"")

    assert remove_damaged_entries(tmp_path) == [cut, empty]
    assert sorted(path.name for path in tmp_path.iterdir()) == [CHECKED_LIST, kept.name]
    assert (tmp_path / CHECKED_LIST).read_text() == f"{kept.name}\n"

    reads = []
    monkeypatch.setattr(compile_cache, "is_sound_entry", lambda path, _: reads.append(path))
    assert remove_damaged_entries(tmp_path) == []
    assert reads == []


def test_the_removal_is_one_line(tmp_path):
    line = removal_line([tmp_path / "a-cache", tmp_path / "b-cache"])
    assert line == (
        f"jaxmlp: removed 2 damaged compilation cache entries from {tmp_path} (left by a run "
        "that could not finish writing them)"
    )


def test_a_missing_or_unset_cache_is_left_alone(tmp_path):
    assert remove_damaged_entries(None) == []
    assert remove_damaged_entries(tmp_path / "absent") == []


@pytest.mark.slow
def test_a_run_on_a_full_disk_then_a_clean_run(tmp_path):
    data = write_idx_dataset(tmp_path / "data", small_arrays(num_train=120, num_test=40))
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg"), "JAX_PLATFORMS": "cpu"}
    metrics = tmp_path / "metrics.jsonl"
    train = [sys.executable, "-m", "jaxmlp", "train", "--data-dir", str(data), "--val-size", "20"]
    train += ["--epochs", "2", "--sizes", "784,8,10"]

    full = subprocess.run(
        ["bash", "-c", 'ulimit -f 1 && exec "$@"', "bash", *train, "--metrics-out", str(metrics)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    after = subprocess.run(train, capture_output=True, text=True, env=env, timeout=300, check=False)
    again = subprocess.run(train, capture_output=True, text=True, env=env, timeout=300, check=False)

    assert full.returncode == 1
    assert full.stderr.splitlines()[-1] == f"jaxmlp: error: {metrics}: File too large"
    content = metrics.read_text()
    assert content.endswith("\n")
    assert all(json.loads(line) for line in content.splitlines())
    assert after.returncode == 0 and "Warning" not in after.stderr
    assert after.stderr.splitlines()[0].startswith("jaxmlp: removed ")
    assert len(after.stderr.splitlines()) == 1
    assert again.returncode == 0 and again.stderr == ""
