"""The environment a command runs in, checked at its start instead of failing inside JAX.

JAX reads its ``JAX_*`` variables when it is imported and ``JAX_PLATFORMS`` when its backend
starts; a malformed or impossible value ends in a traceback from deep inside JAX. The
command line (:mod:`jaxmlp.console`) therefore calls, in order:

1. :func:`check_variables`, before JAX is imported: ``JAX_NUM_CPU_DEVICES`` must be a
   whole number from 1 to :data:`MAX_CPU_DEVICES` (``abc`` makes ``import jax`` raise;
   20,000 makes it hang), ``JAX_PLATFORMS`` a comma-separated list of names;
2. :func:`import_jax`: JAX rejecting one of its other variables (``JAX_ENABLE_X64=abc``)
   becomes one line;
3. :func:`require_backend`, in each command that computes with JAX, before its work: a
   backend named by ``JAX_PLATFORMS`` that cannot start here (``gpu`` on a machine without
   one) becomes one line naming the variable. Commands that choose the platform themselves
   (``--platform``) or first join several processes (``jax.distributed.initialize`` must
   come before the backend starts) call it after doing so.

Each problem raises :class:`~jaxmlp.errors.EnvironmentVariableError` (exit code 2).
This module imports nothing heavy; JAX is imported inside the functions that need it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from jaxmlp.errors import EnvironmentVariableError, JaxmlpError

MAX_CPU_DEVICES = 1024
"""The most CPU devices ``JAX_NUM_CPU_DEVICES`` may ask for (JAX starts 1,024 in about 2 s;
20,000 take minutes and gigabytes)."""
PLATFORM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def check_variables(environ: Mapping[str, str] = os.environ) -> None:
    """Checks the JAX variables that fail badly inside JAX; call before importing JAX.

    Raises:
        EnvironmentVariableError: A malformed ``JAX_NUM_CPU_DEVICES`` or ``JAX_PLATFORMS``.
    """
    check_cpu_device_count(environ.get("JAX_NUM_CPU_DEVICES"))
    check_platform_names(environ.get("JAX_PLATFORMS"))


def check_cpu_device_count(value: str | None) -> None:
    """``JAX_NUM_CPU_DEVICES``, when set, must be a whole number in 1..MAX_CPU_DEVICES."""
    if value is None:
        return
    count = int(value) if value.strip().isdigit() else None
    if count is None or not 1 <= count <= MAX_CPU_DEVICES:
        raise EnvironmentVariableError(
            f"JAX_NUM_CPU_DEVICES must be a whole number from 1 to {MAX_CPU_DEVICES}, got {value!r}"
        )


def check_platform_names(value: str | None) -> None:
    """``JAX_PLATFORMS``, when set and not empty, must list platform names with commas."""
    if not value:
        return
    if not all(PLATFORM_NAME.fullmatch(name.strip()) for name in value.split(",")):
        raise EnvironmentVariableError(
            f"JAX_PLATFORMS must be platform names separated by commas (cpu, gpu, tpu, "
            f"...) or empty for JAX's choice, got {value!r}"
        )


def import_jax() -> None:
    """Imports JAX, turning its refusal of a ``JAX_*`` variable into one line.

    Raises:
        EnvironmentVariableError: JAX rejected one of its environment variables.
    """
    try:
        import jax  # noqa: F401
    except ValueError as error:
        raise EnvironmentVariableError(
            f"JAX rejects its environment: {first_line(error)}"
        ) from None


def require_backend(environ: Mapping[str, str] = os.environ) -> str:
    """Starts JAX's backend if it has not started; returns its platform (``"cpu"``, ...).

    Raises:
        EnvironmentVariableError: ``JAX_PLATFORMS`` names a backend that cannot start here.
        JaxmlpError: No backend starts although ``JAX_PLATFORMS`` is not set.
    """
    import jax

    try:
        return jax.default_backend()
    except Exception as error:  # JAX fails in several ways: RuntimeError, AssertionError, ...
        reason = str(error).strip() and first_line(error).split(" (set JAX_PLATFORMS")[0]
        reason = reason or f"{type(error).__name__} while starting it"
        requested = environ.get("JAX_PLATFORMS")
        if requested:
            raise EnvironmentVariableError(
                f"JAX_PLATFORMS={requested} names a backend that is not available here "
                f"({reason}); unset it to let JAX choose"
            ) from None
        raise JaxmlpError(f"JAX cannot start a backend: {reason}") from None


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type when it has none."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
