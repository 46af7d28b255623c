"""What a command needs before it runs, and only when it runs: JAX and its compilation cache.

``jaxmlp --version``, ``--help`` and every command's ``--help`` import neither JAX nor the
library modules that use it: command modules import those inside the commands. When a
command is about to run (its arguments do not ask for help), :func:`start_jax` imports JAX
with Ctrl-C held (a ``KeyboardInterrupt`` inside jaxlib's initialisation breaks it, see
:mod:`jaxmlp.console`) and points JAX's persistent compilation cache at the user cache.

A command that trains a population (``sweep``) gets one CPU device per core: on one CPU
device XLA runs a population's many small products on one core, while members spread over
several devices run in parallel. ``JAX_NUM_CPU_DEVICES``, when set, decides instead; other
commands (a solo ``train``) keep JAX's one CPU device, and so their bits. Called from Python
once JAX's backend has started (``main(["sweep", ...])`` in a notebook or a test), a sweep
uses the devices that backend has.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections.abc import Mapping, Sequence

from jaxmlp import environment

JAX_FREE_COMMANDS = frozenset({"download"})
"""Commands that never compute with JAX."""
POPULATION_COMMANDS = frozenset({"sweep"})
"""Commands that train populations: they get one CPU device per core."""
HELP_FLAGS = frozenset({"-h", "--help"})


def asks_for_help(args: Sequence[str]) -> bool:
    """Whether a command's arguments ask for its help (before any ``--``)."""
    return any(arg in HELP_FLAGS for arg in itertools.takewhile(lambda arg: arg != "--", args))


def needs_jax(command: str, args: Sequence[str]) -> bool:
    """Whether running ``command`` with ``args`` computes with JAX."""
    return command not in JAX_FREE_COMMANDS and not asks_for_help(args)


def start_jax(command: str | None = None) -> None:
    """Imports JAX with Ctrl-C held and enables the persistent compilation cache; for a
    command that trains populations, asks for one CPU device per core."""
    from jaxmlp import timings
    from jaxmlp.console import interrupts_held

    with timings.phase("jax"):
        with interrupts_held():
            environment.import_jax()
        timings.listen_to_jax()
        enable_compilation_cache()
        remove_damaged_cache_entries()
    import jax

    if command in POPULATION_COMMANDS:
        # JAX may already run (the command called from Python): then it keeps its devices.
        with contextlib.suppress(RuntimeError):
            jax.config.update("jax_num_cpu_devices", population_cpu_devices())


def core_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def population_cpu_devices(environ: Mapping[str, str] = os.environ) -> int:
    """The CPU devices a population command starts: ``JAX_NUM_CPU_DEVICES`` when set (it is
    checked at start-up), else one per core."""
    given = environ.get("JAX_NUM_CPU_DEVICES")
    return int(given) if given else min(core_count(), environment.MAX_CPU_DEVICES)


def remove_damaged_cache_entries() -> None:
    """Deletes the compilation cache's damaged entries (a full disk's leftovers), saying so
    in one line on standard error (:mod:`jaxmlp.compile_cache`)."""
    import jax

    from jaxmlp.compile_cache import removal_line, remove_damaged_entries

    removed = remove_damaged_entries(jax.config.jax_compilation_cache_dir)
    if removed:
        print(removal_line(removed), file=sys.stderr)


def enable_compilation_cache(directory: str | os.PathLike | None = None) -> None:
    """Keeps every compiled XLA program in ``directory`` (default: the user cache), so a
    second run starts faster."""
    import jax

    from jaxmlp.data.sources import user_cache_dir

    where = directory if directory is not None else user_cache_dir("xla")
    jax.config.update("jax_compilation_cache_dir", str(where))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
