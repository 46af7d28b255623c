"""Two processes on 127.0.0.1, two CPU devices each, train like one process on one device.

Both processes are killed after ``TIMEOUT_S``: a run that cannot connect fails the test,
it never hangs the suite.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from helpers import max_difference
from test_parallel import PARAMETER_TOLERANCE, TIMEOUT_S, TRAIN_ARGS, data_dir  # noqa: F401

from jaxmlp import checkpoint as checkpoints
from jaxmlp.cli import main

pytestmark = pytest.mark.slow


def free_port() -> int:
    """A local port free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_process(args: list[str], process_id: int, port: int) -> subprocess.Popen:
    """One process of a two-process run with two CPU devices; flags through env vars."""
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "JAX_NUM_CPU_DEVICES": "2",
        "JAXMLP_COORDINATOR": f"127.0.0.1:{port}",
        "JAXMLP_NUM_PROCESSES": "2",
        "JAXMLP_PROCESS_ID": str(process_id),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "jaxmlp", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_two_processes(args: list[str]) -> list[tuple[int, str, str]]:
    """``(returncode, stdout, stderr)`` of each process; kills both on timeout."""
    port = free_port()
    processes = [start_process(args, index, port) for index in range(2)]
    try:
        outputs = [process.communicate(timeout=TIMEOUT_S) for process in processes]
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
            process.communicate()
        pytest.fail(f"the two-process run did not finish within {TIMEOUT_S} s")
    return [(p.returncode, out, err) for p, (out, err) in zip(processes, outputs)]


JAXMLP_PREFIXES = ("Training ", "Data parallel ", "Epoch ", "Test: ", "wrote ")


def jaxmlp_lines(output: str) -> list[str]:
    """Lines that jaxmlp printed, not the Gloo library's connection notices (which share
    standard output and may arrive split across lines)."""
    return [line for line in output.splitlines() if line.startswith(JAXMLP_PREFIXES)]


def test_two_processes_train_like_one(tmp_path, data_dir, capsys):
    shared = ["train", "--data-dir", str(data_dir), *TRAIN_ARGS]
    distributed = tmp_path / "two.npz"
    metrics = tmp_path / "two.jsonl"
    results = run_two_processes(
        [*shared, "--save", str(distributed), "--metrics-out", str(metrics)]
    )
    for returncode, _, stderr in results:
        assert returncode == 0, stderr
    (_, first_out, _), (_, second_out, _) = results
    assert "Data parallel over 4 cpu devices on 2 processes" in first_out
    assert jaxmlp_lines(first_out)[-2].startswith("Test: ")
    assert jaxmlp_lines(first_out)[-1] == f"wrote {distributed} (epoch 3), {metrics}"
    assert jaxmlp_lines(second_out) == []
    events = [json.loads(line)["event"] for line in metrics.read_text().splitlines()]
    assert events == ["start", "epoch", "epoch", "epoch", "test"]

    single = tmp_path / "one.npz"
    assert main([*shared, "--save", str(single), "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == jaxmlp_lines(first_out)[-2]
    two, one = checkpoints.load_checkpoint(distributed), checkpoints.load_checkpoint(single)
    assert max_difference(two.params, one.params) <= PARAMETER_TOLERANCE
    assert [r["val_correct"] for r in two.metrics] == [r["val_correct"] for r in one.metrics]
    assert json.loads(metrics.read_text().splitlines()[-1])["event"] == "test"
