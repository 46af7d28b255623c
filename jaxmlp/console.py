"""The ``jaxmlp`` console script: Ctrl-C and the environment handled before JAX loads.

:func:`run` imports only the standard library and jaxmlp's light modules before it takes
over Ctrl-C and checks the environment (:mod:`jaxmlp.environment`); JAX, Typer and the
commands load afterwards. So Ctrl-C at any moment from then on, ``import jax`` included,
ends the command with the one line ``jaxmlp: error: interrupted`` and exit code 130:

- while the commands are imported, and while JAX is (once a command is about to run,
  :mod:`jaxmlp.cli.startup`), Ctrl-C is held until the import finishes (about a second for
  JAX): a ``KeyboardInterrupt`` raised inside the initialisation of jaxlib's compiled
  extension leaves it broken (an ``ImportError`` traceback, or a segmentation fault);
- a ``KeyboardInterrupt`` that reaches :func:`run` is reported here; one inside a command
  is reported by :func:`jaxmlp.cli.app.main` (or as the training's own message);
- a Ctrl-C that some library swallowed (it was raised in a destructor or a callback) is
  remembered, and the command still ends with exit code 130 once it returns;
- once the command has returned, Ctrl-C is ignored while the interpreter shuts down, so
  that no traceback comes from JAX's exit handlers.

Before the interpreter shuts down, :func:`run` freezes the objects left (``gc.freeze``):
the shutdown then skips collecting the many that JAX made, which took 0.3–0.8 s of every
command that ran JAX. Exit handlers still run and every object still goes when its last
reference does; what jaxmlp writes is closed by then.

A Ctrl-C before :func:`run` starts is still Python's to handle (a ``KeyboardInterrupt``
traceback, or an exit by SIGINT): the interpreter's own start-up and the console-script
wrapper's imports, 0.05 to 0.15 s on a loaded two-core machine.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
from collections.abc import Callable, Iterator

from jaxmlp import environment, timings
from jaxmlp.errors import INTERRUPTED_EXIT_CODE, JaxmlpError, error_line

_interrupts_seen = 0
_holding_interrupts = False


def _on_interrupt(signum: int, frame: object) -> None:
    """Counts the Ctrl-C and raises ``KeyboardInterrupt`` as Python's own handler does,
    unless interrupts are being held."""
    global _interrupts_seen
    _interrupts_seen += 1
    if not _holding_interrupts:
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Holds Ctrl-C during the block; one that came raises ``KeyboardInterrupt`` after it."""
    global _holding_interrupts
    seen_before = _interrupts_seen
    _holding_interrupts = True
    try:
        yield
    finally:
        _holding_interrupts = False
    if _interrupts_seen > seen_before:
        raise KeyboardInterrupt


def report(message: str, exit_code: int) -> int:
    """Prints ``message`` as one ``jaxmlp: error:`` line on standard error."""
    print(error_line(message), file=sys.stderr, flush=True)
    return exit_code


def load_commands() -> Callable[[], int]:
    """Imports the commands (not JAX: a command imports it once it runs); returns ``main``."""
    from jaxmlp.cli.app import main

    return main


def start() -> int:
    """Checks the environment, imports JAX and the commands, and runs the command line."""
    try:
        environment.check_variables()
        with interrupts_held(), timings.phase("commands"):
            main = load_commands()
    except JaxmlpError as error:
        return report(str(error), error.exit_code)
    return main()


def run() -> None:
    """Console-script entry point: runs the command and exits with its exit code."""
    signal.signal(signal.SIGINT, _on_interrupt)
    timings.start()
    try:
        code = start()
    except KeyboardInterrupt:
        code = report("interrupted", INTERRUPTED_EXIT_CODE)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _interrupts_seen and code != INTERRUPTED_EXIT_CODE:
        code = report("interrupted", INTERRUPTED_EXIT_CODE)
    timings.report()
    if code == INTERRUPTED_EXIT_CODE:
        leave_now(code)
    gc.freeze()
    sys.exit(code)


def leave_now(code: int) -> None:
    """Exits at once, skipping the interpreter's shutdown.

    An interrupted command can leave XLA's threads compiling or computing; tearing the
    interpreter down under them can end in a segmentation fault (exit 139 instead of 130).
    Everything jaxmlp writes is already whole (atomic writes), so only the standard streams
    need flushing.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
