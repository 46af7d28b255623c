"""The optimizer and the learning-rate schedules against independent references: the update
formulas written out in numpy (SGD, Nesterov momentum, Adam, AdamW, L2 and decoupled weight
decay on the weights only) and optax's own schedule constructors, step by step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxmlp.model import Layer
from jaxmlp.optim import learning_rate_schedule, make_optimizer
from jaxmlp.program import program_of, run_values
from jaxmlp.settings import Settings

STEPS_PER_EPOCH = 4
EPOCHS = 3
TOTAL = STEPS_PER_EPOCH * EPOCHS
B1, B2, EPS = 0.9, 0.999, 1e-8  # optax.adam's defaults, which the optimizers use


def program_and_values(**settings):
    members = [Settings(epochs=EPOCHS, **settings)]
    return program_of(members), run_values(members, STEPS_PER_EPOCH, stacked=False)


def tiny_params(seed: int = 0):
    rng = np.random.default_rng(seed)
    return (
        Layer(
            w=rng.normal(size=(3, 2)).astype(np.float32), b=rng.normal(size=3).astype(np.float32)
        ),
        Layer(
            w=rng.normal(size=(2, 3)).astype(np.float32), b=rng.normal(size=2).astype(np.float32)
        ),
    )


def gradient_sequence(steps: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    return [
        tuple(
            Layer(
                w=rng.normal(size=layer.w.shape).astype(np.float32),
                b=rng.normal(size=layer.b.shape).astype(np.float32),
            )
            for layer in tiny_params()
        )
        for _ in range(steps)
    ]


def run_optimizer(settings: dict, steps: int):
    """The parameters after each of ``steps`` updates by jaxmlp's optimizer."""
    program, values = program_and_values(**settings)
    optimizer = make_optimizer(program, values, STEPS_PER_EPOCH)
    params = jax.tree.map(jnp.asarray, tiny_params())
    state = optimizer.init(params)
    trajectory = []
    for grads in gradient_sequence(steps):
        updates, state = optimizer.update(jax.tree.map(jnp.asarray, grads), state, params)
        params = optax.apply_updates(params, updates)
        trajectory.append(jax.tree.map(np.asarray, params))
    return trajectory


def reference_trajectory(optimizer: str, lr_at, momentum=0.9, weight_decay=0.0, steps=TOTAL):
    """The same updates by the textbook formulas, leaf by leaf, in float64; weight decay
    applies to weights (``w``) and never to biases (``b``)."""
    params = [np.asarray(leaf, np.float64) for layer in tiny_params() for leaf in layer]
    is_weight = [name == "w" for _ in tiny_params() for name in ("w", "b")]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    trajectory = []
    for t, grads in enumerate(gradient_sequence(steps)):
        lr = lr_at(t)
        leaves = [np.asarray(leaf, np.float64) for layer in grads for leaf in layer]
        for i, (p, g) in enumerate(zip(params, leaves)):
            decay = weight_decay * p if is_weight[i] else 0.0
            if optimizer == "sgd":
                params[i] = p - lr * (g + decay)
            elif optimizer == "momentum":  # Nesterov: v ← μv + g; step g + μv
                g = g + decay
                first[i] = momentum * first[i] + g
                params[i] = p - lr * (g + momentum * first[i])
            else:
                g = g + (decay if optimizer == "adam" else 0.0)
                first[i] = B1 * first[i] + (1 - B1) * g
                second[i] = B2 * second[i] + (1 - B2) * g * g
                m_hat = first[i] / (1 - B1 ** (t + 1))
                v_hat = second[i] / (1 - B2 ** (t + 1))
                step = m_hat / (np.sqrt(v_hat) + EPS)
                if optimizer == "adamw":
                    step = step + decay
                params[i] = p - lr * step
        trajectory.append([p.copy() for p in params])
    return trajectory


def assert_trajectories_match(got, expected, rtol=1e-4, atol=1e-5):
    for step, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
        leaves = [leaf for layer in mine for leaf in layer]
        for index, (a, b) in enumerate(zip(leaves, theirs, strict=True)):
            np.testing.assert_allclose(
                a, b, rtol=rtol, atol=atol, err_msg=f"step {step} leaf {index}"
            )


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_each_optimizer_follows_its_formula(optimizer, weight_decay):
    lr = 0.05
    got = run_optimizer(
        {"optimizer": optimizer, "lr": lr, "momentum": 0.8, "weight_decay": weight_decay}, TOTAL
    )
    expected = reference_trajectory(
        optimizer, lambda t: lr, momentum=0.8, weight_decay=weight_decay
    )
    assert_trajectories_match(got, expected)


def test_weight_decay_leaves_biases_alone():
    """With zero gradients only decay moves parameters: weights shrink, biases stay."""
    program, values = program_and_values(optimizer="sgd", lr=0.1, weight_decay=0.5)
    optimizer = make_optimizer(program, values, STEPS_PER_EPOCH)
    params = jax.tree.map(jnp.asarray, tiny_params())
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = optimizer.update(zeros, optimizer.init(params), params)
    for layer, update in zip(params, updates):
        np.testing.assert_allclose(update.w, -0.1 * 0.5 * np.asarray(layer.w), rtol=1e-6)
        np.testing.assert_array_equal(update.b, np.zeros_like(layer.b))


def optax_reference_schedule(schedule: str, lr: float, warmup: int):
    """The schedule by optax's own constructors."""
    decay = TOTAL - warmup
    main = {
        "constant": optax.constant_schedule(lr),
        "cosine": optax.cosine_decay_schedule(lr, decay),
        "linear": optax.linear_schedule(lr, 0.0, decay),
    }[schedule]
    if not warmup:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


@pytest.mark.parametrize("schedule", ["constant", "cosine", "linear"])
@pytest.mark.parametrize("warmup_epochs", [0.0, 1.0, 0.5])
def test_schedules_match_optax_at_every_step(schedule, warmup_epochs):
    lr = 0.3
    program, values = program_and_values(schedule=schedule, lr=lr, warmup_epochs=warmup_epochs)
    mine = learning_rate_schedule(program, values, STEPS_PER_EPOCH)
    warmup = int(warmup_epochs * STEPS_PER_EPOCH)
    reference = optax_reference_schedule(schedule, lr, warmup)
    steps = np.arange(TOTAL + 2)
    got = np.array([float(mine(jnp.int32(t))) for t in steps])
    expected = np.array([float(reference(t)) for t in steps])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_cosine_reaches_zero_on_the_last_step_and_warmup_starts_at_zero():
    """The documented endpoints: ``lr(0) = 0`` with warm-up, ``lr = peak`` once it ends,
    ``lr(T) = 0`` at the run's last step for cosine (not a step early or late)."""
    program, values = program_and_values(schedule="cosine", lr=0.4, warmup_epochs=1.0)
    schedule = learning_rate_schedule(program, values, STEPS_PER_EPOCH)
    assert float(schedule(jnp.int32(0))) == 0.0
    assert float(schedule(jnp.int32(STEPS_PER_EPOCH))) == pytest.approx(0.4)
    assert float(schedule(jnp.int32(TOTAL - 1))) > 0.0
    assert float(schedule(jnp.int32(TOTAL))) == pytest.approx(0.0, abs=1e-9)
    halfway = STEPS_PER_EPOCH + (TOTAL - STEPS_PER_EPOCH) // 2
    assert float(schedule(jnp.int32(halfway))) == pytest.approx(0.2, rel=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_the_optimizer_applies_the_schedule_from_step_zero(optimizer):
    """The optimizer's t-th update uses the schedule's value at t (0-based)."""
    lr = 0.2
    settings = {"optimizer": optimizer, "lr": lr, "schedule": "cosine", "warmup_epochs": 1.0}
    got = run_optimizer(settings, TOTAL)
    reference = optax_reference_schedule("cosine", lr, STEPS_PER_EPOCH)
    expected = reference_trajectory(optimizer, lambda t: float(reference(t)))
    assert_trajectories_match(got, expected)


def test_momentum_is_nesterov_not_heavy_ball():
    """After two steps of the same gradient, Nesterov has moved lr·g·(1+μ) + lr·g·(1+μ+μ²);
    heavy-ball momentum would have moved lr·g + lr·g·(1+μ)."""
    program, values = program_and_values(optimizer="momentum", lr=1.0, momentum=0.5)
    optimizer = make_optimizer(program, values, STEPS_PER_EPOCH)
    params = jax.tree.map(jnp.asarray, tiny_params())
    ones = jax.tree.map(jnp.ones_like, params)
    state = optimizer.init(params)
    total = jax.tree.map(jnp.zeros_like, params)
    for _ in range(2):
        updates, state = optimizer.update(ones, state, params)
        total = jax.tree.map(jnp.add, total, updates)
    expected = -(1.5 + 1.75)
    for layer in total:
        np.testing.assert_allclose(layer.w, expected, rtol=1e-6)
        np.testing.assert_allclose(layer.b, expected, rtol=1e-6)


def test_adam_bias_correction_makes_the_first_step_lr_sized():
    """Adam's first update is ``lr · g / (|g| + ε)`` ≈ ``lr · sign(g)``, by bias correction."""
    program, values = program_and_values(optimizer="adam", lr=0.01)
    optimizer = make_optimizer(program, values, STEPS_PER_EPOCH)
    params = jax.tree.map(jnp.asarray, tiny_params())
    grads = jax.tree.map(jnp.asarray, gradient_sequence(1)[0])
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    for update, grad in zip(jax.tree.leaves(updates), jax.tree.leaves(grads)):
        np.testing.assert_allclose(update, -0.01 * np.sign(grad), rtol=1e-4)
