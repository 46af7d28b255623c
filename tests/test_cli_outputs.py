"""Every output path of ``show``, ``plot``, ``evaluate`` and ``download`` is checked before
any work: a FIFO there (a device node needs root; a FIFO is the same case) is exit 2."""

from __future__ import annotations

import json
import os

import pytest
from data_fixtures import offline_environment, small_arrays, write_idx_dataset  # noqa: F401

from jaxmlp.cli import main
from jaxmlp.data import user_cache_dir

EPOCH = {"event": "epoch", "epoch": 1, "train_loss": 0.5, "train_accuracy": 0.8}


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxmlp: error: "), err
    return lines[0].removeprefix("jaxmlp: error: ")


@pytest.fixture
def data_dir(tmp_path):
    return write_idx_dataset(tmp_path / "data", small_arrays(num_train=10_001, num_test=3))


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "fifo.png"
    os.mkfifo(path)
    return path


def test_show_out_on_a_fifo(capsys, data_dir, fifo):
    code, out, err = run_cli(capsys, "show", "--data-dir", data_dir, "--count", "2", "--out", fifo)

    assert code == 2 and out == ""
    assert error_line(err) == f"--out {fifo} is a FIFO, not a regular file"
    assert fifo.is_fifo()


def test_show_out_writes_a_png_atomically(capsys, data_dir, tmp_path):
    code, out, _ = run_cli(
        capsys, "show", "--data-dir", data_dir, "--count", "2", "--out", tmp_path / "g.png"
    )

    assert code == 0 and out == f"wrote {tmp_path / 'g.png'}\n"
    assert (tmp_path / "g.png").read_bytes().startswith(b"\x89PNG")


def test_plot_out_dir_holding_a_fifo(capsys, tmp_path):
    metrics = tmp_path / "m.jsonl"
    metrics.write_text(json.dumps(EPOCH) + "\n")
    os.mkfifo(tmp_path / "learning_curves.png")

    code, _, err = run_cli(capsys, "plot", metrics, "--out-dir", tmp_path)

    assert code == 2
    assert error_line(err) == (
        f"--out-dir {tmp_path / 'learning_curves.png'} is a FIFO, not a regular file"
    )


def test_plot_out_dir_that_is_a_file(capsys, tmp_path):
    metrics = tmp_path / "m.jsonl"
    metrics.write_text(json.dumps(EPOCH) + "\n")

    code, _, err = run_cli(capsys, "plot", metrics, "--out-dir", metrics)

    assert code == 2
    assert (
        error_line(err) == f"--out-dir {metrics}/learning_curves.png: {metrics} is not a directory"
    )


def test_evaluate_out_dir_is_checked_before_the_checkpoint_is_read(capsys, tmp_path):
    os.mkfifo(tmp_path / "misclassified.png")

    code, _, err = run_cli(capsys, "evaluate", tmp_path / "absent.npz", "--out-dir", tmp_path)

    assert code == 2
    assert error_line(err).startswith(f"--out-dir {tmp_path / 'misclassified.png'} is a FIFO")


def test_download_cache_dir_holding_a_fifo(capsys, tmp_path):
    fifo = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    fifo.parent.mkdir()
    os.mkfifo(fifo)

    code, _, err = run_cli(capsys, "download", "--dataset", "mnist", "--cache-dir", tmp_path)

    assert code == 2
    assert error_line(err).startswith(f"--cache-dir {fifo} is a FIFO")


def test_download_default_cache_that_is_a_file(capsys):
    cache = user_cache_dir("mnist")
    cache.parent.mkdir(parents=True)
    cache.write_text("not a directory")

    code, _, err = run_cli(capsys, "download", "--dataset", "mnist")

    assert code == 2
    assert error_line(err).startswith(
        f"the data cache {cache}/train-images-idx3-ubyte.gz: {cache} is not"
    )
