"""The optimizer and its learning-rate schedule, built from a program and per-run values.

The per-run values (:class:`~jaxmlp.program.RunValues`: learning rate, momentum, weight
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
from jaxmlp.program import Program, RunValues

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


def learning_rate_schedule(program: Program, values: RunValues, steps_per_epoch: int) -> Schedule:
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


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    """``optax.scale_by_adam`` (same state, same defaults), with its bias corrections as
    products by reciprocals: ``m · (1/(1 − β₁ᵗ)) / (√(v · (1/(1 − β₂ᵗ))) + ε)``.

    optax divides by the corrections; XLA rewrites a division by a broadcast scalar in one
    way for a solo run and in another for a population's ``(R,)`` corrections, so a member
    would differ from its solo run in the last bit. Written as products, both compile to
    the same arithmetic.
    """

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros, nu=zeros)

    def update(updates, state, params=None):
        mu = jax.tree.map(lambda g, m: (1 - b1) * g + b1 * m, updates, state.mu)
        nu = jax.tree.map(lambda g, v: (1 - b2) * (g**2) + b2 * v, updates, state.nu)
        count = optax.safe_increment(state.count)
        mu_scale = 1 / (1 - b1**count).astype(jnp.float32)
        nu_scale = 1 / (1 - b2**count).astype(jnp.float32)
        scaled = jax.tree.map(lambda m, v: (m * mu_scale) / (jnp.sqrt(v * nu_scale) + eps), mu, nu)
        return scaled, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init, update)


def nesterov(decay):
    """``optax.trace(decay, nesterov=True)`` (same state) with the sums written
    ``decay · t + g``."""

    def init(params):
        return optax.TraceState(trace=jax.tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        trace = jax.tree.map(lambda g, t: decay * t + g, updates, state.trace)
        updates = jax.tree.map(lambda g, t: decay * t + g, updates, trace)
        return updates, optax.TraceState(trace=trace)

    return optax.GradientTransformation(init, update)


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
        decay = optax.add_decayed_weights(values.weight_decay, mask=weights_only)
        return optax.chain(scale_by_adam(), decay, optax.scale_by_learning_rate(schedule))
    if program.optimizer == "sgd":
        base = optax.sgd(schedule)
    elif program.optimizer == "momentum":
        base = optax.chain(nesterov(values.momentum), optax.scale_by_learning_rate(schedule))
    else:
        base = optax.chain(scale_by_adam(), optax.scale_by_learning_rate(schedule))
    if not program.weight_decay:
        return base
    decay = optax.add_decayed_weights(values.weight_decay, mask=weights_only)
    return optax.chain(decay, base)
