"""Sweep grids bounded before any work: ranges checked from their ends, a maximum grid
size, duplicates found in one pass."""

from __future__ import annotations

import time

import pytest

from jaxmlp import sweep
from jaxmlp.cli import main
from jaxmlp.errors import ConfigError


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seed", "0-4294967295"], "--seed has 4,294,967,296 values in '0-4294967295'"),
        (["--seed", "0-4294967296"], "--seed must be in [0, 4294967296), got 4294967296"),
        (["--seed", "5-99999999999999999999"], "--seed must be in [0, 4294967296), got"),
        (["--seed", "0-9", "--lr", "0.1,0.2", "--batch-size", "1-300"], "the grid has 6,000"),
        (["--seed", "0-4094,17"], "--seed lists 17 more than once"),
        (["--seed", "0-" + "9" * 5000], f"--seed has '0-{'9' * 37}…', not a range such as 0-4"),
    ],
)
def test_oversized_or_out_of_range_grids_stop_at_once_with_one_line(capsys, argv, message):
    started = time.monotonic()
    assert main(["sweep", *argv]) == 2
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert message in err


def test_the_grid_size_names_each_axis():
    with pytest.raises(ConfigError) as caught:
        sweep.check_grid_size({"lr": [0.1, 0.2], "seed": range(3000)})
    assert str(caught.value) == (
        "the grid has 6,000 members (2 lr × 3000 seed); a sweep has at most 4,096"
    )


def test_a_grid_of_the_largest_size_parses_and_duplicates_take_linear_time():
    started = time.monotonic()
    assert sweep.parse_axis("seed", f"0-{sweep.MAX_GRID_SIZE - 1}") == list(
        range(sweep.MAX_GRID_SIZE)
    )
    listed = ",".join(str(seed) for seed in range(sweep.MAX_GRID_SIZE))
    assert len(sweep.parse_axis("seed", listed)) == sweep.MAX_GRID_SIZE
    assert time.monotonic() - started < 1.0
    with pytest.raises(ConfigError, match="lists 7, 9 more than once"):
        sweep.parse_axis("seed", "9,0-4093,7")
