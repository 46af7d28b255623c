"""Errors that a user can act on.

The CLI prints any :class:`JaxmlpError` as one line (no traceback) and exits with its
``exit_code``: 2 for bad arguments, 1 for everything else.
"""

from __future__ import annotations

INTERRUPTED_EXIT_CODE = 130
"""Ctrl-C, as shells report a process ended by SIGINT."""


def error_line(message: str) -> str:
    """How the CLI prints an error: ``jaxmlp: error: MESSAGE``."""
    return f"jaxmlp: error: {message}"


class JaxmlpError(Exception):
    """A problem the user can fix; its message is one self-explanatory line."""

    exit_code = 1


class Stopped(JaxmlpError):
    """Ctrl-C ended a command that runs until it is stopped (``jaxmlp serve``): not an
    error, so the CLI prints the message as it is, without ``jaxmlp: error:``, and exits
    130."""

    exit_code = INTERRUPTED_EXIT_CODE


class ConfigError(JaxmlpError):
    """Bad arguments: impossible sizes, a negative learning rate, an unknown name.

    When the problem is one setting's value, ``setting`` names it (``"lr"``) and the
    message reads ``"lr must be positive, got -1"``; the command line shows the same
    problem under the flag's name (``"--lr must be positive, got -1"``).
    """

    exit_code = 2

    def __init__(self, problem: str, setting: str | None = None):
        self.problem = problem
        self.setting = setting
        super().__init__(f"{setting} {problem}" if setting else problem)


class EnvironmentVariableError(JaxmlpError):
    """An environment variable jaxmlp or JAX reads is malformed or names what is not here."""

    exit_code = 2


class OutputPathError(JaxmlpError):
    """An output path jaxmlp will not write: something other than a regular file is there,
    its directory cannot be created or written, or two outputs share it."""

    exit_code = 2


class DatasetError(JaxmlpError):
    """A dataset is missing, malformed, or could not be downloaded."""


class CheckpointError(JaxmlpError):
    """A checkpoint is missing, malformed, or does not fit the requested model."""


class DivergenceError(JaxmlpError):
    """Training diverged: every member's loss became NaN, infinite or too large.

    ``progress`` is the fit's progress (:class:`jaxmlp.train.FitState`): each member's
    state before the epoch in which it diverged, its records and that epoch.
    """

    def __init__(self, message: str, *, progress: object = None):
        self.progress = progress
        super().__init__(message)


class InputFileError(JaxmlpError):
    """A file the user gave is unusable: not an image, a blank image, a malformed metrics log."""


class MissingDependencyError(JaxmlpError):
    """An optional dependency is not installed; the message names the extra to install."""


class TrainingInterrupted(JaxmlpError):
    """Ctrl-C during training: which epochs were complete, and which one a checkpoint holds.

    Args:
      completed_epoch: the last epoch that was complete (``None``: none was).
      saved: ``(path, epoch)`` of the checkpoint written last, if any.
      done: says how far the work got, instead of ``completed_epoch``.
      hint: how to continue (``continue with: jaxmlp train --resume …``).
      progress: what was complete (:class:`jaxmlp.train.FitState`, or a sweep's outcome).
    """

    exit_code = INTERRUPTED_EXIT_CODE

    def __init__(
        self,
        completed_epoch: int | None,
        saved: tuple[object, int] | None = None,
        *,
        done: str | None = None,
        hint: str | None = None,
        progress: object = None,
    ):
        self.completed_epoch = completed_epoch
        self.saved = saved
        self.progress = progress
        if done is None:
            done = (
                f"after epoch {completed_epoch}"
                if completed_epoch is not None
                else "before the first epoch ended"
            )
        where = f"; {saved[0]} holds epoch {saved[1]}" if saved is not None else ""
        then = f"; {hint}" if hint else ""
        super().__init__(f"interrupted {done}{where}{then}")
