"""The Typer application and the one place where errors become exit codes.

Command modules (``jaxmlp.cli.grads``, ``.data``, ...) register their commands on
:data:`app`. :func:`main` runs it and turns every user-facing error into one line on
standard error: bad arguments exit 2, other failures 1, Ctrl-C 130. An ``OSError`` that
reaches it (an output file that cannot be written) is such a failure too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from jaxmlp import __version__
from jaxmlp.errors import ConfigError, JaxmlpError

app = typer.Typer(
    name="jaxmlp",
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
    if not ctx.resilient_parsing:
        from jaxmlp.runs import enable_compilation_cache

        enable_compilation_cache()


def fail(message: str, exit_code: int = 1) -> int:
    """Prints ``message`` as one ``jaxmlp: error:`` line on standard error."""
    typer.echo(f"jaxmlp: error: {message}", err=True)
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
    try:
        result = app(args=argv, prog_name="jaxmlp", standalone_mode=False)
    except typer.TyperException as error:
        context = getattr(error, "ctx", None)
        where = f" (see '{context.command_path} --help')" if context is not None else ""
        return fail(error.format_message().splitlines()[0] + where, error.exit_code)
    except ConfigError as error:
        return fail(flag_message(error), error.exit_code)
    except JaxmlpError as error:
        return fail(str(error), error.exit_code)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except OSError as error:
        return fail(describe_os_error(error))
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
