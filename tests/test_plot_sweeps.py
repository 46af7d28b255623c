"""``jaxmlp plot`` of a sweep's metrics: every setting drawn, or one line saying why not."""

from __future__ import annotations

import json

import pytest
from data_fixtures import REAL_MNIST_DIR, needs_real_mnist

from jaxmlp import plots
from jaxmlp.cli import main

pytest.importorskip("matplotlib")


def sweep_records(lrs=(0.1, 0.5), seeds=(0, 1), epochs=3) -> list[dict]:
    """A sweep's metrics as 'jaxmlp sweep --metrics-out' writes them: each record names its
    member and the settings that vary, with the seed."""
    axes = {"lr": list(map(str, lrs))}
    records = [{"event": "start", "runs": len(lrs) * len(seeds), "axes": axes}]
    members = [(lr, seed) for lr in lrs for seed in seeds]

    def chosen(lr, seed):
        return {"lr": lr, "seed": seed} if len(lrs) > 1 else {"seed": seed}

    for epoch in range(1, epochs + 1):
        for member, (lr, seed) in enumerate(members):
            records.append(
                {
                    "event": "epoch",
                    "epoch": epoch,
                    "train_loss": 1.0,
                    "train_accuracy": 0.5,
                    "val_loss": 1.0,
                    "val_accuracy": 0.5 + epoch * lr / 10 + seed / 100,
                    "lr": lr,
                    "seconds": 0.1,
                    "member": member,
                    "settings": chosen(lr, seed),
                }
            )
    for member, (lr, seed) in enumerate(members):
        records.append(
            {
                "event": "test",
                "test_loss": 1.0,
                "test_accuracy": 0.5,
                "member": member,
                "settings": chosen(lr, seed),
            }
        )
    return records


def written(tmp_path, records) -> str:
    path = tmp_path / "sweep.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def run(capsys, *argv):
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_setting_is_a_row_of_its_seeds_best_first(tmp_path):
    path = written(tmp_path, sweep_records())
    rows, labels = plots.sweep_log_rows(plots.read_metrics_log(path), path)
    assert labels == ["lr 0.5", "lr 0.1"]
    assert [len(row) for row in rows] == [2, 2]
    assert [[len(history) for history in row] for row in rows] == [[3, 3], [3, 3]]
    assert {history[0]["settings"]["seed"] for history in rows[0]} == {0, 1}


def test_seeds_alone_make_one_row(tmp_path):
    path = written(tmp_path, sweep_records(lrs=(0.1,), seeds=(0, 1, 2)))
    rows, labels = plots.sweep_log_rows(plots.read_metrics_log(path), path)
    assert labels == ["all 3 runs"] and len(rows[0]) == 3


def test_plot_draws_every_setting_of_a_sweep(capsys, tmp_path, monkeypatch):
    path = written(tmp_path, sweep_records(lrs=(0.05, 0.1, 0.5)))
    drawn = []
    original = plots.save_sweep_curves
    monkeypatch.setattr(
        plots,
        "save_sweep_curves",
        lambda rows, labels, out: drawn.append((rows, labels)) or original(rows, labels, out),
    )
    code, out, err = run(capsys, "plot", path, "--out-dir", tmp_path / "plots")
    assert (code, err) == (0, "")
    assert out == f"wrote {tmp_path / 'plots' / 'sweep_curves.png'}\n"
    assert (tmp_path / "plots" / "sweep_curves.png").read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "plots" / "learning_curves.png").exists()
    [(rows, labels)] = drawn
    assert sorted(labels) == ["lr 0.05", "lr 0.1", "lr 0.5"]
    assert sum(len(row) for row in rows) == 6


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("settings", None), "needs a whole-number 'member' and its 'settings'"),
        (lambda r: r.update(val_accuracy=None), "has no validation accuracy to plot"),
    ],
)
def test_a_sweep_that_cannot_be_drawn_whole_is_refused(capsys, tmp_path, change, message):
    records = sweep_records()
    change(records[3])
    path = written(tmp_path, records)
    code, out, err = run(capsys, "plot", path, "--out-dir", tmp_path / "plots")
    assert code == 1 and out == "" and len(err.splitlines()) == 1
    assert err.startswith(f"jaxmlp: error: {path}: ") and message in err
    assert not (tmp_path / "plots").exists()


def test_more_settings_than_a_figure_shows_are_refused(capsys, tmp_path):
    path = written(tmp_path, sweep_records(lrs=tuple(0.01 * k for k in range(1, 12)), seeds=(0,)))
    code, _, err = run(capsys, "plot", path, "--out-dir", tmp_path / "plots")
    assert code == 1
    assert err == (
        f"jaxmlp: error: {path} holds 11 settings; one plot draws at most 10 (the sweep's own "
        "--out-dir draws its 10 best)\n"
    )


@pytest.mark.slow
@needs_real_mnist
def test_plot_of_a_real_sweeps_metrics_draws_its_four_members(capsys, tmp_path, monkeypatch):
    metrics = tmp_path / "sweep.jsonl"
    code, _, _ = run(
        capsys,
        "sweep",
        "--limit",
        300,
        "--epochs",
        2,
        "--lr",
        "0.1,0.5",
        "--seed",
        "0,1",
        "--val-size",
        100,
        "--data-dir",
        REAL_MNIST_DIR,
        "--metrics-out",
        metrics,
        "-q",
    )
    assert code == 0
    drawn = []
    monkeypatch.setattr(plots, "save_sweep_curves", lambda *args: drawn.append(args) or args[2])
    code, out, _ = run(capsys, "plot", metrics, "--out-dir", tmp_path / "sp")
    assert code == 0 and out == f"wrote {tmp_path / 'sp' / 'sweep_curves.png'}\n"
    [(rows, labels, _)] = drawn
    assert sorted(labels) == ["lr 0.1", "lr 0.5"] and [len(row) for row in rows] == [2, 2]
