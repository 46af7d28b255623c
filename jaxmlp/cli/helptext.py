"""How ``--help`` reads: Typer's commands, with help that says what a user types.

Typer prints Python's types (``<bool>`` on a flag, ``<list[Path]>``, ``<int range>
[x>=1]``), wraps a declared default in parentheses and keeps a docstring's line breaks
inside a paragraph. :class:`Command` and :class:`Group` tidy their parameters once:

- a flag shows no value, other options a readable one (``<int>``, ``<path>``, ``<text>``,
  a choice's ``<a|b>``, or the option's own ``metavar``);
- a range is a sentence at the end of the help (``From 1 to 16.``, ``At least 1.``);
- a default prints as given (``[default: 0.1]``);
- arguments show their name in capitals (``CHECKPOINT``, ``[IMAGE]...``);
- descriptions flow: single line breaks inside a paragraph become spaces;
- option panels come in :data:`PANEL_ORDER` and commands in :data:`COMMAND_ORDER`, by
  how often they are used;
- a flag's ``off`` form (``--no-download``) is named in its help, not in a column.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from typer import _click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

OPTIONS_PANEL = "Options"
PANEL_ORDER = (
    OPTIONS_PANEL,
    "Keeping the run",
    "Keeping the sweep",
    "Network and training",
    "Per-run values",
    "Search",
    "Data",
    "Devices",
    "Several processes",
)
"""Option panels by how often their options are used; a panel not named here comes last."""

COMMAND_ORDER = (
    "train",
    "sweep",
    "evaluate",
    "predict",
    "plot",
    "show",
    "serve",
    "export",
    "compare-grads",
    "data-info",
    "download",
    "info",
)
"""The commands in the root help, by how often they are used; others come last."""

TYPE_WORDS = {"str": "text", "Path": "path", "int": "int", "float": "float"}
"""Typer's type label → the word the help shows."""


def flowing(text: str | None) -> str | None:
    """``text`` with the single line breaks inside each paragraph made spaces."""
    if text is None:
        return None
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def range_phrase(low: float | None, high: float | None) -> str | None:
    """``From 1 to 16.``, ``At least 1.`` or ``At most 9.``; ``None`` without bounds."""
    if low is None and high is None:
        return None
    if high is None:
        return f"At least {low}."
    if low is None:
        return f"At most {high}."
    return f"From {low} to {high}."


def value_word(param: TyperOption | TyperArgument, ctx: _click.Context) -> str:
    """The readable type of one value: ``<int>``, ``<path>``, ``<text>``, ``<a|b>``."""
    label = param.display_type(ctx).strip("<>")
    label = re.sub(r"^list\[(.*)\]$", r"\1", label).removesuffix(" range")
    return f"<{TYPE_WORDS.get(label, label)}>"


class Option(TyperOption):
    """A Typer option shown as :mod:`jaxmlp.cli.helptext` says."""

    def display_type_rich(self, ctx: _click.Context) -> str | None:
        if self.is_flag:
            return None
        return self.metavar if self.metavar is not None else value_word(self, ctx)

    def _get_number_range_help_str(self) -> str | None:
        return None

    def _get_default_string(self, *, ctx, show_default_is_str, default_value) -> str:
        if show_default_is_str:
            return str(self.show_default)
        return super()._get_default_string(
            ctx=ctx, show_default_is_str=False, default_value=default_value
        )


class Argument(TyperArgument):
    """A Typer argument shown as :mod:`jaxmlp.cli.helptext` says."""

    def display_type_rich(self, ctx: _click.Context) -> str | None:
        return value_word(self, ctx)

    def _get_number_range_help_str(self) -> str | None:
        return None

    def _rich_display_name(self) -> str:
        return self.display_name_raw + ("..." if self.nargs != 1 else "")

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


def tidied(param: _click.Parameter) -> _click.Parameter:
    """``param`` as :class:`Option` or :class:`Argument`, its range moved into its help."""
    if isinstance(param, (Option, Argument)):
        return param
    if isinstance(param, TyperArgument):
        param.__class__ = Argument
        if param.metavar is None:
            param.metavar = (param.name or "").upper()
    elif isinstance(param, TyperOption):
        param.__class__ = Option
    phrase = range_phrase(getattr(param, "min", None), getattr(param, "max", None))
    if phrase and isinstance(param, (Option, Argument)):
        param.help = f"{param.help or ''} {phrase}".strip()
    return param


def panel_rank(param: _click.Parameter) -> int:
    """Where ``param``'s panel comes in :data:`PANEL_ORDER`."""
    panel = getattr(param, "rich_help_panel", None) or OPTIONS_PANEL
    return PANEL_ORDER.index(panel) if panel in PANEL_ORDER else len(PANEL_ORDER)


def in_panel_order(params: list[Any]) -> list[Any]:
    """``params`` sorted by panel (a stable sort: arguments and each panel keep their order)."""
    return sorted(params, key=lambda param: (isinstance(param, TyperOption), panel_rank(param)))


@contextlib.contextmanager
def off_flags_in_help(params: list[_click.Parameter]) -> Iterator[None]:
    """While the help is drawn, a flag's ``off`` form (``--no-download``) is left out of
    the table, whose extra column would squeeze every help text: the flag's help names it
    (:func:`jaxmlp.cli.options.setting_parameter`)."""
    pairs = [param for param in params if isinstance(param, Option) and param.secondary_opts]
    kept = [param.secondary_opts for param in pairs]
    for param in pairs:
        param.secondary_opts = []
    try:
        yield
    finally:
        for param, secondary in zip(pairs, kept, strict=True):
            param.secondary_opts = secondary


class Command(TyperCommand):
    """Typer's command with the help of :mod:`jaxmlp.cli.helptext`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = flowing(self.help)
        self.params = in_panel_order(self.params)

    def get_params(self, ctx: _click.Context) -> list[_click.Parameter]:
        return [tidied(param) for param in super().get_params(ctx)]

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        with off_flags_in_help(self.get_params(ctx)):
            super().format_help(ctx, formatter)


class Group(TyperGroup):
    """Typer's group with the help of :mod:`jaxmlp.cli.helptext`, its commands listed in
    :data:`COMMAND_ORDER`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = flowing(self.help)

    def list_commands(self, ctx: _click.Context) -> list[str]:
        rank = {name: index for index, name in enumerate(COMMAND_ORDER)}
        return sorted(super().list_commands(ctx), key=lambda name: rank.get(name, len(rank)))

    def get_params(self, ctx: _click.Context) -> list[_click.Parameter]:
        return [tidied(param) for param in super().get_params(ctx)]
