"""Search over settings: distributions, random sampling, successive halving and PBT.

Everything here is a pure function of its arguments (and a seed): the sweep that trains a
population calls these between epochs. Nothing here trains.

**Distributions.** On the command line a setting may be given a distribution instead of a
list: ``--lr 1e-3..3e-1:log`` (log-uniform), ``--dropout 0..0.5`` (uniform), ``--batch-size
16..256:log`` (integers: every whole number in the range can be drawn, the top included),
``--optimizer sgd,adam:choice`` (each value drawn with equal probability). A plain list
(``--lr 0.1,0.5``) is still a grid axis. Both ends of a range must be values the setting
accepts (its own range check, :func:`jaxmlp.settings.check_setting`, so the messages are
the flag's); a log range must lie above 0. Drawn numbers are rounded to
:data:`SIGNIFICANT` significant digits, so a member's values read well and replay exactly
from the command line.

**Members.** :func:`draw_members` draws ``runs`` points from a search seed and crosses each
with the grid's axes: the same seed gives the same members.

**Successive halving.** At each rung (an epoch), :func:`survivors` keeps the top
``⌈n / η⌉`` members by validation accuracy (rounding up: a rung never stops every member,
and ``n < η`` keeps one); ties go to the lower member index; a member without an accuracy
(diverged) ranks last.

**Population-based training.** At each exploit epoch, :func:`truncation_sources` ranks the
members; each of the bottom ``q`` copies a member drawn at random from the top ``q``
(``⌈q·n⌉`` members each, at most ``⌊n/2⌋``); the trainer copies their rows
(:meth:`jaxmlp.train.FitState.take`); then :func:`explore` multiplies each copied
member's searched values by a factor drawn from ``--perturb`` or, with probability
``--resample``, draws them afresh, clipped to the distribution's range. :func:`inherited`
follows a member's copies back through the epochs: the values its weights were trained
with.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from jaxmlp.display import shown
from jaxmlp.errors import ConfigError
from jaxmlp.settings import FIELD_TYPES, SEED_LIMIT, SPECS, check_setting, typed_value
from jaxmlp.sweep import expand_grid, parse_axis, takes_list

if TYPE_CHECKING:  # numpy is imported where it draws: `jaxmlp sweep --help` need not load it
    import numpy as np

METHODS = ("grid", "random", "halving", "pbt")
SIGNIFICANT = 4
"""Significant digits of a drawn or perturbed number."""
DEFAULT_ETA = 3
DEFAULT_TRUNCATION = 0.2
DEFAULT_PERTURB = (0.8, 1.2)
DEFAULT_RESAMPLE = 0.25
CHOICE_SUFFIX = ":choice"
LOG_SUFFIX = ":log"
RANGE_PATTERN = re.compile(r"^(?P<low>[^.]*(?:\.[^.]+)?)\.\.(?P<high>.+?)(?P<log>:log)?$")
"""``LOW..HIGH`` or ``LOW..HIGH:log``; ``LOW`` may hold one decimal point (``0.5..0.9``)."""


def searchable(name: str) -> bool:
    """Whether setting ``name`` may take a distribution: the settings a sweep lists."""
    return takes_list(name)


def is_integer(name: str) -> bool:
    """Whether setting ``name`` holds whole numbers."""
    return FIELD_TYPES[name].startswith("int")


def is_number(name: str) -> bool:
    """Whether setting ``name`` holds a number (whole or not), not text or layer sizes."""
    return name != "sizes" and (is_integer(name) or FIELD_TYPES[name].startswith("float"))


def rounded(value: float, digits: int = SIGNIFICANT) -> float:
    """``value`` to ``digits`` significant digits (``0.0123456`` → ``0.01235``)."""
    return float(f"{value:.{digits}g}")


@dataclasses.dataclass(frozen=True)
class Range:
    """A number drawn uniformly from ``[low, high]`` (log-uniformly if ``log``).

    Integer settings draw every whole number from ``low`` to ``high`` inclusive.
    """

    name: str
    low: float
    high: float
    log: bool = False

    @property
    def integer(self) -> bool:
        """Whether it draws whole numbers."""
        return is_integer(self.name)

    def draw(self, rng: np.random.Generator, count: int) -> list:
        """``count`` values."""
        import numpy as np

        if self.integer:
            top = self.high + 1
            if self.log:
                raw = np.floor(np.exp(rng.uniform(math.log(self.low), math.log(top), count)))
            else:
                raw = np.floor(rng.uniform(self.low, top, count))
            return [int(min(max(value, self.low), self.high)) for value in raw]
        if self.log:
            raw = np.exp(rng.uniform(math.log(self.low), math.log(self.high), count))
        else:
            raw = rng.uniform(self.low, self.high, count)
        return [self.clip(float(value)) for value in raw]

    def clip(self, value: float) -> Any:
        """``value`` inside the range, rounded (whole numbers for an integer setting)."""
        inside = min(max(value, self.low), self.high)
        if self.integer:
            return round(inside)
        return min(max(rounded(inside), self.low), self.high)

    def perturb(self, value: Any, factor: float, rng: np.random.Generator) -> Any:
        """``value × factor``, clipped to the range (``rng`` unused: the factor decides)."""
        del rng
        return self.clip(value * factor)

    def text(self) -> str:
        """As the command line writes it: ``0.001..0.3:log``."""
        return f"{self.low:g}..{self.high:g}" + (LOG_SUFFIX if self.log else "")


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of ``values``, each drawn with equal probability."""

    name: str
    values: tuple

    def draw(self, rng: np.random.Generator, count: int) -> list:
        """``count`` values."""
        return [self.values[int(i)] for i in rng.integers(0, len(self.values), count)]

    def perturb(self, value: Any, factor: float, rng: np.random.Generator) -> Any:
        """A neighbour of ``value`` in the list: the next one for a factor above 1, the
        previous one below 1 (clipped to the ends); itself for 1."""
        del rng
        index = self.values.index(value) + (factor > 1) - (factor < 1)
        return self.values[min(max(index, 0), len(self.values) - 1)]

    def text(self) -> str:
        """As the command line writes it: ``sgd,adam:choice``."""
        separator = ";" if self.name == "sizes" else ","
        return separator.join(map(shown, self.values)) + CHOICE_SUFFIX


Distribution = Range | Choice


def is_distribution(text: str) -> bool:
    """Whether a flag's text is a distribution (``a..b``, ``a..b:log``, ``…:choice``) rather
    than a grid list."""
    return ".." in text or text.endswith(CHOICE_SUFFIX)


def parse_distribution(name: str, text: str) -> Distribution:
    """Setting ``name``'s distribution from its flag's text.

    Raises:
      ConfigError: bad syntax, a range on a setting that is not a number, ``low ≥ high``,
        a log range that does not lie above 0, an end or choice the setting does not take.
    """
    if not searchable(name):
        raise ConfigError(f"takes no distribution, got {text!r}", setting=name)
    if text.endswith(CHOICE_SUFFIX):
        values = parse_axis(name, text[: -len(CHOICE_SUFFIX)])
        for value in values:
            check_setting(name, typed_value(name, value))
        if len(values) < 2:
            raise ConfigError(f"needs at least two values to choose from, got {text!r}", name)
        return Choice(name, tuple(values))
    if not is_number(name):
        raise ConfigError(
            f"takes a list of choices (a,b:choice), not a range, got {text!r}", setting=name
        )
    match = RANGE_PATTERN.match(text.strip())
    if match is None:
        raise ConfigError(f"has {text!r}, not a range such as 1e-3..3e-1:log", setting=name)
    low, high = (_end(name, match[end], text) for end in ("low", "high"))
    log = match["log"] is not None
    if low >= high:
        raise ConfigError(f"has the range {text!r}, whose minimum is not below its maximum", name)
    if log and low <= 0:
        raise ConfigError(f"has the log range {text!r}, which must lie above 0", setting=name)
    return Range(name, low, high, log)


def _end(name: str, item: str, text: str) -> float:
    """One end of a range, as the setting's type, checked by the setting's own range."""
    try:
        value = int(item) if is_integer(name) else float(item)
    except ValueError:
        word = "whole number" if is_integer(name) else "number"
        raise ConfigError(
            f"has {item!r} in {text!r}, which is not a {word}", setting=name
        ) from None
    check_setting(name, typed_value(name, value))
    return value


def split_search_space(
    given: Mapping[str, Any],
) -> tuple[dict[str, Distribution], dict[str, Any]]:
    """The distributions among flag values, and the rest (grid lists and fixed values)."""
    distributions = {
        name: parse_distribution(name, text)
        for name, text in given.items()
        if isinstance(text, str) and searchable(name) and is_distribution(text)
    }
    rest = {name: value for name, value in given.items() if name not in distributions}
    return distributions, rest


def draw_points(
    distributions: Mapping[str, Distribution], runs: int, search_seed: int
) -> list[dict[str, Any]]:
    """``runs`` points of the search space, the same for the same seed.

    Each setting draws its column in the settings' declaration order, from one generator
    seeded by ``search_seed``: a point does not depend on the order of the flags.
    """
    import numpy as np

    rng = np.random.default_rng([search_seed, 0])
    columns = {name: distributions[name].draw(rng, runs) for name in SPECS if name in distributions}
    return [{name: column[i] for name, column in columns.items()} for i in range(runs)]


def draw_members(
    preset: str,
    distributions: Mapping[str, Distribution],
    axes: Mapping[str, list[Any]],
    fixed: Mapping[str, Any],
    runs: int,
    search_seed: int,
) -> list:
    """The members of a search: each drawn point crossed with every combination of the
    grid's axes (point-major), layered on the preset and the fixed values."""
    members = []
    for point in draw_points(distributions, runs, search_seed):
        members += expand_grid(preset, axes, {**fixed, **point})
    return members


@dataclasses.dataclass(frozen=True)
class SearchPlan:
    """How a sweep searches; :func:`resolve_search` checks and completes it.

    Attributes:
      method: one of :data:`METHODS`.
      runs: the points drawn from the distributions (``None``: no distributions).
      search_seed: seeds the draws and PBT's choices.
      eta: halving keeps the top ``⌈n / η⌉`` at each rung.
      rungs: halving's rungs, in epochs, strictly increasing, below the epochs.
      ready: PBT exploits every ``ready`` epochs.
      truncation: PBT's fraction ``q`` of the bottom that copies the top.
      perturb: PBT's factors, one drawn per copied value.
      resample: PBT's probability of drawing a copied value afresh.
    """

    method: str = "grid"
    runs: int | None = None
    search_seed: int = 0
    eta: int = DEFAULT_ETA
    rungs: tuple[int, ...] = ()
    ready: int = 1
    truncation: float = DEFAULT_TRUNCATION
    perturb: tuple[float, ...] = DEFAULT_PERTURB
    resample: float = DEFAULT_RESAMPLE

    def exploit_epochs(self, epochs: int) -> list[int]:
        """The epochs after which PBT exploits: every ``ready``, before the last epoch."""
        return list(range(self.ready, epochs, self.ready))


METHOD_FLAGS = {
    "halving": ("eta", "rungs"),
    "pbt": ("ready", "truncation", "perturb", "resample"),
}


def resolve_search(
    method: str,
    epochs: int,
    *,
    distributions: Mapping[str, Distribution] | None = None,
    runs: int | None = None,
    search_seed: int | None = None,
    eta: int | None = None,
    rungs: str | None = None,
    ready: int | None = None,
    truncation: float | None = None,
    perturb: str | None = None,
    resample: float | None = None,
) -> SearchPlan:
    """The search the flags ask for, checked (``None``: the flag was not given).

    Raises:
      ConfigError: an unknown method; a flag of another method; distributions with a grid,
        or without ``--runs``; ``--runs`` or ``--search-seed`` without distributions; random
        search or PBT without distributions; ``η < 2``; rungs not strictly increasing or
        not below the epochs; ``--truncation`` outside ``(0, 0.5]``; a factor that is not
        positive; a probability outside ``[0, 1]``; ``--ready`` not below the epochs.
    """
    if method not in METHODS:
        raise ConfigError(f"must be one of {', '.join(METHODS)}, got {method!r}", "search")
    given = {
        "eta": eta,
        "rungs": rungs,
        "ready": ready,
        "truncation": truncation,
        "perturb": perturb,
        "resample": resample,
    }
    for other, flags in METHOD_FLAGS.items():
        for flag in flags:
            if given[flag] is not None and method != other:
                raise ConfigError(f"applies only to --search {other}", setting=flag)
    distributions = distributions or {}
    if distributions and method == "grid":
        names = ", ".join("--" + name.replace("_", "-") for name in distributions)
        raise ConfigError(
            f"{names}: a distribution needs --search random, halving or pbt (a grid takes lists)"
        )
    if distributions and runs is None:
        raise ConfigError("is needed with a distribution: how many members to draw", "runs")
    if runs is not None and not distributions:
        raise ConfigError(
            "draws members from distributions (e.g. --lr 1e-3..1e-1:log), and none was given",
            setting="runs",
        )
    if search_seed is not None and not distributions:
        raise ConfigError(
            "seeds the draws from distributions (e.g. --lr 1e-3..1e-1:log), and none was given",
            setting="search_seed",
        )
    if method == "random" and not distributions:
        raise ConfigError(
            "random needs a setting given as a distribution (e.g. --lr 1e-3..1e-1:log)", "search"
        )
    if runs is not None and runs < 1:
        raise ConfigError(f"must be at least 1, got {runs}", setting="runs")
    if search_seed is not None and not 0 <= search_seed < SEED_LIMIT:
        raise ConfigError(f"must be in [0, {SEED_LIMIT}), got {search_seed}", "search_seed")
    plan = SearchPlan(method=method, runs=runs, search_seed=search_seed or 0)
    if method == "halving":
        eta = DEFAULT_ETA if eta is None else eta
        if eta < 2:
            raise ConfigError(f"must be at least 2, got {eta}", setting="eta")
        parsed = parse_rungs(rungs, epochs) if rungs is not None else default_rungs(epochs, eta)
        if not parsed:
            raise ConfigError(f"leave no rung below --epochs {epochs}: train longer", "rungs")
        return dataclasses.replace(plan, eta=eta, rungs=parsed)
    if method == "pbt":
        if not distributions:
            raise ConfigError(
                "pbt needs a setting given as a distribution to explore (e.g. --lr 1e-3..1e-1:log)",
                "search",
            )
        ready = 1 if ready is None else ready
        if not 1 <= ready < epochs:
            raise ConfigError(f"must be in [1, {epochs}) (below --epochs), got {ready}", "ready")
        truncation = DEFAULT_TRUNCATION if truncation is None else truncation
        if not 0 < truncation <= 0.5:
            raise ConfigError(f"must be in (0, 0.5], got {truncation:g}", setting="truncation")
        resample = DEFAULT_RESAMPLE if resample is None else resample
        if not 0 <= resample <= 1:
            raise ConfigError(f"must be in [0, 1], got {resample:g}", setting="resample")
        factors = DEFAULT_PERTURB if perturb is None else parse_factors(perturb)
        return dataclasses.replace(
            plan, ready=ready, truncation=truncation, resample=resample, perturb=factors
        )
    return plan


def parse_rungs(text: str, epochs: int) -> tuple[int, ...]:
    """``"2,6"`` → ``(2, 6)``: whole epochs, strictly increasing, from 1 to below ``epochs``.

    Raises:
      ConfigError: not whole numbers, not strictly increasing, or outside ``[1, epochs)``.
    """
    try:
        rungs = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"must be whole epochs such as 2,6, got {text!r}", "rungs") from None
    if any(later <= earlier for earlier, later in itertools.pairwise(rungs)):
        raise ConfigError(f"must be strictly increasing, got {text}", setting="rungs")
    if rungs[0] < 1 or rungs[-1] >= epochs:
        raise ConfigError(
            f"must lie from epoch 1 to below --epochs {epochs} (the survivors train to the end), "
            f"got {text}",
            setting="rungs",
        )
    return rungs


def default_rungs(epochs: int, eta: int) -> tuple[int, ...]:
    """Rungs at ``epochs / η^k`` (whole, at least 1, below ``epochs``): 18 epochs, η 3 → 2, 6."""
    rungs, k = set(), 1
    while epochs // eta**k >= 1:
        rungs.add(epochs // eta**k)
        k += 1
    return tuple(sorted(rung for rung in rungs if rung < epochs))


def parse_factors(text: str) -> tuple[float, ...]:
    """``"0.8,1.2"`` → ``(0.8, 1.2)``: positive finite factors.

    Raises:
      ConfigError: not numbers, or one not positive and finite.
    """
    try:
        factors = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"must be factors such as 0.8,1.2, got {text!r}", "perturb") from None
    if not all(factor > 0 and math.isfinite(factor) for factor in factors):
        raise ConfigError(f"must be positive factors, got {text}", setting="perturb")
    return factors


def ranking(accuracies: Sequence[float | None]) -> list[int]:
    """Member indices, best validation accuracy first; ties: lower index first; a member
    without an accuracy (``None`` or NaN: diverged) last."""

    def key(index: int) -> tuple[float, int]:
        value = accuracies[index]
        missing = value is None or math.isnan(value)
        return (math.inf if missing else -value, index)

    return sorted(range(len(accuracies)), key=key)


def survivor_count(members: int, eta: int) -> int:
    """``⌈members / η⌉``: how many go on from a rung."""
    return -(-members // eta)


def survivors(accuracies: Sequence[float | None], eta: int) -> list[int]:
    """The members that go on from a rung: the top ``⌈n / η⌉`` by validation accuracy
    (:func:`ranking`), in member order (so a compacted population keeps its order)."""
    return sorted(ranking(accuracies)[: survivor_count(len(accuracies), eta)])


def halving_network_epochs(members: int, rungs: Sequence[int], epochs: int, eta: int) -> int:
    """The network-epochs successive halving trains: each stage's members × its epochs."""
    total, start = 0, 0
    for end in [*rungs, epochs]:
        total += members * (end - start)
        members, start = survivor_count(members, eta), end
    return total


def quantile_size(members: int, truncation: float) -> int:
    """``⌈q · n⌉`` members in each of PBT's top and bottom, at most ``⌊n / 2⌋``."""
    return min(math.ceil(truncation * members - 1e-9), members // 2)


def truncation_sources(
    accuracies: Sequence[float | None], truncation: float, rng: np.random.Generator
) -> np.ndarray:
    """For each member, the member whose state it takes (itself, unless in the bottom ``q``).

    Each of the bottom :func:`quantile_size` members by :func:`ranking` takes a member of
    the top as many, drawn uniformly (with replacement) by ``rng``.
    """
    import numpy as np

    order = ranking(accuracies)
    size = quantile_size(len(order), truncation)
    sources = np.arange(len(order))
    if size:
        top, bottom = order[:size], order[len(order) - size :]
        donors = rng.integers(0, size, len(bottom))
        sources[bottom] = [top[int(d)] for d in donors]
    return sources


def explore(
    values: Sequence[Mapping[str, Any]],
    sources: Sequence[int],
    distributions: Mapping[str, Distribution],
    factors: Sequence[float],
    resample: float,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """The members' values after an exploit: a member that copied another (``sources[i] !=
    i``) takes its source's values, each searched value then drawn afresh with probability
    ``resample`` or multiplied by one of ``factors`` (clipped to its range). The others keep
    theirs.

    Draws happen in member order, then in the settings' declaration order.
    """
    explored = []
    for index, source in enumerate(sources):
        point = dict(values[source])
        if source != index:
            for name in (name for name in SPECS if name in distributions):
                distribution = distributions[name]
                if rng.random() < resample:
                    point[name] = distribution.draw(rng, 1)[0]
                else:
                    factor = float(factors[int(rng.integers(0, len(factors)))])
                    point[name] = distribution.perturb(point[name], factor, rng)
        explored.append(point)
    return explored


def exploit_rng(search_seed: int, epoch: int) -> np.random.Generator:
    """The generator of PBT's choices after ``epoch``: a function of the seed and the epoch
    alone, so a step's draws do not depend on what came before."""
    import numpy as np

    return np.random.default_rng([search_seed, 1, epoch])


@dataclasses.dataclass(frozen=True)
class Exploit:
    """One member's copy: after ``epoch``, ``member`` took ``source``'s state and values
    (``inherited``), explored them into ``values``, and dropped its own (``before``)."""

    epoch: int
    member: int
    source: int
    before: dict[str, Any]
    inherited: dict[str, Any]
    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """As the metrics and the JSON carry it."""
        return {"event": "exploit", **dataclasses.asdict(self)}


def exploits_of(
    epoch: int,
    sources: Sequence[int],
    before: Sequence[Mapping[str, Any]],
    after: Sequence[Mapping[str, Any]],
) -> list[Exploit]:
    """The copies one exploit step made (members whose source is another); ``before``
    and ``after``: every member's values before and after the step."""
    return [
        Exploit(
            epoch, index, int(source), dict(before[index]), dict(before[source]), dict(after[index])
        )
        for index, source in enumerate(sources)
        if source != index
    ]


def inherited(
    per_epoch: Sequence[Sequence[Any]], sources_after: Mapping[int, Sequence[int]], member: int
) -> list[Any]:
    """What ``member``'s weights went through, epoch by epoch: its values or its records.

    Args:
      per_epoch: ``[epoch − 1][m]``: member ``m``'s item of that epoch (its values during
        it, or its record).
      sources_after: epoch → each member's source at the exploit after that epoch.
      member: whose lineage (its index at the end).

    Walking back from the last epoch, at each exploit the member's weights came from its
    source, so the earlier epochs are the source's.
    """
    items, current = [], member
    for epoch in range(len(per_epoch), 0, -1):
        if epoch in sources_after and epoch < len(per_epoch):
            current = int(sources_after[epoch][current])
        items.append(per_epoch[epoch - 1][current])
    return items[::-1]
