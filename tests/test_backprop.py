"""BP1–BP4 by hand against jax.grad and finite differences, on many random networks."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import max_difference, random_problem, relative_error

from jaxmlp import backprop, gradcheck, model


def random_architectures(count: int, seed: int, quick: int):
    """Depth 1–6 weight layers, widths 1–12 (1 included), batch 1–9 (1 included).

    The first ``quick`` (the corner cases among them) are in the quick subset; the rest,
    each a compilation of its own, run with the slow tests.
    """
    rng = np.random.default_rng(seed)
    cases = [((3, 1, 2), 1), ((1, 1, 2), 4), ((5, 2), 1)]
    while len(cases) < count:
        depth = int(rng.integers(1, 7))
        hidden = [int(w) for w in rng.integers(1, 13, depth - 1)]
        sizes = (int(rng.integers(1, 13)), *hidden, int(rng.integers(2, 6)))
        cases.append((sizes, int(rng.integers(1, 10))))
    return [
        case if index < quick else pytest.param(*case, marks=pytest.mark.slow)
        for index, case in enumerate(cases)
    ]


@jax.jit
def both_gradients(params, x, y, masks=None):
    return backprop.manual_grad(params, x, y, masks), jax.grad(model.loss)(params, x, y, masks)


@jax.jit
def both_values_and_gradients(params, x, y):
    return backprop.manual_value_and_grad(params, x, y), backprop.autodiff_value_and_grad(
        params, x, y
    )


@pytest.mark.parametrize("sizes, batch", random_architectures(30, seed=0, quick=10))
def test_manual_equals_autodiff_in_float64(sizes, batch):
    with jax.enable_x64(True):
        params, x, y = random_problem(sum(sizes) + batch, sizes, batch, jnp.float64)
        manual, autodiff = both_gradients(params, x, y)
        assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(manual))
        chex.assert_trees_all_equal_structs(manual, autodiff)
        chex.assert_trees_all_equal_shapes_and_dtypes(manual, params)
        assert relative_error(manual, autodiff) <= 1e-10
        assert max_difference(manual, autodiff) <= 1e-12


@pytest.mark.parametrize("sizes, batch", random_architectures(12, seed=1, quick=4))
def test_manual_equals_autodiff_in_float32(sizes, batch):
    """IEEE float32 products: GPUs and TPUs would otherwise use TF32 or bfloat16 passes."""
    params, x, y = random_problem(batch, sizes, batch, jnp.float32)
    with jax.default_matmul_precision("highest"):
        manual, autodiff = both_gradients(params, x, y)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(manual))
    assert relative_error(manual, autodiff) <= 1e-5


@pytest.mark.parametrize("sizes, batch", random_architectures(8, seed=2, quick=3))
def test_both_agree_with_finite_differences_in_float64(sizes, batch):
    with jax.enable_x64(True):
        params, x, y = random_problem(7 * batch, sizes, batch, jnp.float64, init="normal")
    report = gradcheck.compare_gradients(params, x, y, key=jax.random.key(0), coordinates=12)
    assert report.passed, gradcheck.format_report(report)
    assert sum(check.finite_differences.coordinates for check in report.checks) >= len(sizes)
    for check in report.checks:
        assert check.finite_differences.relative <= 1e-6 or (
            check.finite_differences.reference_norm <= check.finite_differences.atol
        ), check


def test_manual_equals_autodiff_with_dropout_and_one_hot_targets():
    with jax.enable_x64(True):
        params, x, y = random_problem(5, (9, 8, 7, 4), 6, jnp.float64)
        masks = model.dropout_masks(jax.random.key(9), params, (6,), 0.5)
        targets = jax.nn.one_hot(y, 4, dtype=jnp.float64)
        manual, autodiff = both_gradients(params, x, targets, masks)
        assert relative_error(manual, autodiff) <= 1e-10


def test_a_single_example_gives_the_gradient_of_a_batch_of_one():
    with jax.enable_x64(True):
        params, x, y = random_problem(2, (6, 4, 3), 1, jnp.float64)
        single = backprop.manual_grad(params, x[0], y[0])
        assert max_difference(single, backprop.manual_grad(params, x, y)) == 0.0
        assert relative_error(single, jax.grad(model.loss)(params, x[0], y[0])) <= 1e-12


def test_manual_value_matches_the_loss():
    params, x, y = random_problem(3, (6, 5, 3), 4, jnp.float32)
    value, _ = backprop.manual_value_and_grad(params, x, y)
    assert float(value) == pytest.approx(float(model.loss(params, x, y)), rel=1e-6)


def kink_network():
    """A network whose hidden pre-activations are exactly 0 for some units.

    x = (1, 1); unit 1 of layer 1 computes x1 − x2 = 0, unit 2 computes x1 + x2 = 2, unit
    3 computes 0·x = 0; layer 2's unit 1 sums units 1 and 2 minus 2 = 0 exactly, its
    unit 2 computes 0.25 · 2 = 0.5 > 0.
    """
    w1 = jnp.array([[1.0, -1.0], [1.0, 1.0], [0.0, 0.0]])
    b1 = jnp.zeros(3)
    w2 = jnp.array([[1.0, 1.0, 1.0], [0.5, 0.25, 2.0]])
    b2 = jnp.array([-2.0, 0.0])
    w3 = jnp.array([[1.0, -1.0], [0.5, 0.25], [-1.0, 2.0]])
    b3 = jnp.array([0.1, 0.2, 0.3])
    params = (model.Layer(w1, b1), model.Layer(w2, b2), model.Layer(w3, b3))
    return params, jnp.array([[1.0, 1.0]]), jnp.array([2])


@pytest.mark.skipif(
    jax.default_backend() != "cpu",
    reason="exact zeros at the kink and bit-for-bit agreement are properties of CPU arithmetic "
    "(GPU matmuls may use TF32 and other kernels)",
)
def test_relu_kink_has_derivative_zero_in_both_paths():
    with jax.enable_x64(True):
        params, x, y = kink_network()
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        x = x.astype(jnp.float64)
        z1 = model.affine(params[0], x)
        z2 = model.affine(params[1], model.relu(z1))
        assert float(z1[0, 0]) == 0.0 and float(z1[0, 2]) == 0.0 and float(z2[0, 0]) == 0.0
        manual, autodiff = both_gradients(params, x, y)
        assert max_difference(manual, autodiff) == 0.0
        # σ'(0) = 0: nothing flows back through a unit sitting on its kink.
        assert float(jnp.max(jnp.abs(manual[0].w[0]))) == 0.0
        assert float(manual[0].b[0]) == 0.0
        assert float(manual[1].b[0]) == 0.0
        assert float(jnp.max(jnp.abs(manual[1].w[0]))) == 0.0
        # ... while units off the kink do get a gradient.
        assert float(jnp.abs(manual[1].b[1])) > 0.0


def test_relu_derivative_is_zero_at_zero():
    z = jnp.array([-1.0, 0.0, 1e-30, 3.0])
    np.testing.assert_array_equal(model.relu_derivative(z), [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(jax.vmap(jax.grad(model.relu))(z), [0.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_huge_logits_give_finite_loss_and_gradients(scale):
    params, x, y = random_problem(4, (6, 5, 3), 5, jnp.float32)
    last = params[-1]
    params = (*params[:-1], model.Layer(last.w * scale, last.b + scale))
    logits = model.forward(params, x)
    assert float(jnp.max(jnp.abs(logits))) >= 1e3
    (value, manual), (auto_value, autodiff) = both_values_and_gradients(params, x, y)
    assert np.isfinite(float(value)) and float(value) == pytest.approx(float(auto_value), rel=1e-5)
    for leaf in jax.tree.leaves((manual, autodiff)):
        assert bool(jnp.all(jnp.isfinite(leaf)))
    assert relative_error(manual, autodiff) <= 1e-5


def test_bp_equations_one_by_one():
    z_L = jnp.array([1.0, 2.0, 0.5])
    y = jnp.array([0.0, 1.0, 0.0])
    np.testing.assert_allclose(backprop.bp1_output_error(z_L, y), jax.nn.softmax(z_L) - y)
    w_next = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    delta_next = jnp.array([1.0, -1.0, 0.5])
    z = jnp.array([0.3, -0.2])
    np.testing.assert_allclose(
        backprop.bp2_hidden_error(w_next, delta_next, z),
        (w_next.T @ delta_next) * jnp.array([1, 0]),
    )
    deltas = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    inputs = jnp.array([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]])
    np.testing.assert_allclose(backprop.bp3_bias_gradient(deltas), [2.0, 3.0])
    outer_mean = (jnp.outer(deltas[0], inputs[0]) + jnp.outer(deltas[1], inputs[1])) / 2
    np.testing.assert_allclose(backprop.bp4_weight_gradient(deltas, inputs), outer_mean)


def test_manual_gradient_is_jittable():
    params, x, y = random_problem(1, (8, 6, 4), 5, jnp.float32)
    eager = backprop.manual_grad(params, x, y)
    jitted = jax.jit(backprop.manual_grad)(params, x, y)
    assert max_difference(eager, jitted) <= 1e-6
