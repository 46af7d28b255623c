"""Run directories: naming, clearing, the run record, the best epoch and early stopping."""

from __future__ import annotations

import datetime
import json
import os
import sys

import pytest

from jaxmlp import run_dir
from jaxmlp.data import Dataset, Split
from jaxmlp.errors import OutputPathError
from jaxmlp.outputs import check_not_replacing


def history(*accuracies) -> list[dict]:
    return [
        {"event": "epoch", "epoch": number, "val_accuracy": value}
        for number, value in enumerate(accuracies, start=1)
    ]


def test_automatic_names_are_the_time_and_never_taken(tmp_path):
    moment = datetime.datetime(2026, 11, 29, 20, 15, 3)
    first = run_dir.automatic_run_dir(moment, tmp_path)
    assert first == tmp_path / "2026-11-29_20-15-03"
    first.mkdir()
    second = run_dir.automatic_run_dir(moment, tmp_path)
    assert second == tmp_path / "2026-11-29_20-15-03-2"
    second.mkdir()
    assert run_dir.automatic_run_dir(moment, tmp_path).name == "2026-11-29_20-15-03-3"


def test_clearing_removes_only_what_a_run_writes(tmp_path):
    for name in ("config.toml", "last.npz", "metrics.jsonl", "notes.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "tensorboard" / "member").mkdir(parents=True)
    (tmp_path / "tensorboard" / "member" / "events").write_text("x")
    run_dir.clear_run_dir(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_a_non_empty_run_dir_or_an_existing_file_is_kept_unless_overwrite(tmp_path):
    directory, checkpoint = tmp_path / "run", tmp_path / "keep.npz"
    directory.mkdir()
    check_not_replacing({"--save": checkpoint}, {"--run-dir": directory})
    (directory / "run.json").write_text("{}")
    checkpoint.write_text("x")
    with pytest.raises(OutputPathError) as caught:
        check_not_replacing({"--save": checkpoint})
    expected = f"--save {checkpoint} already exists; pass --overwrite to replace it"
    assert str(caught.value) == expected
    assert caught.value.exit_code == 2
    with pytest.raises(OutputPathError) as caught:
        check_not_replacing(directories={"--run-dir": directory})
    assert str(caught.value) == (
        f"--run-dir {directory} is not empty; pass --overwrite to write into it"
    )
    check_not_replacing({"--save": checkpoint}, {"--run-dir": directory}, overwrite=True)
    os.symlink(tmp_path / "absent", tmp_path / "dangling")
    with pytest.raises(OutputPathError, match="dangling already exists"):
        check_not_replacing({"--metrics-out": tmp_path / "dangling"})


def test_the_run_record_says_where_the_data_came_from(tmp_path, monkeypatch):
    import numpy as np

    split = Split(np.zeros((3, 784), np.float32), np.zeros(3, np.int32))
    source = "/data/mnist (JAXMLP_DATA_DIR)"
    dataset = Dataset("mnist", split, split, split, source, tuple("0123456789"))
    record = run_dir.run_record(
        command="train",
        argv=["jaxmlp", "train", "--epochs", "2"],
        settings={"data_dir": None},
        dataset=dataset,
        started="2026-11-29T20:00:00+00:00",
        status="running",
    )
    assert record["data"] == {
        "dataset": "mnist",
        "source": "/data/mnist (JAXMLP_DATA_DIR)",
        "train": 3,
        "validation": 3,
        "test": 3,
    }
    assert record["argv"] == ["jaxmlp", "train", "--epochs", "2"]
    assert record["backend"] == "cpu" and record["devices"][0].startswith("cpu:0")
    assert record["jaxmlp"] and record["jax"] and record["jaxlib"]
    assert record["ended"] is None and record["status"] == "running"
    path = run_dir.write_json(tmp_path / "deep" / "run.json", record)
    assert json.loads(path.read_text()) == record
    default = run_dir.run_record(
        command="train", argv=None, settings={}, dataset=dataset, started="", status="running"
    )
    assert default["argv"] == sys.argv


def test_best_epoch_and_improvement():
    assert run_dir.best_val_epoch(history(0.5, 0.7, 0.7, 0.6))["epoch"] == 2
    assert run_dir.improved(history(0.5, 0.7))
    assert not run_dir.improved(history(0.5, 0.7, 0.7))
    assert run_dir.best_val_epoch([{"epoch": 1, "val_accuracy": None}]) is None
    assert not run_dir.improved([{"epoch": 1, "val_accuracy": None}])


@pytest.mark.parametrize(
    ("accuracies", "patience", "stop"),
    [
        ((0.5, 0.6, 0.6, 0.6), 2, True),
        ((0.5, 0.6, 0.6), 2, False),
        ((0.5, 0.6, 0.7, 0.8), 1, False),
        ((0.5, 0.4), 1, True),
        ((0.5, 0.4, 0.3), None, False),
    ],
)
def test_early_stopping_counts_epochs_since_the_best(accuracies, patience, stop):
    assert run_dir.should_stop_early(history(*accuracies), patience) is stop
