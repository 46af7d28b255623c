"""``jaxmlp sweep`` keeping its runs: a run directory, nothing replaced silently, a config
file whose lists are grid axes; on a tiny IDX dataset."""

from __future__ import annotations

import json
import tomllib

import pytest
from data_fixtures import small_arrays, write_idx_dataset

from jaxmlp.checkpoint import load_checkpoint
from jaxmlp.cli import main

TINY = (
    "--val-size",
    "10",
    "--sizes",
    "784,8,10",
    "--init",
    "he",
    "--batch-size",
    "10",
    "--epochs",
    "2",
)
GRID = ("--lr", "0.05,0.2", "--seed", "0,1")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_idx_dataset(tmp_path_factory.mktemp("idx"), small_arrays(60, 20))


def sweep(capsys, data_dir, *argv):
    code = main(["sweep", "--data-dir", str(data_dir), *TINY, *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_a_sweep_run_directory_keeps_table_best_metrics_events_and_curves(
    capsys, data_dir, tmp_path
):
    pytest.importorskip("matplotlib")
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    run_dir = tmp_path / "sweep"
    code, out, err = sweep(capsys, data_dir, *GRID, "--run-dir", run_dir)
    assert code == 0 and err == ""
    assert sorted(path.name for path in run_dir.iterdir()) == [
        "best.npz",
        "config.toml",
        "metrics.jsonl",
        "plots",
        "run.json",
        "table.json",
        "table.txt",
        "tensorboard",
    ]
    last = out.splitlines()[-1]
    assert last.startswith(
        f"wrote {run_dir}: config.toml, run.json, table.txt, table.json, best.npz (member "
    )
    assert last.endswith("metrics.jsonl, tensorboard/ (4 runs), plots/")
    table = json.loads((run_dir / "table.json").read_text())
    assert len(table["rows"]) == 2 and table["runs"] == 4
    assert (run_dir / "table.txt").read_text().splitlines()[0].split()[:2] == ["lr", "val"]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["command"] == "sweep" and record["status"] == "finished"
    assert record["axes"] == {"lr": ["0.05", "0.2"], "seed": ["0", "1"]}
    assert record["data"]["source"] == f"{data_dir} (--data-dir)"
    best = record["final"]["best"]
    saved = load_checkpoint(run_dir / "best.npz")
    assert (saved.settings.lr, saved.settings.seed) == (
        best["settings"]["lr"],
        best["settings"]["seed"],
    )
    assert saved.settings.data_dir == data_dir.resolve()
    assert (run_dir / "plots" / "sweep_curves.png").read_bytes().startswith(b"\x89PNG")
    members = sorted(path.name for path in (run_dir / "tensorboard").iterdir())
    assert members == [
        "000_lr=0.05_seed=0",
        "001_lr=0.05_seed=1",
        "002_lr=0.2_seed=0",
        "003_lr=0.2_seed=1",
    ]
    reader = event_accumulator.EventAccumulator(str(run_dir / "tensorboard" / members[2]))
    reader.Reload()
    assert [event.step for event in reader.Scalars("accuracy/validation")] == [1, 2]
    assert "_hparams_/session_start_info" in reader.PluginTagToContent("hparams")
    config = tomllib.loads((run_dir / "config.toml").read_text())
    assert config["lr"] == [0.05, 0.2] and config["seed"] == [0, 1]


@pytest.mark.slow
def test_a_sweep_config_repeats_the_sweep(capsys, data_dir, tmp_path):
    first, again = tmp_path / "first", tmp_path / "again"
    assert sweep(capsys, data_dir, *GRID, "--run-dir", first)[0] == 0
    code = main(["sweep", "--config", str(first / "config.toml"), "--run-dir", str(again)])
    capsys.readouterr()
    assert code == 0
    rows = [json.loads((d / "table.json").read_text())["rows"] for d in (first, again)]
    assert rows[0] == rows[1]


def test_a_sweep_replaces_nothing_without_overwrite(capsys, data_dir, tmp_path):
    metrics, best = tmp_path / "s.jsonl", tmp_path / "best.npz"
    run_dir = tmp_path / "sweep"
    run_dir.mkdir()
    (run_dir / "run.json").write_text("{}")
    for path in (metrics, best):
        path.write_text("earlier")
    for argv, message in [
        (("--metrics-out", metrics), f"--metrics-out {metrics} already exists; pass --overwrite"),
        (("--save-best", best), f"--save-best {best} already exists; pass --overwrite"),
        (("--run-dir", run_dir), f"--run-dir {run_dir} is not empty; pass --overwrite"),
        (("--run-dir", run_dir, "--save-best", best), "give --run-dir or --save-best, not both"),
    ]:
        code, out, err = sweep(capsys, data_dir, *GRID, *argv)
        assert code == 2 and out == "" and len(err.splitlines()) == 1 and message in err
    assert metrics.read_text() == best.read_text() == "earlier"


def test_sweep_print_config_writes_the_axes_as_lists(capsys, tmp_path):
    config = tmp_path / "grid.toml"
    config.write_text("lr = [0.05, 0.1]\nseed = [0, 1, 2]\nepochs = 3\n")
    code = main(["sweep", "--config", str(config), "--dropout", "0,0.2", "--print-config"])
    printed = tomllib.loads(capsys.readouterr().out)
    assert code == 0
    assert printed["lr"] == [0.05, 0.1] and printed["seed"] == [0, 1, 2]
    assert printed["dropout"] == [0.0, 0.2] and printed["epochs"] == 3


def test_a_train_config_list_is_refused_by_train_but_is_an_axis_for_sweep(capsys, tmp_path):
    config = tmp_path / "grid.toml"
    config.write_text("lr = [0.05, 0.1]\n")
    code = main(["train", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and f"{config}: lr is a list, got [0.05, 0.1]; lists make grid axes" in err
