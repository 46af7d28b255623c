"""Halving and PBT in one population: selection, exact copies, survivors as if never halved."""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest

from jaxmlp import search, search_loop, train
from jaxmlp.data import Dataset, Split
from jaxmlp.errors import ConfigError
from jaxmlp.settings import Settings

LRS = [0.002, 0.3, 0.01, 0.1, 0.03, 0.005]


def small(**changes) -> Settings:
    values = {
        "sizes": (16, 12, 4),
        "init": "he",
        "epochs": 4,
        "batch_size": 32,
        "optimizer": "momentum",
    }
    return Settings(**{**values, **changes})


@pytest.fixture(scope="module")
def dataset():
    """Overlapping Gaussian blobs: the members' validation accuracies differ (35–80 %)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16)).astype(np.float32) * 0.5

    def split(n):
        labels = rng.integers(0, 4, n).astype(np.int32)
        return Split(centres[labels] + rng.normal(size=(n, 16)).astype(np.float32), labels)

    return Dataset(
        name="overlapping blobs",
        train=split(256),
        validation=split(200),
        test=split(100),
        source="generated",
        class_names=("0", "1", "2", "3"),
        image_shape=(4, 4),
    )


def without_seconds(record):
    return {key: value for key, value in record.items() if key != "seconds"}


def trained(record):
    """What training decided in an epoch record: all but the time and the validation loss
    (a sum the evaluator of a population of another size may add in another order)."""
    return {key: value for key, value in record.items() if key not in ("seconds", "val_loss")}


def leaves_bytes(tree):
    return [np.asarray(leaf).tobytes() for leaf in jax.tree.leaves(tree)]


def row_bytes(tree, row: int):
    """Row ``row`` of every leaf, as bytes."""
    return [np.asarray(leaf[row]).tobytes() for leaf in jax.tree.leaves(tree)]


def test_halving_stops_the_worst_and_its_survivors_are_their_unhalved_runs(dataset):
    members = [small(lr=lr, seed=i) for i, lr in enumerate(LRS)]
    full_trainer = train.prepare(members, dataset)
    fitted = train.fit(full_trainer)
    full, tests = fitted.progress, fitted.tests
    plan = search.resolve_search("halving", 4, eta=2, rungs="1,2")
    events = []
    halved = search_loop.run_halving(members, dataset, plan, on_event=events.append)

    first, second = events
    rung_1 = [full.histories[i][0]["val_accuracy"] for i in range(6)]
    assert first["val_accuracy"] == rung_1
    assert first["survivors"] == search.survivors(rung_1, 2)
    rung_2 = [full.histories[i][1]["val_accuracy"] for i in first["survivors"]]
    kept = [first["survivors"][slot] for slot in search.survivors(rung_2, 2)]
    assert second["members"] == first["survivors"] and second["survivors"] == kept
    assert len(kept) == 2 and halved.network_epochs == 6 + 3 + 2 * 2
    assert halved.network_epochs == search.halving_network_epochs(6, (1, 2), 4, 2)

    for index in range(6):
        epochs = len(halved.histories[index])
        assert epochs == (4 if index in kept else 2 if index in first["survivors"] else 1)
        assert [trained(r) for r in halved.histories[index]] == [
            trained(r) for r in full.histories[index][:epochs]
        ], f"member {index} trained as it would have without halving"
        assert [r["val_loss"] for r in halved.histories[index]] == pytest.approx(
            [r["val_loss"] for r in full.histories[index][:epochs]], rel=1e-6
        )
        final = full.histories[index][epochs - 1]["val_accuracy"]
        assert halved.results[index].val_accuracy == final
    _, best, trainer, state, slot = halved.best
    assert best in kept
    assert leaves_bytes(trainer.member_state(state, slot)) == leaves_bytes(
        full_trainer.member_state(full.state, best)
    ), "the best survivor's parameters and optimizer state are bit-identical"
    for index in kept:
        assert halved.results[index].test_accuracy == tests[index]["test_accuracy"]


def test_search_refuses_members_of_several_programs(dataset):
    plan = search.resolve_search("halving", 4, eta=2, rungs="1,2")
    with pytest.raises(ConfigError, match="--search halving trains one population: batch_size"):
        search_loop.run_halving([small(), small(batch_size=16)], dataset, plan)


def pbt_plan(**flags):
    lr = {"lr": search.Range("lr", 0.001, 0.5, log=True)}
    return lr, search.resolve_search("pbt", 4, distributions=lr, runs=6, **flags)


def test_an_exploit_copies_the_top_members_rows_exactly(dataset):
    distributions, plan = pbt_plan(truncation=0.33, resample=0.0)
    members = [small(lr=lr, seed=i) for i, lr in enumerate(LRS)]
    outcome = search_loop.new_outcome(members)
    running = search_loop.start(members, dataset)
    search_loop.train_epoch(running, outcome)
    before = running.progress.state
    accuracies = search_loop.last_accuracies(running, outcome)
    after, event = search_loop.exploit(running, outcome, plan, distributions)

    order = search.ranking(accuracies)
    assert search.quantile_size(6, 0.33) == 2
    top, bottom = order[:2], order[-2:]
    assert sorted(copy["member"] for copy in event["copies"]) == sorted(bottom)
    for index, source in enumerate(event["sources"]):
        assert source == index or (index in bottom and source in top)
        assert row_bytes(after.progress.state, index) == row_bytes(before, source), (
            "parameters and optimizer state are the source's, bit for bit"
        )
        assert after.progress.limits[index] == running.progress.limits[source]
    for copy in event["copies"]:
        source_lr = LRS[copy["source"]]
        assert copy["before"] == {"lr": LRS[copy["member"]]}
        assert copy["inherited"] == {"lr": source_lr}
        perturbed = (search.rounded(source_lr * 0.8), search.rounded(source_lr * 1.2))
        assert copy["values"]["lr"] in perturbed
        assert outcome.members[copy["member"]].lr == copy["values"]["lr"]
        assert float(after.trainer.values.lr[copy["member"]]) == np.float32(copy["values"]["lr"])
    kept = [i for i in range(6) if i not in bottom]
    assert [outcome.members[i].lr for i in kept] == [LRS[i] for i in kept]


def test_pbt_is_reproducible_and_records_each_members_lineage(dataset):
    distributions, plan = pbt_plan(ready=1, truncation=0.33, search_seed=3)
    members = [small(lr=lr, seed=i) for i, lr in enumerate(LRS)]
    records = []
    first = search_loop.run_pbt(members, dataset, plan, distributions, write=records.append)
    again = search_loop.run_pbt(members, dataset, plan, distributions)

    assert first.events == again.events and first.schedules == again.schedules
    assert [[without_seconds(r) for r in h] for h in first.histories] == [
        [without_seconds(r) for r in h] for h in again.histories
    ]
    assert [e["epoch"] for e in first.events] == [1, 2, 3] and first.network_epochs == 24
    copies = [r for r in records if r.get("event") == "exploit"]
    assert copies == [copy for event in first.events for copy in event["copies"]] and copies

    winner = first.best[1]
    schedule, lineage = first.schedules[winner], first.lineages[winner]
    assert len(schedule) == 4 and schedule[-1] == {"lr": first.members[winner].lr}
    assert [record["values"] for record in lineage] == schedule
    assert [record["epoch"] for record in lineage] == [1, 2, 3, 4]
    copy = first.events[-1]["copies"][0]
    member, source = copy["member"], copy["source"]
    assert copy["epoch"] == 3
    assert first.schedules[member][:3] == first.schedules[source][:3], "its past is its source's"
    assert first.schedules[member][3] == copy["values"]
    assert first.lineages[member][2] is first.histories[source][2]
    assert first.lineages[member][3] is first.histories[member][3]
    different = search_loop.run_pbt(
        members, dataset, pbt_plan(ready=1, truncation=0.33, search_seed=4)[1], distributions
    )
    assert different.events != first.events, "another search seed makes other choices"


def test_pbt_refuses_a_choice_its_program_cannot_follow(dataset):
    distributions = {"dropout": search.Choice("dropout", (0.0, 0.2))}
    plan = search.resolve_search("pbt", 4, distributions=distributions, runs=2)
    members = [small(dropout=0.0, seed=i) for i in range(2)]
    with pytest.raises(ConfigError, match=re.escape("--dropout: every drawn member has 0.0")):
        search_loop.run_pbt(members, dataset, plan, distributions)


def test_flags_become_drawn_members_crossed_with_the_lists():
    given = {"lr": "1e-3..1e-1:log", "seed": "0-1", "dropout": "0.1", "epochs": "3"}
    members, axes, distributions, plan = search_loop.members_from_flags(
        "seed", given, "pbt", {"runs": 3, "search_seed": 4}
    )
    assert list(distributions) == ["lr"] and list(axes) == ["seed"] and plan.runs == 3
    assert [m.seed for m in members] == [0, 1] * 3 and {m.dropout for m in members} == {0.1}
    assert len({m.lr for m in members}) == 3 and all(m.epochs == 3 for m in members)
    again, *_ = search_loop.members_from_flags("seed", given, "pbt", {"runs": 3, "search_seed": 4})
    assert again == members
    with pytest.raises(ConfigError, match="--search pbt trains one population: batch_size"):
        search_loop.members_from_flags("seed", {**given, "batch_size": "10,20"}, "pbt", {"runs": 3})
