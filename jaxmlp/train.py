"""Training: an optax update on BP1–BP4 (or ``jax.grad``) gradients, a whole epoch per call.

A training step draws its mini-batch by index from the training set on the device, takes
the gradient of the mean cross-entropy (hand-written, with per-example work ``vmap``-ed,
or ``jax.grad``) and applies the optax update. :func:`make_epoch_fn` runs every step of an
epoch inside one ``jit``-compiled ``lax.scan``: per-step Python dispatch would cost more
than the arithmetic of a small network. A last batch smaller than ``batch_size`` is a
step of its own (unless ``drop_last``).

Randomness is a function of ``(seed, epoch)`` alone: epoch ``e`` shuffles and draws its
dropout masks from ``fold_in(key(seed), e)``, so a run resumed from a checkpoint after
epoch ``e`` continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxmlp import backprop
from jaxmlp.checkpoint import restore_tree
from jaxmlp.errors import ConfigError, DivergenceError, TrainingInterrupted
from jaxmlp.model import (
    INIT_SCHEMES,
    Layer,
    Params,
    cross_entropy,
    dropout_masks,
    forward,
    init_params,
    parse_sizes,
    smoothed_targets,
)

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "linear")

PRESETS: dict[str, dict] = {
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
"""Named starting settings: ``seed`` is the seed document's experiment (the defaults of
:class:`TrainConfig`); ``best`` is the README's recipe for ≥ 98.7% on MNIST."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. The defaults are the seed's experiment."""

    sizes: tuple[int, ...] = (784, 15, 10)
    init: str = "normal"
    epochs: int = 10
    batch_size: int = 10
    lr: float = 0.1
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    dropout: float = 0.0
    input_dropout: float = 0.0
    label_smoothing: float = 0.0
    augment_shift: int = 0
    grad: str = "manual"
    seed: int = 0
    drop_last: bool = False
    dataset: str = "mnist"
    val_size: int = 10_000
    limit: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "sizes", parse_sizes(self.sizes))
        checks = [
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.lr > 0 and math.isfinite(self.lr), f"--lr must be positive, got {self.lr}"),
            (self.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}"),
            (self.init in INIT_SCHEMES, f"--init must be one of {', '.join(INIT_SCHEMES)}"),
            (self.grad in backprop.GRADIENT_METHODS, "--grad must be manual or autodiff"),
            (0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}"),
            (self.weight_decay >= 0, f"--weight-decay must be ≥ 0, got {self.weight_decay}"),
            (self.warmup_epochs >= 0, f"--warmup-epochs must be ≥ 0, got {self.warmup_epochs}"),
            (0 <= self.dropout < 1, f"--dropout must be in [0, 1), got {self.dropout}"),
            (
                0 <= self.input_dropout < 1,
                f"--input-dropout must be in [0, 1), got {self.input_dropout}",
            ),
            (
                0 <= self.label_smoothing < 1,
                f"--label-smoothing must be in [0, 1), got {self.label_smoothing}",
            ),
            (self.augment_shift >= 0, f"--augment-shift must be ≥ 0, got {self.augment_shift}"),
            (self.limit is None or self.limit >= 1, f"--limit must be ≥ 1, got {self.limit}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (stored in checkpoints)."""
        settings = dataclasses.asdict(self)
        settings["sizes"] = list(self.sizes)
        return settings

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> TrainConfig:
        """The inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**settings)


class TrainState(NamedTuple):
    """What changes from step to step."""

    params: Params
    opt_state: optax.OptState


def steps_per_epoch(num_examples: int, batch_size: int, drop_last: bool) -> int:
    """Full batches, plus the ragged last one unless ``drop_last``."""
    full, rest = divmod(num_examples, batch_size)
    return full + (1 if rest and not drop_last else 0)


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int) -> optax.Schedule:
    """``constant``, ``cosine`` (to 0) or ``linear`` (to 0), after optional linear warm-up."""
    total = max(config.epochs * steps_per_epoch, 1)
    warmup = min(int(config.warmup_epochs * steps_per_epoch), total - 1)
    decay_steps = total - warmup
    if config.schedule == "constant":
        main = optax.constant_schedule(config.lr)
    elif config.schedule == "cosine":
        main = optax.cosine_decay_schedule(config.lr, decay_steps)
    else:
        main = optax.linear_schedule(config.lr, 0.0, decay_steps)
    if warmup == 0:
        return main
    ramp = optax.linear_schedule(0.0, config.lr, warmup)
    return optax.join_schedules([ramp, main], [warmup])


def weights_only(params: Params) -> Params:
    """A mask that applies weight decay to the weights ``W`` and not to the biases."""
    return tuple(Layer(w=True, b=False) for _ in params)


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """The optax transformation named by ``config.optimizer``.

    ``--weight-decay`` is L2 regularisation (``λ W`` added to the gradient) for ``sgd``,
    ``momentum`` and ``adam``, and decoupled weight decay for ``adamw``; biases are exempt.
    """
    schedule = learning_rate_schedule(config, steps_per_epoch)
    if config.optimizer == "adamw":
        return optax.adamw(schedule, weight_decay=config.weight_decay, mask=weights_only)
    if config.optimizer == "sgd":
        base = optax.sgd(schedule)
    elif config.optimizer == "momentum":
        base = optax.sgd(schedule, momentum=config.momentum, nesterov=True)
    else:
        base = optax.adam(schedule)
    if config.weight_decay == 0:
        return base
    return optax.chain(optax.add_decayed_weights(config.weight_decay, mask=weights_only), base)


def init_state(config: TrainConfig, tx: optax.GradientTransformation) -> TrainState:
    """Fresh parameters from ``key(seed)`` and the optimizer's initial state."""
    params = init_params(jax.random.key(config.seed), config.sizes, config.init)
    return TrainState(params, tx.init(params))


def epoch_key(seed: int, epoch: int) -> jax.Array:
    """The key of epoch ``epoch`` (0-based): shuffling and dropout depend on nothing else."""
    return jax.random.fold_in(jax.random.key(seed), epoch)


SHUFFLE_KEY_BITS = 8
"""Below this many random bits per sort key, :func:`shuffled_indices` defers to JAX."""


def shuffled_indices(key: jax.Array, n: int) -> jax.Array:
    """A random permutation of ``0 … n−1``: ``jax.random.permutation`` at a quarter of the cost.

    Each round sorts one ``uint32`` array whose low bits hold positions ``0 … n−1`` and
    whose high bits are random, then reads the positions back: a sort of one operand,
    where ``jax.random.permutation`` sorts key–value pairs, several times slower on CPU
    (20 ms for 50,000 examples, a fifth of a seed-config epoch). Positions whose random
    bits tie keep their order within a round; like ``jax.random.permutation``, enough
    rounds are composed that the random bits add up to 3 × log₂ n.
    """
    index_bits = max((n - 1).bit_length(), 1)
    random_bits = 32 - index_bits
    if random_bits < SHUFFLE_KEY_BITS:
        return jax.random.permutation(key, n)
    rounds = math.ceil(3 * index_bits / random_bits)
    index_mask = jnp.uint32((1 << index_bits) - 1)
    positions = jnp.arange(n, dtype=jnp.uint32)
    order = positions
    for round_key in jax.random.split(key, rounds):
        random_high = jax.random.bits(round_key, (n,), jnp.uint32) & ~index_mask
        order = order[jnp.sort(random_high | positions) & index_mask]
    return order.astype(jnp.int32)


def shift_images(key: jax.Array, x: jax.Array, image_shape: tuple[int, int], shift: int):
    """Translates each image of a batch by up to ``shift`` pixels each way, zero-filled."""
    height, width = image_shape
    batch = x.shape[0]
    images = x.reshape(batch, height, width)
    padded = jnp.pad(images, ((0, 0), (shift, shift), (shift, shift)))
    offsets = jax.random.randint(key, (batch, 2), 0, 2 * shift + 1)

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1]), (height, width))

    return jax.vmap(crop)(padded, offsets).reshape(batch, height * width)


def drop_inputs(key: jax.Array, x: jax.Array, rate: float) -> jax.Array:
    """Inverted dropout on the pixels: each is zeroed with probability ``rate``, the rest
    scaled by ``1/(1-rate)``. The input is data, not a layer, so BP1–BP4 are unchanged."""
    keep = 1.0 - rate
    return x * jax.random.bernoulli(key, keep, x.shape).astype(x.dtype) / keep


class EpochMetrics(NamedTuple):
    """Sums over an epoch's steps, on the device until the epoch is over."""

    loss_sum: jax.Array
    correct: jax.Array
    examples: jax.Array


def make_train_step(
    config: TrainConfig,
    tx: optax.GradientTransformation,
    image_shape: tuple[int, int] | None = None,
    shard_batch: Callable[[jax.Array], jax.Array] = lambda x: x,
):
    """``step(state, x, y, key) -> (state, (loss_sum, correct))`` for one mini-batch."""
    loss_logits_and_grad = backprop.loss_logits_and_grad_fn(config.grad)
    if config.augment_shift and image_shape is None:
        raise ConfigError("--augment-shift needs image data with a known height and width")

    def step(state: TrainState, x: jax.Array, y: jax.Array, key: jax.Array):
        shift_key, dropout_key = jax.random.split(key)
        if config.augment_shift:
            x = shift_images(shift_key, x, image_shape, config.augment_shift)
        if config.input_dropout:
            input_key = jax.random.fold_in(dropout_key, 0)
            x = drop_inputs(input_key, x, config.input_dropout)
        x, y = shard_batch(x), shard_batch(y)
        masks = dropout_masks(dropout_key, state.params, (x.shape[0],), config.dropout)
        targets = y
        if config.label_smoothing:
            output = state.params[-1].b
            targets = smoothed_targets(y, output.shape[0], config.label_smoothing, output.dtype)
        (loss, logits), grads = loss_logits_and_grad(state.params, x, targets, masks)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        correct = jnp.sum(jnp.argmax(logits, axis=-1) == y)
        return TrainState(params, opt_state), (loss * x.shape[0], correct)

    return step


def make_epoch_fn(
    config: TrainConfig,
    tx: optax.GradientTransformation,
    image_shape: tuple[int, int] | None = None,
    shard_batch: Callable[[jax.Array], jax.Array] = lambda x: x,
):
    """``epoch(state, images, labels, key) -> (state, EpochMetrics)``, ``jit``-compiled.

    Shuffles with ``key``, then scans the training step over all full batches, then takes
    one more step on the ragged remainder unless ``config.drop_last``.
    """
    step = make_train_step(config, tx, image_shape, shard_batch)
    batch_size = config.batch_size

    def run_steps(state, images, labels, indices, keys):
        def body(state, inputs):
            batch_indices, key = inputs
            return step(state, images[batch_indices], labels[batch_indices], key)

        state, (loss_sums, corrects) = jax.lax.scan(body, state, (indices, keys))
        return state, jnp.sum(loss_sums), jnp.sum(corrects)

    def epoch(state: TrainState, images: jax.Array, labels: jax.Array, key: jax.Array):
        num_examples = images.shape[0]
        full, rest = divmod(num_examples, batch_size)
        if full == 0 and (rest == 0 or config.drop_last):
            raise ConfigError(
                f"--batch-size {batch_size} is larger than the {num_examples} training "
                "examples and --drop-last leaves no batch"
            )
        order_key, step_key = jax.random.split(key)
        order = shuffled_indices(order_key, num_examples)
        step_keys = jax.random.split(step_key, full + 1)
        loss_sum = jnp.zeros((), jnp.float32)
        correct = jnp.zeros((), jnp.int32)
        if full:
            batches = order[: full * batch_size].reshape(full, batch_size)
            state, loss_sum, correct = run_steps(state, images, labels, batches, step_keys[:full])
        seen = full * batch_size
        if rest and not config.drop_last:
            last = order[seen:]
            state, (last_loss, last_correct) = step(
                state, images[last], labels[last], step_keys[full]
            )
            loss_sum, correct, seen = loss_sum + last_loss, correct + last_correct, num_examples
        return state, EpochMetrics(loss_sum, correct, jnp.asarray(seen))

    return jax.jit(epoch, donate_argnums=0)


def make_eval_fn(
    batch_size: int = 10_000, shard_batch: Callable[[jax.Array], jax.Array] = lambda x: x
):
    """``evaluate(params, images, labels) -> (loss_sum, correct)``, in chunks of ``batch_size``.

    ``shard_batch`` lays out each chunk inside the compiled function, as in training.
    """

    def evaluate(params: Params, images: jax.Array, labels: jax.Array):
        num_examples = images.shape[0]
        full, rest = divmod(num_examples, batch_size)

        def chunk_totals(x, y):
            x, y = shard_batch(x), shard_batch(y)
            logits = forward(params, x)
            return cross_entropy(logits, y) * x.shape[0], jnp.sum(jnp.argmax(logits, -1) == y)

        loss_sum = jnp.zeros((), jnp.float32)
        correct = jnp.zeros((), jnp.int32)
        if full:
            xs = images[: full * batch_size].reshape(full, batch_size, -1)
            ys = labels[: full * batch_size].reshape(full, batch_size)
            losses, corrects = jax.lax.map(lambda xy: chunk_totals(*xy), (xs, ys))
            loss_sum, correct = jnp.sum(losses), jnp.sum(corrects)
        if rest:
            rest_loss, rest_correct = chunk_totals(images[full * batch_size :], labels[-rest:])
            loss_sum, correct = loss_sum + rest_loss, correct + rest_correct
        return loss_sum, correct

    return jax.jit(evaluate)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What :func:`fit` returns."""

    params: Params
    opt_state: optax.OptState
    history: list[dict[str, Any]]
    """One record per epoch (see :func:`epoch_record`), resumed epochs included."""
    test: dict[str, Any] | None
    """Loss and accuracy on the test split, measured once after the last epoch."""


def check_fits_data(config: TrainConfig, input_size: int, num_classes: int) -> None:
    """Raises :class:`ConfigError` when ``--sizes`` does not match the data."""
    if config.sizes[0] != input_size:
        raise ConfigError(
            f"--sizes starts with {config.sizes[0]} inputs but the {config.dataset} images "
            f"have {input_size} pixels"
        )
    if config.sizes[-1] != num_classes:
        raise ConfigError(
            f"--sizes ends with {config.sizes[-1]} outputs but {config.dataset} has "
            f"{num_classes} classes"
        )


def split_totals(
    evaluate, params: Params, images: jax.Array, labels: jax.Array, name: str
) -> dict[str, Any]:
    """``{name}_loss``, ``{name}_accuracy``, ``{name}_correct``, ``{name}_total``."""
    loss_sum, correct = evaluate(params, images, labels)
    total = int(images.shape[0])
    return {
        f"{name}_loss": float(loss_sum) / total,
        f"{name}_accuracy": int(correct) / total,
        f"{name}_correct": int(correct),
        f"{name}_total": total,
    }


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


def divergence_limit(evaluate, params: Params, images, labels, num_classes: int) -> float:
    """The training loss above which a run counts as diverged.

    ``10 × max(L0, ln K)``: ten times the loss before training (on up to 10,000 training
    examples), or ten times that of guessing uniformly among ``K`` classes if larger.
    """
    sample = min(images.shape[0], 10_000)
    loss_sum, _ = evaluate(params, images[:sample], labels[:sample])
    initial = float(loss_sum) / sample
    return DIVERGENCE_FACTOR * max(initial, math.log(num_classes))


def check_not_diverged(train_loss: float, limit: float, epoch: int, config: TrainConfig):
    """Raises :class:`DivergenceError` if ``train_loss`` is NaN, infinite or above ``limit``."""
    if math.isfinite(train_loss) and train_loss <= limit:
        return
    raise DivergenceError(
        f"training diverged in epoch {epoch + 1}: the mean training loss became "
        f"{train_loss:.4g} (limit {limit:.4g}); try a smaller --lr than {config.lr:g}"
    )


def restore_state(config: TrainConfig, tx, checkpoint) -> TrainState:
    """The training state saved in ``checkpoint`` (from :mod:`jaxmlp.checkpoint`)."""
    params = tuple(checkpoint.params)
    opt_state = restore_tree(tx.init(params), checkpoint.opt_state_leaves, "optimizer state")
    return TrainState(params, opt_state)


def fit(
    config: TrainConfig,
    dataset,
    *,
    resume=None,
    on_epoch: Callable[[dict[str, Any], TrainState], None] | None = None,
    place: Callable[[jax.Array], jax.Array] = jnp.asarray,
    shard_batch: Callable[[jax.Array], jax.Array] = lambda x: x,
) -> TrainResult:
    """Trains on ``dataset.train``, reports ``dataset.validation`` each epoch, then ``test``.

    Args:
      config: the run's settings.
      dataset: a :class:`jaxmlp.data.Dataset` (``train``/``validation``/``test`` splits).
      resume: a :class:`jaxmlp.checkpoint.Checkpoint` to continue from, or ``None``.
      on_epoch: called after each epoch with its record and the new state (printing,
        checkpointing); the state is not yet donated to the next epoch.
      place: puts a host array, and each leaf of the initial state, on the device(s)
        (replicated over a mesh, for data parallelism).
      shard_batch: constrains a mini-batch's layout inside the compiled step.

    Raises:
      DivergenceError: an epoch's training loss was NaN, infinite, or above
        :func:`divergence_limit`; nothing of that epoch is reported or saved.
      TrainingInterrupted: Ctrl-C; epochs reported so far stand.
    """
    check_fits_data(config, dataset.train.images.shape[1], dataset.num_classes)
    per_epoch = steps_per_epoch(len(dataset.train), config.batch_size, config.drop_last)
    tx = make_optimizer(config, per_epoch)
    state = init_state(config, tx) if resume is None else restore_state(config, tx, resume)
    state = jax.tree.map(place, state)
    history = [] if resume is None else list(resume.metrics)
    start = 0 if resume is None else resume.epoch
    schedule = learning_rate_schedule(config, per_epoch)
    image_shape = getattr(dataset, "image_shape", None)
    run_epoch = make_epoch_fn(config, tx, image_shape, shard_batch)
    evaluate = make_eval_fn(shard_batch=shard_batch)
    train_x, train_y = place(dataset.train.images), place(dataset.train.labels)
    val_x, val_y = place(dataset.validation.images), place(dataset.validation.labels)
    limit = divergence_limit(evaluate, state.params, train_x, train_y, dataset.num_classes)
    try:
        for epoch in range(start, config.epochs):
            began = time.perf_counter()
            lr = float(schedule(epoch * per_epoch))
            state, totals = run_epoch(state, train_x, train_y, epoch_key(config.seed, epoch))
            check_not_diverged(float(totals.loss_sum) / int(totals.examples), limit, epoch, config)
            validation = (
                split_totals(evaluate, state.params, val_x, val_y, "val") if len(val_y) else None
            )
            seconds = time.perf_counter() - began
            record = epoch_record(epoch + 1, totals, lr, seconds, validation)
            history.append(record)
            if on_epoch is not None:
                on_epoch(record, state)
    except KeyboardInterrupt:
        done = f"after epoch {history[-1]['epoch']}" if history else "before the first epoch ended"
        raise TrainingInterrupted(f"interrupted {done}") from None
    test = split_totals(
        evaluate, state.params, place(dataset.test.images), place(dataset.test.labels), "test"
    )
    return TrainResult(state.params, state.opt_state, history, {"event": "test", **test})
