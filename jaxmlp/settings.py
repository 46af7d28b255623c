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
  rates, label smoothing, the probability of random erasing, seed). Inside the compiled program they are arrays
  (:class:`RunValues`), so one program serves any value and a population of runs can
  carry one value per member.
- ``data`` and ``devices``: where the examples come from and what runs the program.

:func:`resolve_settings` layers a preset, a checkpoint's stored settings and explicit
values, in that order.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import numbers
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from jaxmlp.errors import ConfigError

SEED_LIMIT = 2**32
"""Seeds are ``0 … 2³² − 1``: ``jax.random.key`` keeps 32 bits of a seed without x64."""
MAX_EPOCHS = 1_000_000
MAX_SHIFT = 27
"""Random shifts are below the side of a 28×28 image (a larger one shows a blank image)."""
DEFAULT_VAL_SIZE = 10_000


class Kind(str, enum.Enum):
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


def number(value: float) -> str:
    """``3``, ``0.25``, ``4294967296``, ``1e+30``: integers in full, other numbers short."""
    if isinstance(value, int) or (math.isfinite(value) and value == int(value) and abs(value) < 1e16):
        return str(int(value))
    return f"{value:g}"


def at_least(low: float) -> Callable[[Any], str | None]:
    """A check: ``value ≥ low``."""
    return lambda value: None if value >= low else f"must be at least {number(low)}, got {number(value)}"


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


def check_sizes(sizes: tuple[int, ...]) -> str | None:
    """A check: at least an input and an output, every width ≥ 1, at least 2 classes."""
    if len(sizes) < 2:
        return "needs at least an input and an output width (e.g. 784,15,10)"
    if min(sizes) < 1:
        return f"must all be positive, got {','.join(map(str, sizes))}"
    if sizes[-1] < 2:
        return f"must end with at least 2 classes, got {sizes[-1]}"
    return None


def check_devices(value: str) -> str | None:
    """A check: ``all`` or a positive count."""
    if value == "all" or (value.isdigit() and int(value) >= 1):
        return None
    return f"must be 'all' or a positive count, got {value!r}"


PROGRAM, VALUE, DATA, DEVICES = Kind.PROGRAM, Kind.VALUE, Kind.DATA, Kind.DEVICES


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything that defines a training run. The defaults are the seed's experiment."""

    sizes: tuple[int, ...] = _setting(
        (784, 15, 10), Spec(PROGRAM, "Layer widths, input first, e.g. 784,15,10.", check=check_sizes)
    )
    init: str = _setting(
        "normal",
        Spec(PROGRAM, "Initialisation: N(0,1) as in the seed, He or Glorot.",
             choices=("normal", "he", "glorot")),
    )
    epochs: int = _setting(
        10,
        Spec(PROGRAM, "Total epochs (on --resume: the new total).",
             check=in_range(1, MAX_EPOCHS, closed=True), resumable=True),
    )
    batch_size: int = _setting(10, Spec(PROGRAM, "Examples per mini-batch.", check=at_least(1)))
    optimizer: str = _setting(
        "sgd", Spec(PROGRAM, "The optax optimizer.", choices=("sgd", "momentum", "adam", "adamw"))
    )
    schedule: str = _setting(
        "constant",
        Spec(PROGRAM, "Learning-rate schedule (cosine and linear decay to 0).",
             choices=("constant", "cosine", "linear")),
    )
    grad: str = _setting(
        "manual",
        Spec(PROGRAM, "Gradients by BP1–BP4 by hand (manual) or jax.grad (autodiff).",
             choices=("manual", "autodiff")),
    )
    augment_shift: int = _setting(
        0,
        Spec(PROGRAM, "Shift each training image by up to N pixels at random.",
             check=in_range(0, MAX_SHIFT, closed=True)),
    )
    augment_flip: bool = _setting(
        False,
        Spec(PROGRAM, "Mirror each training image left-right with probability 0.5."),
    )
    drop_last: bool = _setting(
        False, Spec(PROGRAM, "Drop the ragged last batch of an epoch instead of a short step.")
    )
    lr: float = _setting(0.1, Spec(VALUE, "Learning rate (the peak, with a schedule).",
                                   check=positive_finite))
    momentum: float = _setting(
        0.9, Spec(VALUE, "Nesterov momentum of --optimizer momentum.", check=in_range(0, 1))
    )
    weight_decay: float = _setting(
        0.0,
        Spec(VALUE, "L2 on the weights (decoupled for adamw); biases exempt.",
             check=in_range(0, math.inf)),
    )
    warmup_epochs: float = _setting(
        0.0, Spec(VALUE, "Linear warm-up before the schedule, in epochs.",
                  check=in_range(0, MAX_EPOCHS, closed=True))
    )
    dropout: float = _setting(0.0, Spec(VALUE, "Dropout rate of the hidden layers.",
                                        check=in_range(0, 1)))
    input_dropout: float = _setting(
        0.0, Spec(VALUE, "Dropout rate of the input pixels.", check=in_range(0, 1))
    )
    label_smoothing: float = _setting(
        0.0,
        Spec(VALUE, "Train towards (1 - e) one-hot + e/K instead of one-hot targets.",
             check=in_range(0, 1)),
    )
    augment_erase: float = _setting(
        0.0,
        Spec(VALUE, "Random erasing: with this probability, zero a random rectangle of 2-40 % "
             "of a training image's area (aspect 0.3-3.3).",
             check=in_range(0, 1, closed=True)),
    )
    seed: int = _setting(
        0,
        Spec(VALUE, "Seeds initialisation, shuffling, dropout and augmentation.",
             check=in_range(0, SEED_LIMIT)),
    )
    dataset: str = _setting(
        "mnist", Spec(DATA, "The dataset.", choices=("mnist", "fashion-mnist"))
    )
    data_dir: Path | None = _setting(
        None,
        Spec(DATA, "A directory of the IDX files, or the seed's mnist.pkl.gz.", resumable=True),
    )
    download: bool = _setting(
        True, Spec(DATA, "Download the data when it is found nowhere.", inherited=False,
                   resumable=True)
    )
    val_size: int = _setting(
        DEFAULT_VAL_SIZE,
        Spec(DATA, "The last N official training images validate (0: train on all).",
             check=at_least(0)),
    )
    limit: int | None = _setting(
        None, Spec(DATA, "Use only the first N examples of each split.", check=at_least(1))
    )
    devices: str | None = _setting(
        None,
        Spec(DEVICES, "Data parallel over 'all' devices or N of them; the batch size must "
             "divide by the count.",
             check=check_devices, inherited=False, resumable=True),
    )
    platform: str | None = _setting(
        None,
        Spec(DEVICES, "The backend (JAX_PLATFORMS also chooses it).",
             choices=("cpu", "gpu", "tpu"), inherited=False, resumable=True),
    )
    matmul_precision: str | None = _setting(
        None,
        Spec(DEVICES, "JAX's default matmul precision (GPUs/TPUs may use TF32/bf16 by default).",
             choices=("default", "high", "highest"), inherited=False, resumable=True),
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

    def program(self) -> Program:
        """The settings that shape the compiled program (see :class:`Program`)."""
        return program_of([self])

    def values(self, steps_per_epoch: int) -> RunValues:
        """The per-run values as float32 (and int32) arrays for the compiled program."""
        return run_values([self], steps_per_epoch, stacked=False)


SPECS: dict[str, Spec] = {field.name: field.metadata["spec"] for field in dataclasses.fields(Settings)}
"""Every setting's :class:`Spec`, in declaration order."""
FIELD_TYPES: dict[str, str] = {
    field.name: str(field.type) for field in dataclasses.fields(Settings)
}

PRESETS: dict[str, dict[str, Any]] = {
    "seed": {},
    "best": {
        "sizes": (784, 800, 800, 10),
        "init": "he",
        "optimizer": "momentum",
        "lr": 0.05,
        "batch_size": 128,
        "schedule": "cosine",
        "dropout": 0.2,
        "augment_shift": 1,
        "epochs": 15,
        "val_size": 0,
    },
}
"""Named starting points: ``seed`` is the seed document's experiment (the defaults);
``best`` is the README's recipe for ≥ 99 % on MNIST (other datasets: :data:`DATASET_PRESETS`)."""

DATASET_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "best": {
        "fashion-mnist": {
            "sizes": (784, 1024, 1024, 10),
            "init": "he",
            "optimizer": "adam",
            "lr": 0.001,
            "batch_size": 128,
            "schedule": "cosine",
            "dropout": 0.1,
            "label_smoothing": 0.1,
            "augment_flip": True,
            "epochs": 30,
            "val_size": 0,
        },
    },
}
"""Presets that depend on the dataset: preset name → dataset → its settings, which replace
:data:`PRESETS`' for that dataset. ``best`` on Fashion-MNIST is the README's recipe found
by search on its validation split."""


def preset_values(preset: str, dataset: str) -> dict[str, Any]:
    """The settings preset ``preset`` gives a run on ``dataset`` (a copy)."""
    return dict(DATASET_PRESETS.get(preset, {}).get(dataset, PRESETS[preset]))
PRESET_NAMES = tuple(PRESETS)


def shown(value: Any) -> str:
    """A setting's value as ``--help`` and tables show it: ``784,15,10``, ``0.1``, ``true``."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


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


def parse_sizes(text: Any) -> tuple[int, ...]:
    """Layer widths from ``"784,15,10"`` or a sequence of integers.

    Raises:
      ConfigError: not integers, fewer than two widths, a width below 1, under 2 classes.
    """
    if isinstance(text, str):
        try:
            sizes = tuple(int(part.strip()) for part in text.split(","))
        except ValueError:
            raise ConfigError(
                f"must be comma-separated integers such as 784,15,10, got {text!r}", setting="sizes"
            ) from None
    elif isinstance(text, (list, tuple)) and all(
        isinstance(size, numbers.Integral) and not isinstance(size, bool) for size in text
    ):
        sizes = tuple(int(size) for size in text)
    else:
        raise ConfigError(f"must be a list of integers, got {text!r}", setting="sizes")
    problem = check_sizes(sizes)
    if problem:
        raise ConfigError(problem, setting="sizes")
    return sizes


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


@dataclasses.dataclass(frozen=True)
class Program:
    """What the compiled training program depends on, beyond array shapes.

    Besides the ``program`` settings it records which optional terms the program must
    compute (dropout masks, smoothed targets, weight decay, warm-up, random erasing): a population whose
    members differ in those values computes them for all, with the value 0 where a member
    has none, which leaves that member's arithmetic unchanged.
    """

    sizes: tuple[int, ...]
    init: str
    epochs: int
    batch_size: int
    optimizer: str
    schedule: str
    grad: str
    augment_shift: int
    augment_flip: bool
    drop_last: bool
    dropout: bool
    input_dropout: bool
    label_smoothing: bool
    weight_decay: bool
    warmup: bool
    augment_erase: bool


def program_of(members: list[Settings]) -> Program:
    """The program that trains every one of ``members``; they must share its settings.

    Raises:
      ConfigError: the members differ in a ``program`` setting.
    """
    first = members[0]
    for name in names_of(PROGRAM):
        values = {getattr(member, name) for member in members}
        if len(values) > 1:
            raise ConfigError(
                f"must be the same for runs that share one program, got {sorted(values)}",
                setting=name,
            )
    return Program(
        **{name: getattr(first, name) for name in names_of(PROGRAM)},
        dropout=any(member.dropout for member in members),
        input_dropout=any(member.input_dropout for member in members),
        label_smoothing=any(member.label_smoothing for member in members),
        weight_decay=any(member.weight_decay for member in members),
        warmup=any(member.warmup_epochs for member in members),
        augment_erase=any(member.augment_erase for member in members),
    )


class RunValues(NamedTuple):
    """The per-run values as arrays: scalars for one run, ``(R,)`` for a population of R.

    Derived terms are computed here, on the host in float64 and then rounded to float32 —
    ``1 − rate`` for dropout, ``1 − ε`` and ``ε / K`` for label smoothing, the warm-up in
    steps — exactly as a Python constant would be, so a compiled program that takes them
    as arrays computes what one with the constants built in does, bit for bit.
    """

    lr: Any
    momentum: Any
    weight_decay: Any
    warmup_steps: Any
    dropout_keep: Any
    """``1 − dropout``: the probability that a hidden unit is kept."""
    input_keep: Any
    """``1 − input_dropout``."""
    target_on: Any
    """``1 − ε``: the weight of the one-hot target in a smoothed target."""
    target_floor: Any
    """``ε / K``: what every class gets in a smoothed target."""
    erase_probability: Any
    """The probability that random erasing erases a rectangle of a training image."""


def warmup_steps(settings: Settings, steps_per_epoch: int) -> int:
    """The warm-up in steps, at most one step short of the whole run."""
    total = max(settings.epochs * steps_per_epoch, 1)
    return min(int(settings.warmup_epochs * steps_per_epoch), total - 1)


def run_values(members: list[Settings], steps_per_epoch: int, *, stacked: bool = True) -> RunValues:
    """The members' per-run values, one array per value (a leading member axis if ``stacked``)."""
    import jax.numpy as jnp  # here: reading settings (a command's --help) needs neither
    import numpy as np

    def column(value, dtype=np.float32):
        array = jnp.asarray(np.asarray([value(member) for member in members]).astype(dtype))
        return array if stacked else array[0]

    return RunValues(
        lr=column(lambda s: s.lr),
        momentum=column(lambda s: s.momentum),
        weight_decay=column(lambda s: s.weight_decay),
        warmup_steps=column(lambda s: warmup_steps(s, steps_per_epoch), np.int32),
        dropout_keep=column(lambda s: 1.0 - s.dropout),
        input_keep=column(lambda s: 1.0 - s.input_dropout),
        target_on=column(lambda s: 1.0 - s.label_smoothing),
        target_floor=column(lambda s: s.label_smoothing / s.sizes[-1]),
        erase_probability=column(lambda s: s.augment_erase),
    )
