"""Populations: many networks trained by one compiled program.

With parameters as a pytree and the per-run values as arrays, a population of R runs is
one more array axis. Every leaf of the training state carries a leading member axis; the
per-run values are ``(R,)`` arrays (:class:`~jaxmlp.settings.RunValues`); each member has
its own seed, hence its own initialisation, shuffle, dropout masks and shifts. The compiled
epoch is the solo run's (:func:`jaxmlp.train.make_epoch_body`) mapped over the members
with ``jax.vmap``: **a member is the same experiment as the solo run with its settings**,
computed with the same products in the same order (tested: equal parameters after an
epoch).

Members that share the :class:`~jaxmlp.settings.Program` (sizes, batch size, epochs,
optimizer and schedule kinds, gradient method, augmentation) share a program; a grid over
program settings is several populations, trained one after another
(:mod:`jaxmlp.sweep`).

Divergence is per member: a member whose epoch loss is NaN, infinite or above its limit
(:func:`jaxmlp.train.divergence_limit`) keeps the state it had before that epoch and is
frozen; the compiled epoch goes on computing it (its arithmetic is independent of the
others'), and its results are discarded.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from jaxmlp.errors import ConfigError
from jaxmlp.evaluation import EVAL_CHUNK, chunked_log_probabilities, map_in_chunks
from jaxmlp.model import init_params
from jaxmlp.optim import learning_rate_schedule, make_optimizer
from jaxmlp.settings import Program, RunValues, Settings, program_of, run_values
from jaxmlp.train import (
    DIVERGENCE_SAMPLE,
    EpochMetrics,
    TrainState,
    check_fits_data,
    divergence_limit,
    epoch_key,
    epoch_record,
    make_epoch_body,
    reported_rate,
    steps_per_epoch,
    unsharded,
)

MEMBER_AXIS = "members"
EVAL_ACTIVATIONS = 1 << 24
"""Activations (floats) one evaluation chunk of the whole population may hold."""
MEMBER_CHUNK = 16
"""Members trained side by side in one batched product; larger populations run in chunks
of this many, one after another inside the compiled epoch. Beyond about 16, XLA:CPU's
batched products sum in another order than a single network's, and a member would no
longer equal its solo run bit for bit (measured: R = 40 in one batch moved an lr-0.5
member by 70 % after one epoch; chunks of 8–20 left every member identical). Chunks also
keep a chunk's parameters in cache across the epoch's steps."""


class PopulationState(NamedTuple):
    """The members' training states, each leaf with a leading member axis, and who is alive."""

    train: TrainState
    alive: jax.Array
    """``(R,)`` booleans: ``False`` once a member diverged (its state is frozen)."""


def member_evaluation_chunk(members: int, sizes: Sequence[int]) -> int:
    """Examples per evaluation chunk, so that all members' activations fit
    :data:`EVAL_ACTIVATIONS`."""
    per_example = members * max(sizes[1:])
    return max(1, min(EVAL_CHUNK, EVAL_ACTIVATIONS // per_example))


def make_population_epoch(
    program: Program, per_epoch: int, image_shape: tuple[int, int] | None, mesh: Mesh | None = None
):
    """``epoch(population, values, limits, images, labels, keys) -> (population, metrics)``.

    Compiled. ``values``, ``limits`` (the members' divergence limits) and ``keys`` have a
    member axis. A member whose epoch loss is not finite or above its limit keeps its old
    state and is marked not alive; so is one that was not alive before. With a ``mesh``
    (one axis, :data:`MEMBER_AXIS`), each device trains its share of the members
    (``jax.shard_map``): members are independent, so nothing crosses between devices.
    """
    body = jax.vmap(make_epoch_body(program, per_epoch, image_shape), in_axes=(0, 0, None, None, 0))

    def epoch(population: PopulationState, values, limits, images, labels, keys):

        def train_chunk(chunk):
            state, chunk_values, chunk_keys = chunk
            return body(state, chunk_values, images, labels, chunk_keys)

        state, metrics = map_in_chunks(
            train_chunk, (population.train, values, keys), MEMBER_CHUNK
        )
        loss = metrics.loss_sum / metrics.examples
        alive = population.alive & jnp.isfinite(loss) & (loss <= limits)

        def keep_alive(new, old):
            return jnp.where(alive.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)

        state = jax.tree.map(keep_alive, state, population.train)
        return PopulationState(state, alive), metrics

    if mesh is not None:
        members, shared = PartitionSpec(MEMBER_AXIS), PartitionSpec()
        epoch = jax.shard_map(
            epoch,
            mesh=mesh,
            in_specs=(members, members, members, shared, shared, members),
            out_specs=(members, members),
        )
    return jax.jit(epoch)


def make_population_totals(members: int, sizes: Sequence[int]):
    """``totals(params, images, labels) -> (loss_sums, corrects)``, ``(R,)`` each, compiled."""
    chunk = member_evaluation_chunk(members, sizes)

    def totals(params, images, labels):
        def one_member(member_params):
            log_probs = chunked_log_probabilities(member_params, images, unsharded, chunk)
            picked = jnp.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]
            return -jnp.sum(picked), jnp.sum(jnp.argmax(log_probs, axis=-1) == labels)

        return jax.vmap(one_member)(params)

    return jax.jit(totals)


@dataclasses.dataclass(frozen=True)
class PopulationTrainer:
    """Everything a population needs, built once by :func:`prepare_population`."""

    members: tuple[Settings, ...]
    program: Program
    values: RunValues
    seeds: np.ndarray
    steps_per_epoch: int
    tx: optax.GradientTransformation
    schedules: tuple[Callable[[int], Any], ...]
    run_epoch: Callable
    evaluate: Callable
    data: dict[str, tuple[jax.Array, jax.Array]]
    num_classes: int
    mesh: Mesh | None = None

    @property
    def size(self) -> int:
        """The number of members."""
        return len(self.members)

    def initial_state(self) -> PopulationState:
        """Every member's fresh parameters from its seed, and its optimizer's initial state."""
        keys = jax.vmap(jax.random.key)(jnp.asarray(self.seeds))
        params = jax.vmap(lambda key: init_params(key, self.program.sizes, self.program.init))(keys)
        opt_state = jax.vmap(self.tx.init)(params)
        state = PopulationState(TrainState(params, opt_state), jnp.ones(self.size, bool))
        return self.place_members(state)

    def place_members(self, tree):
        """Splits the member axis of every leaf over the mesh's devices (no mesh: as is)."""
        if self.mesh is None:
            return tree
        return jax.device_put(tree, NamedSharding(self.mesh, PartitionSpec(MEMBER_AXIS)))

    def member_state(self, population: PopulationState, index: int) -> TrainState:
        """Member ``index``'s training state (host arrays)."""
        return jax.tree.map(lambda leaf: np.asarray(leaf[index]), population.train)

    def divergence_limits(self, params) -> np.ndarray:
        """Each member's :func:`~jaxmlp.train.divergence_limit`."""
        train_x, train_y = self.data["train"]
        sample = min(train_x.shape[0], DIVERGENCE_SAMPLE)
        loss_sums, _ = self.evaluate(params, train_x[:sample], train_y[:sample])
        losses = np.asarray(loss_sums, np.float64) / sample
        return np.array([divergence_limit(loss, self.num_classes) for loss in losses], np.float32)

    def epoch_keys(self, epoch: int) -> jax.Array:
        """Each member's key of ``epoch``: :func:`~jaxmlp.train.epoch_key` of its seed."""
        return self.place_members(
            jax.vmap(lambda seed: epoch_key(seed, epoch))(jnp.asarray(self.seeds))
        )


def member_mesh(devices: int | None) -> Mesh | None:
    """A mesh of ``devices`` devices (all if ``None``) over the member axis; ``None`` for one."""
    available = jax.devices()
    count = len(available) if devices is None else devices
    if count > len(available):
        raise ConfigError(
            f"is {count} but only {len(available)} {jax.default_backend()} devices are visible",
            setting="devices",
        )
    if count == 1:
        return None
    return jax.make_mesh((count,), (MEMBER_AXIS,), (AxisType.Auto,), devices=available[:count])


def prepare_population(
    members: Sequence[Settings], dataset, *, mesh: Mesh | None = None
) -> PopulationTrainer:
    """Builds what training ``members`` together needs; they must share one program.

    With a ``mesh`` (:func:`member_mesh`), the members are spread over its devices; their
    number must divide by the devices'.

    Raises:
      ConfigError: no members, members of different programs, settings that do not fit
        the data, members that do not divide among the devices.
    """
    members = tuple(members)
    if not members:
        raise ConfigError("a population needs at least one member")
    if mesh is not None and len(members) % mesh.devices.size:
        raise ConfigError(
            f"{len(members)} members do not divide among {mesh.devices.size} devices"
        )
    program = program_of(list(members))
    check_fits_data(members[0], dataset)
    per_epoch = steps_per_epoch(len(dataset.train), program.batch_size, program.drop_last)
    values = run_values(list(members), per_epoch)
    first_values = jax.tree.map(lambda column: column[0], values)
    shared = (lambda a: a) if mesh is None else (
        lambda a: jax.device_put(a, NamedSharding(mesh, PartitionSpec()))
    )
    trainer = PopulationTrainer(
        members=members,
        program=program,
        values=values,
        seeds=np.array([member.seed for member in members], np.uint32),
        steps_per_epoch=per_epoch,
        tx=make_optimizer(program, first_values, per_epoch),
        schedules=tuple(
            learning_rate_schedule(program, member.values(per_epoch), per_epoch)
            for member in members
        ),
        run_epoch=make_population_epoch(
            program, per_epoch, getattr(dataset, "image_shape", None), mesh
        ),
        evaluate=make_population_totals(len(members), program.sizes),
        data={
            name: (shared(jnp.asarray(split.images)), shared(jnp.asarray(split.labels)))
            for name, split in dataset.splits.items()
        },
        num_classes=dataset.num_classes,
        mesh=mesh,
    )
    return dataclasses.replace(trainer, values=trainer.place_members(values))


@dataclasses.dataclass
class PopulationResult:
    """What :func:`fit_population` returns.

    Attributes:
      state: the final state of every member.
      histories: each member's epoch records (:func:`jaxmlp.train.epoch_record`).
      diverged: for each member, the epoch in which it diverged, or ``None``.
      test: each member's test record (``None`` until the run completes).
      epochs_done: how many epochs ran for the whole population.
      interrupted: Ctrl-C stopped the run after ``epochs_done`` epochs.
    """

    state: PopulationState
    histories: list[list[dict[str, Any]]]
    diverged: list[int | None]
    test: list[dict[str, Any]] | None
    epochs_done: int
    interrupted: bool = False


def split_records(trainer, params, split: str) -> list[dict[str, Any]] | None:
    """Each member's ``{split}_loss``, ``_accuracy``, ``_correct``, ``_total`` (``None``: empty)."""
    images, labels = trainer.data[split]
    total = int(images.shape[0])
    if total == 0:
        return None
    loss_sums, corrects = (np.asarray(a) for a in trainer.evaluate(params, images, labels))
    prefix = {"validation": "val"}.get(split, split)
    return [
        {
            f"{prefix}_loss": float(loss_sum) / total,
            f"{prefix}_accuracy": int(correct) / total,
            f"{prefix}_correct": int(correct),
            f"{prefix}_total": total,
        }
        for loss_sum, correct in zip(loss_sums, corrects)
    ]


def fit_population(
    trainer: PopulationTrainer,
    *,
    on_epoch: Callable[[PopulationResult], None] | None = None,
) -> PopulationResult:
    """Trains every member for the program's epochs; reports validation each epoch, test at
    the end.

    Ctrl-C ends the run after the last complete epoch with ``interrupted`` set (no test
    records); ``on_epoch`` sees the result so far after each epoch.
    """
    population = trainer.initial_state()
    limits = trainer.place_members(jnp.asarray(trainer.divergence_limits(population.train.params)))
    train_x, train_y = trainer.data["train"]
    result = PopulationResult(
        population, [[] for _ in trainer.members], [None] * trainer.size, None, 0
    )
    try:
        for epoch in range(trainer.program.epochs):
            began = time.perf_counter()
            was_alive = np.asarray(population.alive)
            population, totals = trainer.run_epoch(
                population, trainer.values, limits, train_x, train_y, trainer.epoch_keys(epoch)
            )
            validation = split_records(trainer, population.train.params, "validation")
            seconds = (time.perf_counter() - began) / trainer.size
            alive = np.asarray(population.alive)
            for index in range(trainer.size):
                if was_alive[index] and not alive[index]:
                    result.diverged[index] = epoch + 1
                if not alive[index]:
                    continue
                member_totals = EpochMetrics(*(np.asarray(t)[index] for t in totals))
                lr = reported_rate(trainer.schedules[index](epoch * trainer.steps_per_epoch))
                record = epoch_record(
                    epoch + 1, member_totals, lr, seconds, validation and validation[index]
                )
                result.histories[index].append(record)
            result.state, result.epochs_done = population, epoch + 1
            if on_epoch is not None:
                on_epoch(result)
    except KeyboardInterrupt:
        result.interrupted = True
        return result
    tests = split_records(trainer, population.train.params, "test")
    result.test = [{"event": "test", **test} for test in tests]
    return result
