"""Typer options generated from the settings' declarations: the one place flags map to settings.

Each :class:`~jaxmlp.settings.Settings` field becomes ``--field-name`` with its help
text, its choices as an enumeration (``--optimizer [sgd|momentum|adam|adamw]``) and its
effective default shown (the seed preset's value, and the ``best`` preset's where it
differs, per dataset where the datasets' recipes differ). The options default to ``None``
so that only the flags a user gives override the preset and a resumed checkpoint's
settings (:func:`jaxmlp.settings.resolve_settings`).
"""

from __future__ import annotations

import enum
import functools
import inspect
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import typer

from jaxmlp.display import shown
from jaxmlp.presets import preset_values
from jaxmlp.settings import SPECS, Settings

DEFAULTS = Settings()
DATASET_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def flag_name(setting: str) -> str:
    """``batch_size`` → ``--batch-size``."""
    return "--" + setting.replace("_", "-")


def choice_enum(name: str, choices: tuple[str, ...]) -> type[enum.Enum]:
    """An enumeration of a setting's choices, so ``--help`` lists them."""
    class_name = "".join(part.title() for part in name.split("_"))
    return enum.Enum(class_name, {choice: choice for choice in choices}, type=str)


CHOICES = {name: choice_enum(name, spec.choices) for name, spec in SPECS.items() if spec.choices}

BOOLEAN_FLAGS = {
    "augment_flip": "--augment-flip/--no-augment-flip",
    "drop_last": "--drop-last/--keep-last",
    "download": "--download/--no-download",
}

UNSET_DEFAULTS = {
    "data_dir": "JAXMLP_DATA_DIR, cache, system, download",
    "limit": "all",
    "devices": "1; a sweep on CPU: one per core; all with several processes",
    "platform": "JAX's choice",
    "matmul_precision": "JAX's default",
}


def shown_default(name: str) -> str:
    """The seed preset's value, and the ``best`` preset's where it differs: one value when
    every dataset's ``best`` agrees, else each dataset's (``1 (MNIST), 0 (Fashion-MNIST)``)."""
    default = getattr(DEFAULTS, name)
    text = UNSET_DEFAULTS[name] if default is None else shown(default)
    best = {
        dataset: preset_values("best", dataset).get(name, default)
        for dataset in SPECS["dataset"].choices
    }
    if all(value == default for value in best.values()):
        return text
    if len(set(best.values())) == 1:
        return text + f"; --preset best: {shown(best['mnist'])}"
    each = ", ".join(
        f"{shown(value)} ({DATASET_NAMES[dataset]})" for dataset, value in best.items()
    )
    return text + f"; --preset best: {each}"


def setting_parameter(name: str, *, as_list: bool = False) -> inspect.Parameter:
    """The Typer option of one setting (``as_list``: a text option taking a comma list)."""
    spec = SPECS[name]
    help_text = spec.help
    if as_list:
        annotation: Any = str | None
        help_text += (
            " A comma list (integers also a range, 0-4) makes a grid axis; LOW..HIGH[:log] or"
            " A,B:choice a distribution (--search)."
        )
        declarations: tuple[str, ...] = (flag_name(name),)
    elif name in BOOLEAN_FLAGS:
        annotation, declarations = bool | None, (BOOLEAN_FLAGS[name],)
    elif name in CHOICES:
        annotation, declarations = CHOICES[name] | None, (flag_name(name),)
    elif name == "sizes":
        annotation, declarations = str | None, (flag_name(name),)
    else:
        kind = {"int": int, "float": float, "Path": Path, "str": str}
        base = str(Settings.__dataclass_fields__[name].type).split(" ")[0]
        annotation, declarations = kind[base] | None, (flag_name(name),)
    option = typer.Option(
        None,
        *declarations,
        help=help_text,
        show_default=shown_default(name),
        rich_help_panel=f"{spec.kind.value.title()} settings",
    )
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation
    )


def plain(value: Any) -> Any:
    """A parsed option's value as a setting takes it (an enumeration member → its text)."""
    return value.value if isinstance(value, enum.Enum) else value


def with_settings(
    names: Iterable[str], *, as_list: Callable[[str], bool] = lambda name: False
) -> Callable[[Callable], Callable]:
    """Adds an option per setting in ``names`` to a command.

    The command receives them as one ``settings`` argument: a dict of the settings whose
    flags were given (values as given: text for ``as_list`` settings).
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

        parameters = own + [setting_parameter(name, as_list=as_list(name)) for name in names]
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
