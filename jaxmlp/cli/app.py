"""The Typer application and the one place where errors become exit codes.

Command modules (``jaxmlp.cli.grads``, ``.data``, ...) register their commands on
:data:`app`. :func:`main` runs it and turns every user-facing error into one line on
standard error: bad arguments exit 2, other failures 1, Ctrl-C 130. An ``OSError`` that
reaches it (an output file that cannot be written) is such a failure too. Warnings a user
cannot act on (numpy's ``RuntimeWarning``s about overflow at ``--lr 1e308``, raised inside
JAX) are silenced for the command's duration. The console script, :func:`jaxmlp.console.run`,
calls :func:`main` after checking the environment. JAX is imported only once a command is
about to run (:mod:`jaxmlp.cli.startup`), never for ``--version`` or ``--help``.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

import typer

from jaxmlp import __version__
from jaxmlp.cli import startup
from jaxmlp.cli.helptext import Command, Group
from jaxmlp.environment import first_line, require_backend
from jaxmlp.errors import INTERRUPTED_EXIT_CODE, ConfigError, JaxmlpError, Stopped, error_line

SUBCOMMAND_ARGS = "jaxmlp.subcommand_args"


class CommandGroup(Group):
    """The root group (its help tidied), keeping the invoked command's arguments for the
    root callback."""

    def resolve_command(self, ctx: typer.Context, args: list[str]):
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta[SUBCOMMAND_ARGS] = rest
        return name, command, rest


app = typer.Typer(
    name="jaxmlp",
    cls=CommandGroup,
    help="A multilayer perceptron for MNIST in JAX, with backpropagation by hand (BP1–BP4).",
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"jaxmlp {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """A multilayer perceptron for MNIST in JAX, with backpropagation by hand (BP1–BP4)."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        return
    if not ctx.resilient_parsing and startup.needs_jax(
        ctx.invoked_subcommand, ctx.meta.get(SUBCOMMAND_ARGS, [])
    ):
        startup.start_jax(ctx.invoked_subcommand)


def command(name: str):
    """Registers a command on :data:`app`, its help tidied (:mod:`jaxmlp.cli.helptext`)."""
    return app.command(name, cls=Command)


def run_explaining_jax_failures(argv: Sequence[str] | None) -> object:
    """Runs :data:`app`, turning JAX's own failures into one line: a backend that cannot
    start (a ``JAX_PLATFORMS`` naming an absent one) and memory XLA cannot allocate.

    Commands call :func:`~jaxmlp.environment.require_backend` and check sizes before their
    work; this covers any path that reaches JAX first or needs more than estimated.
    """
    try:
        return app(args=argv, prog_name="jaxmlp", standalone_mode=False)
    except (RuntimeError, AssertionError) as error:
        require_backend()
        if str(error).startswith("RESOURCE_EXHAUSTED"):
            raise JaxmlpError(f"out of memory: {first_line(error)}") from None
        raise


def fail(message: str, exit_code: int = 1) -> int:
    """Prints ``message`` as one ``jaxmlp: error:`` line on standard error."""
    typer.echo(error_line(message), err=True)
    return exit_code


def flag_message(error: ConfigError) -> str:
    """A settings error in the command line's words: ``lr must …`` → ``--lr must …``."""
    if error.setting is None:
        return str(error)
    return f"--{error.setting.replace('_', '-')} {error.problem}"


def describe_os_error(error: OSError) -> str:
    """``PATH: reason`` for a file the command could not read or write (an output path in
    a missing or read-only directory, a full disk)."""
    reason = error.strerror or str(error)
    return f"{error.filename}: {reason}" if error.filename else reason


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI on ``argv`` (default ``sys.argv[1:]``) and returns the exit code."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return run_app(argv)


COMMAND_LINE: list[str] = ["jaxmlp"]
"""The command line being run (:func:`run_app` sets it), for a run's record."""


def run_app(argv: Sequence[str] | None) -> int:
    """Runs :data:`app`; every error it raises becomes one line and an exit code."""
    COMMAND_LINE[1:] = sys.argv[1:] if argv is None else list(argv)
    try:
        result = run_explaining_jax_failures(argv)
    except typer.TyperException as error:
        context = getattr(error, "ctx", None)
        where = f" (see '{context.command_path} --help')" if context is not None else ""
        return fail(error.format_message().splitlines()[0] + where, error.exit_code)
    except ConfigError as error:
        return fail(flag_message(error), error.exit_code)
    except Stopped as stop:  # Ctrl-C where it is the normal way to end, not an error
        typer.echo(str(stop), err=True)
        return stop.exit_code
    except JaxmlpError as error:
        return fail(str(error), error.exit_code)
    except KeyboardInterrupt:
        return fail("interrupted", INTERRUPTED_EXIT_CODE)
    except OSError as error:
        return fail(describe_os_error(error))
    if result == INTERRUPTED_EXIT_CODE:  # Typer's silent answer to Ctrl-C inside a command
        return fail("interrupted", INTERRUPTED_EXIT_CODE)
    return result if isinstance(result, int) else 0
