"""Per-epoch randomness and per-member values, against what the training module documents:
epoch ``e`` draws its shuffle and dropout masks from ``fold_in(key(seed), e)`` — another
draw every epoch, the same run for the same seed — and each member of a population keeps
its own values (a member reports its own learning rate, not member 0's)."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from helpers import blobs_dataset, max_difference

from jaxmlp import train
from jaxmlp.settings import Settings


def tiny(**changes) -> Settings:
    settings = dict(sizes=(16, 12, 3), init="he", epochs=2, batch_size=16, lr=0.1)
    return Settings(**{**settings, **changes})


def test_epoch_keys_are_fold_in_of_the_seed_and_the_epoch():
    trainer = train.prepare([tiny(seed=3), tiny(seed=8)], blobs_dataset())
    for epoch in (0, 1, 5):
        keys = jax.random.key_data(trainer.epoch_keys(epoch))
        for slot, seed in enumerate((3, 8)):
            expected = jax.random.key_data(jax.random.fold_in(jax.random.key(seed), epoch))
            np.testing.assert_array_equal(keys[slot], expected)


def epoch_from(trainer, progress, epoch: int):
    """The parameters after one epoch trained from ``progress``'s state with the keys of
    ``epoch``."""
    return trainer.train_epoch(dataclasses.replace(progress, epoch=epoch)).state.params


def test_each_epoch_draws_another_shuffle_and_the_same_epoch_the_same():
    trainer = train.prepare(tiny(), blobs_dataset())
    start = trainer.start()
    first, again = epoch_from(trainer, start, 0), epoch_from(trainer, start, 0)
    other = epoch_from(trainer, start, 1)
    assert max_difference(first, again) == 0.0
    assert max_difference(first, other) > 1e-3


def test_each_epoch_draws_other_dropout_masks():
    """One batch of the whole training set: the shuffle only reorders a sum (rounding),
    so what differs between two epochs' keys beyond rounding is the dropout masks."""
    data = blobs_dataset(num_train=64)
    with_dropout = train.prepare(tiny(batch_size=64, dropout=0.5), data)
    without = train.prepare(tiny(batch_size=64), data)
    for trainer, expected_large in ((with_dropout, True), (without, False)):
        start = trainer.start()
        difference = max_difference(epoch_from(trainer, start, 0), epoch_from(trainer, start, 1))
        assert (difference > 1e-3) is expected_large, difference


def without_seconds(history: list[dict]) -> list[dict]:
    return [{key: value for key, value in record.items() if key != "seconds"} for record in history]


def test_the_same_seed_is_the_same_run_and_another_seed_another():
    data = blobs_dataset()
    runs = [train.fit(train.prepare(tiny(dropout=0.2, seed=seed), data)) for seed in (4, 4, 5)]
    assert max_difference(runs[0].params, runs[1].params) == 0.0
    assert without_seconds(runs[0].history) == without_seconds(runs[1].history)
    assert max_difference(runs[0].params, runs[2].params) > 1e-3


def test_each_member_reports_its_own_learning_rate():
    members = [tiny(lr=0.1), tiny(lr=0.5, seed=1), tiny(lr=0.02, seed=2)]
    result = train.fit(train.prepare(members, blobs_dataset()))
    for member, history in zip(members, result.histories, strict=True):
        assert [record["lr"] for record in history] == [member.lr] * member.epochs


def test_each_member_follows_its_own_schedule_values():
    """A population's member with warm-up and cosine reports the rates its solo run does."""
    schedule = {"schedule": "cosine", "warmup_epochs": 1.0}
    members = [tiny(lr=0.3, **schedule), tiny(lr=0.05, seed=1, **schedule)]
    population = train.prepare(members, blobs_dataset())
    for slot, member in enumerate(members):
        solo = train.prepare(member, blobs_dataset())
        for epoch in range(member.epochs):
            assert population.learning_rates(epoch)[slot] == solo.learning_rates(epoch)[0]
    assert population.learning_rates(1)[0] != population.learning_rates(1)[1]
