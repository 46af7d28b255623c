"""``jaxmlp export``: safetensors in torch.nn.Linear's layout, ONNX with its preprocessing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from data_fixtures import REAL_MNIST_DIR, needs_real_mnist

from jaxmlp import export
from jaxmlp.checkpoint import Checkpoint, save_checkpoint
from jaxmlp.cli import main
from jaxmlp.data.idx import read_idx_images
from jaxmlp.evaluation import predict_probabilities
from jaxmlp.model import init_params, loss
from jaxmlp.settings import Settings

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("safetensors")

SIZES = (784, 32, 16, 10)
CLASSES = tuple(str(digit) for digit in range(10))


def checkpoint_of(params, sizes=SIZES, **settings) -> Checkpoint:
    """A parameters-only checkpoint of ``params``."""
    return Checkpoint(
        params=tuple(jax.device_get(params)),
        settings=Settings(sizes=sizes, **settings),
        epoch=0,
        metrics=[],
    )


@pytest.fixture(scope="module")
def network() -> Checkpoint:
    return checkpoint_of(init_params(jax.random.key(3), SIZES, "he"))


@pytest.fixture
def saved(tmp_path, network) -> Path:
    return save_checkpoint(tmp_path / "run.npz", network)


def random_images(count: int, seed: int = 0) -> np.ndarray:
    """uint8 images ``(count, 28, 28)`` as the IDX files hold them."""
    return np.random.default_rng(seed).integers(0, 256, (count, 28, 28), dtype=np.uint8)


def unit_pixels(images: np.ndarray) -> np.ndarray:
    """What jaxmlp's data loading makes of uint8 images: ``(N, 784)`` float32 / 255."""
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255)


def onnx_probabilities(model_bytes: bytes, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return session.run([export.ONNX_OUTPUT], {export.ONNX_INPUT: images})[0]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_safetensors_has_torch_linear_layout_and_metadata(network):
    tensors = export.safetensors_tensors(network)
    assert list(tensors) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert [tensors[f"{2 * i}.weight"].shape for i in range(3)] == [(32, 784), (16, 32), (10, 16)]
    assert all(array.dtype == np.float32 for array in tensors.values())
    meta = export.export_metadata(network, CLASSES)
    assert json.loads(meta["sizes"]) == list(SIZES)
    assert meta["activation"] == "relu" and json.loads(meta["class_names"]) == list(CLASSES)
    assert "/ 255" in meta["input_preprocessing"]
    assert Settings.from_dict(json.loads(meta["settings"])) == network.settings


def test_safetensors_loaded_in_numpy_predicts_as_jaxmlp(tmp_path, network):
    path = export.write_export(network, CLASSES, "safetensors", tmp_path / "m.safetensors")
    layers, meta = export.load_safetensors_numpy(path)
    pixels = unit_pixels(random_images(64))
    expected = predict_probabilities(network.params, pixels)
    assert meta["dataset"] == "mnist"
    assert np.abs(export.numpy_probabilities(layers, pixels) - expected).max() <= 1e-5


def test_onnx_passes_the_checker_and_predicts_as_jaxmlp(network):
    model = export.onnx_model(network, CLASSES)
    onnx.checker.check_model(model, full_check=True)
    ops = [node.op_type for node in model.graph.node]
    assert ops == ["Cast", "Div", "Reshape", "Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax"]
    images = random_images(200)
    probabilities = onnx_probabilities(model.SerializeToString(), images)
    expected = predict_probabilities(network.params, unit_pixels(images))
    assert probabilities.shape == (200, 10)
    assert np.abs(probabilities - expected).max() <= 1e-5


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_export_writes_beside_the_checkpoint_and_refuses_to_overwrite(capsys, saved, fmt):
    target = saved.with_suffix(export.SUFFIXES[fmt])
    code, out, err = run(capsys, "export", saved, "--format", fmt)
    assert (code, out, err) == (0, f"wrote {target}\n", "")
    first = target.read_bytes()
    code, out, err = run(capsys, "export", saved, "--format", fmt)
    assert code == 2 and out == ""
    assert err == (
        f"jaxmlp: error: --out {target} already exists; pass --overwrite to replace it\n"
    )
    assert target.read_bytes() == first
    target.write_bytes(b"an older export")
    code, _, _ = run(capsys, "export", saved, "--format", fmt, "--overwrite")
    assert code == 0 and len(target.read_bytes()) == len(first)


def test_export_out_path(capsys, saved, tmp_path):
    target = tmp_path / "deep" / "model.onnx"
    code, out, _ = run(capsys, "export", saved, "--format", "onnx", "--out", target)
    assert code == 0 and out == f"wrote {target}\n"
    onnx.checker.check_model(onnx.load(target), full_check=True)


@pytest.mark.parametrize(
    "make_bad",
    [
        lambda path: path,
        lambda path: path.write_bytes(b"not a zip") and path,
        lambda path: path.mkdir() or path,
    ],
    ids=["missing", "not-npz", "directory"],
)
def test_bad_checkpoints_are_refused_as_evaluate_refuses_them(capsys, tmp_path, make_bad):
    bad = make_bad(tmp_path / "bad.npz")
    code, out, err = run(capsys, "export", bad, "--format", "onnx", "--out", tmp_path / "m.onnx")
    evaluate_code, _, evaluate_err = run(capsys, "evaluate", bad)
    assert (code, err) == (evaluate_code, evaluate_err)
    assert code == 1 and out == "" and len(err.splitlines()) == 1 and str(bad) in err
    assert not (tmp_path / "m.onnx").exists()


def test_a_network_that_does_not_take_images_is_refused(capsys, tmp_path):
    path = save_checkpoint(
        tmp_path / "small.npz", checkpoint_of(init_params(jax.random.key(0), (4, 3)), (4, 3))
    )
    code, _, err = run(capsys, "export", path, "--format", "safetensors")
    assert code == 1 and "takes 4 inputs" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(("fmt", "module"), [("onnx", "onnx"), ("safetensors", "safetensors")])
def test_a_missing_library_names_the_extra(capsys, monkeypatch, saved, fmt, module):
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, f"{module}.numpy", None)
    code, out, err = run(capsys, "export", saved, "--format", fmt)
    assert code == 1 and out == ""
    assert err == f"jaxmlp: error: export needs {module}: pip install 'jaxmlp[export]'\n"


def sgd_trained(images: np.ndarray, labels: np.ndarray, steps: int = 300):
    """A 784-64-10 network after ``steps`` SGD steps of ``jax.grad(loss)``, batches of 128."""
    params = init_params(jax.random.key(0), (784, 64, 10), "he")
    step = jax.jit(
        lambda p, x, y: jax.tree.map(lambda w, g: w - 0.1 * g, p, jax.grad(loss)(p, x, y))
    )
    rng = np.random.default_rng(0)
    for _ in range(steps):
        chosen = rng.integers(0, len(labels), 128)
        params = step(params, images[chosen], labels[chosen])
    return params


@pytest.mark.slow
@needs_real_mnist
def test_onnx_equals_predict_on_the_whole_mnist_test_split(capsys, tmp_path, mnist):
    params = sgd_trained(mnist.train.images, mnist.train.labels)
    checkpoint = checkpoint_of(params, (784, 64, 10), data_dir=REAL_MNIST_DIR)
    path = save_checkpoint(tmp_path / "mnist.npz", checkpoint)
    code, _, _ = run(capsys, "export", path, "--format", "onnx")
    assert code == 0
    raw = read_idx_images(REAL_MNIST_DIR / "t10k-images-idx3-ubyte.gz").reshape(-1, 28, 28)
    assert np.array_equal(unit_pixels(raw), mnist.test.images)
    probabilities = onnx_probabilities(path.with_suffix(".onnx").read_bytes(), raw)
    expected = predict_probabilities(params, mnist.test.images)
    assert probabilities.shape == (10_000, 10)
    assert np.abs(probabilities - expected).max() <= 1e-5
    assert (probabilities.argmax(1) == mnist.test.labels).mean() > 0.85
    code, out, _ = run(
        capsys, "predict", path, "--index", 0, "--index", 9999, "--top", 10, "--json"
    )
    for prediction, row in zip(json.loads(out), (0, 9999)):
        shown = {entry["class"]: entry["probability"] for entry in prediction["top"]}
        assert np.abs([shown[c] - probabilities[row, c] for c in range(10)]).max() <= 1e-5


def test_the_command_offers_every_export_format():
    from jaxmlp.cli.export import LIBRARIES

    assert tuple(LIBRARIES) == export.FORMATS
