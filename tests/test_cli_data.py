"""``jaxmlp data-info`` and ``jaxmlp download``, run in-process."""

from __future__ import annotations

import json

import pytest
from data_fixtures import (  # noqa: F401
    OFFICIAL_FILES,
    REAL_MNIST_DIR,
    http_server,
    needs_real_mnist,
    offline_environment,
    small_arrays,
    write_idx_dataset,
)

from jaxmlp.cli import main
from jaxmlp.data import user_cache_dir


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("jaxmlp: error: ")
    assert "Traceback" not in err
    return lines[0]


@needs_real_mnist
def test_data_info_on_the_real_files(capsys):
    code, out, err = run_cli(capsys, "data-info", "--data-dir", str(REAL_MNIST_DIR))

    assert (code, err) == (0, "")
    assert "dataset: mnist" in out
    assert f"source:  {REAL_MNIST_DIR.resolve()} (--data-dir)" in out
    assert "images:  28x28, 10 classes" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[4:]}
    assert rows["split"] == ["size", *"0123456789"]
    assert rows["train"][0] == "50000" and rows["validation"][0] == "10000"
    assert rows["test"] == [
        "10000",
        "980",
        "1135",
        "1032",
        "1010",
        "982",
        "892",
        "958",
        "1028",
        "974",
        "1009",
    ]


def test_data_info_json_with_val_size_and_limit(capsys, tmp_path):
    directory = write_idx_dataset(tmp_path / "idx", small_arrays(num_train=40, num_test=12))

    code, out, _ = run_cli(
        capsys,
        "data-info",
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        str(directory),
        "--val-size",
        "10",
        "--limit",
        "20",
        "--json",
    )

    summary = json.loads(out)
    assert code == 0
    assert summary["dataset"] == "fashion-mnist"
    assert summary["class_names"][0] == "T-shirt/top"
    assert {name: split["size"] for name, split in summary["splits"].items()} == {
        "train": 20,
        "validation": 10,
        "test": 12,
    }
    assert sum(summary["splits"]["validation"]["class_counts"]) == 10


def test_a_missing_data_dir_exits_1_with_one_line(capsys, tmp_path):
    code, out, err = run_cli(capsys, "data-info", "--data-dir", str(tmp_path / "absent"))

    assert code == 1 and out == ""
    assert (
        assert_one_error_line(err)
        == f"jaxmlp: error: --data-dir {tmp_path / 'absent'} does not exist"
    )


def test_offline_with_an_empty_cache_exits_1_with_one_line(capsys):
    code, out, err = run_cli(capsys, "data-info")

    line = assert_one_error_line(err)
    assert code == 1 and out == ""
    assert "could not download train-images-idx3-ubyte.gz: tried http://127.0.0.1:" in line
    assert f"put the official .gz files in {user_cache_dir('mnist')}" in line
    assert "--data-dir" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data-info", "--val-size", "60000"], "--val-size must be in [0, 60000)"),
        (["data-info", "--limit", "0"], "--limit must be at least 1, got 0"),
        (["data-info", "--dataset", "cifar"], "'cifar' is not one of 'mnist', 'fashion-mnist'"),
        (["download", "--dataset", "cifar"], "'cifar' is not one of 'mnist', 'fashion-mnist'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, args, message):
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert message in assert_one_error_line(err)


def test_download_failure_exits_1_with_one_line(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "download", "--dataset", "fashion-mnist", "--cache-dir", str(tmp_path / "cache")
    )
    assert code == 1
    assert "could not download train-images-idx3-ubyte.gz" in assert_one_error_line(err)


@needs_real_mnist
def test_download_then_already_present(capsys, tmp_path, http_server, monkeypatch):
    for name in OFFICIAL_FILES:
        http_server.routes[f"/mnist/{name}"] = (REAL_MNIST_DIR / name).read_bytes()
    monkeypatch.setenv("JAXMLP_MNIST_MIRRORS", http_server.mirror("mnist"))
    cache = tmp_path / "cache"

    first = run_cli(capsys, "download", "--dataset", "mnist", "--cache-dir", str(cache))
    second = run_cli(capsys, "download", "--cache-dir", str(cache))

    assert first[0] == second[0] == 0
    assert first[1].splitlines()[0] == (
        f"train-images-idx3-ubyte.gz: downloaded from {http_server.mirror('mnist')}"
        f"train-images-idx3-ubyte.gz, verified ({cache / 'mnist' / 'train-images-idx3-ubyte.gz'})"
    )
    assert second[1].splitlines() == [
        f"{name}: already present, verified ({cache / 'mnist' / name})" for name in OFFICIAL_FILES
    ]
