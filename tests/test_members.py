"""One trainer over R members: a solo run is what it was; a member is its solo run."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import blobs_dataset

from jaxmlp import evaluation, train
from jaxmlp.data import Dataset
from jaxmlp.errors import ConfigError
from jaxmlp.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
SOLO_REFERENCE = json.loads((FIXTURES / "solo_reference.json").read_text())
"""Checksums of SGD solo runs on ``blobs_dataset(num_train=200)`` made by the trainer before
populations and solo runs became one (commit b1a7b63): sha256 over the bytes of every leaf.
Runs with momentum, Adam or AdamW moved in the last bits on purpose (their sums are now
written so that a member computes them as its solo run does: see :mod:`jaxmlp.optim`)."""


def digest(tree) -> str:
    """sha256 over the bytes of every leaf, in tree order."""
    sha = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        sha.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return sha.hexdigest()


@pytest.mark.parametrize("name", sorted(SOLO_REFERENCE))
def test_a_solo_run_is_bit_for_bit_the_old_trainers(name):
    reference = SOLO_REFERENCE[name]
    trainer = train.prepare(Settings(**reference["settings"]), blobs_dataset(num_train=200))
    result = train.fit(trainer)
    assert digest(result.params) == reference["params_sha256"]
    assert digest(result.opt_state) == reference["opt_state_sha256"]
    assert [record["train_loss"] for record in result.history] == reference["train_loss"]
    assert result.test == reference["test"]


def mnist_like(num_train=120, num_val=30, num_test=40, name="mnist") -> Dataset:
    """A dataset named like a real one, of 784-pixel random images."""
    rng = np.random.default_rng(0)

    def split(n):
        from jaxmlp.data import Split

        images = rng.uniform(size=(n, 784)).astype(np.float32)
        return Split(images, rng.integers(0, 10, n).astype(np.int32))

    return Dataset(
        name,
        split(num_train),
        split(num_val),
        split(num_test),
        "generated",
        tuple(str(c) for c in range(10)),
    )


def test_prepare_refuses_a_dataset_the_settings_do_not_name():
    settings = Settings(dataset="fashion-mnist", val_size=30, epochs=1)
    problem = "dataset is fashion-mnist but the dataset given is mnist"
    with pytest.raises(ConfigError, match=problem):
        train.prepare(settings, mnist_like())


def test_prepare_refuses_a_validation_split_the_settings_do_not_ask_for():
    problem = "val_size is 10000 but the mnist dataset given validates on 30 examples"
    with pytest.raises(ConfigError, match=problem):
        train.prepare(Settings(epochs=1), mnist_like())


def test_prepare_honours_the_settings_limit():
    trainer = train.prepare(Settings(val_size=30, limit=25, epochs=1), mnist_like())
    assert {name: int(x.shape[0]) for name, (x, _) in trainer.data.items()} == {
        "train": 25,
        "validation": 25,
        "test": 25,
        "divergence": 25,
    }


BASE = {"sizes": (16, 12, 3), "init": "he", "epochs": 2, "batch_size": 16}
CASES = {
    "sgd": {"optimizer": "sgd"},
    "sgd l2": {"optimizer": "sgd", "weight_decay": 1e-3},
    "momentum": {"optimizer": "momentum"},
    "momentum dropout": {"optimizer": "momentum", "dropout": 0.2, "input_dropout": 0.1},
    "adam cosine warm-up": {
        "optimizer": "adam",
        "lr": 0.01,
        "schedule": "cosine",
        "warmup_epochs": 0.5,
    },
    "adam smoothing": {"optimizer": "adam", "lr": 0.01, "label_smoothing": 0.1},
    "adamw linear warm-up": {
        "optimizer": "adamw",
        "lr": 0.01,
        "schedule": "linear",
        "warmup_epochs": 1.0,
        "weight_decay": 1e-2,
    },
    "sgd augmented": {
        "optimizer": "sgd",
        "augment_shift": 1,
        "augment_flip": True,
        "augment_erase": 0.5,
    },
}
"""Program settings of each case; its members differ in seed and per-run values."""
MEMBER_VALUES = [
    {"seed": 0},
    {"seed": 1, "lr_scale": 2.0, "momentum": 0.5},
    {"seed": 2, "lr_scale": 0.5},
]
FAST = {("momentum", 200, "manual"), ("adam cosine warm-up", 200, "manual")}
"""The issue's case (momentum, ragged last batch) and Adam's run in the fast suite."""


def case_members(case: str, grad: str, count: int = 3) -> list[Settings]:
    """``count`` members of one program: other seeds, learning rates, momentum."""
    settings = {**BASE, "lr": 0.05, **CASES[case], "grad": grad}
    members = []
    for index in range(count):
        values = {**MEMBER_VALUES[index % len(MEMBER_VALUES)], "seed": index}
        lr = settings["lr"] * values.pop("lr_scale", 1.0)
        members.append(Settings(**{**settings, **values, "lr": lr}))
    return members


def without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def records(history, fields=None):
    """The records without their seconds, or only their ``fields``."""
    if fields is None:
        return without_seconds(history)
    return [{k: record[k] for k in fields} for record in history]


def check_members_are_solo_runs(members, dataset, layout=None, fields=None) -> None:
    """Trains ``members`` as one population and each alone (one device), epoch by epoch;
    asserts equal states (every bit) and records (``fields`` of them, or all) after every
    epoch."""
    population = train.prepare(members, dataset, layout=layout)
    solos = [train.prepare(member, dataset) for member in members]
    together = population.start()
    alone = [solo.start() for solo in solos]
    for _ in range(members[0].epochs):
        together = population.train_epoch(together)
        alone = [solo.train_epoch(progress) for solo, progress in zip(solos, alone)]
        for index, progress in enumerate(alone):
            member = population.member_state(together.state, index)
            for name, a, b in zip(("params", "opt_state"), member, progress.state):
                for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
                    np.testing.assert_array_equal(
                        x, np.asarray(y)[0], f"member {index} {name}, epoch {together.epoch}"
                    )
            assert records(together.histories[index], fields) == records(
                progress.histories[0], fields
            )


@pytest.mark.parametrize(
    "case, num_train, grad",
    [
        pytest.param(
            case,
            num_train,
            grad,
            marks=() if (case, num_train, grad) in FAST else pytest.mark.slow,
            id=f"{case}-{'ragged' if num_train % 16 else 'whole'}-{grad}",
        )
        for case in CASES
        for num_train in (200, 208)
        for grad in ("manual", "autodiff")
    ],
)
def test_a_member_is_its_solo_run_bit_for_bit_after_every_epoch(case, num_train, grad):
    """200 examples leave a ragged last batch of 8; 208 do not."""
    check_members_are_solo_runs(case_members(case, grad), blobs_dataset(num_train=num_train))


TRAINING_FIELDS = ("epoch", "train_loss", "train_accuracy", "lr", "val_accuracy")
"""The records a population of more than a chunk shares with its solo runs."""


def test_members_beyond_one_chunk_train_as_their_solo_runs_bit_for_bit():
    """17 members: two chunks of 9 inside one ``lax.map``, one row of them a padding copy of
    member 0 whose results are dropped; every real member trains as its solo run. (Only
    the training records: the validation loss of a population evaluated side by side moves
    in its last bits from about 9 members on, with or without training's chunks.)"""
    count = train.MEMBER_CHUNK + 1
    assert evaluation.equal_chunks(count, train.MEMBER_CHUNK) == (2, 9)
    members = case_members("momentum", "manual", count)
    check_members_are_solo_runs(members, blobs_dataset(num_train=200), fields=TRAINING_FIELDS)


def on_four_cpu_devices(probe: str, timeout: int) -> subprocess.CompletedProcess:
    """Runs the Python source ``probe`` from the repository root in a process that sees 4 CPU
    devices; fails the test, with its standard error, unless it exits 0."""
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "4", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


MEMBERS_BY_DATA = """
import json, re, sys
sys.path.insert(0, "tests")
import jax, numpy as np
from helpers import blobs_dataset
from jaxmlp import parallel, train
from jaxmlp.settings import Settings
GROUPS = r"all-reduce[^\\n]*replica_groups=(\\[[^=]*\\]<=\\[\\d+\\])"
dataset = blobs_dataset(num_train=200)
members = [Settings(sizes=(16, 12, 3), init="he", epochs=2, batch_size=16, lr=lr, seed=seed,
                    optimizer="momentum") for lr, seed in [(0.05, 0), (0.1, 1)]]
layout = parallel.device_layout("all", len(members))
trainer = train.prepare(members, dataset, layout=layout)
spread = train.fit(trainer)
alone = train.fit(train.prepare(members, dataset))
compiled = trainer.run_epoch.lower(spread.progress.state, trainer.values, *trainer.data["train"],
                                   trainer.epoch_keys(0)).compile().as_text()
print(json.dumps({
    "mesh": dict(layout.mesh.shape),
    "difference": max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in
                      zip(jax.tree.leaves(spread.progress.state),
                          jax.tree.leaves(alone.progress.state))),
    "groups": sorted(set(re.findall(GROUPS, compiled))),
    "same_records": [[r["val_correct"] for r in h] for h in spread.progress.histories]
                    == [[r["val_correct"] for r in h] for h in alone.progress.histories],
}))
"""


@pytest.mark.slow
def test_two_members_on_four_devices_split_members_then_batches():
    """2 members × 2-way data parallel: each member's gradients are summed over its own two
    devices only (all-reduce groups {0,1} and {2,3}), and each member trains as on one
    device up to the data-parallel rounding (the batch sums are added in another order)."""
    done = on_four_cpu_devices(MEMBERS_BY_DATA, timeout=300)
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["mesh"] == {"members": 2, "data": 2}
    assert report["groups"] == ["[2,2]<=[4]"]
    assert report["difference"] <= 1e-5 and report["same_records"]


FOUR_DEVICE_CASES = [
    ("momentum", "manual"),
    ("adam cosine warm-up", "manual"),
    ("momentum dropout", "autodiff"),
    ("sgd augmented", "manual"),
]

ON_FOUR_DEVICES = """
import sys
sys.path.insert(0, "tests")
from helpers import blobs_dataset
from jaxmlp import parallel
from test_members import case_members, check_members_are_solo_runs
case, grad = {case!r}, {grad!r}
for count in (4, 8):
    members = case_members(case, grad, count)
    layout = parallel.device_layout("all", count)
    assert layout.members == 4 and layout.data == 1
    check_members_are_solo_runs(members, blobs_dataset(num_train=200), layout)
    print(case, grad, count, "members on 4 devices: each its solo run on one device")
"""


PADDED_ON_FOUR_DEVICES = """
import sys
sys.path.insert(0, "tests")
from helpers import blobs_dataset
from jaxmlp import parallel, train
from test_members import TRAINING_FIELDS, case_members, check_members_are_solo_runs
count = 4 * (train.MEMBER_CHUNK + 1)
members = case_members("momentum", "manual", count)
layout = parallel.device_layout("all", count)
assert layout.members == 4 and layout.data == 1
check_members_are_solo_runs(members, blobs_dataset(num_train=200), layout, TRAINING_FIELDS)
print(count, "members on 4 devices, two padded chunks on each: each its solo run on one")
"""


@pytest.mark.slow
def test_padded_chunks_on_each_device_train_as_the_solo_runs():
    """68 members on 4 devices: 17 on each, two chunks of 9 there (``shard_map``), one row
    of padding per device; every member trains as its solo run on one device."""
    done = on_four_cpu_devices(PADDED_ON_FOUR_DEVICES, timeout=600)
    assert "68 members on 4 devices" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("case, grad", FOUR_DEVICE_CASES)
def test_members_spread_over_four_devices_are_their_solo_runs_on_one(case, grad):
    """4 members (one per device) and 8 (two per device), ragged last batch; a process per
    case, so that the suite's workers share the cases."""
    done = on_four_cpu_devices(ON_FOUR_DEVICES.format(case=case, grad=grad), timeout=600)
    assert done.stdout.count("each its solo run") == 2


@pytest.mark.parametrize("optimizer", ["momentum", "adamw"])
def test_a_checkpoint_of_the_old_trainer_loads_and_resumes(optimizer):
    """Saved by ``jaxmlp train --sizes 784,2,10 --epochs 1 --limit 200 --val-size 100
    --batch-size 50 --lr 0.01 --weight-decay 0.001 --optimizer OPT`` at commit b1a7b63: the
    optimizer states keep their structure, so the new trainer continues them."""
    from jaxmlp.checkpoint import load_checkpoint

    saved = load_checkpoint(FIXTURES / f"old_{optimizer}_checkpoint.npz")
    assert saved.settings.optimizer == optimizer and saved.epoch == 1
    settings = saved.settings.replace(epochs=2, data_dir=None)
    trainer = train.prepare(settings, mnist_like(num_train=200, num_val=100, num_test=50))
    state = trainer.restored_state(saved.params, saved.opt_state_leaves)
    result = train.fit(trainer, trainer.start(state, epoch=1, histories=[saved.metrics]))
    assert [record["epoch"] for record in result.history] == [1, 2]
    assert jax.tree.structure(result.opt_state) == jax.tree.structure(trainer.tx.init(saved.params))
