"""Where a command's time goes: phase times on standard error when ``JAXMLP_TIMINGS`` is set.

With ``JAXMLP_TIMINGS=1`` in its environment, ``jaxmlp`` prints one line to standard error
as it ends: ``jaxmlp: timings {...}``, a JSON object of seconds per phase. Phases are
exclusive: a phase's seconds leave out its inner phases and the JAX work inside it, which
JAX reports through :mod:`jax.monitoring`:

- ``trace``: tracing Python functions to jaxprs, ``lower``: jaxprs to MLIR modules,
  ``compile``: XLA compilation, or reading the program from the persistent compilation
  cache (``compilations`` counts them, ``cache_hits`` those the cache served).
- ``commands`` (importing the CLI and parsing the command line) and ``jax`` (importing JAX,
  setting up its compilation cache) before the command runs; then the command's own phases
  (``jaxmlp train``: ``data``, ``prepare``, ``train``, ``evaluate``); ``other`` is the rest.

``began`` and ``ended`` are the wall-clock times (``time.time()``) of the first and last
measurement, for a caller that also knows when it started the process and when it ended
(``scripts/bench.py``): before ``began`` lie the interpreter's start and the first
imports, after ``ended`` the interpreter's shutdown.

Nothing is measured, and nothing waits for the device, unless the variable is set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

ENV_VAR = "JAXMLP_TIMINGS"
PREFIX = "jaxmlp: timings "
JAX_EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "compile",
}
"""JAX's duration events (``jax._src.dispatch``), by the phase they count as."""
CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"


@dataclasses.dataclass
class Frame:
    """An open phase: its name, when it began, and the seconds of what ran inside it."""

    name: str
    began: float
    inner: float = 0.0


@dataclasses.dataclass
class Recorder:
    """Exclusive seconds per phase, and counts of JAX's compilations; ``clock`` gives the
    wall-clock time."""

    clock: Callable[[], float] = time.time
    began: float = dataclasses.field(default=0.0)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    stack: list[Frame] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.began = self.clock()

    def add(self, name: str, seconds: float) -> None:
        """Counts ``seconds`` of ``name`` and takes them from the open phase."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        if self.stack:
            self.stack[-1].inner += seconds

    def count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def open(self, name: str) -> None:
        self.stack.append(Frame(name, self.clock()))

    def close(self) -> None:
        frame = self.stack.pop()
        elapsed = self.clock() - frame.began
        self.add(frame.name, elapsed - frame.inner)
        if self.stack:
            self.stack[-1].inner += frame.inner

    def on_jax_duration(self, event: str, duration: float, **_: Any) -> None:
        """:mod:`jax.monitoring`'s duration listener."""
        name = JAX_EVENTS.get(event)
        if name is not None:
            self.add(name, duration)
            if name == "compile":
                self.count("compilations")

    def on_jax_event(self, event: str, **_: Any) -> None:
        """:mod:`jax.monitoring`'s event listener."""
        if event == CACHE_HIT_EVENT:
            self.count("cache_hits")

    def summary(self) -> dict[str, Any]:
        """The report: exclusive seconds per phase, ``other`` for the time in none, counts."""
        ended = self.clock()
        accounted = sum(self.seconds.values())
        seconds = {**self.seconds, "other": ended - self.began - accounted}
        rounded = {name: round(value, 4) for name, value in seconds.items()}
        return {
            **rounded,
            "total": round(ended - self.began, 4),
            **self.counts,
            "began": self.began,
            "ended": ended,
        }


RECORDER: Recorder | None = None
"""The recorder of this process, once :func:`start` found ``JAXMLP_TIMINGS`` set."""


def wanted(environ=os.environ) -> bool:
    """Whether ``JAXMLP_TIMINGS`` asks for timings (set, and not ``0`` or empty)."""
    return environ.get(ENV_VAR, "") not in ("", "0")


def start(environ=os.environ) -> None:
    """Starts recording if ``JAXMLP_TIMINGS`` asks for it (a no-op otherwise)."""
    global RECORDER
    if wanted(environ) and RECORDER is None:
        RECORDER = Recorder()


def listen_to_jax() -> None:
    """Counts JAX's tracing, lowering and compilation (call once JAX is imported)."""
    if RECORDER is None:
        return
    from jax import monitoring

    monitoring.register_event_duration_secs_listener(RECORDER.on_jax_duration)
    monitoring.register_event_listener(RECORDER.on_jax_event)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Counts the time inside as ``name`` (when recording)."""
    if RECORDER is None:
        yield
        return
    RECORDER.open(name)
    try:
        yield
    finally:
        RECORDER.close()


def timed(name: str, function: Callable) -> Callable:
    """``function``, its calls counted as ``name`` until their results are ready (when
    recording; else ``function`` itself)."""
    if RECORDER is None:
        return function

    def call(*args, **kwargs):
        import jax

        with phase(name):
            return jax.block_until_ready(function(*args, **kwargs))

    return call


def report(stream=None) -> None:
    """Prints the ``jaxmlp: timings {...}`` line (when recording)."""
    if RECORDER is not None:
        print(PREFIX + json.dumps(RECORDER.summary()), file=stream or sys.stderr, flush=True)


def parse_report(text: str) -> dict[str, Any] | None:
    """The timings a process printed in ``text`` (its standard error), or ``None``."""
    for line in text.splitlines():
        if line.startswith(PREFIX):
            return json.loads(line[len(PREFIX) :])
    return None
