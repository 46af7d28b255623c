"""The console entry: Ctrl-C at any moment of a command, start-up included, ends with exit
code 130 and one line; starting it imports nothing heavy."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxmlp import console

JAXMLP = [sys.executable, "-m", "jaxmlp"]
INTERRUPTED = "jaxmlp: error: interrupted\n"
LONG_CHECK = ["compare-grads", "--sizes", "784,100,100,10", "--batch-size", "64", "--coords", "100"]


@pytest.fixture
def restored_sigint():
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


def test_a_swallowed_ctrl_c_still_ends_with_130(monkeypatch, capsys, restored_sigint):
    def start_swallowing_an_interrupt() -> int:
        with contextlib.suppress(KeyboardInterrupt):
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
        return 0

    monkeypatch.setattr(console, "start", start_swallowing_an_interrupt)
    monkeypatch.setattr(console, "_interrupts_seen", 0)
    monkeypatch.setattr(console, "leave_now", sys.exit)  # os._exit would end pytest too

    with pytest.raises(SystemExit) as exited:
        console.run()

    assert exited.value.code == 130 and capsys.readouterr().err == INTERRUPTED


def test_ctrl_c_while_holding_interrupts_is_raised_after_the_block(monkeypatch, restored_sigint):
    monkeypatch.setattr(console, "_interrupts_seen", 0)
    signal.signal(signal.SIGINT, console._on_interrupt)
    finished = False
    with pytest.raises(KeyboardInterrupt), console.interrupts_held():
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
        finished = True
    assert finished


@pytest.mark.slow
def test_starting_the_console_script_imports_neither_jax_nor_typer():
    probe = (
        "import sys, jaxmlp.console; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'typer', 'numpy')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"


def has_loaded(pid: int, library: str) -> bool:
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
@pytest.mark.parametrize("delay_s", [0.0, 0.3, 1.0, 3.0, 4.5])
def test_ctrl_c_during_start_up_and_work_is_one_line_and_130(delay_s):
    """SIGINT once jaxlib's library is mapped (``import jax`` under way), and later: in the
    commands' imports, in the argument parsing, in compilation, in the computation."""
    process = subprocess.Popen(
        JAXMLP + LONG_CHECK, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not has_loaded(process.pid, "jaxlib") and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(delay_s)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)

    assert (process.returncode, err, out) == (130, INTERRUPTED, "")
