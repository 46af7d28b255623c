"""Typer options generated from the settings' declarations: the one place flags map to settings.

Each :class:`~jaxmlp.settings.Settings` field becomes ``--field-name`` with its help
text, its choices as an enumeration (``--optimizer <sgd|momentum|adam|adamw>``) and the
seed preset's value shown as its default (``--preset``'s help lists the other presets'
values; a command may show its own default, a checkpoint's). The options default to ``None``
so that only the flags a user gives override the preset and a resumed checkpoint's
settings (:func:`jaxmlp.settings.resolve_settings`).
"""

from __future__ import annotations

import enum
import functools
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import typer

from jaxmlp.display import shown
from jaxmlp.errors import ConfigError
from jaxmlp.presets import preset_values
from jaxmlp.settings import SPECS, Kind, Settings

DEFAULTS = Settings()
DATASET_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
PANELS = {
    Kind.PROGRAM: "Network and training",
    Kind.VALUE: "Per-run values",
    Kind.DATA: "Data",
    Kind.DEVICES: "Devices",
}
"""Each kind of setting's help panel (:data:`jaxmlp.cli.helptext.PANEL_ORDER` orders them)."""


def flag_name(setting: str) -> str:
    """``batch_size`` → ``--batch-size``."""
    return "--" + setting.replace("_", "-")


def choice_enum(name: str, choices: tuple[str, ...]) -> type[enum.Enum]:
    """An enumeration of a setting's choices, so ``--help`` lists them."""
    class_name = "".join(part.title() for part in name.split("_"))
    return enum.Enum(class_name, {choice: choice for choice in choices}, type=str)


CHOICES = {name: choice_enum(name, spec.choices) for name, spec in SPECS.items() if spec.choices}

BOOLEAN_FLAGS = {
    "augment_flip": ("--augment-flip", "--no-augment-flip"),
    "drop_last": ("--drop-last", "--keep-last"),
    "download": ("--download", "--no-download"),
}
"""A boolean setting's flags: on, off."""

UNSET_DEFAULTS = {
    "data_dir": "JAXMLP_DATA_DIR, cache, system, download",
    "limit": "all",
    "devices": "1",
    "platform": "JAX's choice",
    "matmul_precision": "JAX's default",
}
"""What a setting whose default is ``None`` means, in the help."""

METAVARS = {"sizes": "<int,int,…>", "devices": "<all|N>"}
"""Settings whose value Typer would show as ``<text>``."""


def shown_default(name: str) -> str:
    """The seed preset's value of a setting as ``--help`` shows it (a boolean: on or off)."""
    default = getattr(DEFAULTS, name)
    if name in BOOLEAN_FLAGS:
        return "on" if default else "off"
    return UNSET_DEFAULTS[name] if default is None else shown(default)


def value_metavar(name: str) -> str:
    """How one value of a setting shows in ``--help``: ``<int>``, ``<sgd|adam>``, ..."""
    spec = SPECS[name]
    if spec.choices:
        return "<" + "|".join(spec.choices) + ">"
    if name in METAVARS:
        return METAVARS[name]
    return "<" + {"Path": "path", "str": "text"}.get(base_type(name), base_type(name)) + ">"


def list_metavar(name: str) -> str:
    """A sweep's metavar of a setting that takes a list: ``<sgd|adam>,…``; sizes: ``…;…``."""
    return value_metavar(name) + (";…" if name == "sizes" else ",…")


def base_type(name: str) -> str:
    """The setting's Python type, without ``| None``: ``int``, ``float``, ``Path``, ..."""
    return str(Settings.__dataclass_fields__[name].type).split(" ")[0]


def setting_parameter(
    name: str, *, as_list: bool = False, default: str | None = None
) -> inspect.Parameter:
    """The Typer option of one setting (``as_list``: a text option taking a comma list;
    ``default``: the default to show instead of the seed preset's)."""
    spec = SPECS[name]
    metavar = list_metavar(name) if as_list else value_metavar(name)
    declarations: tuple[str, ...] = (flag_name(name),)
    if as_list or name == "sizes":
        annotation: Any = str | None
    elif name in BOOLEAN_FLAGS:
        annotation, declarations = bool | None, ("/".join(BOOLEAN_FLAGS[name]),)
    elif name in CHOICES:
        annotation = CHOICES[name] | None
    else:
        kind = {"int": int, "float": float, "Path": Path, "str": str}
        annotation = kind[base_type(name)] | None
    help_text = spec.help
    if name in BOOLEAN_FLAGS and not as_list:
        help_text += f" {BOOLEAN_FLAGS[name][1]} turns it off."
    option = typer.Option(
        None,
        *declarations,
        help=help_text,
        metavar=None if name in BOOLEAN_FLAGS and not as_list else metavar,
        show_default=default if default is not None else shown_default(name),
        rich_help_panel=PANELS[spec.kind],
    )
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation
    )


def flag_text(name: str, value: Any) -> str:
    """A setting's value as the flags that give it: ``--lr 0.05``, ``--augment-flip``."""
    if name in BOOLEAN_FLAGS:
        return BOOLEAN_FLAGS[name][0 if value else 1]
    return f"{flag_name(name)} {shown(value)}"


def preset_recipes(preset: str) -> str:
    """A preset's values as flags, per dataset where they differ:
    ``MNIST: --sizes 784,800,800,10 ...; Fashion-MNIST: ...``."""
    recipes = {
        dataset: " ".join(flag_text(name, value) for name, value in values.items())
        for dataset in SPECS["dataset"].choices
        for values in [preset_values(preset, dataset)]
    }
    if len(set(recipes.values())) == 1:
        return next(iter(recipes.values()))
    return "; ".join(f"{DATASET_NAMES[dataset]}: {flags}" for dataset, flags in recipes.items())


def preset_help(action: str) -> str:
    """``--preset``'s help: what each preset is, the ``best`` recipes written out."""
    return (
        f"Starting settings {action}; flags override them. 'seed': the seed document's "
        "experiment, the defaults shown below. 'best': the README's best recipe for the "
        f"--dataset, {preset_recipes('best')}."
    )


def renamed_option(old: str, new: str, *, panel: str | None = None) -> Any:
    """A hidden option under an option's old name, kept working for one release
    (:func:`new_or_old`)."""
    return typer.Option(
        None, old, hidden=True, help=f"The old name of {new}.", rich_help_panel=panel
    )


def new_or_old(new_flag: str, new: Any, old_flag: str, old: Any) -> Any:
    """The value of an option given under its new name or its old one (saying, on standard
    error, that the old name goes away).

    Raises:
      ConfigError: both names given.
    """
    if old is None:
        return new
    if new is not None:
        raise ConfigError(f"give {new_flag} or its old name {old_flag}, not both")
    typer.echo(
        f"note: {old_flag} is now {new_flag}; the old name goes away in the next release",
        err=True,
    )
    return old


def plain(value: Any) -> Any:
    """A parsed option's value as a setting takes it (an enumeration member → its text)."""
    return value.value if isinstance(value, enum.Enum) else value


def with_settings(
    names: Iterable[str],
    *,
    as_list: Callable[[str], bool] = lambda name: False,
    defaults: Mapping[str, str] | None = None,
) -> Callable[[Callable], Callable]:
    """Adds an option per setting in ``names`` to a command.

    The command receives them as one ``settings`` argument: a dict of the settings whose
    flags were given (values as given: text for ``as_list`` settings). ``defaults`` are
    the defaults this command shows where they are not the seed preset's (a checkpoint's).
    """
    names = tuple(names)

    def decorate(command: Callable) -> Callable:
        own = [
            parameter
            for parameter in inspect.signature(command).parameters.values()
            if parameter.name != "settings"
        ]

        @functools.wraps(command)
        def wrapper(**arguments):
            given = {name: plain(arguments.pop(name)) for name in names}
            return command(**arguments, settings={k: v for k, v in given.items() if v is not None})

        parameters = own + [
            setting_parameter(name, as_list=as_list(name), default=(defaults or {}).get(name))
            for name in names
        ]
        hints = typing.get_type_hints(command)
        wrapper.__signature__ = inspect.Signature(
            [p.replace(annotation=hints.get(p.name, p.annotation)) for p in parameters]
        )
        wrapper.__annotations__ = {
            p.name: p.annotation for p in wrapper.__signature__.parameters.values()
        }
        del wrapper.__wrapped__
        return wrapper

    return decorate


TRAIN_SETTINGS = tuple(SPECS)
DATA_SETTINGS = ("dataset", "data_dir", "download")
