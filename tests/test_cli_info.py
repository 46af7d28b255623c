"""``jaxmlp info``: versions, backend and devices, as text and as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import pytest

from jaxmlp.cli import main
from jaxmlp.cli.startup import population_cpu_devices


def test_info_names_versions_backend_and_devices(capsys):
    assert main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"jax {jax.__version__}, jaxlib ")
    assert lines[1].startswith(f"backend: {jax.default_backend()}")
    assert lines[2] == "process: 0 of 1"
    assert lines[3] == f"devices: {jax.local_device_count()} local, {jax.device_count()} global"
    sweep_line = jax.default_backend() == "cpu"
    assert len(lines) == 4 + jax.device_count() + sweep_line
    if sweep_line:
        assert lines[-1].startswith(f"sweeps: {population_cpu_devices()} CPU devices")


def test_info_json_lists_every_device(capsys):
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["jax"] == jax.__version__
    assert report["backend"] == jax.default_backend()
    assert (report["process_index"], report["process_count"]) == (0, 1)
    assert report["global_device_count"] == len(report["devices"]) == jax.device_count()
    assert set(report["devices"][0]) == {"id", "platform", "kind", "process_index"}


def run_info(*args: str, **env: str) -> subprocess.CompletedProcess:
    """``python -m jaxmlp info ARGS`` in a fresh process (the platform is chosen once)."""
    return subprocess.run(
        [sys.executable, "-m", "jaxmlp", "info", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_info_on_four_cpu_devices_by_platform_flag():
    done = run_info("--platform", "cpu", "--json", JAX_NUM_CPU_DEVICES="4")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["backend"] == "cpu" and report["local_device_count"] == 4


@pytest.mark.parametrize(
    "platform, hint",
    [("tpu", 'pip install -U "jax[tpu]"'), ("gpu", 'pip install -U "jax[cuda13]"')],
)
@pytest.mark.slow
def test_unavailable_platform_is_one_line_and_exit_2(platform, hint):
    if platform in {device.platform for device in jax.devices()}:
        pytest.skip(f"this machine has a {platform}")
    done = run_info("--platform", platform)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"jaxmlp: error: --platform {platform} is not available here")
    assert hint in done.stderr


def test_unknown_platform_exits_2(capsys):
    assert main(["info", "--platform", "quantum"]) == 2
    assert "--platform must be one of cpu, gpu, tpu" in capsys.readouterr().err
