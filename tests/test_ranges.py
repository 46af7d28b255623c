"""The range checks the command line applies to numeric options."""

from __future__ import annotations

import math

import pytest

from jaxmlp.errors import ConfigError
from jaxmlp.ranges import MAX_SEED, check_elements, check_float, check_int, check_seed


def test_check_int_returns_the_value_or_names_the_option_and_range():
    assert check_int("--epochs", 3, minimum=1) == 3
    with pytest.raises(ConfigError, match=r"^--epochs must be at least 1, got 0$"):
        check_int("--epochs", 0, minimum=1)
    with pytest.raises(ConfigError, match=r"^--shift must be a whole number from 0 to 27, got 28$"):
        check_int("--shift", 28, minimum=0, maximum=27)


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 2**63, 10**30])
def test_seeds_outside_what_every_jax_mode_tells_apart(seed):
    with pytest.raises(ConfigError, match=r"--seed must be a whole number from 0 to 4,294,967,295"):
        check_seed("--seed", seed)


def test_seeds_at_the_ends_of_the_range():
    assert check_seed("--seed", 0) == 0 and check_seed("--seed", MAX_SEED) == MAX_SEED


@pytest.mark.parametrize(
    ("value", "bounds", "shown"),
    [
        (1.0, {"minimum": 0.0, "below": 1.0}, "in [0, 1)"),
        (math.nan, {"minimum": 0.0, "below": 1.0}, "in [0, 1)"),
        (0.0, {"above": 0.0}, "> 0"),
        (math.inf, {}, ""),
        (2.0, {"maximum": 1.0}, "≤ 1"),
    ],
)
def test_check_float_refuses_values_outside_and_non_finite(value, bounds, shown):
    expected = f"--lr must be a finite number{' ' + shown if shown else ''}, got {value}"
    with pytest.raises(ConfigError) as refused:
        check_float("--lr", value, **bounds)
    assert str(refused.value) == expected


def test_check_elements_gives_the_count_and_the_limit():
    assert check_elements("--sizes 1,2", 4, 10, "parameters") == 4
    with pytest.raises(ConfigError, match=r"^--sizes 9,9 needs 1,000 parameters, more than the 10 allowed$"):
        check_elements("--sizes 9,9", 1000, 10, "parameters")
