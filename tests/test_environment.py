"""The environment is checked at every command's start: malformed JAX variables and an
absent backend are one line and exit 2; warnings a user cannot act on are not shown."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

from jaxmlp import parallel
from jaxmlp.cli import main
from jaxmlp.environment import check_variables
from jaxmlp.errors import EnvironmentVariableError

JAXMLP = [sys.executable, "-m", "jaxmlp"]


@pytest.mark.parametrize("value", ["abc", "", "2.5", "0", "-1", "1025"])
def test_a_malformed_cpu_device_count_is_refused(value):
    with pytest.raises(
        EnvironmentVariableError,
        match=rf"^JAX_NUM_CPU_DEVICES must be a whole number from 1 to 1024, got '{value}'$",
    ):
        check_variables({"JAX_NUM_CPU_DEVICES": value})


@pytest.mark.parametrize("value", [",cpu", "cpu,,gpu", "c p u"])
def test_malformed_platform_names_are_refused(value):
    with pytest.raises(EnvironmentVariableError, match=r"^JAX_PLATFORMS must be platform names"):
        check_variables({"JAX_PLATFORMS": value})


@pytest.mark.parametrize(
    "environ", [{}, {"JAX_NUM_CPU_DEVICES": "8", "JAX_PLATFORMS": "cpu,gpu"}, {"JAX_PLATFORMS": ""}]
)
def test_well_formed_variables_pass(environ):
    check_variables(environ)


def test_warnings_from_inside_a_command_do_not_reach_the_terminal(capsys, monkeypatch):
    report = parallel.backend_report

    def overflowing_report():
        warnings.warn("overflow encountered in cast", RuntimeWarning, stacklevel=2)
        return report()

    monkeypatch.setattr(parallel, "backend_report", overflowing_report)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        assert main(["info"]) == 0
    assert shown == [] and capsys.readouterr().err == ""


def run_with(variables: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")} | variables
    return subprocess.run(
        [*JAXMLP, *args], capture_output=True, text=True, env=environ, timeout=300
    )


COMMANDS = [
    ["compare-grads"],
    ["evaluate", "absent.npz"],
    ["predict", "absent.npz", "--index", "0"],
    ["info"],
]


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
def test_an_absent_backend_named_by_jax_platforms_is_one_line(command):
    done = run_with({"JAX_PLATFORMS": "tpu"}, *command)

    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(
        "jaxmlp: error: JAX_PLATFORMS=tpu names a backend that is not available here ("
    )
    assert done.stderr.count("\n") == 1


@pytest.mark.slow
@pytest.mark.parametrize("command", [*COMMANDS, ["download"], ["show"]], ids=lambda c: c[0])
def test_a_malformed_cpu_device_count_is_one_line_for_every_command(command):
    done = run_with({"JAX_NUM_CPU_DEVICES": "abc"}, *command)

    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        "jaxmlp: error: JAX_NUM_CPU_DEVICES must be a whole number from 1 to 1024, got 'abc'\n"
    )


@pytest.mark.slow
def test_a_value_jax_itself_rejects_is_one_line():
    done = run_with({"JAX_ENABLE_X64": "abc"}, "info")

    assert done.returncode == 2
    assert done.stderr == (
        "jaxmlp: error: JAX rejects its environment: invalid truth value 'abc' for "
        "environment 'JAX_ENABLE_X64'\n"
    )
