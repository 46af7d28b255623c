"""``jaxmlp train`` keeping its runs: run directories, nothing replaced silently, resume
saving back, config files, early stopping, ``--json``; on a tiny IDX dataset. The tests
that write a run directory draw its plots, hence are marked slow."""

from __future__ import annotations

import json
import re
import tomllib

import numpy as np
import pytest
from data_fixtures import small_arrays, write_idx_dataset

from jaxmlp import runs
from jaxmlp.checkpoint import load_checkpoint
from jaxmlp.cli import main
from jaxmlp.config_file import read_config
from jaxmlp.errors import TrainingInterrupted
from jaxmlp.settings import resolve_settings

TINY = ("--val-size", "10", "--sizes", "784,8,10", "--init", "he", "--batch-size", "10")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_idx_dataset(tmp_path_factory.mktemp("idx"), small_arrays(60, 20))


def train(capsys, data_dir, *argv):
    code = main(["train", "--data-dir", str(data_dir), *TINY, *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def metrics_of(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def arrays_of(path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files if name != "meta"}


@pytest.mark.slow
def test_a_run_directory_keeps_the_run_together(capsys, data_dir, tmp_path):
    run_dir = tmp_path / "run"
    code, out, err = train(capsys, data_dir, "--epochs", 3, "--run-dir", run_dir)
    assert code == 0 and err == ""
    entries = sorted(path.name for path in run_dir.iterdir())
    assert entries == [
        "best.npz",
        "config.toml",
        "last.npz",
        "metrics.jsonl",
        "plots",
        "run.json",
        "tensorboard",
    ]
    lines = out.splitlines()
    assert lines[-2].startswith("Test: ")
    assert lines[-1].startswith(
        f"wrote {run_dir}: config.toml, run.json, last.npz (epoch 3), best.npz (epoch "
    )
    assert lines[-1].endswith("metrics.jsonl, tensorboard/, plots/")
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished" and record["ended"] >= record["started"]
    assert record["data"]["source"] == f"{data_dir} (--data-dir)"
    assert record["data"]["train"] == 50 and record["data"]["validation"] == 10
    assert record["argv"][:2] == ["jaxmlp", "train"] and str(run_dir) in record["argv"]
    assert record["backend"] == "cpu" and record["jax"] and record["jaxlib"]
    assert record["final"]["epochs"] == 3 and record["final"]["test"]["test_total"] == 20
    best = record["final"]["best_epoch"]
    assert load_checkpoint(run_dir / "best.npz").epoch == best["epoch"]
    assert load_checkpoint(run_dir / "last.npz").epoch == 3
    assert [r["event"] for r in metrics_of(run_dir / "metrics.jsonl")] == [
        "start",
        "epoch",
        "epoch",
        "epoch",
        "test",
    ]
    config = tomllib.loads((run_dir / "config.toml").read_text())
    assert config["data_dir"] == str(data_dir.resolve()) and config["epochs"] == 3
    assert {path.name for path in (run_dir / "plots").iterdir()} == {
        "learning_curves.png",
        "confusion_matrix.png",
        "first_layer_weights.png",
        "misclassified.png",
    }
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_nothing_is_replaced_without_overwrite(capsys, data_dir, tmp_path):
    run_dir, keep, log = tmp_path / "run", tmp_path / "keep.npz", tmp_path / "keep.jsonl"
    assert train(capsys, data_dir, "--epochs", 1, "--run-dir", run_dir)[0] == 0
    assert train(capsys, data_dir, "--epochs", 2, "--save", keep, "--metrics-out", log)[0] == 0
    before = keep.read_bytes(), log.read_text(), (run_dir / "run.json").read_text()
    again = "pass --overwrite to"
    for argv, message in [
        (("--run-dir", run_dir), f"--run-dir {run_dir} is not empty; {again} write into it"),
        (("--save", keep), f"--save {keep} already exists; {again} replace it"),
        (("--metrics-out", log), f"--metrics-out {log} already exists; {again} replace it"),
    ]:
        code, out, err = train(capsys, data_dir, "--epochs", 1, *argv)
        assert (code, out, err) == (2, "", f"jaxmlp: error: {message}\n")
    assert (keep.read_bytes(), log.read_text(), (run_dir / "run.json").read_text()) == before
    (run_dir / "notes.txt").write_text("mine")
    code, _, _ = train(capsys, data_dir, "--epochs", 2, "--run-dir", run_dir, "--overwrite")
    assert code == 0 and (run_dir / "notes.txt").read_text() == "mine"
    assert load_checkpoint(run_dir / "last.npz").epoch == 2
    assert [r["event"] for r in metrics_of(run_dir / "metrics.jsonl")].count("start") == 1


def test_resume_saves_back_where_it_came_from(capsys, data_dir, tmp_path):
    keep = tmp_path / "run.npz"
    assert train(capsys, data_dir, "--epochs", 2, "--save", keep)[0] == 0
    code, out, _ = train(capsys, data_dir, "--resume", keep, "--epochs", 4)
    assert code == 0 and "Epoch 3/4" in out and "Epoch 1/4" not in out
    assert out.splitlines()[-1] == f"wrote {keep} (epoch 4)"
    assert load_checkpoint(keep).epoch == 4
    code, out, _ = train(capsys, data_dir, "--resume", keep, "--epochs", 5)
    assert code == 0 and "Epoch 5/5" in out and "Epoch 3/5" not in out


@pytest.mark.slow
def test_resuming_a_run_directory_continues_its_files(capsys, data_dir, tmp_path):
    run_dir = tmp_path / "run"
    assert train(capsys, data_dir, "--epochs", 2, "--run-dir", run_dir)[0] == 0
    code, out, _ = main(["train", "--resume", str(run_dir), "--epochs", "3"]), *capsys.readouterr()
    assert code == 0 and "Epoch 3/3" in out
    best = load_checkpoint(run_dir / "best.npz").epoch
    assert out.splitlines()[-1].startswith(
        f"wrote {run_dir}: config.toml, run.json, last.npz (epoch 3), best.npz (epoch {best}, "
    )
    records = metrics_of(run_dir / "metrics.jsonl")
    assert [r["event"] for r in records] == ["start", "epoch", "epoch", "start", "epoch", "test"]
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [1, 2, 3]
    assert load_checkpoint(run_dir / "last.npz").epoch == 3
    assert tomllib.loads((run_dir / "config.toml").read_text())["epochs"] == 3
    assert json.loads((run_dir / "run.json").read_text())["final"]["epochs"] == 3


@pytest.mark.slow
def test_a_run_directory_config_reproduces_the_run_bit_for_bit(capsys, data_dir, tmp_path):
    first, again = tmp_path / "first", tmp_path / "again"
    argv = ("--epochs", 2, "--dropout", 0.1, "--optimizer", "momentum", "--augment-shift", 1)
    assert train(capsys, data_dir, *argv, "--run-dir", first)[0] == 0
    code = main(["train", "--config", str(first / "config.toml"), "--run-dir", str(again)])
    capsys.readouterr()
    assert code == 0
    assert (first / "config.toml").read_text() == (again / "config.toml").read_text()
    for name in ("last.npz", "best.npz"):
        a, b = arrays_of(first / name), arrays_of(again / name)
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)

    def without_time(records):
        return [{k: v for k, v in r.items() if k not in ("seconds", "started")} for r in records]

    assert without_time(metrics_of(first / "metrics.jsonl")) == without_time(
        metrics_of(again / "metrics.jsonl")
    )


def test_print_config_is_the_resolved_settings_with_flags_over_the_file(capsys, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('preset = "best"\nlr = 0.2\nepochs = 3\n')
    code = main(["train", "--config", str(config), "--epochs", "4", "--print-config"])
    out = capsys.readouterr().out
    assert code == 0
    (tmp_path / "printed.toml").write_text(out)
    printed = read_config(tmp_path / "printed.toml")
    expected = resolve_settings("best", explicit={"lr": 0.2, "epochs": 4})
    assert resolve_settings(explicit=printed.values) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr = 0.1\nlr_decay = 2\n", "unknown setting 'lr_decay'"),
        ("epochs = 0\n", "epochs must be in [1, 1000000], got 0"),
        ("epochs = \n", "is not valid TOML"),
    ],
)
def test_a_bad_config_file_is_one_line_exit_2(capsys, tmp_path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    code = main(["train", "--config", str(config)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and len(captured.err.splitlines()) == 1
    assert str(config) in captured.err and message in captured.err


@pytest.mark.slow
def test_early_stop_ends_a_run_that_stopped_improving(capsys, data_dir, tmp_path):
    run_dir = tmp_path / "run"
    code, out, _ = train(
        capsys, data_dir, "--epochs", 10, "--lr", 1e-12, "--early-stop", 2, "--run-dir", run_dir
    )
    assert code == 0
    assert "Epoch  3/10" in out and "Epoch  4/10" not in out
    assert "Stopping early: validation accuracy has not improved for 2 epochs (best " in out
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "stopped early" and record["final"]["epochs"] == 3
    assert load_checkpoint(run_dir / "best.npz").epoch == 1


def test_early_stop_needs_a_validation_split(capsys, data_dir):
    code = main(["train", "--data-dir", str(data_dir), "--val-size", "0", "--early-stop", "2"])
    assert code == 2 and "--val-size is 0" in capsys.readouterr().err


def test_json_prints_the_final_record_alone(capsys, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXMLP_DATA_DIR", str(data_dir))
    model, log = tmp_path / "m.npz", tmp_path / "m.jsonl"
    code = main(
        ["train", *TINY, "--epochs", "2", "--json", "--save", str(model), "--metrics-out", str(log)]
    )
    out, err = capsys.readouterr()
    assert code == 0
    record = json.loads(out)
    assert record["status"] == "finished" and record["final"]["epochs"] == 2
    assert record["final"]["test"]["event"] == "test"
    assert record["final"]["files"] == {"checkpoint": str(model), "metrics": str(log)}
    assert record["data"]["source"] == f"{data_dir} (JAXMLP_DATA_DIR)"
    assert record["settings"]["data_dir"] is None
    assert metrics_of(log)[0]["data"]["source"] == f"{data_dir} (JAXMLP_DATA_DIR)"
    assert err == f"wrote {model} (epoch 2), {log}\n"


def test_plain_train_writes_nothing_and_says_nothing_more(capsys, data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = train(capsys, data_dir, "--epochs", 1)
    assert code == 0 and err == "" and list(tmp_path.iterdir()) == []
    assert [line.split()[0] for line in out.splitlines()] == ["Training", "Epoch", "Test:"]


def test_ctrl_c_says_how_to_resume_and_the_record_says_interrupted(data_dir, tmp_path):
    run_dir = tmp_path / "run"

    def ctrl_c_after_epoch_2(line):
        if line.startswith("Epoch 2/"):
            raise KeyboardInterrupt

    explicit = {"data_dir": data_dir, "val_size": 10, "sizes": "784,8,10", "epochs": 4}
    with pytest.raises(TrainingInterrupted) as caught:
        runs.train_from_options(
            runs.RunOptions(explicit=explicit, run_dir=run_dir),
            echo=ctrl_c_after_epoch_2,
        )
    assert str(caught.value) == (
        f"interrupted after epoch 2; {run_dir / 'last.npz'} holds epoch 2; continue with: "
        f"jaxmlp train --resume {run_dir}"
    )
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted" and record["final"]["epochs"] == 2
    assert record["final"]["checkpoint_epoch"] == 2


@pytest.mark.slow
def test_run_dir_auto_names_a_new_directory_under_runs(capsys, data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = train(capsys, data_dir, "--epochs", 1, "--run-dir", "auto")
    [made] = list((tmp_path / "runs").iterdir())
    assert code == 0 and re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", made.name)
    assert out.splitlines()[-1].startswith(f"wrote runs/{made.name}: config.toml")
