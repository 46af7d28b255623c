"""``jaxmlp sweep --search``: bad arguments, and each method end to end on a slice of MNIST."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from data_fixtures import REAL_MNIST_DIR, needs_real_mnist

from jaxmlp import search_loop
from jaxmlp.checkpoint import load_checkpoint
from jaxmlp.cli import main, startup

LR = ["--lr", "1e-3..1:log"]


@pytest.fixture(autouse=True)
def one_cpu_device(monkeypatch):
    """The sweeps run in this process, on the suite's one CPU device: JAX may already be
    running here, when a sweep's one-device-per-core start-up can no longer apply."""
    monkeypatch.setattr(startup, "POPULATION_COMMANDS", frozenset())


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--search", "beam"], "Invalid value for '--search'"),
        (["--search", "halving", "--eta", "1"], "--eta must be at least 2, got 1"),
        (
            ["--search", "halving", "--epochs", "18", "--rungs", "6,2"],
            "--rungs must be strictly increasing, got 6,2",
        ),
        (
            ["--search", "halving", "--epochs", "5", "--rungs", "2,5"],
            "--rungs must lie from epoch 1 to below --epochs 5",
        ),
        (
            ["--search", "pbt", *LR, "--runs", "4", "--truncation", "0.6"],
            "--truncation must be in (0, 0.5], got 0.6",
        ),
        (
            ["--search", "pbt", *LR, "--runs", "4", "--truncation", "0"],
            "--truncation must be in (0, 0.5], got 0",
        ),
        (
            ["--search", "random", "--lr", "0.3..0.1", "--runs", "4"],
            "--lr has the range '0.3..0.1', whose minimum is not below its maximum",
        ),
        (
            ["--search", "random", "--weight-decay", "0..0.1:log", "--runs", "4"],
            "--weight-decay has the log range '0..0.1:log', which must lie above 0",
        ),
        (
            ["--search", "random", "--dropout", "0..1", "--runs", "4"],
            "--dropout must be in [0, 1), got 1",
        ),
        (["--search", "random", "--lr", "1e-3..x", "--runs", "4"], "--lr has 'x' in '1e-3..x'"),
        (["--search", "random", *LR], "--runs is needed with a distribution"),
        (["--search", "random"], "--search random needs a setting given as a distribution"),
        ([*LR, "--runs", "4"], "--lr: a distribution needs --search random, halving or pbt"),
        (["--eta", "3"], "--eta applies only to --search halving"),
        (["--search", "halving", "--ready", "2"], "--ready applies only to --search pbt"),
        (
            ["--search", "pbt", *LR, "--runs", "4", "--batch-size", "16,32"],
            "--search pbt trains one population: batch_size must have one value",
        ),
        (
            ["--search", "pbt", *LR, "--runs", "4", "--perturb", "0.8,0"],
            "--perturb must be positive factors, got 0.8,0",
        ),
    ],
)
def test_bad_search_arguments_stop_with_one_line_and_exit_2(capsys, argv, message):
    assert main(["sweep", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err, err


COMMON = [
    "--data-dir",
    str(REAL_MNIST_DIR),
    "--limit",
    "1000",
    "--sizes",
    "784,30,10",
    "--batch-size",
    "50",
    "--optimizer",
    "momentum",
    "--init",
    "he",
]


def without_times(records):
    """Metrics records without what the clock decides."""
    return [
        {key: value for key, value in record.items() if key not in ("seconds", "started")}
        for record in records
    ]


def sweep_twice(capsys, tmp_path, argv):
    """Runs the same command twice; returns both JSON reports, metrics records and best
    checkpoints (whose parameters it checks are the same bits)."""
    outputs = []
    for attempt in ("a", "b"):
        metrics, best = tmp_path / f"{attempt}.jsonl", tmp_path / f"{attempt}.npz"
        command = [
            "sweep",
            *COMMON,
            *argv,
            "--json",
            "--metrics-out",
            str(metrics),
            "--save-best",
            str(best),
        ]
        assert main(command) == 0
        report = json.loads(capsys.readouterr().out)
        records = [json.loads(line) for line in metrics.read_text().splitlines()]
        outputs.append((report, without_times(records), best))
    first, second = (load_checkpoint(best) for _, _, best in outputs)
    assert all(np.array_equal(a, b) for a, b in zip(leaves(first.params), leaves(second.params)))
    return outputs


def leaves(tree):
    return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]


@pytest.mark.slow
@needs_real_mnist
def test_halving_end_to_end_reports_its_rungs_and_repeats_bit_for_bit(capsys, tmp_path):
    argv = [
        "--search",
        "halving",
        *LR,
        "--runs",
        "6",
        "--epochs",
        "3",
        "--eta",
        "2",
        "--rungs",
        "1,2",
        "--search-seed",
        "5",
    ]
    (report, records, best), (again, records_again, _) = sweep_twice(capsys, tmp_path, argv)
    assert records == records_again
    assert report["rows"] == again["rows"] and report["search"] == again["search"]
    found = report["search"]
    assert found["network_epochs"] == 6 + 3 + 2 and sorted(found["epochs"]) == [1, 1, 1, 2, 3, 3]
    rungs = [record for record in records if record["event"] == "rung"]
    assert rungs == found["events"] and [r["epoch"] for r in rungs] == [1, 2]
    assert len(rungs[0]["survivors"]) == 3 and rungs[1]["survivors"] != rungs[0]["survivors"]
    epochs = [record for record in records if record["event"] == "epoch"]
    assert len(epochs) == 11
    saved = load_checkpoint(best)
    best_val = report["rows"][0]["val_accuracy"]["max"]
    assert saved.epoch == 3 and saved.metrics[-1]["val_accuracy"] == best_val


@pytest.mark.slow
@needs_real_mnist
def test_pbt_end_to_end_carries_lineage_and_saves_an_ordinary_checkpoint(capsys, tmp_path):
    argv = [
        "--search",
        "pbt",
        *LR,
        "--dropout",
        "0..0.3",
        "--runs",
        "4",
        "--epochs",
        "3",
        "--truncation",
        "0.25",
        "--search-seed",
        "2",
    ]
    (report, records, best), (again, records_again, _) = sweep_twice(capsys, tmp_path, argv)
    assert records == records_again and report["rows"] == again["rows"]
    found = report["search"]
    copies = [
        {key: value for key, value in record.items() if key != "settings"}
        for record in records
        if record["event"] == "exploit"
    ]
    assert len(copies) == 2, "after epochs 1 and 2, the bottom quarter (one of four) copies"
    assert copies == [copy for event in found["events"] for copy in event["copies"]]
    epochs = [record for record in records if record["event"] == "epoch"]
    assert all(set(record["values"]) == {"lr", "dropout"} for record in epochs)
    winner = found["best_member"]
    schedule = found["schedules"][str(winner)]
    saved = load_checkpoint(best)
    assert [record["values"] for record in saved.metrics] == schedule
    assert (saved.settings.lr, saved.settings.dropout) == tuple(schedule[-1].values())
    assert main(["train", "--resume", str(best), "--epochs", "4", "--limit", "1000", "-q"]) == 0


@pytest.mark.slow
@needs_real_mnist
def test_ctrl_c_prints_the_table_so_far_and_exits_130(capsys, monkeypatch):
    real_train_epoch = search_loop.train_epoch

    def ctrl_c_in_epoch_3(running, outcome):
        if running.progress.epoch == 2:
            raise KeyboardInterrupt
        return real_train_epoch(running, outcome)

    monkeypatch.setattr(search_loop, "train_epoch", ctrl_c_in_epoch_3)
    argv = [
        "sweep",
        *COMMON,
        "--search",
        "halving",
        *LR,
        "--runs",
        "4",
        "--epochs",
        "4",
        "--eta",
        "2",
        "--rungs",
        "1",
    ]
    assert main(argv) == 130
    captured = capsys.readouterr()
    assert "rung at epoch 1: 2 of 4 go on" in captured.out
    lines = captured.out.splitlines()
    header = next(i for i, line in enumerate(lines) if "val mean ± sd" in line)
    assert lines[header].split()[-2:] == ["epochs", "runs"]
    trained = sorted(line.split()[-2] for line in lines[header + 2 : header + 6])
    assert trained == ["1", "1", "2", "2"], "the stopped and the running members, so far"
    assert captured.err.strip() == "jaxmlp: error: interrupted after epoch 2"
