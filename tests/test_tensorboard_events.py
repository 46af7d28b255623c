"""TensorBoard event files, read back with TensorBoard's own reader."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from jaxmlp.errors import MissingDependencyError
from jaxmlp.settings import Settings
from jaxmlp.tensorboard_events import (
    RunEvents,
    member_run_name,
    require_tensorboardx,
    weights_image,
)

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
plugin_data_pb2 = pytest.importorskip("tensorboard.plugins.hparams.plugin_data_pb2")

SETTINGS = Settings(sizes=(784, 9, 10), lr=0.05, epochs=3, limit=100)


def epoch(number: int, val_accuracy: float | None = 0.5) -> dict:
    return {
        "event": "epoch",
        "epoch": number,
        "train_loss": 1.0 / number,
        "train_accuracy": 0.4,
        "val_loss": None if val_accuracy is None else 0.9 / number,
        "val_accuracy": val_accuracy,
        "lr": 0.05,
        "seconds": 0.1,
    }


def read_back(directory):
    reader = event_accumulator.EventAccumulator(
        str(directory), size_guidance={"scalars": 0, "images": 0, "tensors": 0}
    )
    reader.Reload()
    return reader


def session_start(reader) -> dict:
    content = reader.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {
        name: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
        for name, value in start.hparams.items()
    }


def test_epochs_test_figures_hparams_and_weights_read_back(tmp_path):
    weights = np.random.default_rng(0).normal(size=(9, 784)).astype(np.float32)
    with RunEvents(tmp_path / "run", SETTINGS) as events:
        for number in (1, 2, 3):
            events.epoch(epoch(number, 0.5 + number / 10), weights)
        events.finish({"event": "test", "test_loss": 0.25, "test_accuracy": 0.875})
    reader = read_back(tmp_path / "run")
    scalars = {
        tag: [(e.step, e.value) for e in reader.Scalars(tag)] for tag in reader.Tags()["scalars"]
    }
    assert scalars["accuracy/validation"] == [
        (1, pytest.approx(0.6)),
        (2, pytest.approx(0.7)),
        (3, pytest.approx(0.8)),
    ]
    assert [value for _, value in scalars["loss/train"]] == pytest.approx([1.0, 0.5, 1 / 3])
    assert [step for step, _ in scalars["learning_rate"]] == [1, 2, 3]
    assert scalars["accuracy/test"] == [(3, 0.875)] and scalars["loss/test"] == [(3, 0.25)]
    assert "loss/validation" in scalars and "accuracy/train" in scalars
    images = reader.Images("first_layer_weights")
    assert [image.step for image in images] == [1, 2, 3]
    assert (images[0].width, images[0].height) == (88, 88)
    hparams = session_start(reader)
    assert hparams["lr"] == 0.05 and hparams["sizes"] == "784,9,10"
    assert hparams["limit"] == 100 and hparams["augment_flip"] is False
    assert "data_dir" not in hparams
    tags = reader.PluginTagToContent("hparams")
    assert set(tags) == {
        "_hparams_/experiment",
        "_hparams_/session_start_info",
        "_hparams_/session_end_info",
    }


def test_epochs_without_validation_leave_its_scalars_out(tmp_path):
    with RunEvents(tmp_path / "run", SETTINGS) as events:
        events.epoch(epoch(1, None))
    reader = read_back(tmp_path / "run")
    assert "accuracy/validation" not in reader.Tags()["scalars"]
    assert reader.Tags()["images"] == []


def test_sweep_members_are_runs_tagged_with_their_settings(tmp_path):
    members = [SETTINGS.replace(lr=lr, seed=seed) for lr in (0.05, 0.1) for seed in (0, 1)]
    names = [member_run_name(i, member, ["lr"]) for i, member in enumerate(members)]
    assert names == [
        "000_lr=0.05_seed=0",
        "001_lr=0.05_seed=1",
        "002_lr=0.1_seed=0",
        "003_lr=0.1_seed=1",
    ]
    for name, member in zip(names, members):
        with RunEvents(tmp_path / name, member) as events:
            events.epoch(epoch(1))
            events.finish()
    found = {name: session_start(read_back(tmp_path / name)) for name in names}
    assert [(found[n]["lr"], found[n]["seed"]) for n in names] == [
        (0.05, 0),
        (0.05, 1),
        (0.1, 0),
        (0.1, 1),
    ]


def test_weights_image_scales_each_unit_by_its_largest_magnitude():
    weights = np.zeros((3, 4), np.float32)
    weights[0, 0], weights[1, 3], weights[2, 1] = 2.0, -4.0, 0.0
    image = weights_image(weights)
    assert image.shape == (1, 7, 7)
    assert image[0, 1, 1] == 1.0 and image[0, 5, 2] == 0.5
    assert image[0, 2, 5] == 0.0
    assert image.min() >= 0 and image.max() <= 1


def test_a_missing_tensorboardx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'jaxmlp\[tensorboard\]'"):
        require_tensorboardx()
