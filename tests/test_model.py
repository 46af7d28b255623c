"""The model's pure functions: shapes, initialisation, loss, accuracy, sizes parsing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmlp import model
from jaxmlp.errors import ConfigError


def test_params_are_a_pytree_of_layers_stored_out_by_in():
    params = model.init_params(jax.random.key(0), (784, 15, 10))
    assert [(layer.w.shape, layer.b.shape) for layer in params] == [
        ((15, 784), (15,)),
        ((10, 15), (10,)),
    ]
    assert len(jax.tree.leaves(params)) == 4
    assert model.layer_sizes(params) == (784, 15, 10)


@pytest.mark.parametrize("scheme", model.INIT_SCHEMES)
def test_init_schemes_have_their_spread(scheme):
    params = model.init_params(jax.random.key(1), (400, 300, 10), scheme)
    std = float(jnp.std(params[0].w))
    expected = {"normal": 1.0, "he": np.sqrt(2 / 400), "glorot": np.sqrt(2 / 700)}[scheme]
    assert std == pytest.approx(expected, rel=0.05)
    bias_zero = scheme != "normal"
    assert bool(jnp.all(params[0].b == 0)) == bias_zero


def test_same_key_same_params_other_key_other_params():
    a = model.init_params(jax.random.key(3), (5, 4, 3))
    b = model.init_params(jax.random.key(3), (5, 4, 3))
    c = model.init_params(jax.random.key(4), (5, 4, 3))
    assert all(bool(jnp.array_equal(x, y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert not bool(jnp.array_equal(a[0].w, c[0].w))


def test_forward_on_one_example_equals_its_row_of_the_batch():
    params = model.init_params(jax.random.key(0), (6, 5, 4, 3), "he")
    x = jax.random.uniform(jax.random.key(1), (7, 6))
    batch = model.forward(params, x)
    assert batch.shape == (7, 3)
    np.testing.assert_allclose(model.forward(params, x[2]), batch[2], rtol=1e-6)


def test_forward_is_relu_then_affine_as_written():
    params = model.init_params(jax.random.key(0), (3, 4, 2), "normal")
    x = jnp.array([0.5, -1.0, 2.0])
    hidden = np.maximum(np.asarray(params[0].w) @ np.asarray(x) + np.asarray(params[0].b), 0)
    expected = np.asarray(params[1].w) @ hidden + np.asarray(params[1].b)
    np.testing.assert_allclose(model.forward(params, x), expected, rtol=1e-5)


def test_loss_is_mean_cross_entropy_with_integer_or_one_hot_labels():
    params = model.init_params(jax.random.key(0), (6, 5, 3), "he")
    x = jax.random.uniform(jax.random.key(1), (4, 6))
    y = jnp.array([0, 2, 1, 2])
    probs = np.asarray(model.predict_proba(params, x))
    expected = -np.mean(np.log(probs[np.arange(4), np.asarray(y)]))
    assert float(model.loss(params, x, y)) == pytest.approx(expected, rel=1e-5)
    one_hot = jax.nn.one_hot(y, 3)
    assert float(model.loss(params, x, one_hot)) == pytest.approx(expected, rel=1e-5)


def test_accuracy_counts_the_argmax():
    params = (model.Layer(w=jnp.eye(3), b=jnp.zeros(3)),)
    x = jnp.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0]])
    assert float(model.accuracy(params, x, jnp.array([0, 1, 2, 2]))) == 0.75
    assert float(model.accuracy(params, x, jax.nn.one_hot(jnp.array([0, 1, 2, 2]), 3))) == 0.75


def test_predict_proba_sums_to_one():
    params = model.init_params(jax.random.key(0), (6, 5, 3))
    probs = model.predict_proba(params, jax.random.uniform(jax.random.key(1), (4, 6)))
    np.testing.assert_allclose(jnp.sum(probs, axis=-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    "text, expected",
    [("784,15,10", (784, 15, 10)), (" 2 , 1,2 ", (2, 1, 2)), ((3, 2), (3, 2))],
)
def test_parse_sizes_accepts(text, expected):
    assert model.parse_sizes(text) == expected


@pytest.mark.parametrize("text", ["784,0,10", "abc", "784", "784,,10", "784,-5,10", "784,15,1"])
def test_parse_sizes_refuses(text):
    with pytest.raises(ConfigError):
        model.parse_sizes(text)


def test_unknown_init_scheme_is_a_config_error():
    with pytest.raises(ConfigError, match="init must be one of normal, he, glorot"):
        model.init_params(jax.random.key(0), (3, 2), "xavier")


def test_dropout_masks_keep_the_expected_fraction_and_scale():
    params = model.init_params(jax.random.key(0), (10, 200, 200, 3))
    masks = model.dropout_masks(jax.random.key(1), params, (50,), 0.25)
    assert [m.shape for m in masks] == [(50, 200), (50, 200)]
    values = np.unique(np.asarray(masks[0]))
    np.testing.assert_allclose(values, [0.0, 1 / 0.75], rtol=1e-6)
    assert float(jnp.mean(masks[0] > 0)) == pytest.approx(0.75, abs=0.02)
    assert model.dropout_masks(jax.random.key(1), params, (50,), 0.0) is None
