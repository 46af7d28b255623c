"""``jaxmlp train`` end to end on a slice of the real MNIST files."""

import json

import pytest
from data_fixtures import REAL_MNIST_DIR, needs_real_mnist

from jaxmlp.checkpoint import load_checkpoint
from jaxmlp.cli import main

pytestmark = [pytest.mark.slow, needs_real_mnist]


def train(capsys, *argv):
    code = main(["train", "--data-dir", str(REAL_MNIST_DIR), "--limit", "500", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_prints_epochs_and_test_and_writes_metrics_and_checkpoint(capsys, tmp_path):
    metrics, model = tmp_path / "m.jsonl", tmp_path / "m.npz"
    code, out, err = train(
        capsys, "--epochs", "2", "--init", "he", "--metrics-out", str(metrics), "--save", str(model)
    )
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("Training 784-15-10 (he init) on mnist")
    assert lines[1].startswith("Epoch 1/2: ") and "/500 val " in lines[1]
    assert lines[-2].startswith("Test: ") and lines[-2].split()[1].endswith("/500")
    assert lines[-1] == f"wrote {model} (epoch 2), {metrics}"
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["event"] for r in records] == ["start", "epoch", "epoch", "test"]
    assert records[0]["settings"]["init"] == "he" and records[0]["resumed_from_epoch"] == 0
    assert records[-1]["test_accuracy"] > 0.5
    saved = load_checkpoint(model)
    assert saved.epoch == 2 and saved.settings.init == "he" and saved.metrics == records[1:3]
    assert saved.settings.data_dir == REAL_MNIST_DIR.resolve()


def test_the_checkpoint_remembers_its_data_for_evaluate_and_resume(capsys, tmp_path):
    model = tmp_path / "m.npz"
    assert train(capsys, "--epochs", "1", "--save", str(model))[0] == 0
    assert main(["evaluate", str(model), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 10_000
    assert main(["train", "--resume", str(model), "--epochs", "2", "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("Test: ")


def test_train_resumes_from_its_checkpoint(capsys, tmp_path):
    model = tmp_path / "m.npz"
    assert train(capsys, "--epochs", "1", "--save", str(model))[0] == 0
    code, out, _ = train(capsys, "--resume", str(model), "--epochs", "2", "--save", str(model))
    assert code == 0 and "Epoch 2/2" in out and "Epoch 1/2" not in out
    assert load_checkpoint(model).epoch == 2


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["--lr", "50"], 1, "training diverged in epoch 1"),
        (["--sizes", "100,10"], 2, "--sizes starts with 100 inputs"),
        (["--sizes", "784,15,7"], 2, "--sizes ends with 7 outputs"),
        (["--resume", "absent.npz"], 1, "does not exist"),
        (["--preset", "fastest"], 2, "'fastest' is not one of 'seed', 'best'"),
        (["--val-size", "60000"], 2, "--val-size must be in [0, 60000)"),
        (["--optimizer", "rmsprop"], 2, "'rmsprop' is not one of 'sgd', 'momentum'"),
        (
            ["--seed", "9223372036854775808"],
            2,
            "--seed must be in [0, 4294967296), got 9223372036854775808",
        ),
    ],
)
def test_train_failures_are_one_line(capsys, argv, code, message):
    exit_code, out, err = train(capsys, *argv)
    assert exit_code == code
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in out + err


def test_offline_with_no_data_says_how_to_provide_it(capsys):
    code = main(["train", "--limit", "10"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1
    assert "--data-dir" in err and "JAXMLP_DATA_DIR" in err


@pytest.mark.parametrize("flag", ["--save", "--metrics-out"])
def test_an_output_path_that_cannot_be_written_is_one_line(capsys, tmp_path, flag):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    code, out, err = train(capsys, "--epochs", "1", flag, str(not_a_directory / "run.out"))
    assert code == 2 and len(err.splitlines()) == 1 and out == "", "refused before training"
    assert err.startswith(f"jaxmlp: error: {flag} {not_a_directory / 'run.out'}")
    assert f"{not_a_directory} is not a directory" in err and "Traceback" not in err
