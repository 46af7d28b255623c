"""Successive halving and population-based training, epoch by epoch, in one population.

Both train one population (members that share a program, :mod:`jaxmlp.population`) one
compiled epoch at a time and act between epochs with the pure functions of
:mod:`jaxmlp.search`:

- **halving** (:func:`run_halving`): at each rung the members outside the top ``⌈n/η⌉``
  stop; the survivors' rows of every leaf are gathered into a smaller population (its
  program compiled for the smaller size), so a stopped member costs nothing afterwards.
  Each member's seed keeps its epoch keys, so a survivor's epochs are those it would have
  trained without halving.
- **PBT** (:func:`run_pbt`): after every ``ready`` epochs, the bottom ``q`` copy the
  parameters, optimizer state, liveness and divergence limit of a random top-``q`` member,
  then perturb or resample its searched values. A member keeps its own seed (its data
  order and dropout masks) when it copies another's weights.

Both return a :class:`SearchOutcome`: a sweep's outcome plus the rung or exploit events
and the network-epochs trained. Ctrl-C ends either after the last complete epoch.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from jaxmlp import search
from jaxmlp.errors import ConfigError
from jaxmlp.optim import learning_rate_schedule
from jaxmlp.population import PopulationTrainer, prepare_population, split_records
from jaxmlp.settings import Settings, program_of, run_values
from jaxmlp.sweep import MemberResult, SweepOutcome
from jaxmlp.train import EpochMetrics, epoch_record, reported_rate


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
    """A population in training: its trainer, state, divergence limits and which member
    each slot holds."""

    trainer: PopulationTrainer
    state: Any
    limits: Any
    indices: list[int]


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


def start(members: Sequence[Settings], dataset) -> Running:
    """A fresh population of ``members`` (slots 0 … R−1)."""
    trainer = prepare_population(members, dataset)
    state = trainer.initial_state()
    limits = np.asarray(trainer.divergence_limits(state.train.params))
    return Running(trainer, state, limits, list(range(len(members))))


def train_epoch(running: Running, epoch: int, outcome: SearchOutcome) -> None:
    """Trains every slot for epoch ``epoch`` (0-based) and appends each live member's record
    (with its searched values, if any, under ``values``) to its history."""
    trainer = running.trainer
    began = time.perf_counter()
    was_alive = np.asarray(running.state.alive)
    train_x, train_y = trainer.data["train"]
    running.state, totals = trainer.run_epoch(
        running.state, trainer.values, running.limits, train_x, train_y, trainer.epoch_keys(epoch)
    )
    validation = split_records(trainer, running.state.train.params, "validation")
    seconds = (time.perf_counter() - began) / trainer.size
    alive = np.asarray(running.state.alive)
    for slot, index in enumerate(running.indices):
        if was_alive[slot] and not alive[slot]:
            outcome.diverged[index] = epoch + 1
        if not alive[slot]:
            continue
        member_totals = EpochMetrics(*(np.asarray(t)[slot] for t in totals))
        lr = reported_rate(trainer.schedules[slot](epoch * trainer.steps_per_epoch))
        val = validation and validation[slot]
        record = epoch_record(epoch + 1, member_totals, lr, seconds, val)
        outcome.histories[index].append(record)
    outcome.network_epochs += trainer.size


def last_accuracies(running: Running, outcome: SearchOutcome, epoch: int) -> list[float | None]:
    """Each slot's validation accuracy after ``epoch`` (1-based), ``None`` if it has none."""
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
    params = running.state.train.params
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
            outcome.best = (val, index, running.trainer, running.state, slot)


def interrupted(outcome: SearchOutcome, epochs_done: int) -> None:
    """Marks a search stopped by Ctrl-C after ``epochs_done`` epochs; the members still in
    training get their validation accuracy so far as their result (no test)."""
    outcome.interrupted = f"after epoch {epochs_done}"
    for index, history in enumerate(outcome.histories):
        if outcome.results[index] is None and history:
            seed = outcome.members[index].seed
            result = MemberResult(seed, history[-1]["val_accuracy"], None, outcome.diverged[index])
            outcome.results[index] = result


def new_outcome(members: Sequence[Settings]) -> SearchOutcome:
    """An outcome with nothing trained yet."""
    return SearchOutcome(
        [None] * len(members),
        [[] for _ in members],
        members=list(members),
        diverged=[None] * len(members),
    )


def keep_slots(running: Running, slots: Sequence[int], members: Sequence[Settings], dataset):
    """The population of ``slots`` alone: a trainer of that size, their rows of the state."""
    indices = [running.indices[slot] for slot in slots]
    trainer = prepare_population([members[i] for i in indices], dataset)
    state = search.gather_members(running.state, slots)
    return Running(trainer, state, np.asarray(running.limits)[list(slots)], indices)


def run_halving(
    members: Sequence[Settings],
    dataset,
    plan: search.SearchPlan,
    *,
    on_epoch: Callable[[int, Running, SearchOutcome], None] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    write: Callable[[dict[str, Any]], None] | None = None,
) -> SearchOutcome:
    """Successive halving of ``members`` at ``plan.rungs`` with ``plan.eta``.

    Args:
      members: one program's members.
      dataset: their data.
      plan: the rungs and η.
      on_epoch: ``on_epoch(epoch, running, outcome)`` after each epoch (1-based).
      on_event: receives each rung's record when it is decided.
      write: receives each member's epoch and test records and each rung's record.
    """
    one_program(members, "halving")
    write = write or (lambda record: None)
    outcome = new_outcome(members)
    epochs = members[0].epochs
    try:
        running = start(members, dataset)
        for epoch in range(epochs):
            train_epoch(running, epoch, outcome)
            write_epoch(running, outcome, epoch + 1, write)
            if on_epoch is not None:
                on_epoch(epoch + 1, running, outcome)
            if epoch + 1 not in plan.rungs:
                continue
            accuracies = last_accuracies(running, outcome, epoch + 1)
            kept = search.survivors(accuracies, plan.eta)
            stopped = [slot for slot in range(len(running.indices)) if slot not in kept]
            finish(running, outcome, stopped, write, final=False)
            event = {
                "event": "rung",
                "epoch": epoch + 1,
                "members": list(running.indices),
                "val_accuracy": accuracies,
                "survivors": [running.indices[slot] for slot in kept],
            }
            outcome.events.append(event)
            write(event)
            if on_event is not None:
                on_event(event)
            running = keep_slots(running, kept, members, dataset)
    except KeyboardInterrupt:
        interrupted(outcome, max(map(len, outcome.histories), default=0))
        return outcome
    finish(running, outcome, range(len(running.indices)), write)
    return outcome


def write_epoch(running: Running, outcome: SearchOutcome, epoch: int, write: Callable) -> None:
    """Writes the epoch records of the members that trained epoch ``epoch``."""
    for index in running.indices:
        history = outcome.histories[index]
        if history and history[-1]["epoch"] == epoch:
            write({**history[-1], "member": index})


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
    on_epoch: Callable[[int, Running, SearchOutcome], None] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    write: Callable[[dict[str, Any]], None] | None = None,
) -> SearchOutcome:
    """Population-based training of ``members``, exploring ``distributions``.

    Args:
      members: one program's members (slot ``i`` is member ``i`` throughout).
      dataset: their data.
      plan: ``ready``, ``truncation``, ``perturb``, ``resample`` and the search seed.
      distributions: the searched settings (explore changes these alone).
      on_epoch: ``on_epoch(epoch, running, outcome)`` after each epoch (1-based).
      on_event: receives each exploit's record.
      write: receives each member's epoch records (with its ``values``), test records and
        each copy's record.
    """
    one_program(members, "pbt")
    check_program_holds(members, distributions)
    write = write or (lambda record: None)
    outcome = new_outcome(members)
    names = list(distributions)
    exploit_epochs = set(plan.exploit_epochs(members[0].epochs))
    values_per_epoch: list[list[dict[str, Any]]] = []
    records_per_epoch: list[list[dict[str, Any] | None]] = []
    sources_after: dict[int, list[int]] = {}
    try:
        running = start(members, dataset)
        for epoch in range(members[0].epochs):
            points = [searched_values(member, names) for member in outcome.members]
            train_epoch(running, epoch, outcome)
            records = [fresh_record(history, epoch + 1) for history in outcome.histories]
            for record, point in zip(records, points):
                if record is not None:
                    record["values"] = point
            values_per_epoch.append(points)
            records_per_epoch.append(records)
            write_epoch(running, outcome, epoch + 1, write)
            if on_epoch is not None:
                on_epoch(epoch + 1, running, outcome)
            if epoch + 1 in exploit_epochs:
                running, event = exploit(running, outcome, epoch + 1, plan, distributions)
                sources_after[epoch + 1] = event["sources"]
                for record in event["copies"]:
                    write(record)
                if on_event is not None:
                    on_event(event)
    except KeyboardInterrupt:
        interrupted(outcome, len(records_per_epoch))
    else:
        finish(running, outcome, range(len(members)), write)
    for member in range(len(members)):
        outcome.schedules[member] = search.inherited(values_per_epoch, sources_after, member)
        lineage = search.inherited(records_per_epoch, sources_after, member)
        outcome.lineages[member] = [record for record in lineage if record is not None]
    return outcome


def fresh_record(history: list[dict[str, Any]], epoch: int) -> dict[str, Any] | None:
    """The history's record of ``epoch`` if it is the last (``None``: it did not train it)."""
    return history[-1] if history and history[-1]["epoch"] == epoch else None


def exploit(
    running: Running,
    outcome: SearchOutcome,
    epoch: int,
    plan: search.SearchPlan,
    distributions: Mapping[str, search.Distribution],
) -> tuple[Running, dict[str, Any]]:
    """One exploit-and-explore step after ``epoch``: copies rows, perturbs values, and
    rebuilds the per-run values (the compiled epoch takes them as arrays: no recompiling).

    Returns:
      the population after the step, and the step's record (also in ``outcome.events``).
    """
    rng = search.exploit_rng(plan.search_seed, epoch)
    accuracies = last_accuracies(running, outcome, epoch)
    sources = search.truncation_sources(accuracies, plan.truncation, rng)
    before = [searched_values(member, list(distributions)) for member in outcome.members]
    after = search.explore(before, sources, distributions, plan.perturb, plan.resample, rng)
    copies = search.exploits_of(epoch, sources, before, after)
    for copy in copies:
        outcome.diverged[copy.member] = outcome.diverged[copy.source]
    outcome.members = [member.replace(**point) for member, point in zip(outcome.members, after)]
    trainer = running.trainer
    per_epoch = trainer.steps_per_epoch
    trainer = dataclasses.replace(
        trainer,
        members=tuple(outcome.members),
        values=trainer.place_members(run_values(outcome.members, per_epoch)),
        schedules=tuple(
            learning_rate_schedule(trainer.program, member.values(per_epoch), per_epoch)
            for member in outcome.members
        ),
    )
    event = {
        "event": "exploit",
        "epoch": epoch,
        "val_accuracy": accuracies,
        "sources": [int(source) for source in sources],
        "copies": [copy.to_dict() for copy in copies],
    }
    outcome.events.append(event)
    state = search.gather_members(running.state, sources)
    return Running(trainer, state, np.asarray(running.limits)[sources], running.indices), event
