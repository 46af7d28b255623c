"""Training: the step, the compiled epoch, one trainer over R ≥ 1 members, and ``fit``.

A training step draws its mini-batch by index from the training set on the device, takes
the gradient of the mean cross-entropy (hand-written BP1–BP4 with per-example work
``vmap``-ed, or ``jax.grad``) and applies the optax update. The compiled epoch runs every
step of an epoch inside one ``jit``-compiled ``lax.scan``: per-step Python dispatch would
cost more than the arithmetic of a small network. A last batch smaller than ``batch_size``
is a step of its own (unless ``drop_last``).

A run is a **population** of R ≥ 1 members; a solo run is a population of one. Every leaf
of the training state (:class:`TrainState`) carries a leading member axis, and so do the
per-run values (:class:`~jaxmlp.program.RunValues`: learning rate, momentum, dropout
rates, …), which are array arguments of the compiled epoch: one compiled epoch, which
depends on the :class:`~jaxmlp.program.Program` alone, trains any of them. One member
runs the epoch body as it is; several run it under ``jax.vmap``, in equal chunks of
at most :data:`MEMBER_CHUNK`. **A member is the same experiment as the solo run with its
settings** (tested bit for bit, epoch by epoch, in ``tests/test_members.py``).

Randomness is a function of ``(seed, epoch)`` alone: epoch ``e`` shuffles and draws its
dropout masks and shifts from ``fold_in(key(seed), e)``, so a run resumed from a
checkpoint after epoch ``e`` continues exactly as the uninterrupted run would have.

:func:`prepare` builds a :class:`Trainer` (the compiled epoch, the evaluator, the data on
the devices); :meth:`Trainer.train_epoch` trains every member one epoch and turns the
totals into per-member records; :func:`fit` repeats it and reports the test split.
Divergence is per member (:func:`diverged_members`): a member whose epoch loss is NaN,
infinite or above its limit keeps the state it had before that epoch and is frozen; when
no member is left, :class:`~jaxmlp.errors.DivergenceError` ends the fit. Ctrl-C raises
:class:`~jaxmlp.errors.TrainingInterrupted` carrying the progress of the complete epochs.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec

from jaxmlp import backprop
from jaxmlp.augment import drop_inputs, erase_images, flip_images, shift_images, shuffled_indices
from jaxmlp.errors import ConfigError, DivergenceError, TrainingInterrupted
from jaxmlp.evaluation import EVAL_CHUNK, make_split_totals, map_in_chunks
from jaxmlp.model import Params, first_argmax, hidden_dropout_masks, init_params, mixed_targets
from jaxmlp.optim import learning_rate_schedule, make_optimizer
from jaxmlp.program import Program, RunValues, program_of, run_values
from jaxmlp.settings import Settings

Shard = Callable[[jax.Array], jax.Array]
MEMBER_CHUNK = 16
"""The most members trained side by side in one batched product; larger populations run in
equal chunks of at most this many (17 members: two of 9, one a padding copy), one after
another inside the compiled epoch, which holds the epoch body once. Beyond about 16, XLA:CPU's
batched products sum in another order than a single network's, and a member would no
longer equal its solo run bit for bit (measured: R = 40 in one batch moved an lr-0.5
member by 70 % after one epoch; chunks of 8–20 left every member identical). Chunks also
keep a chunk's parameters in cache across the epoch's steps."""
EVAL_ACTIVATIONS = 1 << 24
"""Activations (floats) one evaluation chunk of the whole population may hold."""


def unsharded(x: jax.Array) -> jax.Array:
    """The layout of a one-device run: leaves a batch as it is."""
    return x


class TrainState(NamedTuple):
    """What changes from step to step."""

    params: Params
    opt_state: optax.OptState


class EpochMetrics(NamedTuple):
    """Sums over an epoch's steps, on the device until the epoch is over."""

    loss_sum: jax.Array
    correct: jax.Array
    examples: jax.Array


def steps_per_epoch(num_examples: int, batch_size: int, drop_last: bool) -> int:
    """Full batches, plus the ragged last one unless ``drop_last``."""
    full, rest = divmod(num_examples, batch_size)
    return full + (1 if rest and not drop_last else 0)


def epoch_key(seed: int, epoch: int) -> jax.Array:
    """The key of epoch ``epoch`` (0-based): shuffling and dropout depend on nothing else."""
    return jax.random.fold_in(jax.random.key(seed), epoch)


def init_state(
    program: Program, seed: int | jax.Array, tx: optax.GradientTransformation
) -> TrainState:
    """Fresh parameters from ``key(seed)`` and the optimizer's initial state."""
    params = init_params(jax.random.key(seed), program.sizes, program.init)
    return TrainState(params, tx.init(params))


def make_init_fn(program: Program, tx: optax.GradientTransformation, members: int):
    """``init(seeds) -> TrainState``, compiled: :func:`init_state` of each of the ``(R,)``
    uint32 seeds, with a leading member axis. One program, rather than a small one per
    key, draw, array and copy."""
    if members == 1:
        return jax.jit(lambda seeds: with_member_axis(init_state(program, seeds[0], tx)))
    return jax.jit(jax.vmap(lambda seed: init_state(program, seed, tx)))


@jax.jit
def member_epoch_keys(seeds: jax.Array, epoch: jax.Array) -> jax.Array:
    """:func:`epoch_key` of each of the ``(R,)`` uint32 ``seeds``, compiled once for all
    epochs (``epoch`` is an argument)."""
    return jax.vmap(lambda seed: epoch_key(seed, epoch))(seeds)


def make_train_step(
    program: Program,
    per_epoch: int,
    image_shape: tuple[int, int] | None = None,
    shard_batch: Shard = unsharded,
):
    """``step(state, values, x, y, key) -> (state, (loss_sum, correct))`` for one mini-batch."""
    loss_logits_and_grad = backprop.loss_logits_and_grad_fn(program.grad)
    for name in ("augment_shift", "augment_flip", "augment_erase"):
        if getattr(program, name) and image_shape is None:
            raise ConfigError("needs image data with a known height and width", setting=name)

    def step(state: TrainState, values: RunValues, x: jax.Array, y: jax.Array, key: jax.Array):
        tx = make_optimizer(program, values, per_epoch)
        shift_key, dropout_key = jax.random.split(key)
        if program.augment_flip or program.augment_erase:
            shift_key, flip_key, erase_key = jax.random.split(shift_key, 3)
        if program.augment_shift:
            x = shift_images(shift_key, x, image_shape, program.augment_shift)
        if program.augment_flip:
            x = flip_images(flip_key, x, image_shape)
        if program.augment_erase:
            x = erase_images(erase_key, x, image_shape, values.erase_probability)
        if program.input_dropout:
            x = drop_inputs(jax.random.fold_in(dropout_key, 0), x, values.input_keep)
        x, y = shard_batch(x), shard_batch(y)
        masks = None
        if program.dropout:
            masks = hidden_dropout_masks(
                dropout_key, state.params, (x.shape[0],), values.dropout_keep
            )
        targets = y
        if program.label_smoothing:
            output = state.params[-1].b
            targets = mixed_targets(
                y, output.shape[0], values.target_on, values.target_floor, output.dtype
            )
        (loss, logits), grads = loss_logits_and_grad(state.params, x, targets, masks)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        correct = jnp.sum(first_argmax(logits) == y)
        return TrainState(params, opt_state), (loss * x.shape[0], correct)

    return step


def make_epoch_body(
    program: Program,
    per_epoch: int,
    image_shape: tuple[int, int] | None = None,
    shard_batch: Shard = unsharded,
):
    """``epoch(state, values, images, labels, key) -> (state, EpochMetrics)``, not compiled.

    Shuffles with ``key``, then scans the training step over all full batches, then takes
    one more step on the ragged remainder unless ``program.drop_last``.
    """
    step = make_train_step(program, per_epoch, image_shape, shard_batch)
    batch_size = program.batch_size

    def epoch(state: TrainState, values: RunValues, images, labels, key: jax.Array):
        num_examples = images.shape[0]
        full, rest = divmod(num_examples, batch_size)
        order_key, step_key = jax.random.split(key)
        order = shuffled_indices(order_key, num_examples)
        step_keys = jax.random.split(step_key, full + 1)
        loss_sum = jnp.zeros((), jnp.float32)
        correct = jnp.zeros((), jnp.int32)
        if full:

            def body(state, inputs):
                batch_indices, batch_key = inputs
                x = images.at[batch_indices].get(mode="promise_in_bounds")
                y = labels.at[batch_indices].get(mode="promise_in_bounds")
                return step(state, values, x, y, batch_key)

            batches = order[: full * batch_size].reshape(full, batch_size)
            state, (loss_sums, corrects) = jax.lax.scan(body, state, (batches, step_keys[:full]))
            loss_sum, correct = jnp.sum(loss_sums), jnp.sum(corrects)
        seen = full * batch_size
        if rest and not program.drop_last:
            last = order[seen:]
            state, (last_loss, last_correct) = step(
                state, values, images[last], labels[last], step_keys[full]
            )
            loss_sum, correct, seen = loss_sum + last_loss, correct + last_correct, num_examples
        return state, EpochMetrics(loss_sum, correct, jnp.asarray(seen))

    return epoch


def first_member(tree):
    """Member 0 of every leaf (the member axis dropped)."""
    return jax.tree.map(lambda leaf: leaf[0], tree)


def with_member_axis(tree):
    """Every leaf as a population of one."""
    return jax.tree.map(lambda leaf: leaf[None], tree)


def make_epoch_fn(
    program: Program,
    per_epoch: int,
    image_shape: tuple[int, int] | None,
    alone: bool,
    layout=None,
):
    """``epoch(state, values, images, labels, keys) -> (state, EpochMetrics)``, compiled.

    Every leaf of the state, the values, the keys and the metrics has a leading member
    axis. A member ``alone`` on its device(s) runs :func:`make_epoch_body` as it is (a
    solo run's program); several run it under ``vmap``, in equal chunks of at most
    :data:`MEMBER_CHUNK` (:func:`~jaxmlp.evaluation.map_in_chunks`).
    With a ``layout`` (:class:`jaxmlp.parallel.DeviceLayout`), each group of devices on
    the member axis trains its share of the members (``shard_map``: nothing crosses
    between members) and each member's mini-batches are split over the data axis.
    """
    spread = layout is not None and layout.members > 1
    shard_batch = unsharded
    if layout is not None and layout.data > 1:
        shard_batch = layout.shard_member_batch if spread else layout.shard_batch
    body = make_epoch_body(program, per_epoch, image_shape, shard_batch)
    batched = jax.vmap(body, in_axes=(0, 0, None, None, 0))

    def epoch(state, values, images, labels, keys):
        if alone:
            state, metrics = body(
                first_member(state), first_member(values), images, labels, keys[0]
            )
            return with_member_axis((state, metrics))

        def train_chunk(chunk):
            return batched(chunk[0], chunk[1], images, labels, chunk[2])

        return map_in_chunks(train_chunk, (state, values, keys), MEMBER_CHUNK)

    if spread:
        own, shared = PartitionSpec(layout.MEMBER_AXIS), PartitionSpec()
        epoch = jax.shard_map(
            epoch,
            mesh=layout.mesh,
            in_specs=(own, own, shared, shared, own),
            out_specs=(own, own),
            axis_names={layout.MEMBER_AXIS},
            check_vma=False,
        )
    return jax.jit(epoch)


def make_totals_fn(members: int, sizes: Sequence[int], shard_batch: Shard = unsharded):
    """``totals(params, images, labels) -> (loss_sums, corrects)``, ``(R,)`` each, compiled
    (:func:`~jaxmlp.evaluation.make_split_totals` per member). A population's chunks of
    examples are small enough for all members' activations to fit :data:`EVAL_ACTIVATIONS`.
    """
    if members == 1:
        one = make_split_totals(shard_batch)
        return jax.jit(lambda p, x, y: with_member_axis(one(first_member(p), x, y)))
    chunk = max(1, min(EVAL_CHUNK, EVAL_ACTIVATIONS // (members * max(sizes[1:]))))
    return jax.jit(jax.vmap(make_split_totals(shard_batch, chunk), in_axes=(0, None, None)))


@jax.jit
def keep_rows(keep: jax.Array, new, old):
    """``new`` where ``keep`` (a boolean per member), else ``old``, leaf by leaf."""

    def pick(a, b):
        return jnp.where(keep.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(pick, new, old)


def check_fits_data(settings: Settings, dataset) -> None:
    """Raises :class:`ConfigError` when the settings cannot train on ``dataset``."""
    sizes, name = settings.sizes, dataset.name
    input_size, num_classes = dataset.train.images.shape[1], dataset.num_classes
    if sizes[0] != input_size:
        raise ConfigError(
            f"starts with {sizes[0]} inputs but the {name} images have {input_size} pixels",
            setting="sizes",
        )
    if sizes[-1] != num_classes:
        raise ConfigError(
            f"ends with {sizes[-1]} outputs but {name} has {num_classes} classes", setting="sizes"
        )
    num_train = len(dataset.train)
    if num_train == 0 or (settings.drop_last and settings.batch_size > num_train):
        raise ConfigError(
            f"{settings.batch_size} is larger than the {num_train} training examples and "
            "the ragged last batch is dropped (drop_last)",
            setting="batch_size",
        )
    image_shape = getattr(dataset, "image_shape", None)
    if settings.augment_shift and image_shape and settings.augment_shift >= min(image_shape):
        raise ConfigError(
            f"must be below the images' side ({min(image_shape)}), got {settings.augment_shift}",
            setting="augment_shift",
        )


def dataset_for(settings: Settings, dataset):
    """``dataset`` as the settings' data fields say: honoured where it can be, else refused.

    A ``limit`` is applied (the first ``limit`` examples of every split, as
    :func:`jaxmlp.data.load_dataset` takes them). A dataset of a name the settings know
    (``mnist``, ``fashion-mnist``) must be the one they name, and its validation split
    must be ``val_size`` examples long (at most ``limit``).

    Raises:
      ConfigError: the dataset contradicts the settings, naming both.
    """
    from jaxmlp.settings import SPECS

    if settings.limit is not None and max(len(s) for s in dataset.splits.values()) > settings.limit:
        dataset = dataclasses.replace(
            dataset,
            **{
                name: type(split)(split.images[: settings.limit], split.labels[: settings.limit])
                for name, split in dataset.splits.items()
            },
        )
    if dataset.name not in SPECS["dataset"].choices:
        return dataset
    if dataset.name != settings.dataset:
        raise ConfigError(
            f"is {settings.dataset} but the dataset given is {dataset.name}", setting="dataset"
        )
    expected = min(settings.val_size, settings.limit or settings.val_size)
    if len(dataset.validation) != expected:
        limit = "" if settings.limit is None else f" (limit {settings.limit})"
        raise ConfigError(
            f"is {settings.val_size}{limit} but the {dataset.name} dataset given validates on "
            f"{len(dataset.validation)} examples",
            setting="val_size",
        )
    return dataset


def reported_rate(value) -> float:
    """A float32 learning rate as its shortest decimal (``0.1``, not ``0.10000000149``)."""
    return float(str(np.float32(value)))


def split_records(trainer: Trainer, params, split: str) -> list[dict[str, Any]] | None:
    """Each member's ``{name}_loss``, ``_accuracy``, ``_correct``, ``_total`` on ``split``
    (``val`` for the validation split); ``None`` when the split is empty."""
    images, labels = trainer.data[split]
    total = int(images.shape[0])
    if total == 0:
        return None
    loss_sums, corrects = (np.asarray(a) for a in trainer.evaluate(params, images, labels))
    name = {"validation": "val"}.get(split, split)
    return [
        {
            f"{name}_loss": float(loss_sum) / total,
            f"{name}_accuracy": int(correct) / total,
            f"{name}_correct": int(correct),
            f"{name}_total": total,
        }
        for loss_sum, correct in zip(loss_sums, corrects)
    ]


def epoch_record(
    epoch: int, totals: EpochMetrics, lr: float, seconds: float, validation: dict | None
) -> dict[str, Any]:
    """One member's epoch (its sums in ``totals``) as a JSON record; ``epoch`` counts from 1."""
    examples = int(totals.examples)
    record = {
        "event": "epoch",
        "epoch": epoch,
        "train_loss": float(totals.loss_sum) / examples,
        "train_accuracy": int(totals.correct) / examples,
        "val_loss": None,
        "val_accuracy": None,
        "lr": lr,
        "seconds": seconds,
    }
    if validation:
        record.update(validation)
    return record


DIVERGENCE_FACTOR = 10.0
DIVERGENCE_SAMPLE = 10_000
"""Training examples whose loss before training sets the divergence limit."""


def divergence_limit(initial_loss: float, num_classes: int) -> float:
    """The training loss above which a run counts as diverged.

    ``10 × max(L0, ln K)``: ten times the loss before training (on up to 10,000 training
    examples), or ten times that of guessing uniformly among ``K`` classes if larger.
    """
    return DIVERGENCE_FACTOR * max(initial_loss, math.log(num_classes))


def diverged_members(losses: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """The one divergence rule: a mean training loss that is NaN, infinite or above its
    member's limit (:func:`divergence_limit`)."""
    return ~(np.isfinite(losses) & (losses <= limits))


@dataclasses.dataclass(frozen=True)
class Trainer:
    """Everything training R ≥ 1 members needs, built once by :func:`prepare`.

    Attributes:
      members: each member's settings (they share one program).
      program: the compiled program's settings.
      values: the per-run values, ``(R,)`` arrays, placed like the members.
      steps_per_epoch: optimizer steps per epoch.
      tx: the optimizer of member 0 (its state's structure is every member's).
      schedules: each member's learning rate at a step (for the records).
      run_epoch: the compiled epoch, ``(state, values, images, labels, keys)``.
      evaluate: the compiled evaluator, ``(params, images, labels) -> (loss_sums, corrects)``.
      data: the splits on the device(s): ``train``, ``validation``, ``test`` as (x, y),
        and ``divergence``: the first :data:`DIVERGENCE_SAMPLE` training examples.
      num_classes: the dataset's number of classes.
      layout: the devices (:class:`jaxmlp.parallel.DeviceLayout`), ``None`` for one.
    """

    members: tuple[Settings, ...]
    program: Program
    values: RunValues
    steps_per_epoch: int
    tx: optax.GradientTransformation
    schedules: tuple[Callable[[int], Any], ...]
    run_epoch: Callable
    evaluate: Callable
    data: dict[str, tuple[jax.Array, jax.Array]]
    num_classes: int
    image_shape: tuple[int, int] | None = None
    layout: Any = None

    @property
    def size(self) -> int:
        """The number of members, R."""
        return len(self.members)

    @property
    def settings(self) -> Settings:
        """Member 0's settings (a solo run's)."""
        return self.members[0]

    def place(self, value) -> jax.Array:
        """Puts a host array on the device(s), whole on each."""
        return jax.device_put(value) if self.layout is None else self.layout.place(value)

    def place_members(self, tree):
        """Splits the member axis of every leaf over the layout's member devices."""
        if self.layout is None or self.layout.members == 1:
            return jax.tree.map(self.place, tree)
        return self.layout.place_members(tree)

    @property
    def seeds(self) -> np.ndarray:
        """Each member's seed, ``(R,)`` uint32."""
        return np.asarray([member.seed for member in self.members], np.uint32)

    def initial_state(self) -> TrainState:
        """Every member's fresh parameters from its seed and its optimizer's initial state."""
        return self.place_members(make_init_fn(self.program, self.tx, self.size)(self.seeds))

    def restored_state(self, params: Params, opt_state_leaves: Sequence[np.ndarray]) -> TrainState:
        """A saved member's state (parameters, the optimizer state's leaves) as every
        member's, placed on the device(s)."""
        structure = jax.tree.structure(self.tx.init(params))
        opt_state = jax.tree.unflatten(structure, [np.asarray(leaf) for leaf in opt_state_leaves])
        state = TrainState(tuple(params), opt_state)
        repeat = lambda leaf: np.repeat(np.asarray(leaf)[None], self.size, axis=0)  # noqa: E731
        return self.place_members(jax.tree.map(repeat, state))

    def member_state(self, state: TrainState, index: int) -> TrainState:
        """Member ``index``'s training state, without the member axis (host arrays)."""
        return jax.tree.map(lambda leaf: np.asarray(leaf[index]), jax.device_get(state))

    def learning_rates(self, epoch: int) -> list[float]:
        """Each member's learning rate at the first step of ``epoch`` (0-based)."""
        step = epoch * self.steps_per_epoch
        return [reported_rate(schedule(step)) for schedule in self.schedules]

    def epoch_keys(self, epoch: int) -> jax.Array:
        """Each member's key of ``epoch``: :func:`epoch_key` of its seed."""
        keys = member_epoch_keys(self.seeds, np.int32(epoch))
        if self.layout is None or self.layout.members == 1:
            return keys
        return self.layout.place_members(keys)

    def divergence_limits(self, params) -> np.ndarray:
        """Each member's :func:`divergence_limit`, from its loss on up to
        :data:`DIVERGENCE_SAMPLE` training examples (``data["divergence"]``)."""
        sample_x, sample_y = self.data["divergence"]
        loss_sums, _ = self.evaluate(params, sample_x, sample_y)
        losses = np.asarray(loss_sums, np.float64) / sample_x.shape[0]
        return np.array([divergence_limit(float(loss), self.num_classes) for loss in losses])

    def start(self, state: TrainState | None = None, *, epoch: int = 0, histories=None) -> FitState:
        """The progress a fit starts from: ``state`` (fresh if ``None``) after ``epoch``
        epochs, whose records are ``histories`` (one list per member)."""
        state = self.initial_state() if state is None else state
        return FitState(
            state=state,
            epoch=epoch,
            histories=[list(h) for h in histories] if histories else [[] for _ in self.members],
            diverged=[None] * self.size,
            limits=self.divergence_limits(state.params),
        )

    def train_epoch(self, progress: FitState) -> FitState:
        """Trains every member one epoch: the new progress, with each member's record.

        A member that diverges in this epoch keeps its previous state and gets no record;
        so does one that diverged before.
        """
        began = time.perf_counter()
        epoch = progress.epoch
        lrs = self.learning_rates(epoch)
        train_x, train_y = self.data["train"]
        state, totals = self.run_epoch(
            progress.state, self.values, train_x, train_y, self.epoch_keys(epoch)
        )
        totals = EpochMetrics(*(np.asarray(t) for t in jax.device_get(totals)))
        losses = totals.loss_sum.astype(np.float64) / totals.examples
        alive = progress.alive & ~diverged_members(losses, progress.limits)
        if not alive.all():
            state = keep_rows(jnp.asarray(alive), state, progress.state)
        validation = split_records(self, state.params, "validation")
        seconds = (time.perf_counter() - began) / self.size
        histories = [list(history) for history in progress.histories]
        diverged = list(progress.diverged)
        for index, history in enumerate(histories):
            if alive[index]:
                member = EpochMetrics(*(t[index] for t in totals))
                shown = validation and validation[index]
                history.append(epoch_record(epoch + 1, member, lrs[index], seconds, shown))
            elif progress.alive[index]:
                diverged[index] = epoch + 1
        new = dataclasses.replace(
            progress, state=state, epoch=epoch + 1, histories=histories, diverged=diverged
        )
        if not alive.any():
            raise DivergenceError(divergence_message(self, new, losses), progress=new)
        return new

    def subset(self, indices: Sequence[int], members: Sequence[Settings] | None = None) -> Trainer:
        """A trainer of the members at ``indices`` (repeats allowed), or of ``members`` in
        their place (same program: e.g. other learning rates); compiled programs are shared."""
        chosen = tuple(members) if members is not None else tuple(self.members[i] for i in indices)
        return build_trainer(chosen, self.data, self.num_classes, self.image_shape, self.layout)


def divergence_message(trainer: Trainer, progress: FitState, losses: np.ndarray) -> str:
    """Why a fit ended: its one member diverged (with a hint), or every member did."""
    if trainer.size > 1:
        return f"every one of the {trainer.size} runs diverged by epoch {progress.epoch}"
    lr, limit = trainer.settings.lr, progress.limits[0]
    return (
        f"training diverged in epoch {progress.epoch}: the mean training loss became "
        f"{losses[0]:.4g} (limit {limit:.4g}); try a smaller learning rate than {lr:g}"
    )


@dataclasses.dataclass(frozen=True)
class FitState:
    """How far a fit has come: the state after ``epoch`` epochs and each member's records.

    Attributes:
      state: every member's training state (leading member axis).
      epoch: the epochs done.
      histories: each member's epoch records (:func:`epoch_record`).
      diverged: for each member, the epoch in which it diverged, or ``None``.
      limits: each member's divergence limit.
    """

    state: TrainState
    epoch: int
    histories: list[list[dict[str, Any]]]
    diverged: list[int | None]
    limits: np.ndarray

    @property
    def alive(self) -> np.ndarray:
        """``(R,)`` booleans: the members still training."""
        return np.array([when is None for when in self.diverged], bool)

    def take(self, indices: Sequence[int]) -> FitState:
        """The progress of the members at ``indices`` (repeats allowed), in that order
        (for :meth:`Trainer.subset`)."""
        rows = np.asarray(indices)
        return FitState(
            state=jax.tree.map(lambda leaf: leaf[rows], self.state),
            epoch=self.epoch,
            histories=[list(self.histories[i]) for i in rows],
            diverged=[self.diverged[i] for i in rows],
            limits=self.limits[rows],
        )


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """One member's outcome: its parameters, optimizer state, records and test result."""

    params: Params
    opt_state: optax.OptState
    history: list[dict[str, Any]]
    """One record per epoch (see :func:`epoch_record`), resumed epochs included."""
    test: dict[str, Any] | None
    """Loss and accuracy on the test split, measured once after the last epoch."""
    diverged: int | None = None


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns: the final progress and each member's test record.

    A solo run reads as one: ``result.params``, ``result.history``, ``result.test``.
    """

    progress: FitState
    tests: list[dict[str, Any]]

    def member(self, index: int) -> TrainResult:
        """Member ``index``'s outcome (its arrays without the member axis)."""
        params, opt_state = jax.tree.map(lambda leaf: leaf[index], tuple(self.progress.state))
        history, diverged = self.progress.histories[index], self.progress.diverged[index]
        return TrainResult(params, opt_state, history, self.tests[index], diverged)

    def solo(self) -> TrainResult:
        """The one member's outcome; a population's must be asked by :meth:`member`."""
        return self.member(self.solo_index())

    def solo_index(self) -> int:
        """0, the index of a solo run's member; a population's must be asked by index."""
        if len(self.tests) != 1:
            raise ValueError(f"a population of {len(self.tests)} runs: use .member(index)")
        return 0

    state = property(lambda self: self.progress.state, doc="Every member's final state.")
    histories = property(lambda self: self.progress.histories, doc="Each member's records.")
    diverged = property(lambda self: self.progress.diverged, doc="Each member's divergence.")
    params = property(lambda self: self.solo().params, doc="A solo run's parameters.")
    opt_state = property(lambda self: self.solo().opt_state, doc="A solo run's optimizer state.")
    history = property(
        lambda self: self.histories[self.solo_index()], doc="A solo run's epoch records."
    )
    test = property(lambda self: self.tests[self.solo_index()], doc="A solo run's test record.")


def prepare(settings: Settings | Sequence[Settings], dataset, *, layout=None) -> Trainer:
    """Builds what training ``settings`` (one run, or several sharing a program) on
    ``dataset`` needs.

    Args:
      settings: a run's settings, or the members of a population.
      dataset: a :class:`jaxmlp.data.Dataset`; its data fields must agree with the
        settings' (see :func:`dataset_for`).
      layout: a :class:`jaxmlp.parallel.DeviceLayout` (members × data over several
        devices); ``None`` for one device.

    Raises:
      ConfigError: members of different programs, settings that do not fit the data, a
        dataset that contradicts them, members that do not divide among the devices.
    """
    members = (settings,) if isinstance(settings, Settings) else tuple(settings)
    if not members:
        raise ConfigError("a population needs at least one member")
    program = program_of(list(members))
    dataset = dataset_for(members[0], dataset)
    check_fits_data(members[0], dataset)
    if layout is not None:
        layout.check(len(members), program.batch_size)
    place = jax.device_put if layout is None else layout.place
    data = {
        name: (place(split.images), place(split.labels)) for name, split in dataset.splits.items()
    }
    sample = dataset.train.images[:DIVERGENCE_SAMPLE], dataset.train.labels[:DIVERGENCE_SAMPLE]
    fits = len(dataset.train) <= DIVERGENCE_SAMPLE
    data["divergence"] = data["train"] if fits else (place(sample[0]), place(sample[1]))
    image_shape = getattr(dataset, "image_shape", None)
    return build_trainer(members, data, dataset.num_classes, image_shape, layout)


def build_trainer(members, data, num_classes, image_shape, layout) -> Trainer:
    """The :class:`Trainer` of ``members`` on data already on the device(s)."""
    program = program_of(list(members))
    per_epoch = steps_per_epoch(len(data["train"][1]), program.batch_size, program.drop_last)
    values = run_values(list(members), per_epoch)
    own_values = [member.values(per_epoch) for member in members]
    solo = len(members) == 1
    split = solo and layout is not None and layout.data > 1
    alone = len(members) == (1 if layout is None else layout.members)
    trainer = Trainer(
        members=tuple(members),
        program=program,
        values=values,
        steps_per_epoch=per_epoch,
        tx=make_optimizer(program, own_values[0], per_epoch),
        schedules=tuple(learning_rate_schedule(program, v, per_epoch) for v in own_values),
        run_epoch=compiled_epoch(program, per_epoch, image_shape, alone, layout),
        evaluate=compiled_totals(
            len(members), program.sizes, layout.shard_batch if split else unsharded
        ),
        data=data,
        num_classes=num_classes,
        image_shape=image_shape,
        layout=layout,
    )
    return dataclasses.replace(trainer, values=trainer.place_members(values))


@functools.lru_cache(maxsize=32)
def compiled_epoch(program, per_epoch, image_shape, alone: bool, layout):
    """:func:`make_epoch_fn`, one per program (jit compiles it once per population size)."""
    return make_epoch_fn(program, per_epoch, image_shape, alone, layout)


@functools.lru_cache(maxsize=32)
def compiled_totals(members: int, sizes, shard_batch):
    """:func:`make_totals_fn`, one per population size."""
    return make_totals_fn(members, sizes, shard_batch)


def fit(
    trainer: Trainer,
    start: FitState | TrainState | None = None,
    *,
    on_epoch: Callable[[FitState], bool | None] | None = None,
) -> FitResult:
    """Trains every member up to the program's epochs; reports validation each epoch and
    the test split once at the end.

    Args:
      trainer: from :func:`prepare`.
      start: the progress to continue (:meth:`Trainer.start`), a state to start from at
        epoch 0, or ``None`` for fresh members.
      on_epoch: called with the progress after each epoch; a true return value ends
        training after that epoch (early stopping).

    Raises:
      DivergenceError: every member diverged; carries the progress (``.progress``).
      TrainingInterrupted: Ctrl-C; carries the progress of the complete epochs.
    """
    if not isinstance(start, FitState):
        start = trainer.start(start)
    progress = start
    try:
        while progress.epoch < trainer.program.epochs:
            progress = trainer.train_epoch(progress)
            if on_epoch is not None and on_epoch(progress):
                break
    except KeyboardInterrupt:
        completed = progress.epoch if progress.epoch else None
        raise TrainingInterrupted(completed, progress=progress) from None
    tests = split_records(trainer, progress.state.params, "test")
    return FitResult(progress, [{"event": "test", **test} for test in tests])
