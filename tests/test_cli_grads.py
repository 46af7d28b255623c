"""``jaxmlp compare-grads`` and the CLI's handling of bad arguments."""

import json

import jax
import pytest

from jaxmlp import __version__, backprop
from jaxmlp.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes", ["784,15,10", "784,32,24,16,10"])
def test_compare_grads_passes_on_seed_and_five_layer_networks(capsys, sizes, dtype):
    code, out, err = run(capsys, "compare-grads", "--sizes", sizes, "--dtype", dtype)
    assert code == 0, out + err
    assert "FAIL" not in out
    rows = [line for line in out.splitlines() if line.startswith(("W", "b"))]
    assert len(rows) == 2 * (sizes.count(",")) and all(row.endswith("pass") for row in rows)


@pytest.mark.slow
def test_compare_grads_json_with_dropout(capsys):
    code, out, _ = run(capsys, "compare-grads", "--sizes", "20,9,7,4", "--dropout", "0.5", "--json")
    report = json.loads(out)
    assert code == 0 and report["passed"] is True and report["dropout"] == 0.5
    assert [(c["layer"], c["parameter"]) for c in report["checks"]] == [
        (1, "W"),
        (1, "b"),
        (2, "W"),
        (2, "b"),
        (3, "W"),
        (3, "b"),
    ]
    for check in report["checks"]:
        assert check["autodiff"]["relative"] <= 1e-10
        assert check["finite_differences"]["coordinates"] > 0


@pytest.mark.slow
def test_compare_grads_fails_when_the_bias_gradient_is_wrong(capsys, monkeypatch):
    correct = backprop.bp3_bias_gradient
    monkeypatch.setattr(backprop, "bp3_bias_gradient", lambda deltas: 1.01 * correct(deltas))
    jax.clear_caches()
    try:
        code, out, _ = run(capsys, "compare-grads", "--sizes", "30,8,5")
    finally:
        monkeypatch.undo()
        jax.clear_caches()
    assert code == 1
    failing = [line for line in out.splitlines() if line.startswith(("W", "b")) and "FAIL" in line]
    assert [line.split()[0] for line in failing] == ["b1", "b2"]
    assert "2 of 4 parameters FAIL" in out


@pytest.mark.slow
def test_compare_grads_fails_when_bp2_drops_the_relu_derivative(capsys, monkeypatch):
    monkeypatch.setattr(
        backprop, "bp2_hidden_error", lambda w_next, delta_next, z, mask=None: w_next.T @ delta_next
    )
    jax.clear_caches()
    try:
        code, out, _ = run(capsys, "compare-grads", "--sizes", "30,8,5", "--init", "he")
    finally:
        monkeypatch.undo()
        jax.clear_caches()
    failing = [
        line.split()[0]
        for line in out.splitlines()
        if line.startswith(("W", "b")) and "FAIL" in line
    ]
    assert code == 1 and "W1" in failing


@pytest.mark.slow
def test_compare_grads_checks_label_smoothing(capsys):
    code, out, _ = run(
        capsys,
        "compare-grads",
        "--sizes",
        "20,9,7,4",
        "--dropout",
        "0.3",
        "--label-smoothing",
        "0.1",
        "--json",
    )
    report = json.loads(out)
    assert code == 0 and report["passed"] is True and report["label_smoothing"] == 0.1
    assert all(check["autodiff"]["relative"] <= 1e-10 for check in report["checks"])


@pytest.mark.slow
def test_compare_grads_catches_a_bp1_that_ignores_soft_targets(capsys, monkeypatch):
    def bp1_with_hard_targets(z_L, y):
        return jax.nn.softmax(z_L) - jax.nn.one_hot(jax.numpy.argmax(y), y.shape[-1], dtype=y.dtype)

    monkeypatch.setattr(backprop, "bp1_output_error", bp1_with_hard_targets)
    jax.clear_caches()
    try:
        hard_code, _, _ = run(capsys, "compare-grads", "--sizes", "30,8,5")
        soft_code, out, _ = run(
            capsys, "compare-grads", "--sizes", "30,8,5", "--label-smoothing", "0.2"
        )
    finally:
        monkeypatch.undo()
        jax.clear_caches()
    assert hard_code == 0
    assert soft_code == 1 and "4 of 4 parameters FAIL" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["compare-grads", "--sizes", "784,0,10"],
        ["compare-grads", "--label-smoothing", "1"],
        ["train", "--label-smoothing", "-0.1"],
        ["train", "--input-dropout", "1.5"],
        ["compare-grads", "--sizes", "abc"],
        ["compare-grads", "--sizes", "784"],
        ["compare-grads", "--batch-size", "0"],
        ["compare-grads", "--dtype", "float16"],
        ["compare-grads", "--init", "xavier"],
        ["compare-grads", "--batch-size", "many"],
        ["compare-grads", "--no-such-flag"],
        ["train", "--batch-size", "0"],
        ["train", "--lr", "-1"],
        ["train", "--epochs", "0"],
        ["train", "--optimizer", "rmsprop"],
        ["no-such-command"],
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("jaxmlp: error:")
    assert "Traceback" not in out + err


@pytest.mark.parametrize("command", ["compare-grads", "train", "download", "data-info"])
def test_every_command_has_help(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and "Usage" in out


def test_version_and_bare_command(capsys):
    assert run(capsys, "--version")[:2] == (0, f"jaxmlp {__version__}\n")
    code, out, _ = run(capsys)
    assert code == 0 and "compare-grads" in out and "train" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--seed", "9223372036854775808"],
            "--seed must be in [0, 4294967296), got 9223372036854775808",
        ),
        (["--seed", "-1"], "--seed must be in [0, 4294967296), got -1"),
        (
            ["--batch-size", "99999999999999999999"],
            "--batch-size 99999999999999999999 and --coords 20 with --sizes 784,15,10 needs",
        ),
        (
            ["--batch-size", "100000000"],
            "--batch-size 100000000 and --coords 20 with --sizes 784,15,10 needs "
            "10,517,000,000,000 activations for finite differences, more than the 67,108,864 "
            "allowed",
        ),
        (["--coords", "0"], "--coords must be at least 1, got 0"),
        (
            ["--sizes", "784,100000000,10"],
            "--sizes 784,100000000,10 needs 79,500,000,010 parameters, more than the "
            "16,777,216 allowed",
        ),
        (["--dropout", "nan"], "--dropout must be in [0, 1), got nan"),
    ],
)
def test_out_of_range_values_are_refused_before_any_allocation(capsys, argv, message):
    code, out, err = run(capsys, "compare-grads", *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"jaxmlp: error: {message}") and err.count("\n") == 1
