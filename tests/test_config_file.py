"""TOML config files: the flags' names, types, ranges and errors; settings → TOML → settings."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from jaxmlp import sweep
from jaxmlp.config_file import (
    merged,
    read_config,
    settings_from_config,
    settings_toml,
    toml_value,
)
from jaxmlp.errors import ConfigError
from jaxmlp.settings import Settings, resolve_settings


def written(directory: Path, text: str, name: str = "run.toml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


ROUND_TRIPS = {
    "seed": Settings(),
    "best": resolve_settings("best"),
    "best fashion": resolve_settings("best", explicit={"dataset": "fashion-mnist"}),
    "every optional set": Settings(
        limit=500,
        data_dir=Path("/data/mnist dir"),
        devices="2",
        platform="cpu",
        matmul_precision="highest",
        weight_decay=1e-05,
        lr=0.1 + 0.2,
        warmup_epochs=0.5,
        augment_flip=True,
        drop_last=True,
        download=False,
        seed=2**32 - 1,
    ),
}


@pytest.mark.parametrize("name", ROUND_TRIPS)
def test_settings_toml_gives_the_same_settings_back(tmp_path, name):
    original = ROUND_TRIPS[name]
    path = written(tmp_path, settings_toml(original))
    assert settings_from_config(path) == original
    assert settings_from_config(path, preset="best") == original


@hypothesis_settings(max_examples=40, deadline=None)
@given(
    lr=st.floats(min_value=1e-30, max_value=1e30, allow_nan=False, allow_infinity=False),
    dropout=st.floats(min_value=0, max_value=1, exclude_max=True),
    sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=4),
)
def test_any_float_survives_the_round_trip(tmp_path_factory, lr, dropout, sizes):
    original = Settings(lr=lr, dropout=dropout, sizes=(784, *sizes, 10))
    path = written(tmp_path_factory.mktemp("config"), settings_toml(original))
    assert settings_from_config(path) == original


def test_unset_settings_are_comments_and_the_file_is_toml():
    text = settings_toml(Settings())
    table = tomllib.loads(text)
    assert "# limit: not set" in text and "limit" not in table
    assert table["sizes"] == [784, 15, 10] and table["lr"] == 0.1 and table["grad"] == "manual"


def test_toml_values():
    assert [toml_value(v) for v in (True, 3, 1e-05, math.inf, 'a"b', (1, 2))] == [
        "true",
        "3",
        "1e-05",
        "inf",
        '"a\\"b"',
        "[1, 2]",
    ]


def test_a_config_gives_what_the_flags_give(tmp_path):
    path = written(
        tmp_path,
        'preset = "best"\nlr = 0.05\nsizes = [784, 30, 10]\nepochs = 3\n'
        'optimizer = "adam"\ndata_dir = "data"\ndevices = 2\naugment_flip = true\n',
    )
    config = read_config(path)
    assert config.preset == "best"
    assert config.values == {
        "lr": 0.05,
        "sizes": (784, 30, 10),
        "epochs": 3,
        "optimizer": "adam",
        "data_dir": Path("data"),
        "devices": "2",
        "augment_flip": True,
    }


def test_flags_win_over_the_file(tmp_path):
    config = read_config(written(tmp_path, "lr = 0.05\nepochs = 3\n"))
    assert merged(config, {"lr": 0.2, "seed": None}) == {"lr": 0.2, "epochs": 3}
    assert merged(None, {"lr": 0.2}) == {"lr": 0.2}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr = ", "is not valid TOML: Invalid value (at line 1, column 6)"),
        ("batchsize = 3", "unknown setting 'batchsize'; did you mean batch_size?"),
        ("batch-size = 3", "unknown setting 'batch-size'; did you mean batch_size?"),
        ("colour = 3", "unknown setting 'colour'"),
        ('epochs = "ten"', "epochs must be a whole number, got 'ten'"),
        ("epochs = 2.5", "epochs must be a whole number, got 2.5"),
        ("lr = -1", "lr must be positive, got -1"),
        ("dropout = 1.0", "dropout must be in [0, 1), got 1"),
        ('optimizer = "rmsprop"', "optimizer must be one of sgd, momentum, adam, adamw, got"),
        ("sizes = [784]", "sizes needs at least an input and an output width"),
        ("augment_flip = 1", "augment_flip must be a true or false, got 1"),
        ("lr = [0.1, 0.2]", "lr is a list, got [0.1, 0.2]; lists make grid axes only in a sweep"),
        ("[program]\nlr = 0.1", "program is a table; settings are top-level keys"),
        ('preset = "fast"', 'preset must be one of seed, best, got "fast"'),
    ],
)
def test_a_bad_file_is_one_line_naming_file_key_and_problem(tmp_path, text, message):
    path = written(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as caught:
        read_config(path)
    assert str(caught.value).startswith(f"{path}: ") or str(caught.value).startswith(
        f"config file {path} "
    )
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.exit_code == 2 and caught.value.setting is None


def test_a_missing_or_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        read_config(tmp_path)
    (tmp_path / "latin1.toml").write_bytes(b"lr = 0.1 # caf\xe9\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        read_config(tmp_path / "latin1.toml")


def test_in_a_sweep_a_list_is_a_grid_axis(tmp_path):
    path = written(
        tmp_path,
        "lr = [0.05, 0.1]\nseed = [0, 1, 2]\nsizes = [[784, 15, 10], [784, 30, 10]]\n"
        "epochs = 2\nval_size = 100\n",
    )
    values = read_config(path, sweep=True).values
    assert values == {
        "lr": "0.05,0.1",
        "seed": "0,1,2",
        "sizes": "784,15,10;784,30,10",
        "epochs": "2",
        "val_size": 100,
    }
    assert sweep.parse_axis("lr", values["lr"]) == [0.05, 0.1]
    assert sweep.parse_axis("sizes", values["sizes"]) == [(784, 15, 10), (784, 30, 10)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr = [0.1, -1]", "lr must be positive, got -1"),
        ("lr = []", "lr is an empty list"),
        (
            "val_size = [1, 2]",
            (
                "val_size is a list, got [1, 2]; lists make grid axes only in a "
                "sweep, and val_size takes one value"
            ),
        ),
    ],
)
def test_a_sweep_axis_is_checked_value_by_value(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        read_config(written(tmp_path, text), sweep=True)
    assert str(caught.value) == f"{tmp_path / 'run.toml'}: {message}"


def test_a_sweep_config_prints_its_axes_as_lists(tmp_path):
    first = Settings(lr=0.05, seed=0, val_size=100)
    text = settings_toml(first, axes={"lr": [0.05, 0.1], "seed": [0, 1]}, command="sweep")
    values = read_config(written(tmp_path, text), sweep=True).values
    assert values["lr"] == "0.05,0.1" and values["seed"] == "0,1" and values["val_size"] == 100
    assert text.startswith("# jaxmlp ") and "jaxmlp sweep --config FILE" in text.splitlines()[0]
