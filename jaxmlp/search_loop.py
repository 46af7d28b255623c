"""Successive halving and population-based training, epoch by epoch, in one population.

Both train one population (members that share a program, :func:`jaxmlp.train.prepare`)
one compiled epoch at a time (:meth:`jaxmlp.train.Trainer.train_epoch`) and act between
epochs with the pure functions of :mod:`jaxmlp.search`:

- **halving** (:func:`run_halving`): at each rung the members outside the top ``⌈n/η⌉``
  stop; the survivors' rows of every leaf are taken into a smaller population
  (:meth:`~jaxmlp.train.FitState.take`, :meth:`~jaxmlp.train.Trainer.subset`: its program
  compiled for the smaller size), so a stopped member costs nothing afterwards. Each
  member's seed keeps its epoch keys, so a survivor's epochs are those it would have
  trained without halving.
- **PBT** (:func:`run_pbt`): after every ``ready`` epochs, the bottom ``q`` take the rows
  of a random top-``q`` member — parameters, optimizer state, divergence limit, liveness
  and records — then perturb or resample its searched values. A member keeps its own seed
  (its data order and dropout masks) when it copies another's weights.

Both return a :class:`SearchOutcome`: a sweep's outcome plus the rung or exploit events
and the network-epochs trained. Ctrl-C raises
:class:`~jaxmlp.errors.TrainingInterrupted` carrying the outcome so far.

:func:`members_from_flags` turns a sweep's flags into its members and plan; the
``*_line``/``*_text`` helpers are what ``jaxmlp sweep`` prints.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jaxmlp import search
from jaxmlp.display import percent, shown
from jaxmlp.errors import ConfigError, DivergenceError, TrainingInterrupted
from jaxmlp.program import program_of
from jaxmlp.settings import Settings
from jaxmlp.sweep import (
    MemberResult,
    SweepOutcome,
    grid_from_flags,
    parse_axis,
    row_key,
    takes_list,
)
from jaxmlp.train import FitState, Trainer, prepare, split_records

ONE_POPULATION = ("halving", "pbt")
"""The methods that train one population, acting between its epochs."""


@dataclasses.dataclass
class SearchOutcome(SweepOutcome):
    """A sweep's outcome, plus what the search did.

    Attributes:
      members: each member's settings at the end (PBT changes them).
      diverged: each member's epoch of divergence, or ``None`` (PBT: a diverged member
        that copies a live one lives again).
      events: rung records (halving) or exploit records (PBT), in order.
      network_epochs: epochs trained, summed over members.
      schedules: PBT: member → the values its weights were trained with, epoch by epoch.
      lineages: PBT: member → the epoch records of its weights' line (its own since its
        last copy, its source's before).
    """

    members: list[Settings] = dataclasses.field(default_factory=list)
    diverged: list[int | None] = dataclasses.field(default_factory=list)
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    network_epochs: int = 0
    schedules: dict[int, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    lineages: dict[int, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)

    def checkpoint_history(self, index: int) -> list[dict[str, Any]]:
        """The epoch records a checkpoint of member ``index`` carries: its weights' line."""
        return self.lineages.get(index, self.histories[index])


@dataclasses.dataclass
class Running:
    """A population in training: its trainer, its progress and which member each slot
    holds."""

    trainer: Trainer
    progress: FitState
    indices: list[int]


def members_from_flags(
    preset: str, given: Mapping[str, Any], method: str, flags: Mapping[str, Any]
) -> tuple[list[Settings], dict[str, list], dict[str, search.Distribution], search.SearchPlan]:
    """The members, the grid's axes, the distributions and the plan a sweep's flags describe.

    Args:
      preset: every member's starting settings.
      given: setting name → the flag's value (text for settings that take lists).
      method: ``--search``.
      flags: the search flags (``runs``, ``search_seed``, ``eta``, …; ``None``: not given).

    Raises:
      ConfigError: a bad distribution, grid or search flag (see
        :func:`jaxmlp.search.resolve_search`); halving or PBT over several programs.
    """
    distributions, rest = search.split_search_space(given)
    members, axes = grid_from_flags(preset, rest)
    plan = search.resolve_search(method, members[0].epochs, distributions=distributions, **flags)
    if distributions:
        lists = {name: parse_axis(name, text) for name, text in rest.items() if takes_list(name)}
        fixed = {name: value for name, value in rest.items() if not takes_list(name)}
        members = search.draw_members(
            preset, distributions, lists, fixed, plan.runs, plan.search_seed
        )
    if plan.method in ONE_POPULATION:
        one_program(members, plan.method)
    return members, axes, distributions, plan


def one_program(members: Sequence[Settings], method: str) -> None:
    """Refuses members that do not share one program (halving and PBT train one population).

    Raises:
      ConfigError: naming the setting that differs.
    """
    try:
        program_of(list(members))
    except ConfigError as error:
        raise ConfigError(
            f"--search {method} trains one population: {error.setting} must have one value "
            f"(per-run values such as --lr, --dropout, --seed may vary)"
        ) from None


def new_outcome(members: Sequence[Settings]) -> SearchOutcome:
    """An outcome with nothing trained yet."""
    return SearchOutcome(
        [None] * len(members),
        [[] for _ in members],
        members=list(members),
        diverged=[None] * len(members),
    )


def start(members: Sequence[Settings], dataset) -> Running:
    """A fresh population of ``members`` (slots 0 … R−1)."""
    trainer = prepare(list(members), dataset)
    return Running(trainer, trainer.start(), list(range(len(members))))


def train_epoch(running: Running, outcome: SearchOutcome) -> bool:
    """Trains every slot one epoch and adds each new record to its member's history.

    Returns:
      whether a member is still alive (``False``: every one diverged in this epoch).
    """
    try:
        running.progress = running.trainer.train_epoch(running.progress)
        alive = True
    except DivergenceError as error:
        running.progress, alive = error.progress, False
    progress = running.progress
    for slot, index in enumerate(running.indices):
        history = progress.histories[slot]
        if history and history[-1]["epoch"] == progress.epoch:
            outcome.histories[index].append(history[-1])
        outcome.diverged[index] = progress.diverged[slot]
    outcome.network_epochs += running.trainer.size
    return alive


def last_accuracies(running: Running, outcome: SearchOutcome) -> list[float | None]:
    """Each slot's validation accuracy in the last epoch, ``None`` if it has none."""
    epoch = running.progress.epoch
    accuracies = []
    for index in running.indices:
        history = outcome.histories[index]
        fresh = history and history[-1]["epoch"] == epoch and outcome.diverged[index] is None
        accuracies.append(history[-1]["val_accuracy"] if fresh else None)
    return accuracies


def finish(
    running: Running,
    outcome: SearchOutcome,
    slots: Sequence[int],
    write: Callable,
    *,
    final: bool = True,
) -> None:
    """Records the results of ``slots`` (their test accuracy now) and, if they are ``final``
    (trained to the end), the best so far."""
    params = running.progress.state.params
    tests = split_records(running.trainer, params, "test") if slots else None
    for slot in slots:
        index = running.indices[slot]
        history = outcome.histories[index]
        val = history[-1]["val_accuracy"] if history else None
        test = tests[slot]["test_accuracy"] if tests else None
        diverged = outcome.diverged[index]
        outcome.results[index] = MemberResult(outcome.members[index].seed, val, test, diverged)
        if tests:
            write({"event": "test", **tests[slot], "member": index, "epoch": len(history)})
        better = outcome.best is None or (val is not None and val > outcome.best[0])
        if final and val is not None and diverged is None and better:
            outcome.best = (val, index, running.trainer, running.progress.state, slot)


def interrupted(outcome: SearchOutcome, epochs_done: int) -> TrainingInterrupted:
    """The Ctrl-C of a search after ``epochs_done`` epochs; the members still in training
    get their validation accuracy so far as their result (no test)."""
    outcome.interrupted = f"after epoch {epochs_done}"
    for index, history in enumerate(outcome.histories):
        if outcome.results[index] is None and history:
            seed = outcome.members[index].seed
            result = MemberResult(seed, history[-1]["val_accuracy"], None, outcome.diverged[index])
            outcome.results[index] = result
    return TrainingInterrupted(None, done=outcome.interrupted, progress=outcome)


def write_epoch(running: Running, outcome: SearchOutcome, write: Callable) -> None:
    """Writes the epoch records of the members that trained the last epoch."""
    for index in running.indices:
        history = outcome.histories[index]
        if history and history[-1]["epoch"] == running.progress.epoch:
            write({**history[-1], "member": index})


def run_halving(
    members: Sequence[Settings],
    dataset,
    plan: search.SearchPlan,
    *,
    on_epoch: Callable[[Running, SearchOutcome], None] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    write: Callable[[dict[str, Any]], None] | None = None,
) -> SearchOutcome:
    """Successive halving of ``members`` at ``plan.rungs`` with ``plan.eta``.

    Args:
      members: one program's members.
      dataset: their data.
      plan: the rungs and η.
      on_epoch: ``on_epoch(running, outcome)`` after each epoch.
      on_event: receives each rung's record when it is decided.
      write: receives each member's epoch and test records and each rung's record.

    Raises:
      TrainingInterrupted: Ctrl-C, after the last complete epoch (``progress``: the outcome).
    """
    one_program(members, "halving")
    write = write or (lambda record: None)
    outcome = new_outcome(members)
    running = None
    try:
        running = start(members, dataset)
        while running.progress.epoch < members[0].epochs:
            alive = train_epoch(running, outcome)
            write_epoch(running, outcome, write)
            if on_epoch is not None:
                on_epoch(running, outcome)
            if not alive:
                break
            if running.progress.epoch in plan.rungs:
                running = rung(running, outcome, plan.eta, write)
                if on_event is not None:
                    on_event(outcome.events[-1])
    except KeyboardInterrupt:
        done = 0 if running is None else running.progress.epoch
        raise interrupted(outcome, done) from None
    finish(running, outcome, range(len(running.indices)), write)
    return outcome


def rung(running: Running, outcome: SearchOutcome, eta: int, write: Callable) -> Running:
    """Stops the members outside the top ``⌈n/η⌉`` (their results recorded now) and returns
    the population of the survivors."""
    accuracies = last_accuracies(running, outcome)
    kept = search.survivors(accuracies, eta)
    stopped = [slot for slot in range(len(running.indices)) if slot not in kept]
    finish(running, outcome, stopped, write, final=False)
    event = {
        "event": "rung",
        "epoch": running.progress.epoch,
        "members": list(running.indices),
        "val_accuracy": accuracies,
        "survivors": [running.indices[slot] for slot in kept],
    }
    outcome.events.append(event)
    write(event)
    return Running(running.trainer.subset(kept), running.progress.take(kept), event["survivors"])


def searched_values(member: Settings, names: Sequence[str]) -> dict[str, Any]:
    """The member's values of the searched settings ``names``."""
    return {name: getattr(member, name) for name in names}


def check_program_holds(members: Sequence[Settings], distributions: Mapping) -> None:
    """Refuses a PBT whose explored values could need a term its program lacks (a dropout
    rate of a choice whose drawn members all have 0): the program is compiled once.

    Raises:
      ConfigError: naming the setting.
    """
    program = program_of(list(members))
    for name, distribution in distributions.items():
        extremes = (
            distribution.values
            if isinstance(distribution, search.Choice)
            else (distribution.low, distribution.high)
        )
        for value in extremes:
            if program_of([*members, members[0].replace(**{name: value})]) != program:
                flag, drawn = "--" + name.replace("_", "-"), getattr(members[0], name)
                raise ConfigError(
                    f"{flag}: every drawn member has {drawn}, but exploring may reach {value}; "
                    "draw more members or change --search-seed"
                )


def run_pbt(
    members: Sequence[Settings],
    dataset,
    plan: search.SearchPlan,
    distributions: Mapping[str, search.Distribution],
    *,
    on_epoch: Callable[[Running, SearchOutcome], None] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    write: Callable[[dict[str, Any]], None] | None = None,
) -> SearchOutcome:
    """Population-based training of ``members``, exploring ``distributions``.

    Args:
      members: one program's members (slot ``i`` is member ``i`` throughout).
      dataset: their data.
      plan: ``ready``, ``truncation``, ``perturb``, ``resample`` and the search seed.
      distributions: the searched settings (explore changes these alone).
      on_epoch: ``on_epoch(running, outcome)`` after each epoch.
      on_event: receives each exploit's record.
      write: receives each member's epoch records (with its ``values``), test records and
        each copy's record.

    Raises:
      TrainingInterrupted: Ctrl-C, after the last complete epoch (``progress``: the outcome).
    """
    one_program(members, "pbt")
    check_program_holds(members, distributions)
    write = write or (lambda record: None)
    outcome = new_outcome(members)
    exploit_epochs = set(plan.exploit_epochs(members[0].epochs))
    values_per_epoch: list[list[dict[str, Any]]] = []
    sources_after: dict[int, list[int]] = {}
    running = None
    try:
        running = start(members, dataset)
        while running.progress.epoch < members[0].epochs:
            points = [searched_values(member, list(distributions)) for member in outcome.members]
            alive = train_epoch(running, outcome)
            for slot, point in enumerate(points):
                history = running.progress.histories[slot]
                if history and history[-1]["epoch"] == running.progress.epoch:
                    history[-1]["values"] = point
            values_per_epoch.append(points)
            write_epoch(running, outcome, write)
            if on_epoch is not None:
                on_epoch(running, outcome)
            if not alive:
                break
            if running.progress.epoch in exploit_epochs:
                running, event = exploit(running, outcome, plan, distributions)
                sources_after[event["epoch"]] = event["sources"]
                for record in event["copies"]:
                    write(record)
                if on_event is not None:
                    on_event(event)
    except KeyboardInterrupt:
        done = 0 if running is None else running.progress.epoch
        record_lineages(outcome, running, values_per_epoch[:done], sources_after)
        raise interrupted(outcome, done) from None
    finish(running, outcome, range(len(members)), write)
    record_lineages(outcome, running, values_per_epoch, sources_after)
    return outcome


def record_lineages(outcome, running, values_per_epoch, sources_after) -> None:
    """Every member's inherited schedule (:func:`jaxmlp.search.inherited`) and records."""
    if running is None:
        return
    for member in range(len(outcome.members)):
        outcome.schedules[member] = search.inherited(values_per_epoch, sources_after, member)
        outcome.lineages[member] = list(running.progress.histories[member])


def exploit(
    running: Running,
    outcome: SearchOutcome,
    plan: search.SearchPlan,
    distributions: Mapping[str, search.Distribution],
) -> tuple[Running, dict[str, Any]]:
    """One exploit-and-explore step after the last epoch: copies rows, perturbs values, and
    rebuilds the per-run values (the compiled epoch takes them as arrays: no recompiling).

    Returns:
      the population after the step, and the step's record (also in ``outcome.events``).
    """
    epoch = running.progress.epoch
    rng = search.exploit_rng(plan.search_seed, epoch)
    accuracies = last_accuracies(running, outcome)
    sources = search.truncation_sources(accuracies, plan.truncation, rng)
    before = [searched_values(member, list(distributions)) for member in outcome.members]
    after = search.explore(before, sources, distributions, plan.perturb, plan.resample, rng)
    copies = search.exploits_of(epoch, sources, before, after)
    outcome.members = [member.replace(**point) for member, point in zip(outcome.members, after)]
    progress = running.progress.take(sources)
    outcome.diverged = list(progress.diverged)
    event = {
        "event": "exploit",
        "epoch": epoch,
        "val_accuracy": accuracies,
        "sources": [int(source) for source in sources],
        "copies": [copy.to_dict() for copy in copies],
    }
    outcome.events.append(event)
    trainer = running.trainer.subset(range(len(sources)), members=outcome.members)
    return Running(trainer, progress, running.indices), event


def epochs_column(members: Sequence[Settings], histories) -> dict[str, Callable]:
    """Halving's extra table column: the epochs each row's members trained."""
    trained: dict[tuple, set[int]] = {}
    for member, history in zip(members, histories):
        trained.setdefault(row_key(member), set()).add(len(history))
    return {"epochs": lambda row: ",".join(map(str, sorted(trained[row_key(row.settings)])))}


def plan_text(plan: search.SearchPlan, distributions: Mapping) -> str:
    """``; search halving (eta 3, rungs 2, 6); lr 0.001..0.3:log`` for the header line."""
    if plan.method == "grid":
        return ""
    factors = ",".join(f"{factor:g}" for factor in plan.perturb)
    detail = {
        "halving": f" (eta {plan.eta}, rungs {', '.join(map(str, plan.rungs))})",
        "pbt": f" (every {plan.ready} epoch{'s' * (plan.ready > 1)}, truncation "
        f"{plan.truncation:g}, perturb {factors}, resample {plan.resample:g})",
    }.get(plan.method, "")
    drawn = "".join(f"; {name} {d.text()}" for name, d in distributions.items())
    return f"; search {plan.method}{detail}" + drawn


def plan_record(plan: search.SearchPlan, distributions: Mapping) -> dict[str, Any]:
    """The plan and the distributions, as the metrics' start record and the JSON carry them."""
    return {
        **dataclasses.asdict(plan),
        "distributions": {name: d.text() for name, d in distributions.items()},
    }


def search_report(plan, distributions, outcome, network_epochs: int) -> dict[str, Any]:
    """The ``--json`` report's ``search``: the plan, the events, the compute, PBT's schedules."""
    report = {
        **plan_record(plan, distributions),
        "network_epochs": network_epochs,
        "events": getattr(outcome, "events", []),
        "epochs": [len(history) for history in outcome.histories],
    }
    if plan.method == "pbt":
        report["schedules"] = {str(k): v for k, v in outcome.schedules.items()}
        report["best_member"] = None if outcome.best is None else outcome.best[1]
    return report


def progress_line(epochs: int, running: Running, outcome: SearchOutcome, seconds: float) -> str:
    """``epoch 3/18, 9 members: val best 91.23%, median 89.10%  1.2 s``."""
    accuracies = [a for a in last_accuracies(running, outcome) if a is not None]
    summary = (
        f"val best {percent(max(accuracies))}%, median {percent(statistics.median(accuracies))}%"
        if accuracies
        else "every run diverged"
    )
    count = len(running.indices)
    members = f"{count} member{'s' * (count > 1)}"
    return f"epoch {running.progress.epoch}/{epochs}, {members}: {summary}  {seconds:.1f} s"


def event_lines(event: dict[str, Any]) -> list[str]:
    """A rung's or an exploit's report, a line each."""
    if event["event"] == "rung":
        survivors = event["survivors"]
        stopped = len(event["members"]) - len(survivors)
        kept = [
            accuracy
            for member, accuracy in zip(event["members"], event["val_accuracy"])
            if member in survivors and accuracy is not None
        ]
        floor = f"; val ≥ {percent(min(kept))}%" if kept else ""
        line = (
            f"rung at epoch {event['epoch']}: {len(survivors)} of {len(event['members'])} go on "
            f"(member{'s' * (len(survivors) > 1)} {', '.join(map(str, survivors))}{floor}), "
            f"{stopped} stop"
        )
        return [line]
    accuracy = event["val_accuracy"]

    def val(member: int) -> str:
        return "-" if accuracy[member] is None else f"{percent(accuracy[member])}%"

    return [
        f"exploit after epoch {event['epoch']}: member {copy['member']} (val "
        f"{val(copy['member'])}) copies member {copy['source']} (val {val(copy['source'])}): "
        + ", ".join(
            f"{name} {shown(copy['inherited'][name])} → {shown(value)}"
            for name, value in copy["values"].items()
        )
        for copy in event["copies"]
    ]


def schedule_text(schedule: list[dict[str, Any]]) -> str:
    """``lr 0.01 (epochs 1-3), 0.012 (4-6)``: each value over the epochs it held."""
    parts = []
    for name in schedule[0] if schedule else []:
        spans: list[list] = []
        for epoch, values in enumerate(schedule, start=1):
            if spans and spans[-1][0] == values[name]:
                spans[-1][2] = epoch
            else:
                spans.append([values[name], epoch, epoch])
        texts = [
            f"{shown(value)} (epoch{'s' * (end > begin)} {begin}"
            + (f"-{end})" if end > begin else ")")
            for value, begin, end in spans
        ]
        parts.append(f"{name} " + ", ".join(texts))
    return "; ".join(parts)
