"""TOML config files: ``--config FILE.toml`` read as flags, and settings written back as TOML.

A config file holds settings as top-level keys under their names (``batch_size = 128``,
``sizes = [784, 100, 10]``), and optionally ``preset = "best"``. :func:`read_config`
turns it into the mapping the command line's flags produce, each value checked by the
settings' own checks (:func:`jaxmlp.settings.typed_value`, :func:`~jaxmlp.settings.check_setting`),
so a file takes exactly what the flags take; flags given too win over the file. A bad file
is one :class:`~jaxmlp.errors.ConfigError` line (exit code 2) naming the file, the key and
the problem: not TOML, an unknown key (with the nearest name), a wrong type, a value out of
range. Paths are taken as on the command line, relative to the working directory.

In a sweep's config a list is a grid axis (``lr = [0.05, 0.1]``; ``sizes`` takes a list of
lists), as a comma list is on the sweep's command line; in a training config a list is an
error (but for ``sizes``).

:func:`settings_toml` writes resolved settings as such a file (``--print-config``, a run
directory's ``config.toml``): every setting that is set, so that the file alone gives the
same settings again (:func:`settings_from_config`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jaxmlp import __version__
from jaxmlp.errors import ConfigError
from jaxmlp.settings import (
    PRESETS,
    SPECS,
    Kind,
    Settings,
    check_setting,
    resolve_settings,
    typed_value,
)

PRESET_KEY = "preset"
KNOWN_KEYS = (PRESET_KEY, *SPECS)


@dataclasses.dataclass(frozen=True)
class ConfigFile:
    """What a config file says.

    Attributes:
      path: the file.
      preset: its ``preset``, if it names one.
      values: setting name → value, as the flags give them (a sweep's axes as comma text).
    """

    path: Path
    preset: str | None
    values: dict[str, Any]


def read_config(path: str | os.PathLike, *, sweep: bool = False) -> ConfigFile:
    """Reads and checks a config file (see the module's description).

    Args:
      path: the TOML file.
      sweep: lists make grid axes (``jaxmlp sweep``); otherwise they are refused.

    Raises:
      ConfigError: one line naming the file, the key and the problem.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a TOML file") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigError(f"config file {path} cannot be read: {reason}") from None
    return parse_config(text, path, sweep=sweep)


def parse_config(text: str, path: Path, *, sweep: bool = False) -> ConfigFile:
    """The config in ``text`` (the content of ``path``); see :func:`read_config`."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    preset = None
    values = {}
    for key, value in table.items():
        if key == PRESET_KEY:
            preset = preset_name(path, value)
        else:
            values[key] = config_value(path, key, value, sweep=sweep)
    return ConfigFile(path, preset, values)


def preset_name(path: Path, value: Any) -> str:
    """The ``preset`` key's value, checked."""
    if value not in PRESETS:
        raise ConfigError(
            f"{path}: preset must be one of {', '.join(PRESETS)}, got {toml_value(value)}"
        )
    return value


def unknown_key(path: Path, key: str) -> ConfigError:
    """The error of a key that names no setting, with the nearest known name."""
    candidates = {name: name for name in KNOWN_KEYS}
    candidates.update({name.replace("_", "-"): name for name in KNOWN_KEYS})
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    hint = f"; did you mean {candidates[close[0]]}?" if close else ""
    return ConfigError(f"{path}: unknown setting {key!r}{hint}")


def config_value(path: Path, key: str, value: Any, *, sweep: bool) -> Any:
    """One key's value as the flags give it, checked like a flag's value.

    Raises:
      ConfigError: an unknown key, a table, a list outside a sweep's axes, a value of the
        wrong type or out of range; the message names the file and the key.
    """
    from jaxmlp.sweep import takes_list

    if isinstance(value, dict):
        raise ConfigError(
            f"{path}: {key} is a table; settings are top-level keys, before any [table]"
        )
    if key not in SPECS:
        raise unknown_key(path, key)
    is_axis = isinstance(value, list) and (
        key != "sizes" or any(isinstance(item, list) for item in value)
    )
    if is_axis and not (sweep and takes_list(key)):
        where = "a sweep" if not sweep else f"a sweep, and {key} takes one value"
        raise ConfigError(
            f"{path}: {key} is a list, got {toml_value(value)}; lists make grid axes only in "
            f"{where}"
        )
    items = value if is_axis else [value]
    if is_axis and not items:
        raise ConfigError(f"{path}: {key} is an empty list")
    checked = [checked_value(path, key, item) for item in items]
    if sweep and takes_list(key):
        return axis_text(key, checked)
    return checked[0]


def checked_value(path: Path, key: str, value: Any) -> Any:
    """``value`` as setting ``key``'s type, in its range; errors name the file and key."""
    if key == "devices" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    try:
        typed = typed_value(key, value)
        check_setting(key, typed)
    except ConfigError as error:
        problem = error.problem if error.setting else str(error)
        raise ConfigError(f"{path}: {key} {problem}") from None
    return typed


def axis_text(key: str, values: Sequence[Any]) -> str:
    """A sweep axis as its flag's text: ``0.05,0.1``; sizes ``784,15,10;784,30,10``."""
    if key == "sizes":
        return ";".join(",".join(map(str, sizes)) for sizes in values)
    return ",".join(str(value) for value in values)


def merged(config: ConfigFile | None, flags: Mapping[str, Any]) -> dict[str, Any]:
    """The explicit settings of a command: the file's, then the flags' (which win)."""
    values = dict(config.values) if config is not None else {}
    values.update({name: value for name, value in flags.items() if value is not None})
    return values


def settings_from_config(path: str | os.PathLike, preset: str = "seed") -> Settings:
    """The settings a training config file gives (its preset, else ``preset``)."""
    config = read_config(path)
    return resolve_settings(config.preset or preset, explicit=config.values)


def toml_value(value: Any) -> str:
    """``value`` as a TOML value: arrays, true/false, integers, floats, basic strings."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    return json.dumps(str(value))


KIND_TITLES = {
    Kind.PROGRAM: "The compiled program: network, optimizer, schedule, batches, augmentation.",
    Kind.VALUE: "Per-run values.",
    Kind.DATA: "The data.",
    Kind.DEVICES: "What runs it.",
}


def settings_toml(
    settings: Settings,
    *,
    axes: Mapping[str, Sequence[Any]] | None = None,
    command: str = "train",
) -> str:
    """``settings`` as a config file: every setting that is set, grouped by kind.

    Args:
      settings: the resolved settings (of a sweep: its first member).
      axes: a sweep's grid axes, written as lists in place of the member's value.
      command: the command the file is for, named in its first line.
    """
    axes = axes or {}
    lines = [
        f"# jaxmlp {__version__} settings; run again with: jaxmlp {command} --config FILE",
    ]
    for kind, title in KIND_TITLES.items():
        lines += ["", f"# {title}"]
        for name, spec in SPECS.items():
            if spec.kind is not kind:
                continue
            value = axes.get(name, getattr(settings, name))
            if value is None:
                lines.append(f"# {name}: not set")
            else:
                lines.append(f"{name} = {toml_value(value)}")
    return "\n".join(lines) + "\n"
