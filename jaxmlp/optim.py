"""The optimizer and its learning-rate schedule, built from a program and per-run values.

The per-run values (:class:`~jaxmlp.settings.RunValues`: learning rate, momentum, weight
decay, warm-up) may be traced arrays: the transformation is built inside the compiled
program from them, so one program serves every value, and ``jax.vmap`` over the values
trains a population. The optimizer state's structure depends on the program alone.

The schedules follow optax's formulas operation for operation (``constant_schedule``,
``cosine_decay_schedule``, ``linear_schedule``, ``join_schedules``), written here because
optax's constructors test their step counts in Python, which a traced warm-up cannot pass.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jaxmlp.model import Layer, Params
from jaxmlp.settings import Program, RunValues

Schedule = Callable[[jax.Array], jax.Array]


def total_steps(program: Program, steps_per_epoch: int) -> int:
    """Optimizer steps in the whole run (at least 1)."""
    return max(program.epochs * steps_per_epoch, 1)


def cosine_decay(peak, decay_steps) -> Schedule:
    """``peak · ½(1 + cos(π t / T))`` for ``t ≤ T``, then 0 (optax's cosine decay)."""

    def schedule(count):
        count = jnp.minimum(count, decay_steps)
        return peak * (0.5 * (1 + jnp.cos(jnp.pi * count / decay_steps)))

    return schedule


def linear_ramp(start, end, steps) -> Schedule:
    """From ``start`` to ``end`` over ``steps``, then ``end`` (optax's linear schedule)."""

    def schedule(count):
        frac = 1 - jnp.clip(count, 0, steps) / steps
        return (start - end) * frac + end

    return schedule


def learning_rate_schedule(
    program: Program, values: RunValues, steps_per_epoch: int
) -> Schedule:
    """``constant``, ``cosine`` (to 0) or ``linear`` (to 0), after the linear warm-up."""
    warmup = values.warmup_steps
    decay_steps = total_steps(program, steps_per_epoch) - warmup
    if program.schedule == "cosine":
        main = cosine_decay(values.lr, decay_steps)
    elif program.schedule == "linear":
        main = linear_ramp(values.lr, 0.0, decay_steps)
    else:
        main = lambda count: values.lr  # noqa: E731
    if not program.warmup:
        return main
    ramp = linear_ramp(0.0, values.lr, warmup)
    return lambda count: jnp.where(count < warmup, ramp(count), main(count - warmup))


def weights_only(params: Params) -> Params:
    """A mask that applies weight decay to the weights ``W`` and not to the biases."""
    return tuple(Layer(w=True, b=False) for _ in params)


def make_optimizer(
    program: Program, values: RunValues, steps_per_epoch: int
) -> optax.GradientTransformation:
    """The optax transformation named by ``program.optimizer``.

    Weight decay is L2 regularisation (``λ W`` added to the gradient) for ``sgd``,
    ``momentum`` and ``adam``, and decoupled weight decay for ``adamw``; biases are exempt.
    ``momentum`` is SGD with Nesterov momentum.
    """
    schedule = learning_rate_schedule(program, values, steps_per_epoch)
    if program.optimizer == "adamw":
        return optax.adamw(schedule, weight_decay=values.weight_decay, mask=weights_only)
    if program.optimizer == "sgd":
        base = optax.sgd(schedule)
    elif program.optimizer == "momentum":
        base = optax.sgd(schedule, momentum=values.momentum, nesterov=True)
    else:
        base = optax.adam(schedule)
    if not program.weight_decay:
        return base
    decay = optax.add_decayed_weights(values.weight_decay, mask=weights_only)
    return optax.chain(decay, base)
