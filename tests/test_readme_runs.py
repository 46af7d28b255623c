"""The guide's "Runs" section (docs/guide.md), run step by step: every command and Python
example in it, on a synthetic MNIST-shaped dataset (10,100 training images, so that the
default 10,000 validate)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import REPO_ROOT, small_arrays, write_idx_dataset

from jaxmlp.checkpoint import load_checkpoint
from jaxmlp.cli import main
from jaxmlp.evaluation import predict_probabilities

pytestmark = pytest.mark.slow
pytest.importorskip("onnxruntime")
pytest.importorskip("safetensors")
pytest.importorskip("tensorboard")


def runs_section() -> str:
    text = (REPO_ROOT / "docs" / "guide.md").read_text(encoding="utf-8")
    start = text.index("\n## Runs\n")
    return text[start : text.index("\n## ", start + 1)]


def code_blocks(section: str, language: str) -> list[str]:
    """The code blocks of ``language``, their indentation removed."""
    blocks = re.findall(rf"^( *)```{language}\n(.*?)^\1```", section, re.DOTALL | re.MULTILINE)
    return ["\n".join(line[len(indent) :] for line in body.splitlines()) for indent, body in blocks]


def commands(section: str) -> list[list[str]]:
    """Every command line of the section's shell blocks, comments left out."""
    lines = [line for block in code_blocks(section, "sh") for line in block.splitlines()]
    return [shlex.split(line, comments=True) for line in lines if line.strip()]


def test_the_runs_loop_runs_as_written(tmp_path, monkeypatch, capsys):
    section = runs_section()
    data = write_idx_dataset(tmp_path / "data", small_arrays(num_train=10_100, num_test=20))
    monkeypatch.setenv("JAXMLP_DATA_DIR", str(data))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    shutil.copy(data / "t10k-images-idx3-ubyte.gz", work)
    [config] = code_blocks(section, "toml")
    Path("mlp.toml").write_text(config + "\n")

    steps = commands(section)
    assert [step[:2] for step in steps] == [
        ["jaxmlp", "train"],
        ["jaxmlp", "train"],
        ["jaxmlp", "train"],
        ["tensorboard", "--inspect"],
        ["jaxmlp", "evaluate"],
        ["jaxmlp", "export"],
        ["jaxmlp", "export"],
    ]
    outputs = []
    for step in steps:
        if step[0] == "tensorboard":
            done = subprocess.run(
                [sys.executable, "-m", "tensorboard.main", *step[1:]],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            outputs.append(done.stdout)
            continue
        code = main(step[1:])
        out = capsys.readouterr().out
        assert code == 0, (step, out)
        outputs.append(out)

    printed, trained, resumed, inspected, evaluated = outputs[:5]
    assert "sizes = [784, 100, 10]" in printed and 'optimizer = "momentum"' in printed
    assert trained.splitlines()[-1].startswith("wrote runs/mlp: config.toml, run.json, last.npz")
    assert "Epoch 12/12" in resumed or "Stopping early" in resumed
    assert "accuracy/validation" in inspected and "first_layer_weights" in inspected
    assert "Per-class scores" in evaluated
    run_dir = Path("runs/mlp")
    assert {
        "config.toml",
        "run.json",
        "last.npz",
        "best.npz",
        "metrics.jsonl",
        "tensorboard",
        "plots",
        "best.onnx",
        "best.safetensors",
    } <= {p.name for p in run_dir.iterdir()}

    onnx_example, numpy_example, torch_example = code_blocks(section, "python")
    assert "import torch" in torch_example
    namespace: dict = {}
    exec(onnx_example, namespace)  # running the guide's own examples is the test
    exec(numpy_example, namespace)
    probabilities, logits = namespace["probabilities"], namespace["a"]
    best = load_checkpoint(run_dir / "best.npz")
    pixels = namespace["images"].reshape(-1, 784).astype(np.float32) / np.float32(255)
    expected = predict_probabilities(best.params, pixels)
    assert probabilities.shape == (20, 10)
    assert np.abs(probabilities - expected).max() <= 1e-5
    assert np.array_equal(logits.argmax(axis=1), expected.argmax(axis=1))
