"""Checkpoints are checked whole before use; a resume cannot change the program."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxmlp import checkpoint as checkpoints
from jaxmlp import runs
from jaxmlp.cli import main
from jaxmlp.errors import CheckpointError, ConfigError
from jaxmlp.model import init_params
from jaxmlp.optim import make_optimizer
from jaxmlp.settings import Settings

SETTINGS = Settings(sizes=(784, 6, 10), optimizer="momentum", epochs=2)


def saved(path: Path, settings: Settings = SETTINGS) -> Path:
    """A valid checkpoint of ``settings`` after one epoch, with its optimizer state."""
    params = init_params(jax.random.key(0), settings.sizes, "he")
    tx = make_optimizer(settings.program(), settings.values(10), 10)
    leaves = tuple(np.asarray(leaf) for leaf in jax.tree.leaves(tx.init(params)))
    record = {"event": "epoch", "epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5}
    return checkpoints.save_checkpoint(
        path,
        checkpoints.Checkpoint(
            params=tuple(jax.device_get(params)),
            settings=settings,
            epoch=1,
            metrics=[record],
            opt_state_leaves=leaves,
        ),
    )


def rewritten(path: Path, change) -> Path:
    """The checkpoint at ``path`` with ``change(meta, arrays)`` applied."""
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays["meta"].tobytes())
    change(meta, arrays)
    meta = meta.get("replace with", meta)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)
    return path


def set_meta(key, value):
    def change(meta, arrays):
        meta[key] = value

    return change


def set_setting(key, value):
    def change(meta, arrays):
        meta["settings"][key] = value

    return change


def set_array(name, value):
    def change(meta, arrays):
        arrays[name] = value

    return change


def meta_as_list(meta, arrays):
    """Stands for metadata that is a JSON list (written after ``change`` returns)."""
    meta["replace with"] = [1, 2]


@pytest.mark.parametrize(
    "change, message",
    [
        (meta_as_list, "its metadata is a JSON list, not an object"),
        (set_meta("num_layers", 0), "it has no layers"),
        (set_meta("epoch", "one"), "its epoch is 'one', not a count"),
        (set_meta("settings", [1]), "settings must be a JSON object, got list"),
        (set_setting("lr", None), "lr must be a number, got null"),
        (
            set_setting("sizes", [784, 30, 10]),
            "layer 1's weight has shape (6, 784), the settings need (30, 784)",
        ),
        (
            set_array("params/0/w", np.zeros((6, 100), np.float32)),
            "layer 1's weight has shape (6, 100)",
        ),
        (
            set_array("params/0/w", np.zeros((6, 784), np.int32)),
            "layer 1's weight is int32, not float32",
        ),
        (
            set_array("params/1/b", np.full(10, np.nan, np.float32)),
            "layer 2 holds NaN or infinite values",
        ),
        (
            set_array("opt_state/1", np.zeros((3, 3), np.float32)),
            "optimizer state array 1 has shape (3, 3)",
        ),
        (
            set_meta("num_opt_state_leaves", 2),
            "its optimizer state has 2 arrays, the momentum optimizer",
        ),
        (
            set_setting("optimizer", "adam"),
            "optimizer state has 5 arrays, the adam optimizer of its settings has 10",
        ),
        (set_meta("metrics", [{}, {}]), "it holds epoch 1 but 2 epoch records"),
    ],
)
def test_malformed_checkpoints_are_refused_with_the_file_and_the_problem(tmp_path, change, message):
    path = rewritten(saved(tmp_path / "c.npz"), change)
    with pytest.raises(CheckpointError) as refused:
        checkpoints.load_checkpoint(path)
    assert str(refused.value).startswith(f"checkpoint {path}")
    assert message in str(refused.value)


def test_a_valid_checkpoint_reads_back_its_settings_and_arrays(tmp_path):
    loaded = checkpoints.load_checkpoint(saved(tmp_path / "c.npz"))
    assert loaded.settings == SETTINGS and loaded.epoch == 1
    assert [leaf.shape for leaf in loaded.opt_state_leaves] == [(6, 784), (6,), (10, 6), (10,), ()]


def test_a_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory, not a checkpoint file"):
        checkpoints.load_checkpoint(tmp_path)


@pytest.mark.parametrize(
    "explicit, message",
    [
        ({"sizes": "784,30,10"}, "sizes is 784,30,10 but the checkpoint"),
        ({"optimizer": "adam"}, "optimizer is adam but the checkpoint"),
        ({"batch_size": 32}, "batch_size is 32 but the checkpoint"),
        ({"dataset": "fashion-mnist"}, "dataset is fashion-mnist but the checkpoint"),
        ({"grad": "autodiff"}, "grad is autodiff but the checkpoint"),
    ],
)
def test_a_resume_refuses_flags_that_would_change_the_program(tmp_path, explicit, message):
    path = saved(tmp_path / "c.npz")
    with pytest.raises(ConfigError) as refused:
        runs.settings_for_run(runs.RunOptions(resume=path, explicit=explicit))
    assert message in str(refused.value) and "was trained with" in str(refused.value)


def test_a_resume_may_change_epochs_and_per_run_values(tmp_path):
    path = saved(tmp_path / "c.npz")
    settings, resume = runs.settings_for_run(
        runs.RunOptions(resume=path, explicit={"epochs": 5, "lr": 0.01, "sizes": "784,6,10"})
    )
    assert settings.epochs == 5 and settings.lr == 0.01 and resume.epoch == 1


def test_the_command_line_names_the_flag_and_the_checkpoints_value(tmp_path, capsys):
    path = saved(tmp_path / "c.npz")
    assert main(["train", "--resume", str(path), "--sizes", "784,30,10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxmlp: error: --sizes is 784,30,10 but the checkpoint")
    assert "trained with 784,6,10" in err and len(err.splitlines()) == 1


def test_a_parameters_only_checkpoint_evaluates_but_does_not_resume(tmp_path):
    path = tmp_path / "p.npz"
    params = tuple(jax.device_get(init_params(jax.random.key(0), SETTINGS.sizes, "he")))
    checkpoints.save_checkpoint(path, checkpoints.Checkpoint(params, SETTINGS, 0, []))
    assert checkpoints.load_checkpoint(path).opt_state_leaves == ()
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        runs.settings_for_run(runs.RunOptions(resume=path))
