"""Populations and sweeps: a member is its solo run; divergence is per member; the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from data_fixtures import REAL_MNIST_DIR, needs_real_mnist
from helpers import blobs_dataset

from jaxmlp import evaluation, sweep, train
from jaxmlp.checkpoint import load_checkpoint
from jaxmlp.cli import main
from jaxmlp.errors import ConfigError, DivergenceError, TrainingInterrupted
from jaxmlp.settings import Settings


def small(**changes) -> Settings:
    values = {"sizes": (16, 12, 3), "init": "he", "epochs": 2, "batch_size": 16, "lr": 0.1}
    return Settings(**{**values, **changes})


@pytest.mark.parametrize(
    "rows, most, chunks",
    [(10, 16, (1, 10)), (16, 16, (1, 16)), (17, 16, (2, 9)), (32, 16, (2, 16)), (100, 16, (7, 15))],
)
def test_equal_chunks_are_the_fewest_and_pad_less_than_one_row_each(rows, most, chunks):
    count, size = evaluation.equal_chunks(rows, most)
    assert (count, size) == chunks
    assert size <= most and 0 <= count * size - rows < count


@pytest.mark.parametrize("rows", [5, 16, 17, 40])
def test_map_in_chunks_traces_one_chunk_shape_and_drops_the_padding(rows):
    """The function is traced once, on chunks of one size; each row's output is the row's."""
    seen = []

    def double(chunk):
        seen.append((chunk[0].shape, chunk[1].shape))
        return {"twice": 2 * chunk[0], "sums": jnp.sum(chunk[1], axis=1)}

    x = jnp.arange(rows, dtype=jnp.float32)
    y = jnp.arange(3 * rows, dtype=jnp.float32).reshape(rows, 3)
    out = jax.jit(lambda x, y: evaluation.map_in_chunks(double, (x, y), 16))(x, y)
    size = evaluation.equal_chunks(rows, 16)[1]
    assert seen == [((size,), (size, 3))]
    np.testing.assert_array_equal(out["twice"], 2 * np.arange(rows))
    np.testing.assert_array_equal(out["sums"], np.asarray(y).sum(axis=1))


def test_members_of_different_programs_are_refused():
    with pytest.raises(ConfigError, match="batch_size must be the same"):
        train.prepare([small(), small(batch_size=8)], blobs_dataset())


def test_a_diverging_member_is_frozen_and_the_others_do_not_notice():
    dataset = blobs_dataset(num_train=200)
    calm = [small(seed=0), small(seed=1)]
    trainer = train.prepare([*calm, small(seed=2, lr=1e30)], dataset)
    initial = trainer.initial_state()
    with_bad = train.fit(trainer, initial)
    with_good = train.fit(train.prepare([*calm, small(seed=2)], dataset))
    assert with_bad.progress.diverged == [None, None, 1]
    assert with_good.progress.diverged == [None, None, None]
    for index in range(2):
        for a, b in zip(
            jax.tree.leaves(with_bad.progress.state.params),
            jax.tree.leaves(with_good.progress.state.params),
        ):
            np.testing.assert_array_equal(np.asarray(a)[index], np.asarray(b)[index])
        assert with_bad.tests[index] == with_good.tests[index]
    for frozen, start in zip(jax.tree.leaves(with_bad.progress.state), jax.tree.leaves(initial)):
        np.testing.assert_array_equal(np.asarray(frozen)[2], np.asarray(start)[2])
    assert with_bad.progress.histories[2] == []


def test_when_every_member_diverges_the_fit_ends_with_its_progress():
    trainer = train.prepare([small(seed=0, lr=1e30), small(seed=1, lr=1e30)], blobs_dataset())
    problem = "every one of the 2 runs diverged by epoch 1"
    with pytest.raises(DivergenceError, match=problem) as error:
        train.fit(trainer)
    assert error.value.progress.diverged == [1, 1] and error.value.progress.epoch == 1


def test_ctrl_c_raises_with_the_complete_epochs(monkeypatch):
    trainer = train.prepare([small(seed=0), small(seed=1)], blobs_dataset())

    def interrupt(progress):
        if progress.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="after epoch 1") as error:
        train.fit(trainer, on_epoch=interrupt)
    assert [len(history) for history in error.value.progress.histories] == [1, 1]


def test_epoch_by_epoch_with_members_copied_between_epochs():
    """What a search does: train one epoch, keep the better member twice, go on."""
    dataset = blobs_dataset(num_train=200)
    trainer = train.prepare([small(seed=0, lr=0.01), small(seed=1, lr=0.2)], dataset)
    progress = trainer.train_epoch(trainer.start())
    best = int(np.argmax([history[-1]["val_accuracy"] for history in progress.histories]))
    chosen = trainer.subset([best, best])
    progress = chosen.train_epoch(progress.take([best, best]))
    assert progress.epoch == 2 and [len(h) for h in progress.histories] == [2, 2]
    assert chosen.members == (trainer.members[best],) * 2
    assert progress.histories[0] == progress.histories[1]
    for leaf in jax.tree.leaves(progress.state):
        np.testing.assert_array_equal(np.asarray(leaf)[0], np.asarray(leaf)[1])


@pytest.mark.parametrize(
    "name, text, values",
    [
        ("lr", "0.1, 0.5", [0.1, 0.5]),
        ("seed", "0-3,7", [0, 1, 2, 3, 7]),
        ("sizes", "784,15,10;784,30,10", [(784, 15, 10), (784, 30, 10)]),
        ("optimizer", "sgd,adam", ["sgd", "adam"]),
    ],
)
def test_grid_axes_parse(name, text, values):
    assert sweep.parse_axis(name, text) == values


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lr", "0.1,"], "--lr has an empty value in '0.1,'"),
        (["--seed", "0-x"], "--seed has '0-x', not a range such as 0-4"),
        (["--seed", "4-1"], "--seed has the empty range '4-1'"),
        (["--dropout", "0,0.2,0"], "--dropout lists 0.0 more than once"),
        (["--lr", "0.1,fast"], "--lr has 'fast', which is not a number"),
        (["--lr", "0.1,-1"], "--lr must be positive, got -1"),
        (["--optimizer", "sgd,rmsprop"], "--optimizer must be one of sgd, momentum, adam, adamw"),
        (["--val-size", "0"], "--val-size must be above 0"),
        (["--sizes", "784,100000000,10", "--seed", "0-9"], "needs about"),
    ],
)
def test_bad_grids_stop_before_training_with_one_line(capsys, argv, message):
    assert main(["sweep", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err


def test_the_grid_is_the_product_grouped_by_program():
    members = sweep.expand_grid(
        "seed", {"lr": [0.1, 0.5], "seed": [0, 1, 2], "batch_size": [10, 20]}
    )
    assert len(members) == 12
    groups = sweep.group_by_program(members)
    assert [len(group) for group in groups] == [6, 6]
    assert {members[i].batch_size for i in groups[0]} == {10}


def test_rows_summarise_seeds_and_rank_by_validation():
    members = [Settings(lr=lr, seed=seed) for lr in (0.1, 0.5) for seed in (0, 1)]
    results = [
        sweep.MemberResult(0, 0.90, 0.89, None),
        sweep.MemberResult(1, 0.92, 0.91, None),
        sweep.MemberResult(0, 0.95, 0.94, None),
        sweep.MemberResult(1, 0.10, 0.10, 3),
    ]
    rows = sweep.make_rows(members, results)
    assert [row.settings.lr for row in rows] == [0.5, 0.1]
    best = rows[0].to_dict()
    assert best["val_accuracy"] == {"mean": 0.95, "sd": None, "min": 0.95, "max": 0.95}
    assert best["members"][1]["diverged"] == 3
    assert rows[1].to_dict()["val_accuracy"]["sd"] == pytest.approx(np.std([0.90, 0.92], ddof=1))
    table = sweep.format_table(rows, ["lr"])
    assert table.splitlines()[2].split()[0] == "0.5" and "(1 diverged)" in table


@pytest.mark.slow
@needs_real_mnist
def test_sweep_end_to_end(capsys, tmp_path):
    best, metrics = tmp_path / "best.npz", tmp_path / "m.jsonl"
    argv = [
        "sweep",
        "--data-dir",
        str(REAL_MNIST_DIR),
        "--limit",
        "1000",
        "--epochs",
        "2",
        "--lr",
        "0.1,0.5",
        "--seed",
        "0-2",
        "--json",
        "--save-best",
        str(best),
        "--metrics-out",
        str(metrics),
    ]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["runs"] == 6 and report["programs"] == 1 and len(report["rows"]) == 2
    row = report["rows"][0]
    assert set(row) == {"settings", "val_accuracy", "test_accuracy", "members"}
    assert [m["seed"] for m in row["members"]] == [0, 1, 2]
    assert row["val_accuracy"]["mean"] >= report["rows"][1]["val_accuracy"]["mean"]
    saved = load_checkpoint(best)
    assert saved.epoch == 2 and saved.settings.lr == row["settings"]["lr"]
    assert saved.metrics[-1]["val_accuracy"] == max(m["val_accuracy"] for m in row["members"])
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert records[0]["event"] == "start" and records[0]["runs"] == 6
    epochs = [r for r in records if r["event"] == "epoch"]
    assert len(epochs) == 12 and set(epochs[0]["settings"]) == {"lr", "seed"}
    assert main(["train", "--resume", str(best), "--epochs", "3", "--limit", "1000", "-q"]) == 0


@pytest.mark.slow
@needs_real_mnist
def test_a_sweep_member_equals_jaxmlp_train(capsys):
    """Seed config on the first 5,000 examples, lr 0.5 (chaotic): counts printed both ways."""
    common = ["--data-dir", str(REAL_MNIST_DIR), "--limit", "5000", "--epochs", "3", "--lr", "0.5"]
    assert main(["sweep", *common, "--seed", "0-2", "--json"]) == 0
    members = json.loads(capsys.readouterr().out)["rows"][0]["members"]
    counts = []
    for member in members:
        assert main(["train", *common, "--seed", str(member["seed"]), "-q"]) == 0
        solo = capsys.readouterr().out.split()[1]
        counts.append((member["seed"], f"{round(member['test_accuracy'] * 5000)}/5000", solo))
    with capsys.disabled():
        for seed, swept, alone in counts:
            print(f"\nseed {seed}: test {swept} in the sweep, {alone} by jaxmlp train")
    assert all(swept == alone for _, swept, alone in counts)


@pytest.mark.slow
@needs_real_mnist
def test_members_spread_over_four_devices_give_the_one_device_results(tmp_path):
    argv = [
        sys.executable,
        "-m",
        "jaxmlp",
        "sweep",
        "--data-dir",
        str(REAL_MNIST_DIR),
        "--limit",
        "500",
        "--epochs",
        "1",
        "--seed",
        "0-4",
        "--json",
    ]
    reports = {}
    for devices in ("all", "1"):
        env = {**os.environ, "JAX_NUM_CPU_DEVICES": "4"}
        done = subprocess.run(
            [*argv, "--devices", devices], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 0, done.stderr
        reports[devices] = json.loads(done.stdout)
    assert reports["all"]["devices"] == 4 and reports["1"]["devices"] == 1
    for spread, alone in zip(reports["all"]["rows"], reports["1"]["rows"], strict=True):
        assert spread["members"] == alone["members"]
        assert spread["val_accuracy"] == alone["val_accuracy"]


def test_ctrl_c_ends_a_sweep_with_the_members_complete_epochs():
    def interrupt(number, programs, group, progress):
        raise KeyboardInterrupt

    members = [small(seed=0), small(seed=1)]
    with pytest.raises(TrainingInterrupted, match="after epoch 1 of program 1/1") as error:
        sweep.run_sweep(members, blobs_dataset(num_train=200), on_epoch=interrupt)
    results = error.value.progress.results
    assert [result.seed for result in results] == [0, 1]
    assert all(
        result.val_accuracy is not None and result.test_accuracy is None for result in results
    )
