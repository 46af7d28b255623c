"""``atomic_write`` replaces only regular files, names its target and cleans up after kills;
``check_outputs`` refuses unusable output paths before any work."""

from __future__ import annotations

import errno
import os
import subprocess
import time

import pytest

from jaxmlp import files, outputs
from jaxmlp.errors import OutputPathError
from jaxmlp.files import HOST_ID, STALE_AFTER_S, atomic_write
from jaxmlp.outputs import check_outputs


def write(path, content: bytes = b"new") -> None:
    with atomic_write(path) as file:
        file.write(content)


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def temporaries(directory) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith("."))


def test_a_fifo_is_refused_and_left_in_place(tmp_path):
    fifo = tmp_path / "out.npz"
    os.mkfifo(fifo)

    with pytest.raises(OutputPathError, match=rf"^{fifo} is a FIFO, not a regular file"):
        write(fifo)

    assert fifo.is_fifo() and temporaries(tmp_path) == []


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(OutputPathError, match="is a directory, not a regular file"):
        write(tmp_path)


def test_a_link_to_a_regular_file_is_replaced_not_followed(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"old")
    link = tmp_path / "link"
    link.symlink_to(target)

    write(link)

    assert not link.is_symlink() and link.read_bytes() == b"new"
    assert target.read_bytes() == b"old"


def test_a_link_to_a_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to(tmp_path / "fifo")

    with pytest.raises(OutputPathError, match="link is a FIFO"):
        write(tmp_path / "link")


def test_a_write_error_names_the_target_not_the_temporary(tmp_path, monkeypatch):
    def full_disk(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full_disk)
    target = tmp_path / "out.npz"
    target.write_bytes(b"old")

    with pytest.raises(OSError) as raised:
        write(target)

    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    assert target.read_bytes() == b"old" and temporaries(tmp_path) == []


def test_an_unwritable_directory_names_the_target(tmp_path, monkeypatch):
    def refused(prefix, suffix, dir):
        raise PermissionError(errno.EACCES, "Permission denied", f"{dir}/{prefix}x{suffix}")

    monkeypatch.setattr(files.tempfile, "mkstemp", refused)

    with pytest.raises(PermissionError) as raised:
        write(tmp_path / "out.npz")

    assert raised.value.filename == str(tmp_path / "out.npz")


def test_a_save_removes_only_the_temporaries_of_killed_saves(tmp_path):
    target = tmp_path / "r.npz"
    stale = [
        f".r.npz.{HOST_ID}-{dead_pid()}.abcdefgh.tmp",  # this host, writer gone
        ".r.npz.0badc0de-1.abcdefgh.tmp",  # another host, untouched for long
        ".r.npz.k2j4h5g6.tmp",  # an older jaxmlp's, untouched for long
    ]
    kept = [
        f".r.npz.{HOST_ID}-{os.getppid()}.abcdefgh.tmp",  # this host, writer alive
        ".r.npz.0badc0de-2.ijklmnop.tmp",  # another host, being written
        ".r.npz.x.0badc0de-1.abcdefgh.tmp",  # another target's
        f".r.npz.{HOST_ID}-{dead_pid()}.abcdefgh.part",  # another suffix's
    ]
    long_ago = time.time() - 2 * STALE_AFTER_S
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"partial")
        if "0badc0de-1" in name or "k2j4" in name:
            os.utime(tmp_path / name, (long_ago, long_ago))

    write(target)

    assert temporaries(tmp_path) == sorted(kept)
    assert target.read_bytes() == b"new"


def test_check_outputs_accepts_new_and_regular_files(tmp_path):
    (tmp_path / "old.npz").write_bytes(b"old")
    check_outputs(
        {
            "--save": tmp_path / "old.npz",
            "--metrics-out": tmp_path / "new" / "deeper" / "m.jsonl",
            "--plot-dir": [tmp_path / "plots" / "a.png", tmp_path / "plots" / "b.png"],
            "--out": None,
        }
    )


def test_check_outputs_refuses_a_fifo_naming_the_flag(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OutputPathError, match=rf"^--metrics-out {tmp_path}/fifo is a FIFO"):
        check_outputs({"--save": tmp_path / "r.npz", "--metrics-out": tmp_path / "fifo"})


def test_check_outputs_refuses_a_file_where_a_directory_must_be(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(
        OutputPathError, match=rf"^--save {tmp_path}/file/sub/r.npz: .* is not a directory"
    ):
        check_outputs({"--save": tmp_path / "file" / "sub" / "r.npz"})


def test_check_outputs_refuses_an_unwritable_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs.os, "access", lambda path, mode: False)
    with pytest.raises(
        OutputPathError, match=rf"^--save {tmp_path}/new/r.npz: no permission to create "
    ):
        check_outputs({"--save": tmp_path / "new" / "r.npz"})
    with pytest.raises(OutputPathError, match=rf"no permission to write into {tmp_path}$"):
        check_outputs({"--save": tmp_path / "r.npz"})


@pytest.mark.parametrize("alias", ["same", "dotted", "symlink", "hardlink"])
def test_check_outputs_refuses_two_outputs_on_one_file(tmp_path, monkeypatch, alias):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "r.npz"
    target.write_bytes(b"x")
    other = {
        "same": target,
        "dotted": tmp_path / "." / "sub" / ".." / "r.npz",
        "symlink": tmp_path / "link",
        "hardlink": tmp_path / "hard",
    }[alias]
    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to(target)
    os.link(target, tmp_path / "hard")

    with pytest.raises(OutputPathError, match="are the same file"):
        check_outputs({"--save": "r.npz", "--metrics-out": other})
