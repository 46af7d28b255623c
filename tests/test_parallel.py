"""Data parallelism: options, the mesh, and 4 CPU devices training like one.

The suite runs on one CPU device; runs on several devices start ``python -m jaxmlp`` with
``JAX_NUM_CPU_DEVICES=4`` in a subprocess, with a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest
from data_fixtures import small_arrays, write_idx_dataset
from helpers import max_difference

from jaxmlp import checkpoint as checkpoints
from jaxmlp import parallel
from jaxmlp.cli import main
from jaxmlp.errors import ConfigError

TIMEOUT_S = 120
PARAMETER_TOLERANCE = 1e-5
"""Largest |Δ| allowed between the parameters of a 4-device and a 1-device run (measured:
1.2e-7 in float32, one rounding step; the sums over the batch are added in another order)."""

TRAIN_ARGS = [
    "--sizes",
    "784,16,10",
    "--init",
    "he",
    "--val-size",
    "20",
    "--batch-size",
    "8",
    "--epochs",
    "3",
    "--optimizer",
    "momentum",
    "--dropout",
    "0.2",
    "--lr",
    "0.05",
]
"""70 training examples in batches of 8: 8 full batches and a ragged one of 6, which does
not divide by 4 devices (XLA pads it)."""


def run_jaxmlp(args: list[str], cpu_devices: int) -> subprocess.CompletedProcess:
    """``python -m jaxmlp ARGS`` with ``cpu_devices`` CPU devices, bounded by ``TIMEOUT_S``."""
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(cpu_devices), "JAX_PLATFORMS": "cpu"}
    return subprocess.run(
        [sys.executable, "-m", "jaxmlp", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Small random MNIST-shaped IDX files: 90 training, 20 test images."""
    return write_idx_dataset(tmp_path / "data", small_arrays(num_train=90, num_test=20))


@pytest.mark.slow
def test_four_devices_train_to_the_parameters_of_one(tmp_path, data_dir):
    runs = {}
    for devices in ("all", "1"):
        saved, metrics = tmp_path / f"{devices}.npz", tmp_path / f"{devices}.jsonl"
        args = ["train", "--data-dir", str(data_dir), *TRAIN_ARGS, "--devices", devices]
        done = run_jaxmlp([*args, "--save", str(saved), "--metrics-out", str(metrics)], 4)
        assert done.returncode == 0, done.stderr
        records = [json.loads(line) for line in metrics.read_text().splitlines()]
        assert records[0]["event"] == "start" and records[0]["devices"] == 4
        runs[devices] = checkpoints.load_checkpoint(saved), records[1:], done.stdout
    (sharded, sharded_metrics, output), (single, single_metrics, _) = runs["all"], runs["1"]
    assert "Data parallel over 4 cpu devices: each batch of 8 is split 2 per device" in output
    assert max_difference(sharded.params, single.params) <= PARAMETER_TOLERANCE
    for a, b in zip(sharded_metrics, single_metrics, strict=True):
        assert a.get("train_loss", a.get("test_loss")) == pytest.approx(
            b.get("train_loss", b.get("test_loss")), rel=1e-5
        )
        assert a.get("val_correct") == b.get("val_correct")
        assert a.get("test_correct") == b.get("test_correct")


@pytest.mark.slow
def test_batch_size_that_does_not_divide_by_the_devices_exits_2(data_dir):
    args = ["train", "--data-dir", str(data_dir), *TRAIN_ARGS, "--devices", "all"]
    done = run_jaxmlp([*args, "--batch-size", "10"], 4)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "--batch-size 10 does not divide by the 4 devices" in done.stderr


@pytest.mark.slow
def test_more_devices_than_visible_exits_2(data_dir):
    done = run_jaxmlp(["train", "--data-dir", str(data_dir), *TRAIN_ARGS, "--devices", "8"], 4)
    assert done.returncode == 2
    assert "--devices is 8 but only 4 cpu devices are visible" in done.stderr


def test_one_device_keeps_the_plain_path():
    assert parallel.device_layout(None) is None
    assert parallel.device_layout("1", members=8) is None
    everything = parallel.device_layout("all")
    if jax.device_count() == 1:
        assert everything is None
    else:
        assert everything.num_devices == jax.device_count()
    assert parallel.is_main_process()


@pytest.mark.parametrize(
    "members, devices, across",
    [(1, 4, 1), (2, 4, 2), (3, 4, 2), (4, 4, 4), (10, 4, 4), (5, 6, 3), (7, 8, 4)],
)
def test_members_take_the_devices_first_and_batches_the_rest(members, devices, across):
    assert parallel.member_devices(members, devices) == across


@pytest.mark.parametrize("text, count", [("all", None), (None, None), ("1", 1), ("16", 16)])
def test_devices_flag_parses(text, count):
    assert parallel.parse_devices(text) == count


@pytest.mark.parametrize("text", ["0", "-2", "two", ""])
def test_bad_devices_flag_is_a_config_error(text):
    with pytest.raises(ConfigError, match="devices must be 'all' or a positive count"):
        parallel.parse_devices(text)


def test_no_flags_means_a_single_process():
    assert parallel.distributed_arguments(parallel.ClusterOptions()) is None


def test_explicit_flags_become_initialize_arguments():
    options = parallel.ClusterOptions(coordinator="10.0.0.1:1234", num_processes=4, process_id=3)
    assert parallel.distributed_arguments(options) == {
        "coordinator_address": "10.0.0.1:1234",
        "num_processes": 4,
        "process_id": 3,
    }


def test_auto_lets_jax_detect_the_cluster():
    assert parallel.distributed_arguments(parallel.ClusterOptions(distributed="auto")) == {}


@pytest.mark.parametrize(
    "options, message",
    [
        ({"coordinator": "host"}, "--coordinator must be HOST:PORT"),
        ({"coordinator": "host:99999"}, "--coordinator must be HOST:PORT"),
        ({"num_processes": 2}, "missing --coordinator, --process-id"),
        (
            {"coordinator": "h:1", "num_processes": 2, "process_id": 2},
            "--process-id must be in 0..1",
        ),
        ({"num_processes": 0}, "--num-processes must be at least 1"),
        ({"distributed": "slurm"}, "--distributed must be one of off, auto"),
    ],
)
def test_bad_distributed_flags_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        parallel.distributed_arguments(parallel.ClusterOptions(**options))


def test_bad_distributed_flags_exit_2_before_jax_starts(capsys):
    assert main(["train", "--num-processes", "2", "--process-id", "0"]) == 2
    assert "missing --coordinator" in capsys.readouterr().err


def test_distributed_flags_come_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("JAXMLP_COORDINATOR", "nohost")
    assert main(["train"]) == 2
    assert "--coordinator must be HOST:PORT, got 'nohost'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "platform, precision, message",
    [
        ("cuda", None, "platform must be one of cpu, gpu, tpu"),
        (None, "fast", "matmul_precision must be one of default, high, highest"),
    ],
)
def test_bad_backend_names_are_config_errors(platform, precision, message):
    with pytest.raises(ConfigError, match=message):
        parallel.configure_backend(platform, precision)
