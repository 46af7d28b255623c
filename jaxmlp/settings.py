"""A run's settings: one typed value, validated once, layered by one function.

:class:`Settings` holds everything that defines a training run — the network, the
optimizer, the per-run values, the data and the devices. Each field is declared once,
with its default (the seed document's experiment), its help text, its choices and its
range; the command line's options, the checkpoint's stored settings and every check are
derived from these declarations, so adding a setting is one edit.

Settings come in kinds (:class:`Kind`):

- ``program``: they shape the compiled program (layer sizes, batch size, epochs,
  optimizer and schedule kinds, gradient method, augmentation). Runs that share them can
  share one compiled program.
- ``value``: per-run values (learning rate, momentum, weight decay, warm-up, dropout
  rates, label smoothing, the probability of random erasing, seed). Inside the compiled
  program they are arrays (:class:`jaxmlp.program.RunValues`), so one program serves any
  value and a population of runs can carry one value per member.
- ``data`` and ``devices``: where the examples come from and what runs the program.

The fields are grouped by topic: the network, the optimizer, regularisation,
augmentation, randomness, the data, the devices. This module is the schema alone: the
recipes are :mod:`jaxmlp.presets`, what is derived for the compiled program is
:mod:`jaxmlp.program`. :func:`resolve_settings` layers a preset, a checkpoint's stored
settings and explicit values, in that order.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import numbers
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jaxmlp.architecture import INIT_SCHEMES, check_sizes, parse_sizes
from jaxmlp.display import number
from jaxmlp.errors import ConfigError
from jaxmlp.presets import PRESETS, preset_values

SEED_LIMIT = 2**32
"""Seeds are ``0 … 2³² − 1``: ``jax.random.key`` keeps 32 bits of a seed without x64."""
MAX_EPOCHS = 1_000_000
MAX_SHIFT = 27
"""Random shifts are below the side of a 28×28 image (a larger one shows a blank image)."""
DEFAULT_VAL_SIZE = 10_000


class Kind(enum.StrEnum):
    """What a setting governs."""

    PROGRAM = "program"
    VALUE = "value"
    DATA = "data"
    DEVICES = "devices"


@dataclasses.dataclass(frozen=True)
class Spec:
    """How one setting is shown, checked and carried over.

    Attributes:
      kind: see :class:`Kind`.
      help: the ``--help`` text of its flag.
      choices: the allowed values of a text setting.
      check: returns the problem with a value (``"must be positive, got -1"``), or ``None``.
      inherited: on ``--resume``, the checkpoint's value is the starting point (else the
        current invocation decides: the machine, the devices and the network may differ).
      resumable: may differ from the checkpoint's value on ``--resume`` (every ``value``
        setting may: a resumed run can continue with another learning rate).
    """

    kind: Kind
    help: str
    choices: tuple[str, ...] | None = None
    check: Callable[[Any], str | None] | None = None
    inherited: bool = True
    resumable: bool = False


def _setting(default: Any, spec: Spec) -> Any:
    return dataclasses.field(default=default, metadata={"spec": spec})


def at_least(low: float) -> Callable[[Any], str | None]:
    """A check: ``value ≥ low``."""
    return lambda value: (
        None if value >= low else f"must be at least {number(low)}, got {number(value)}"
    )


def in_range(low: float, high: float, *, closed: bool = False) -> Callable[[Any], str | None]:
    """A check: ``low ≤ value < high`` (``≤ high`` when ``closed``)."""

    def check(value):
        inside = low <= value <= high if closed else low <= value < high
        bracket = "]" if closed else ")"
        interval = f"[{number(low)}, {number(high)}{bracket}"
        return None if inside else f"must be in {interval}, got {number(value)}"

    return check


def positive_finite(value: float) -> str | None:
    """A check: a finite number above 0."""
    return None if value > 0 and math.isfinite(value) else f"must be positive, got {number(value)}"


def check_devices(value: str) -> str | None:
    """A check: ``all`` or a positive count."""
    if value == "all" or (value.isdigit() and int(value) >= 1):
        return None
    return f"must be 'all' or a positive count, got {value!r}"


PROGRAM, VALUE, DATA, DEVICES = Kind.PROGRAM, Kind.VALUE, Kind.DATA, Kind.DEVICES


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything that defines a training run. The defaults are the seed's experiment."""

    # The network
    sizes: tuple[int, ...] = _setting(
        (784, 15, 10),
        Spec(PROGRAM, "Layer widths, input first, e.g. 784,15,10.", check=check_sizes),
    )
    init: str = _setting(
        "normal",
        Spec(PROGRAM, "Initialisation: N(0,1) as in the seed, He or Glorot.", choices=INIT_SCHEMES),
    )
    grad: str = _setting(
        "manual",
        Spec(
            PROGRAM,
            "Gradients by BP1–BP4 by hand (manual) or jax.grad (autodiff).",
            choices=("manual", "autodiff"),
        ),
    )

    # The optimizer and its schedule
    optimizer: str = _setting(
        "sgd", Spec(PROGRAM, "The optax optimizer.", choices=("sgd", "momentum", "adam", "adamw"))
    )
    lr: float = _setting(
        0.1, Spec(VALUE, "Learning rate (the peak, with a schedule).", check=positive_finite)
    )
    momentum: float = _setting(
        0.9, Spec(VALUE, "Nesterov momentum of --optimizer momentum.", check=in_range(0, 1))
    )
    schedule: str = _setting(
        "constant",
        Spec(
            PROGRAM,
            "Learning-rate schedule (cosine and linear decay to 0).",
            choices=("constant", "cosine", "linear"),
        ),
    )
    warmup_epochs: float = _setting(
        0.0,
        Spec(
            VALUE,
            "Linear warm-up before the schedule, in epochs.",
            check=in_range(0, MAX_EPOCHS, closed=True),
        ),
    )
    epochs: int = _setting(
        10,
        Spec(
            PROGRAM,
            "Total epochs.",
            check=in_range(1, MAX_EPOCHS, closed=True),
            resumable=True,
        ),
    )
    batch_size: int = _setting(10, Spec(PROGRAM, "Examples per mini-batch.", check=at_least(1)))
    drop_last: bool = _setting(
        False, Spec(PROGRAM, "Drop the ragged last batch of an epoch instead of a short step.")
    )

    # Regularisation
    weight_decay: float = _setting(
        0.0,
        Spec(
            VALUE,
            "L2 on the weights (decoupled for adamw); biases exempt.",
            check=in_range(0, math.inf),
        ),
    )
    dropout: float = _setting(
        0.0, Spec(VALUE, "Dropout rate of the hidden layers.", check=in_range(0, 1))
    )
    input_dropout: float = _setting(
        0.0, Spec(VALUE, "Dropout rate of the input pixels.", check=in_range(0, 1))
    )
    label_smoothing: float = _setting(
        0.0,
        Spec(
            VALUE,
            "Train towards (1 - e) one-hot + e/K instead of one-hot targets.",
            check=in_range(0, 1),
        ),
    )

    # Augmentation
    augment_shift: int = _setting(
        0,
        Spec(
            PROGRAM,
            "Shift each training image by up to N pixels at random.",
            check=in_range(0, MAX_SHIFT, closed=True),
        ),
    )
    augment_flip: bool = _setting(
        False,
        Spec(PROGRAM, "Mirror each training image left-right with probability 0.5."),
    )
    augment_erase: float = _setting(
        0.0,
        Spec(
            VALUE,
            "Random erasing: with this probability, zero a random rectangle of 2-40 % "
            "of a training image's area (aspect 0.3-3.3).",
            check=in_range(0, 1, closed=True),
        ),
    )

    # Randomness
    seed: int = _setting(
        0,
        Spec(
            VALUE,
            "Seeds initialisation, shuffling, dropout and augmentation.",
            check=in_range(0, SEED_LIMIT),
        ),
    )

    # The data
    dataset: str = _setting("mnist", Spec(DATA, "The dataset.", choices=("mnist", "fashion-mnist")))
    data_dir: Path | None = _setting(  # noqa: RUF009 - _setting makes a dataclasses.field
        None,
        Spec(DATA, "A directory of the IDX files, or the seed's mnist.pkl.gz.", resumable=True),
    )
    download: bool = _setting(
        True,
        Spec(DATA, "Download the data when it is found nowhere.", inherited=False, resumable=True),
    )
    val_size: int = _setting(
        DEFAULT_VAL_SIZE,
        Spec(
            DATA,
            "The last N official training images validate (0: train on all).",
            check=at_least(0),
        ),
    )
    limit: int | None = _setting(
        None, Spec(DATA, "Use only the first N examples of each split.", check=at_least(1))
    )

    # The devices
    devices: str | None = _setting(
        None,
        Spec(
            DEVICES,
            "Data parallel over 'all' devices or N of them; the batch size must "
            "divide by the count.",
            check=check_devices,
            inherited=False,
            resumable=True,
        ),
    )
    platform: str | None = _setting(
        None,
        Spec(
            DEVICES,
            "The backend (JAX_PLATFORMS also chooses it).",
            choices=("cpu", "gpu", "tpu"),
            inherited=False,
            resumable=True,
        ),
    )
    matmul_precision: str | None = _setting(
        None,
        Spec(
            DEVICES,
            "JAX's default matmul precision (GPUs/TPUs may use TF32/bf16 by default).",
            choices=("default", "high", "highest"),
            inherited=False,
            resumable=True,
        ),
    )

    def __post_init__(self):
        for name in SPECS:
            object.__setattr__(self, name, typed_value(name, getattr(self, name)))
        validate(self)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings, every field (stored whole in checkpoints)."""
        values = {name: getattr(self, name) for name in SPECS}
        values["sizes"] = list(self.sizes)
        values["data_dir"] = str(self.data_dir) if self.data_dir is not None else None
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, complete: bool = True) -> Settings:
        """Settings from JSON values, checked field by field.

        Args:
          values: setting name → JSON value.
          complete: every setting must be present (otherwise missing ones take their
            defaults).

        Raises:
          ConfigError: an unknown or missing setting, or a value of the wrong type or range.
        """
        if not isinstance(values, Mapping):
            raise ConfigError(f"settings must be a JSON object, got {type(values).__name__}")
        unknown = sorted(set(values) - set(SPECS))
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(map(str, unknown))}")
        missing = sorted(set(SPECS) - set(values))
        if complete and missing:
            raise ConfigError(f"settings are missing: {', '.join(missing)}")
        return cls(**{name: typed_value(name, value) for name, value in values.items()})

    def program(self):
        """The settings that shape the compiled program (:class:`jaxmlp.program.Program`)."""
        from jaxmlp.program import program_of

        return program_of([self])

    def values(self, steps_per_epoch: int):
        """The per-run values as float32 (and int32) scalar arrays
        (:class:`jaxmlp.program.RunValues`)."""
        from jaxmlp.program import run_values

        return run_values([self], steps_per_epoch, stacked=False)


SPECS: dict[str, Spec] = {
    field.name: field.metadata["spec"] for field in dataclasses.fields(Settings)
}
"""Every setting's :class:`Spec`, in declaration order."""
FIELD_TYPES: dict[str, str] = {
    field.name: str(field.type) for field in dataclasses.fields(Settings)
}


def names_of(kind: Kind) -> tuple[str, ...]:
    """The settings of one kind, in declaration order."""
    return tuple(name for name, spec in SPECS.items() if spec.kind is kind)


def typed_value(name: str, value: Any) -> Any:
    """``value`` as setting ``name``'s type; raises :class:`ConfigError` if it is not one."""
    kind = FIELD_TYPES[name]
    optional = kind.endswith("| None")
    if value is None:
        if optional:
            return None
        raise ConfigError(f"must be a {_type_word(kind)}, got null", setting=name)
    if name == "sizes":
        return parse_sizes(value)
    if kind.startswith("bool"):
        if isinstance(value, bool):
            return value
    elif kind.startswith("int"):
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
    elif kind.startswith("float"):
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
    elif kind.startswith("Path"):
        if isinstance(value, (str, Path)):
            return Path(value)
    elif isinstance(value, str):
        return value
    raise ConfigError(f"must be a {_type_word(kind)}, got {value!r}", setting=name)


def _type_word(kind: str) -> str:
    base = kind.split(" ")[0]
    return {
        "tuple[int,": "list of integers",
        "int": "whole number",
        "float": "number",
        "bool": "true or false",
        "Path": "path",
        "str": "string",
    }.get(base, base)


def check_setting(name: str, value: Any) -> None:
    """Checks one setting's choices and range: the one place each range is checked.

    Raises:
      ConfigError: naming the setting.
    """
    spec = SPECS[name]
    if value is None:
        return
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(f"must be one of {', '.join(spec.choices)}, got {value!r}", setting=name)
    problem = spec.check(value) if spec.check is not None else None
    if problem:
        raise ConfigError(problem, setting=name)


def validate(settings: Settings) -> None:
    """Checks every setting's choices and range; raises :class:`ConfigError`."""
    for name in SPECS:
        check_setting(name, getattr(settings, name))


def resolve_settings(
    preset: str = "seed",
    stored: Settings | None = None,
    explicit: Mapping[str, Any] | None = None,
) -> Settings:
    """The one layering of settings: preset, then a checkpoint's, then explicit values.

    The preset's values are those for the run's dataset (:func:`preset_values`): the
    explicit ``dataset`` if given, else the checkpoint's, else the default (MNIST). So
    ``--preset best --dataset fashion-mnist`` starts from Fashion-MNIST's best recipe.

    Args:
      preset: a name from :data:`PRESETS`.
      stored: the settings of the checkpoint a run resumes; its inherited settings
        (:attr:`Spec.inherited`) replace the preset's.
      explicit: setting name → value given explicitly (flags); ``None`` values are absent.

    Raises:
      ConfigError: an unknown preset or setting, or a value out of range.
    """
    if preset not in PRESETS:
        raise ConfigError(f"must be one of {', '.join(PRESETS)}, got {preset!r}", setting="preset")
    given = {name: value for name, value in (explicit or {}).items() if value is not None}
    unknown = sorted(set(given) - set(SPECS))
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(unknown)}")
    dataset = given.get("dataset", stored.dataset if stored is not None else Settings.dataset)
    layered = preset_values(preset, dataset)
    if stored is not None:
        layered.update(
            {name: getattr(stored, name) for name, spec in SPECS.items() if spec.inherited}
        )
    layered.update(given)
    if "sizes" in layered:
        layered["sizes"] = parse_sizes(layered["sizes"])
    return Settings(**layered)


def resume_conflicts(stored: Settings, explicit: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """Explicit values that would change what a checkpoint's run is: ``(name, given, stored)``.

    A resumed run continues the stored run's program: only the per-run values and the
    settings marked :attr:`Spec.resumable` (epochs, data directory, download, devices)
    may differ.
    """
    conflicts = []
    for name, value in explicit.items():
        spec = SPECS[name]
        if value is None or spec.resumable or spec.kind is Kind.VALUE:
            continue
        given = parse_sizes(value) if name == "sizes" else value
        if given != getattr(stored, name):
            conflicts.append((name, given, getattr(stored, name)))
    return conflicts
