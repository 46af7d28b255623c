"""Start-up: ``--version``, ``--help`` and every command's ``--help`` import no JAX, and a
command that runs imports it (with its compilation cache) before its work."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jaxmlp.cli import startup
from jaxmlp.cli.app import app, main

COMMANDS = [
    "train",
    "sweep",
    "compare-grads",
    "evaluate",
    "predict",
    "show",
    "plot",
    "download",
    "data-info",
    "info",
    "serve",
    "export",
]
HELP_REQUESTS = [["--version"], ["--help"], []] + [[command, "--help"] for command in COMMANDS]
PROBE = """
import json, sys
from jaxmlp.cli.app import main
codes = [main(argv) for argv in json.loads(sys.argv[1])]
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'optax', 'numpy'))
print(json.dumps({'codes': codes, 'heavy': heavy}))
"""


def test_help_and_version_import_no_jax():
    """In a fresh interpreter (this one has JAX loaded): every help request exits 0 and
    leaves no module of JAX, jaxlib, optax or numpy imported (numpy alone costs a help
    request about a fifth of its time)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HELP_REQUESTS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    report = json.loads(done.stdout.splitlines()[-1])
    assert report == {"codes": [0] * len(HELP_REQUESTS), "heavy": []}


def test_every_command_is_in_the_list():
    """The list above is the app's: a new command is checked too."""
    registered = {command.name for command in app.registered_commands}
    assert registered == set(COMMANDS)


@pytest.mark.parametrize(
    ("command", "args", "needed"),
    [
        ("train", [], True),
        ("train", ["--epochs", "2"], True),
        ("train", ["--help"], False),
        ("sweep", ["--lr", "0.1", "-h"], False),
        ("train", ["--", "--help"], True),
        ("download", [], False),
        ("info", [], True),
    ],
)
def test_which_invocations_need_jax(command, args, needed):
    assert startup.needs_jax(command, args) is needed


def test_a_command_that_runs_starts_jax_first(monkeypatch, capsys):
    started = []
    monkeypatch.setattr(startup, "start_jax", started.append)
    assert main(["info", "--help"]) == 0 and started == []
    assert main(["info"]) == 0 and started == ["info"]
    capsys.readouterr()


def test_a_population_command_gets_one_cpu_device_per_core(monkeypatch):
    monkeypatch.setattr(startup, "core_count", lambda: 6)
    assert startup.population_cpu_devices({}) == 6
    assert startup.population_cpu_devices({"JAX_NUM_CPU_DEVICES": "3"}) == 3
    assert {"sweep"} == startup.POPULATION_COMMANDS


SWEEP_PROBE = """
import json, sys
from jaxmlp.cli.app import main
main(sys.argv[1:])
import jax
print(json.dumps({"devices": jax.local_device_count()}))
"""


@pytest.mark.slow
@pytest.mark.skipif(startup.core_count() < 2, reason="one core")
def test_a_sweep_starts_a_cpu_device_per_core_and_train_one(tmp_path):
    """In fresh processes: ``sweep`` starts as many CPU devices as cores, ``train`` one."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env |= {"XDG_CACHE_HOME": str(tmp_path), "JAX_PLATFORMS": "cpu"}
    counts = {}
    for command in ("sweep", "train"):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                SWEEP_PROBE,
                command,
                "--data-dir",
                str(tmp_path / "none"),
                "--no-download",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        counts[command] = json.loads(done.stdout.splitlines()[-1])["devices"]
    assert counts == {"sweep": startup.core_count(), "train": 1}


def test_a_sweep_called_once_jax_runs_keeps_its_devices(capsys):
    """In this process JAX's backend has started: a sweep's start-up cannot change the CPU
    devices, and the command still runs (here to its argument check)."""
    import jax

    before = jax.local_device_count()
    assert main(["sweep", "--val-size", "0"]) == 2
    assert "--val-size must be above 0" in capsys.readouterr().err
    assert jax.local_device_count() == before
