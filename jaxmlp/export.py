"""Models that leave jaxmlp: a checkpoint's network as safetensors or ONNX.

Both formats hold the network alone (no optimizer state) and say what it expects:

- **safetensors** (:func:`safetensors_tensors`, :func:`export_metadata`): the layers as
  ``torch.nn.Sequential(Linear, ReLU, …, Linear)`` names them (``0.weight``, ``0.bias``,
  ``2.weight``, …), each weight ``(out, in)`` like ``torch.nn.Linear``'s, float32; the
  metadata (text, as safetensors requires) gives the sizes, the activation, the class
  names and the input preprocessing. The outputs are logits; softmax gives probabilities.
- **ONNX** (:func:`onnx_model`): input ``images``, uint8 ``(N, 28, 28)`` as the IDX files
  hold them, then the model's preprocessing (``Cast`` to float32, ``Div`` by 255,
  ``Reshape`` to ``(N, 784)``), then ``Gemm → Relu → … → Gemm → Softmax``; output
  ``probabilities``, float32 ``(N, classes)``. Checked with ``onnx.checker``.

The libraries come with the optional ``export`` extra; a missing one is one line naming it.
"""

from __future__ import annotations

import importlib
import json
import math
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from jaxmlp import __version__
from jaxmlp.checkpoint import Checkpoint
from jaxmlp.errors import MissingDependencyError
from jaxmlp.files import atomic_write

INSTALL_HINT = "pip install 'jaxmlp[export]'"
FORMATS = ("safetensors", "onnx")
SUFFIXES = {"safetensors": ".safetensors", "onnx": ".onnx"}
ONNX_OPSET = 17
"""ONNX's default domain version the graph is built for (onnxruntime ≥ 1.13 runs it)."""
ONNX_INPUT = "images"
ONNX_OUTPUT = "probabilities"
PIXEL_SCALE = 255.0
ACTIVATION = "relu"
INPUT_PREPROCESSING = (
    "28x28 grayscale image, row-major, flattened to 784 float32 values = uint8 pixel / 255 "
    "(0 = black background, 1 = white ink, as in MNIST)"
)


def require_module(name: str) -> ModuleType:
    """Imports ``name``; raises :class:`MissingDependencyError` naming the extra if absent."""
    try:
        return importlib.import_module(name)
    except ImportError:
        package = name.partition(".")[0]
        raise MissingDependencyError(f"export needs {package}: {INSTALL_HINT}") from None


def default_output(checkpoint_path: str | os.PathLike, fmt: str) -> Path:
    """``run.npz`` → ``run.safetensors`` / ``run.onnx``."""
    return Path(checkpoint_path).with_suffix(SUFFIXES[fmt])


def layer_names(index: int) -> tuple[str, str]:
    """``("0.weight", "0.bias")`` for layer 0: ``torch.nn.Sequential``'s names, ReLUs
    taking the odd positions between the linear layers."""
    position = 2 * index
    return f"{position}.weight", f"{position}.bias"


def safetensors_tensors(checkpoint: Checkpoint) -> dict[str, np.ndarray]:
    """The network's arrays under ``torch.nn.Sequential``'s names, weights ``(out, in)``."""
    tensors = {}
    for index, layer in enumerate(checkpoint.params):
        weight, bias = layer_names(index)
        tensors[weight] = np.ascontiguousarray(layer.w, dtype=np.float32)
        tensors[bias] = np.ascontiguousarray(layer.b, dtype=np.float32)
    return tensors


def export_metadata(checkpoint: Checkpoint, class_names: tuple[str, ...]) -> dict[str, str]:
    """What a user of the exported network needs to know, as text (JSON where structured)."""
    settings = checkpoint.settings
    return {
        "format": "jaxmlp-mlp",
        "jaxmlp_version": __version__,
        "sizes": json.dumps(list(settings.sizes)),
        "activation": ACTIVATION,
        "layout": "torch.nn.Sequential of Linear (weight (out, in)) with ReLU between",
        "output": "logits; softmax over the last axis gives class probabilities",
        "class_names": json.dumps(list(class_names)),
        "dataset": settings.dataset,
        "input_preprocessing": INPUT_PREPROCESSING,
        "input_shape": json.dumps([settings.sizes[0]]),
        "input_scale": repr(1 / PIXEL_SCALE),
        "epoch": str(checkpoint.epoch),
        "settings": json.dumps(settings.to_dict()),
    }


def safetensors_bytes(checkpoint: Checkpoint, class_names: tuple[str, ...]) -> bytes:
    """The safetensors file's content."""
    numpy_io = require_module("safetensors.numpy")
    return numpy_io.save(
        safetensors_tensors(checkpoint), metadata=export_metadata(checkpoint, class_names)
    )


def onnx_model(checkpoint: Checkpoint, class_names: tuple[str, ...]) -> Any:
    """The network with its preprocessing as a checked ``onnx.ModelProto`` (see module)."""
    onnx = require_module("onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    sizes = checkpoint.settings.sizes
    side = math.isqrt(sizes[0])
    constants = [
        numpy_helper.from_array(np.array(PIXEL_SCALE, np.float32), "pixel_scale"),
        numpy_helper.from_array(np.array([-1, sizes[0]], np.int64), "flat_shape"),
    ]
    nodes = [
        helper.make_node("Cast", [ONNX_INPUT], ["pixels_float"], to=onnx.TensorProto.FLOAT),
        helper.make_node("Div", ["pixels_float", "pixel_scale"], ["pixels_unit"]),
        helper.make_node("Reshape", ["pixels_unit", "flat_shape"], ["a0"]),
    ]
    last = len(checkpoint.params) - 1
    for index, layer in enumerate(checkpoint.params):
        weight, bias = layer_names(index)
        constants += [
            numpy_helper.from_array(np.asarray(layer.w, np.float32), weight),
            numpy_helper.from_array(np.asarray(layer.b, np.float32), bias),
        ]
        z = "logits" if index == last else f"z{index + 1}"
        nodes.append(helper.make_node("Gemm", [f"a{index}", weight, bias], [z], transB=1))
        if index < last:
            nodes.append(helper.make_node("Relu", [z], [f"a{index + 1}"]))
    nodes.append(helper.make_node("Softmax", ["logits"], [ONNX_OUTPUT], axis=-1))
    graph = helper.make_graph(
        nodes,
        "jaxmlp_mlp",
        [helper.make_tensor_value_info(ONNX_INPUT, onnx.TensorProto.UINT8, ["N", side, side])],
        [helper.make_tensor_value_info(ONNX_OUTPUT, onnx.TensorProto.FLOAT, ["N", sizes[-1]])],
        initializer=constants,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        producer_name="jaxmlp",
        producer_version=__version__,
        doc_string=f"MLP {'-'.join(map(str, sizes))}; input uint8 {side}x{side}; "
        f"{INPUT_PREPROCESSING}",
    )
    model.ir_version = 8
    helper.set_model_props(model, export_metadata(checkpoint, class_names))
    onnx.checker.check_model(model, full_check=True)
    return model


def onnx_bytes(checkpoint: Checkpoint, class_names: tuple[str, ...]) -> bytes:
    """The ONNX file's content."""
    return onnx_model(checkpoint, class_names).SerializeToString()


def export_bytes(checkpoint: Checkpoint, class_names: tuple[str, ...], fmt: str) -> bytes:
    """The exported file's content in format ``fmt`` (one of :data:`FORMATS`)."""
    build = {"safetensors": safetensors_bytes, "onnx": onnx_bytes}[fmt]
    return build(checkpoint, class_names)


def write_export(
    checkpoint: Checkpoint, class_names: tuple[str, ...], fmt: str, path: str | os.PathLike
) -> Path:
    """Writes the network in format ``fmt`` to ``path`` atomically; returns the path."""
    content = export_bytes(checkpoint, class_names, fmt)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as file:
        file.write(content)
    return path


def load_safetensors_numpy(
    path: str | os.PathLike,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, str]]:
    """An exported safetensors file back in numpy: ``[(weight (out, in), bias), …]`` and
    the metadata; what the README shows, as a function the tests run."""
    numpy_io = require_module("safetensors.numpy")
    safetensors = require_module("safetensors")
    with safetensors.safe_open(str(path), framework="numpy") as file:
        metadata = file.metadata()
    tensors = numpy_io.load_file(str(path))
    layers = len(json.loads(metadata["sizes"])) - 1
    return [tuple(tensors[name] for name in layer_names(i)) for i in range(layers)], metadata


def numpy_probabilities(
    layers: list[tuple[np.ndarray, np.ndarray]], pixels: np.ndarray
) -> np.ndarray:
    """Class probabilities of ``pixels`` ``(N, 784)`` in [0, 1] by exported layers, in numpy."""
    a = np.asarray(pixels, np.float32)
    for index, (weight, bias) in enumerate(layers):
        a = a @ weight.T + bias
        if index < len(layers) - 1:
            a = np.maximum(a, 0)
    a = np.exp(a - a.max(axis=-1, keepdims=True))
    return a / a.sum(axis=-1, keepdims=True)
