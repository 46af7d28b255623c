"""Settings: one declaration per setting, one layering, typed reading, ranges, memory bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jaxmlp import memory
from jaxmlp.cli.app import flag_message
from jaxmlp.cli.options import preset_recipes, shown_default
from jaxmlp.errors import ConfigError
from jaxmlp.presets import DATASET_PRESETS, PRESETS
from jaxmlp.program import program_of, run_values
from jaxmlp.settings import SEED_LIMIT, SPECS, Kind, Settings, resolve_settings, resume_conflicts


def test_defaults_are_the_seed_experiment():
    settings = Settings()
    assert settings.sizes == (784, 15, 10) and settings.init == "normal"
    assert (settings.epochs, settings.batch_size, settings.lr) == (10, 10, 0.1)
    assert settings.optimizer == "sgd" and settings.val_size == 10_000


def test_layering_is_preset_then_checkpoint_then_explicit():
    best = resolve_settings("best")
    assert best.sizes == PRESETS["best"]["sizes"] and best.lr == 0.05
    stored = Settings(lr=0.3, epochs=4, devices="all")
    resumed = resolve_settings("best", stored, {"epochs": 8, "seed": None})
    assert resumed.lr == 0.3 and resumed.epochs == 8 and resumed.sizes == (784, 15, 10)
    assert resumed.devices is None, "the devices of the machine that saved it are not inherited"


def test_the_best_preset_is_the_chosen_datasets_recipe():
    mnist = resolve_settings("best")
    assert mnist == resolve_settings("best", explicit={"dataset": "mnist"})
    assert (mnist.augment_shift, mnist.augment_flip, mnist.augment_erase) == (1, False, 0.0)
    fashion = resolve_settings("best", explicit={"dataset": "fashion-mnist", "lr": 0.002})
    recipe = DATASET_PRESETS["best"]["fashion-mnist"]
    assert fashion.sizes == recipe["sizes"] and fashion.optimizer == recipe["optimizer"]
    assert fashion.augment_flip and fashion.augment_shift == 0
    assert fashion.lr == 0.002, "explicit values still win"
    assert resolve_settings("seed", explicit={"dataset": "fashion-mnist"}).sizes == (784, 15, 10)


def test_help_shows_defaults_plainly_and_each_datasets_best_recipe_in_presets_help():
    assert shown_default("batch_size") == "10"
    assert (shown_default("download"), shown_default("augment_flip")) == ("on", "off")
    recipes = preset_recipes("best")
    mnist, fashion = recipes.split("; ")
    assert mnist.startswith("MNIST: --sizes 784,800,800,10 ") and "--batch-size 128" in mnist
    fashion_sizes = ",".join(map(str, DATASET_PRESETS["best"]["fashion-mnist"]["sizes"]))
    assert fashion.startswith(f"Fashion-MNIST: --sizes {fashion_sizes} ")
    assert "--augment-flip" in fashion and "--augment-flip" not in mnist
    assert preset_recipes("seed") == ""


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"lr": -1.0}, "lr must be positive, got -1"),
        ({"lr": math.nan}, "lr must be positive, got nan"),
        ({"momentum": 1.0}, "momentum must be in [0, 1), got 1"),
        ({"dropout": math.inf}, "dropout must be in [0, 1), got inf"),
        ({"weight_decay": math.inf}, "weight_decay must be in [0, inf), got inf"),
        ({"seed": SEED_LIMIT}, "seed must be in [0, 4294967296), got 4294967296"),
        ({"seed": -1}, "seed must be in [0, 4294967296), got -1"),
        ({"seed": 2**63}, "seed must be in [0, 4294967296)"),
        ({"augment_shift": 28}, "augment_shift must be in [0, 27], got 28"),
        ({"augment_shift": 2**31}, "augment_shift must be in [0, 27]"),
        ({"augment_erase": 1.5}, "augment_erase must be in [0, 1], got 1.5"),
        ({"augment_erase": -0.1}, "augment_erase must be in [0, 1], got -0.1"),
        ({"augment_flip": 1}, "augment_flip must be a true or false, got 1"),
        ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
        ({"epochs": 0}, "epochs must be in [1, 1000000], got 0"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of sgd, momentum, adam, adamw"),
        ({"sizes": "784,0,10"}, "sizes must all be positive, got 784,0,10"),
        ({"sizes": "784"}, "sizes needs at least an input and an output width"),
        ({"sizes": "a,b"}, "sizes must be comma-separated integers"),
        ({"lr": "fast"}, "lr must be a number, got 'fast'"),
        ({"epochs": 2.5}, "epochs must be a whole number, got 2.5"),
        ({"drop_last": 1}, "drop_last must be a true or false, got 1"),
    ],
)
def test_every_range_is_checked_with_the_setting_named(changes, message):
    with pytest.raises(ConfigError) as refused:
        Settings(**changes)
    assert str(refused.value).startswith(message)
    assert refused.value.setting == next(iter(changes))


def test_the_command_line_names_the_flag_instead_of_the_setting():
    with pytest.raises(ConfigError) as refused:
        Settings(batch_size=0)
    assert flag_message(refused.value) == "--batch-size must be at least 1, got 0"


def test_settings_round_trip_through_json_and_refuse_malformed_values():
    settings = resolve_settings("best", explicit={"data_dir": "/data", "limit": 5})
    assert Settings.from_dict(settings.to_dict()) == settings
    with pytest.raises(ConfigError, match="settings are missing: batch_size"):
        Settings.from_dict({k: v for k, v in settings.to_dict().items() if k != "batch_size"})
    with pytest.raises(ConfigError, match="unknown settings: colour"):
        Settings.from_dict({**settings.to_dict(), "colour": "red"})
    with pytest.raises(ConfigError, match="lr must be a number, got null"):
        Settings.from_dict({**settings.to_dict(), "lr": None})
    with pytest.raises(ConfigError, match="settings must be a JSON object, got list"):
        Settings.from_dict([1, 2])


def test_every_setting_has_a_kind_and_help():
    assert {spec.kind for spec in SPECS.values()} == set(Kind)
    assert all(spec.help.endswith(".") for spec in SPECS.values())


def test_a_resume_may_change_per_run_values_and_epochs_but_not_the_program():
    stored = Settings(sizes=(784, 15, 10), lr=0.1)
    assert resume_conflicts(stored, {"lr": 0.01, "epochs": 20, "dropout": 0.1}) == []
    assert resume_conflicts(stored, {"sizes": "784,30,10", "optimizer": "adam"}) == [
        ("sizes", (784, 30, 10), (784, 15, 10)),
        ("optimizer", "adam", "sgd"),
    ]
    assert resume_conflicts(stored, {"sizes": "784,15,10"}) == []


def test_members_of_one_program_may_differ_only_in_per_run_values():
    program = program_of([Settings(lr=0.1), Settings(lr=0.5, dropout=0.2, seed=3)])
    assert program.dropout and not program.label_smoothing
    with pytest.raises(ConfigError, match="batch_size must be the same"):
        program_of([Settings(), Settings(batch_size=20)])


def test_run_values_round_derived_terms_like_python_constants():
    values = run_values([Settings(dropout=0.3, label_smoothing=0.1)], steps_per_epoch=100)
    assert float(values.dropout_keep[0]) == float(np.float32(1 - 0.3))
    assert float(values.target_floor[0]) == float(np.float32(0.1 / 10))


def test_memory_estimate_refuses_what_cannot_fit():
    huge = Settings(sizes=(784, 100_000_000, 10))
    needed = memory.run_bytes(huge)
    assert needed > 300e9
    with pytest.raises(ConfigError, match=r"needs about [\d,]+ MiB of memory, but 1,024 MiB"):
        memory.check_fits_memory(needed, "training", available=1 << 30)
    memory.check_fits_memory(memory.run_bytes(Settings()), "training", available=1 << 30)


def test_check_elements_gives_the_count_and_the_limit():
    assert memory.check_elements("--sizes 1,2", 4, 10, "parameters") == 4
    with pytest.raises(
        ConfigError, match=r"^--sizes 9,9 needs 1,000 parameters, more than the 10 allowed$"
    ):
        memory.check_elements("--sizes 9,9", 1000, 10, "parameters")
