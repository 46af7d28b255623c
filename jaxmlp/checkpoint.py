"""Checkpoints: parameters, optimizer state, settings, epoch and metrics in one ``.npz`` file.

The file is a NumPy zip archive read with ``allow_pickle=False``, so loading one never
runs code. It is written to a temporary file in the same directory, flushed to disk and
renamed over the target: a crash at any moment leaves either the old checkpoint or the
new one, never a mix.

A checkpoint is checked whole before anything uses it (:func:`load_checkpoint`): the
metadata's types, the settings (through :class:`~jaxmlp.settings.Settings`, the same
typed path as the command line's), every parameter array's shape and dtype against the
settings' layer sizes, and the optimizer state's arrays against the state the settings'
optimizer starts from. The optimizer state is stored as its flat list of leaves.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxmlp.errors import CheckpointError, ConfigError
from jaxmlp.files import atomic_write
from jaxmlp.model import Layer, Params
from jaxmlp.settings import Settings

FORMAT_VERSION = 2
"""Version 2 stores the settings whole; version 1 (a partial ``config``) is still read."""
READABLE_VERSIONS = (1, 2)
PARAM_DTYPE = np.dtype(np.float32)


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A training run's state after ``epoch`` complete epochs."""

    params: Params
    """The network, as host (numpy) arrays."""
    settings: Settings
    epoch: int
    metrics: list[dict[str, Any]]
    """One record per completed epoch (see :func:`jaxmlp.train.epoch_record`)."""
    opt_state_leaves: tuple[np.ndarray, ...] = ()


def _arrays(checkpoint: Checkpoint) -> dict[str, np.ndarray]:
    meta = {
        "format_version": FORMAT_VERSION,
        "settings": checkpoint.settings.to_dict(),
        "epoch": checkpoint.epoch,
        "metrics": checkpoint.metrics,
        "num_layers": len(checkpoint.params),
        "num_opt_state_leaves": len(checkpoint.opt_state_leaves),
    }
    arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    for index, layer in enumerate(checkpoint.params):
        arrays[f"params/{index}/w"] = np.asarray(layer.w)
        arrays[f"params/{index}/b"] = np.asarray(layer.b)
    for index, leaf in enumerate(checkpoint.opt_state_leaves):
        arrays[f"opt_state/{index}"] = np.asarray(leaf)
    return arrays


def save_checkpoint(path: str | os.PathLike, checkpoint: Checkpoint) -> Path:
    """Writes ``checkpoint`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as file:
        np.savez(file, **_arrays(checkpoint))
    return path


def read_archive(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``, read without pickle."""
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"checkpoint {path} is not a jaxmlp checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise CheckpointError(f"checkpoint {path} is not a jaxmlp checkpoint ({error})") from None


def read_meta(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The metadata record, its fields' types checked; raises ``ValueError`` naming a field."""
    if "meta" not in arrays:
        raise ValueError("it has no metadata")
    try:
        meta = json.loads(arrays["meta"].tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("its metadata is not JSON") from None
    if not isinstance(meta, dict):
        raise ValueError(f"its metadata is a JSON {type(meta).__name__}, not an object")
    version = meta.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ValueError(
            f"it has format version {version!r}; this jaxmlp reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    for field in ("epoch", "num_layers", "num_opt_state_leaves"):
        value = meta.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"its {field} is {value!r}, not a count")
    if meta["num_layers"] < 1:
        raise ValueError("it has no layers")
    if len(meta.get("metrics", ())) != meta["epoch"]:
        raise ValueError(
            f"it holds epoch {meta['epoch']} but {len(meta.get('metrics', ()))} epoch records"
        )
    metrics = meta.get("metrics")
    if not isinstance(metrics, list) or not all(isinstance(r, dict) for r in metrics):
        raise ValueError("its metrics are not a list of records")
    return meta


def stored_settings(meta: dict[str, Any]) -> Settings:
    """The settings of a checkpoint's metadata (version 1: the partial ``config``)."""
    if meta["format_version"] == 1:
        config = meta.get("config")
        if not isinstance(config, dict):
            raise ValueError(f"its config is {type(config).__name__}, not a JSON object")
        return Settings.from_dict(config, complete=False)
    return Settings.from_dict(meta.get("settings"))


def check_array(array: np.ndarray, shape: tuple[int, ...], dtype: np.dtype, what: str) -> None:
    """Raises ``ValueError`` unless ``array`` has ``shape`` and ``dtype``."""
    if array.shape != shape:
        raise ValueError(f"{what} has shape {array.shape}, the settings need {shape}")
    if array.dtype != dtype:
        raise ValueError(f"{what} is {array.dtype}, not {dtype}")


def read_params(arrays: dict[str, np.ndarray], settings: Settings, num_layers: int) -> Params:
    """The parameters, each array checked against the settings' layer sizes."""
    sizes = settings.sizes
    if num_layers != len(sizes) - 1:
        raise ValueError(
            f"it has {num_layers} layers, its settings' sizes {sizes} need {len(sizes) - 1}"
        )
    layers = []
    for index, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w, b = arrays.get(f"params/{index}/w"), arrays.get(f"params/{index}/b")
        if w is None or b is None:
            raise ValueError(f"layer {index + 1}'s parameters are missing")
        check_array(w, (n_out, n_in), PARAM_DTYPE, f"layer {index + 1}'s weight")
        check_array(b, (n_out,), PARAM_DTYPE, f"layer {index + 1}'s bias")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ValueError(f"layer {index + 1} holds NaN or infinite values")
        layers.append(Layer(w, b))
    return tuple(layers)


def expected_opt_state(settings: Settings, params: Params) -> list[jax.ShapeDtypeStruct]:
    """Shapes and dtypes of the optimizer state the settings' optimizer starts from."""
    from jaxmlp.optim import make_optimizer

    program = settings.program()
    tx = make_optimizer(program, settings.values(1), 1)
    return jax.tree.leaves(jax.eval_shape(tx.init, params))


def read_opt_state(
    arrays: dict[str, np.ndarray], settings: Settings, params: Params, count: int
) -> tuple[np.ndarray, ...]:
    """The optimizer state's leaves, checked against the settings' optimizer.

    A checkpoint may hold no optimizer state (parameters only): it evaluates and
    predicts, but cannot be resumed.
    """
    if count == 0:
        return ()
    expected = expected_opt_state(settings, params)
    if count != len(expected):
        raise ValueError(
            f"its optimizer state has {count} arrays, the {settings.optimizer} optimizer of its "
            f"settings has {len(expected)}"
        )
    leaves = []
    for index, spec in enumerate(expected):
        leaf = arrays.get(f"opt_state/{index}")
        if leaf is None:
            raise ValueError(f"optimizer state array {index} is missing")
        check_array(leaf, tuple(spec.shape), np.dtype(spec.dtype), f"optimizer state array {index}")
        leaves.append(leaf)
    return tuple(leaves)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Reads and checks a checkpoint written by :func:`save_checkpoint`.

    Raises:
      CheckpointError: one line naming the file and what is wrong with it.
    """
    path = Path(path)
    arrays = read_archive(path)
    try:
        meta = read_meta(arrays)
        settings = stored_settings(meta)
        params = read_params(arrays, settings, meta["num_layers"])
        opt_state = read_opt_state(arrays, settings, params, meta["num_opt_state_leaves"])
        if meta["epoch"] > settings.epochs:
            raise ValueError(f"it holds epoch {meta['epoch']} of a run of {settings.epochs}")
    except ConfigError as error:
        raise CheckpointError(f"checkpoint {path}: its settings are invalid: {error}") from None
    except ValueError as error:
        raise CheckpointError(f"checkpoint {path} is not usable: {error}") from None
    return Checkpoint(
        params=params,
        settings=settings,
        epoch=meta["epoch"],
        metrics=list(meta["metrics"]),
        opt_state_leaves=opt_state,
    )
