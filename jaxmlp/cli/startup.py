"""What a command needs before it runs, and only when it runs: JAX and its compilation cache.

``jaxmlp --version``, ``--help`` and every command's ``--help`` import neither JAX nor the
library modules that use it: command modules import those inside the commands. When a
command is about to run (its arguments do not ask for help), :func:`start_jax` imports JAX
with Ctrl-C held (a ``KeyboardInterrupt`` inside jaxlib's initialisation breaks it, see
:mod:`jaxmlp.console`) and points JAX's persistent compilation cache at the user cache.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from jaxmlp import environment

JAX_FREE_COMMANDS = frozenset({"download"})
"""Commands that never compute with JAX."""
HELP_FLAGS = frozenset({"-h", "--help"})


def asks_for_help(args: Sequence[str]) -> bool:
    """Whether a command's arguments ask for its help (before any ``--``)."""
    return any(arg in HELP_FLAGS for arg in itertools.takewhile(lambda arg: arg != "--", args))


def needs_jax(command: str, args: Sequence[str]) -> bool:
    """Whether running ``command`` with ``args`` computes with JAX."""
    return command not in JAX_FREE_COMMANDS and not asks_for_help(args)


def start_jax() -> None:
    """Imports JAX with Ctrl-C held and enables the persistent compilation cache."""
    from jaxmlp.console import interrupts_held

    with interrupts_held():
        environment.import_jax()
    enable_compilation_cache()


def enable_compilation_cache() -> None:
    """Keeps compiled XLA programs in the user cache, so a second run starts faster."""
    import jax

    from jaxmlp.data.sources import user_cache_dir

    jax.config.update("jax_compilation_cache_dir", str(user_cache_dir("xla")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
