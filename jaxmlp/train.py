"""Training: the step, the compiled epoch, the setup of a run, and ``fit``.

A training step draws its mini-batch by index from the training set on the device, takes
the gradient of the mean cross-entropy (hand-written BP1–BP4 with per-example work
``vmap``-ed, or ``jax.grad``) and applies the optax update. :func:`make_epoch_fn` runs
every step of an epoch inside one ``jit``-compiled ``lax.scan``: per-step Python dispatch
would cost more than the arithmetic of a small network. A last batch smaller than
``batch_size`` is a step of its own (unless ``drop_last``).

The compiled epoch depends on the :class:`~jaxmlp.settings.Program` alone; the per-run
values (learning rate, momentum, weight decay, warm-up, dropout rates, label smoothing)
are array arguments (:class:`~jaxmlp.settings.RunValues`), so one compiled epoch trains
with any of them — and ``jax.vmap`` of it trains a population (:mod:`jaxmlp.population`).

Randomness is a function of ``(seed, epoch)`` alone: epoch ``e`` shuffles and draws its
dropout masks and shifts from ``fold_in(key(seed), e)``, so a run resumed from a
checkpoint after epoch ``e`` continues exactly as the uninterrupted run would have.

:func:`prepare` is the setup seam — it builds everything a run needs (the compiled
epoch, the evaluator, the schedule, the data on the device, the initial state) — and
:func:`fit` trains from a given state and epoch.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmlp import backprop
from jaxmlp.augment import drop_inputs, erase_images, flip_images, shift_images, shuffled_indices
from jaxmlp.errors import ConfigError, DivergenceError, TrainingInterrupted
from jaxmlp.evaluation import make_split_totals
from jaxmlp.model import Params, first_argmax, hidden_dropout_masks, init_params, mixed_targets
from jaxmlp.optim import learning_rate_schedule, make_optimizer
from jaxmlp.settings import Program, RunValues, Settings

Shard = Callable[[jax.Array], jax.Array]


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


def init_state(program: Program, seed: int, tx: optax.GradientTransformation) -> TrainState:
    """Fresh parameters from ``key(seed)`` and the optimizer's initial state."""
    params = init_params(jax.random.key(seed), program.sizes, program.init)
    return TrainState(params, tx.init(params))


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


def make_epoch_fn(
    program: Program,
    per_epoch: int,
    image_shape: tuple[int, int] | None = None,
    shard_batch: Shard = unsharded,
):
    """The compiled :func:`make_epoch_body`; the state argument is donated."""
    return jax.jit(make_epoch_body(program, per_epoch, image_shape, shard_batch), donate_argnums=0)


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


def split_totals(evaluate, params: Params, images, labels, name: str) -> dict[str, Any]:
    """``{name}_loss``, ``{name}_accuracy``, ``{name}_correct``, ``{name}_total``."""
    loss_sum, correct = evaluate(params, images, labels)
    total = int(images.shape[0])
    return {
        f"{name}_loss": float(loss_sum) / total,
        f"{name}_accuracy": int(correct) / total,
        f"{name}_correct": int(correct),
        f"{name}_total": total,
    }


def reported_rate(value) -> float:
    """A float32 learning rate as its shortest decimal (``0.1``, not ``0.10000000149``)."""
    return float(str(np.float32(value)))


def epoch_record(
    epoch: int, totals: EpochMetrics, lr: float, seconds: float, validation: dict | None
) -> dict[str, Any]:
    """The metrics of one epoch as JSON (``epoch`` counts from 1)."""
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


def check_not_diverged(train_loss: float, limit: float, epoch: int, lr: float) -> None:
    """Raises :class:`DivergenceError` if ``train_loss`` is NaN, infinite or above ``limit``."""
    if math.isfinite(train_loss) and train_loss <= limit:
        return
    raise DivergenceError(
        f"training diverged in epoch {epoch + 1}: the mean training loss became "
        f"{train_loss:.4g} (limit {limit:.4g}); try a smaller learning rate than {lr:g}"
    )


@dataclasses.dataclass(frozen=True)
class Trainer:
    """Everything a run needs, built once by :func:`prepare`.

    Attributes:
      settings: the run's settings.
      program: the compiled program's settings.
      values: the per-run values as arrays.
      steps_per_epoch: optimizer steps per epoch.
      tx: the optimizer (built from concrete values: for ``init`` and restoring).
      schedule: the learning rate at a step.
      run_epoch: the compiled epoch, ``(state, values, images, labels, key)``.
      evaluate: the compiled evaluator, ``(params, images, labels) -> (loss_sum, correct)``.
      place: puts a host array (and each leaf of a state) on the device(s).
      data: the splits on the device(s): ``train``, ``validation``, ``test`` as (x, y).
      num_classes: the dataset's number of classes.
    """

    settings: Settings
    program: Program
    values: RunValues
    steps_per_epoch: int
    tx: optax.GradientTransformation
    schedule: Callable[[int], Any]
    run_epoch: Callable
    evaluate: Callable
    place: Callable[[Any], jax.Array]
    data: dict[str, tuple[jax.Array, jax.Array]]
    num_classes: int

    def initial_state(self) -> TrainState:
        """Fresh parameters from the seed, placed on the device(s)."""
        return jax.tree.map(self.place, init_state(self.program, self.settings.seed, self.tx))

    def restored_state(self, params: Params, opt_state_leaves: tuple[np.ndarray, ...]) -> TrainState:
        """A saved state (parameters, the optimizer state's leaves), placed on the device(s)."""
        structure = jax.tree.structure(self.tx.init(params))
        opt_state = jax.tree.unflatten(structure, [jnp.asarray(leaf) for leaf in opt_state_leaves])
        return jax.tree.map(self.place, TrainState(tuple(params), opt_state))

    def learning_rate(self, epoch: int) -> float:
        """The learning rate at the first step of ``epoch`` (0-based)."""
        return reported_rate(self.schedule(epoch * self.steps_per_epoch))

    def divergence_limit(self, params: Params) -> float:
        """:func:`divergence_limit` for a run starting from ``params``."""
        train_x, train_y = self.data["train"]
        sample = min(train_x.shape[0], DIVERGENCE_SAMPLE)
        loss_sum, _ = self.evaluate(params, train_x[:sample], train_y[:sample])
        return divergence_limit(float(loss_sum) / sample, self.num_classes)


def prepare(
    settings: Settings,
    dataset,
    *,
    place: Callable[[Any], jax.Array] = jnp.asarray,
    shard_batch: Shard = unsharded,
) -> Trainer:
    """Builds what a run of ``settings`` on ``dataset`` needs: the setup seam.

    Args:
      settings: the run's settings.
      dataset: a :class:`jaxmlp.data.Dataset` (``train``/``validation``/``test`` splits).
      place: puts a host array, and each leaf of the state, on the device(s) (replicated
        over a mesh, for data parallelism).
      shard_batch: constrains a mini-batch's layout inside the compiled step.

    Raises:
      ConfigError: the settings do not fit the data.
    """
    check_fits_data(settings, dataset)
    program = settings.program()
    per_epoch = steps_per_epoch(len(dataset.train), settings.batch_size, settings.drop_last)
    values = settings.values(per_epoch)
    image_shape = getattr(dataset, "image_shape", None)
    return Trainer(
        settings=settings,
        program=program,
        values=values,
        steps_per_epoch=per_epoch,
        tx=make_optimizer(program, values, per_epoch),
        schedule=learning_rate_schedule(program, values, per_epoch),
        run_epoch=make_epoch_fn(program, per_epoch, image_shape, shard_batch),
        evaluate=make_split_totals(shard_batch=shard_batch),
        place=place,
        data={
            name: (place(split.images), place(split.labels))
            for name, split in dataset.splits.items()
        },
        num_classes=dataset.num_classes,
    )


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What :func:`fit` returns."""

    params: Params
    opt_state: optax.OptState
    history: list[dict[str, Any]]
    """One record per epoch (see :func:`epoch_record`), resumed epochs included."""
    test: dict[str, Any]
    """Loss and accuracy on the test split, measured once after the last epoch."""


def fit(
    trainer: Trainer,
    state: TrainState | None = None,
    *,
    start_epoch: int = 0,
    history: list[dict[str, Any]] | None = None,
    on_epoch: Callable[[list[dict[str, Any]], TrainState], None] | None = None,
) -> TrainResult:
    """Trains from ``state`` after ``start_epoch`` epochs up to the settings' epochs.

    Reports the validation split each epoch and the test split once at the end.

    Args:
      trainer: from :func:`prepare`.
      state: the state to continue from (default: :meth:`Trainer.initial_state`).
      start_epoch: how many epochs ``state`` has trained.
      history: the records of those epochs; each new epoch's record is appended to it.
      on_epoch: called after each epoch with the history (its last record the new
        epoch's) and the new state, before that state is donated to the next epoch; a
        true return value ends training after that epoch (early stopping).

    Raises:
      DivergenceError: an epoch's training loss was NaN, infinite, or above
        :meth:`Trainer.divergence_limit`; nothing of that epoch is reported.
      TrainingInterrupted: Ctrl-C; the epochs in ``history`` stand.
    """
    settings = trainer.settings
    state = trainer.initial_state() if state is None else state
    history = [] if history is None else history
    train_x, train_y = trainer.data["train"]
    val_x, val_y = trainer.data["validation"]
    limit = trainer.divergence_limit(state.params)
    try:
        for epoch in range(start_epoch, settings.epochs):
            began = time.perf_counter()
            lr = trainer.learning_rate(epoch)
            key = epoch_key(settings.seed, epoch)
            state, totals = trainer.run_epoch(state, trainer.values, train_x, train_y, key)
            train_loss = float(totals.loss_sum) / int(totals.examples)
            check_not_diverged(train_loss, limit, epoch, settings.lr)
            validation = (
                split_totals(trainer.evaluate, state.params, val_x, val_y, "val")
                if len(val_y)
                else None
            )
            seconds = time.perf_counter() - began
            history.append(epoch_record(epoch + 1, totals, lr, seconds, validation))
            if on_epoch is not None and on_epoch(history, state):
                break
    except KeyboardInterrupt:
        raise TrainingInterrupted(history[-1]["epoch"] if history else None) from None
    test_x, test_y = trainer.data["test"]
    test = split_totals(trainer.evaluate, state.params, test_x, test_y, "test")
    return TrainResult(state.params, state.opt_state, history, {"event": "test", **test})
