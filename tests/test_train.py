"""Training: both gradient paths, convergence, determinism, resume, divergence, checkpoints."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import blobs_dataset, max_difference

from jaxmlp import augment, runs, train
from jaxmlp import checkpoint as checkpoints
from jaxmlp.errors import CheckpointError, ConfigError, DivergenceError, TrainingInterrupted
from jaxmlp.model import smoothed_targets
from jaxmlp.settings import SPECS, Settings


def small_config(**changes):
    settings = {"sizes": (16, 12, 3), "init": "he", "epochs": 3, "batch_size": 16, "lr": 0.1}
    settings.update(changes)
    return Settings(**settings)


def fit(config, dataset=None):
    return train.fit(train.prepare(config, dataset or blobs_dataset()))


def explicit(config):
    """A config's settings as explicit values (what flags would give)."""
    return {name: value for name, value in config.to_dict().items() if value is not None}


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.slow
def test_manual_and_autodiff_train_to_the_same_parameters():
    # The two gradients differ in rounding (sums in another order), which Nesterov momentum
    # carries over 114 steps: measured max |Δ| over seeds 0-5, 0.4e-6 to 1.0e-4 (3.9e-5 before
    # the Nesterov sums were reordered), on parameters of size ~1. A wrong gradient is ≫ 1e-2.
    config = small_config(optimizer="momentum", dropout=0.3)
    manual = fit(config)
    autodiff = fit(config.replace(grad="autodiff"))
    assert max_difference(manual.params, autodiff.params) <= 2e-4
    assert manual.history[-1]["train_loss"] == pytest.approx(
        autodiff.history[-1]["train_loss"], rel=1e-5
    )


@pytest.mark.slow
def test_label_smoothing_and_input_dropout_agree_between_gradient_paths():
    config = small_config(label_smoothing=0.1, input_dropout=0.2, dropout=0.1)
    manual = fit(config)
    autodiff = fit(config.replace(grad="autodiff"))
    assert max_difference(manual.params, autodiff.params) <= 1e-5
    assert not leaves_equal(manual.params, fit(small_config()).params)
    assert manual.test["test_accuracy"] >= 0.95


def test_smoothed_targets_keep_one_minus_epsilon_plus_epsilon_over_k_on_the_label():
    targets = smoothed_targets(jnp.array([2, 0]), 4, 0.2, jnp.float32)
    np.testing.assert_allclose(targets, [[0.05, 0.05, 0.85, 0.05], [0.85, 0.05, 0.05, 0.05]])


def test_input_dropout_zeroes_the_expected_fraction_and_rescales_the_rest():
    x = jnp.ones((200, 50))
    dropped = np.asarray(augment.drop_inputs(jax.random.key(0), x, 0.75))
    assert set(np.unique(dropped)) == {0.0, np.float32(1 / 0.75)}
    assert abs((dropped == 0).mean() - 0.25) < 0.02


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 2**16 + 3])
def test_shuffled_indices_is_a_permutation_fixed_by_the_key(n):
    order = np.asarray(augment.shuffled_indices(jax.random.key(0), n))
    assert order.dtype == np.int32 and np.array_equal(np.sort(order), np.arange(n))
    assert np.array_equal(order, np.asarray(augment.shuffled_indices(jax.random.key(0), n)))
    if n > 2:
        assert not np.array_equal(order, np.asarray(augment.shuffled_indices(jax.random.key(1), n)))


def test_shuffled_indices_puts_every_element_everywhere_equally_often():
    n, draws = 6, 6000
    keys = jax.random.split(jax.random.key(2), draws)
    orders = np.asarray(jax.vmap(lambda key: augment.shuffled_indices(key, n))(keys))
    counts = np.stack([(orders == element).sum(axis=0) for element in range(n)])
    expected = draws / n
    chi_square = ((counts - expected) ** 2 / expected).sum()
    assert chi_square < 60  # 25 degrees of freedom: P(χ² > 60) < 1e-4 for a uniform shuffle


def test_shuffled_indices_defers_to_jax_when_too_few_random_bits_are_left(monkeypatch):
    monkeypatch.setattr(augment, "SHUFFLE_KEY_BITS", 31)
    key = jax.random.key(4)
    assert np.array_equal(augment.shuffled_indices(key, 9), jax.random.permutation(key, 9))


def test_separable_problem_is_learned_perfectly():
    result = fit(small_config(epochs=5))
    assert result.history[-1]["val_accuracy"] == 1.0
    assert result.test["test_accuracy"] == 1.0
    assert result.history[0]["train_loss"] > result.history[-1]["train_loss"]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", SPECS["optimizer"].choices)
@pytest.mark.parametrize("schedule", SPECS["schedule"].choices)
def test_every_optimizer_and_schedule_learns(optimizer, schedule):
    lr = 0.01 if optimizer.startswith("adam") else 0.1
    config = small_config(
        optimizer=optimizer, schedule=schedule, lr=lr, weight_decay=1e-4, warmup_epochs=0.5
    )
    assert fit(config).test["test_accuracy"] >= 0.95


def test_same_seed_gives_bitwise_identical_parameters():
    config = small_config(dropout=0.2, optimizer="adam", lr=0.01)
    first, second = fit(config), fit(config)
    assert leaves_equal(first.params, second.params)
    other = fit(config.replace(seed=1))
    assert not leaves_equal(first.params, other.params)


def test_a_ragged_last_batch_is_a_step_of_its_own_unless_dropped():
    dataset = blobs_dataset(num_train=50)
    kept = fit(small_config(epochs=1, batch_size=16), dataset)
    dropped = fit(small_config(epochs=1, batch_size=16, drop_last=True), dataset)
    assert train.steps_per_epoch(50, 16, False) == 4 and train.steps_per_epoch(50, 16, True) == 3
    assert not leaves_equal(kept.params, dropped.params)


def test_batch_larger_than_the_training_set_is_one_step():
    result = fit(small_config(epochs=1, batch_size=1000), blobs_dataset(num_train=40))
    assert np.isfinite(result.history[0]["train_loss"])
    with pytest.raises(ConfigError, match="larger than the 40 training examples"):
        fit(small_config(batch_size=1000, drop_last=True), blobs_dataset(num_train=40))


def test_shift_augmentation_moves_each_image_by_at_most_the_shift_in_every_direction():
    x = jnp.zeros((400, 36)).at[:, 2 * 6 + 3].set(1.0)
    shifted = np.asarray(augment.shift_images(jax.random.key(0), x, (6, 6), 1))
    assert shifted.shape == (400, 36)
    rows, positions = np.nonzero(shifted)
    np.testing.assert_array_equal(rows, np.arange(400))
    offsets = {(int(p) // 6 - 2, int(p) % 6 - 3) for p in positions}
    assert offsets == {(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    np.testing.assert_array_equal(shifted.sum(axis=1), 1.0)
    unshifted = augment.shift_images(jax.random.key(0), x, (6, 6), 0)
    np.testing.assert_array_equal(unshifted, x)


def test_divergence_stops_with_the_epoch_and_a_hint():
    with pytest.raises(DivergenceError, match=r"epoch 1: .*smaller learning rate than 1e\+30"):
        fit(small_config(lr=1e30, init="normal"))


def test_resume_equals_an_uninterrupted_run(tmp_path):
    dataset = blobs_dataset()
    config = small_config(epochs=4, optimizer="adam", lr=0.01, dropout=0.2, schedule="cosine")
    whole = fit(config, dataset)
    path = tmp_path / "run.npz"

    def ctrl_c_after_epoch_2(line):
        if line.startswith("Epoch 2/4"):
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match=f"after epoch 2; {path} holds epoch 2"):
        runs.train_from_options(
            runs.RunOptions(explicit=explicit(config), save=path),
            echo=ctrl_c_after_epoch_2,
            dataset=dataset,
        )
    assert checkpoints.load_checkpoint(path).epoch == 2
    resumed = runs.train_from_options(
        runs.RunOptions(resume=path, save=path), echo=lambda line: None, dataset=dataset
    )
    assert leaves_equal(whole.params, resumed.params)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert checkpoints.load_checkpoint(path).epoch == 4
    with pytest.raises(ConfigError, match="pass --epochs above 4"):
        runs.train_from_options(runs.RunOptions(resume=path), dataset=dataset)


def test_checkpoint_round_trip(tmp_path):
    result = fit(small_config(optimizer="momentum"))
    path = checkpoints.save_checkpoint(
        tmp_path / "c.npz",
        checkpoints.Checkpoint(
            params=result.params,
            settings=small_config(optimizer="momentum"),
            epoch=3,
            metrics=result.history,
            opt_state_leaves=tuple(jax.tree.leaves(result.opt_state)),
        ),
    )
    loaded = checkpoints.load_checkpoint(path)
    assert leaves_equal(loaded.params, result.params)
    assert loaded.epoch == 3 and loaded.metrics == result.history
    assert loaded.settings == small_config(optimizer="momentum")
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_crash_between_write_and_rename_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    params = fit(small_config(epochs=1)).params
    old = checkpoints.Checkpoint(params=params, settings=small_config(), epoch=0, metrics=[])
    checkpoints.save_checkpoint(path, old)
    before = path.read_bytes()

    def crash(*args):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    new = checkpoints.Checkpoint(params=old.params, settings=small_config(), epoch=0, metrics=[])
    with pytest.raises(OSError, match="simulated"):
        checkpoints.save_checkpoint(path, new)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]


def test_divergence_leaves_the_last_good_checkpoint(tmp_path):
    dataset = blobs_dataset()
    path = tmp_path / "run.npz"
    runs.train_from_options(
        runs.RunOptions(explicit=explicit(small_config(epochs=1)), save=path),
        echo=lambda line: None,
        dataset=dataset,
    )
    before = path.read_bytes()
    with pytest.raises(DivergenceError):
        runs.train_from_options(
            runs.RunOptions(explicit={"epochs": 3, "lr": 1e30}, resume=path, save=path),
            echo=lambda line: None,
            dataset=dataset,
        )
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "content, message",
    [(b"not a zip", "not a jaxmlp checkpoint"), (b"", "not a jaxmlp checkpoint")],
)
def test_malformed_checkpoints_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        checkpoints.load_checkpoint(path)


def test_a_checkpoint_missing_arrays_is_refused(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, meta=np.frombuffer(b'{"format_version": 1, "num_layers": 2}', np.uint8))
    with pytest.raises(CheckpointError, match="not usable: its epoch is None"):
        checkpoints.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoints.load_checkpoint(tmp_path / "absent.npz")


def test_sizes_must_fit_the_data():
    with pytest.raises(ConfigError, match="starts with 10 inputs"):
        fit(small_config(sizes=(10, 5, 3)))
    with pytest.raises(ConfigError, match="ends with 4 outputs"):
        fit(small_config(sizes=(16, 5, 4)))


@pytest.fixture(scope="module")
def mnist_2000(mnist):
    from jaxmlp.data import Dataset, Split

    return Dataset(
        name="mnist-2000",
        train=Split(mnist.train.images[:2000], mnist.train.labels[:2000]),
        validation=Split(mnist.validation.images[:1000], mnist.validation.labels[:1000]),
        test=mnist.test,
        source=mnist.source,
        class_names=mnist.class_names,
    )


@pytest.mark.slow
def test_seed_config_with_he_init_on_2000_mnist_examples_beats_80_percent(mnist_2000):
    result = fit(Settings(init="he"), mnist_2000)
    assert result.test["test_accuracy"] > 0.80
    assert result.history[-1]["val_total"] == 1000


@pytest.mark.slow
def test_faithful_seed_config_on_2000_mnist_examples_learns(mnist_2000):
    # N(0, 1) initialisation learns slowly: 56-65% after 2,000 steps over seeds 0-3.
    result = fit(Settings(), mnist_2000)
    assert result.test["test_accuracy"] > 0.5


def test_ctrl_c_during_a_save_names_the_epoch_the_file_really_holds(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    real_save = runs.save_epoch

    def interrupted_second_save(path, settings, state, history):
        if history[-1]["epoch"] == 2:
            raise KeyboardInterrupt
        real_save(path, settings, state, history)

    monkeypatch.setattr(runs, "save_epoch", interrupted_second_save)
    expected = f"after epoch 2; {path} holds epoch 1; continue with: jaxmlp train --resume {path}$"
    with pytest.raises(TrainingInterrupted, match=expected):
        runs.train_from_options(
            runs.RunOptions(explicit=explicit(small_config(epochs=3)), save=path),
            echo=lambda line: None,
            dataset=blobs_dataset(),
        )
    assert checkpoints.load_checkpoint(path).epoch == 1
