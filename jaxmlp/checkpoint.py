"""Checkpoints: parameters, optimizer state, config, epoch and metrics in one ``.npz`` file.

The file is a NumPy zip archive read with ``allow_pickle=False``, so loading one never
runs code. It is written to a temporary file in the same directory, flushed to disk and
renamed over the target: a crash at any moment leaves either the old checkpoint or the
new one, never a mix.

The optimizer state is stored as its flat list of leaves; :mod:`jaxmlp.train` rebuilds
its structure from the optimizer named in the config.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp.errors import CheckpointError
from jaxmlp.files import atomic_write
from jaxmlp.model import Layer, Params

FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A training run's state after ``epoch`` complete epochs."""

    params: Params
    config: dict[str, Any]
    """The run's settings as JSON (``sizes``, ``dataset``, ``optimizer``, ``lr``, ...)."""
    epoch: int
    metrics: list[dict[str, Any]]
    """One record per completed epoch (see :func:`jaxmlp.train.epoch_record`)."""
    opt_state_leaves: tuple[np.ndarray, ...] = ()


def _arrays(checkpoint: Checkpoint) -> dict[str, np.ndarray]:
    meta = {
        "format_version": FORMAT_VERSION,
        "config": checkpoint.config,
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


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Reads a checkpoint written by :func:`save_checkpoint`; raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"checkpoint {path} is not a jaxmlp checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise CheckpointError(f"checkpoint {path} is not a jaxmlp checkpoint ({error})") from None
    try:
        meta = json.loads(arrays["meta"].tobytes().decode())
        if meta.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint {path} has format version {meta.get('format_version')}, "
                f"this jaxmlp reads version {FORMAT_VERSION}"
            )
        params = tuple(
            Layer(
                w=jnp.asarray(arrays[f"params/{index}/w"]),
                b=jnp.asarray(arrays[f"params/{index}/b"]),
            )
            for index in range(meta["num_layers"])
        )
        opt_state = tuple(arrays[f"opt_state/{i}"] for i in range(meta["num_opt_state_leaves"]))
        checkpoint = Checkpoint(
            params=params,
            config=meta["config"],
            epoch=int(meta["epoch"]),
            metrics=list(meta["metrics"]),
            opt_state_leaves=opt_state,
        )
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(f"checkpoint {path} is incomplete or corrupt ({error!r})") from None
    _check_shapes(path, checkpoint.params)
    return checkpoint


def _check_shapes(path: Path, params: Params) -> None:
    for index, layer in enumerate(params):
        if layer.w.ndim != 2 or layer.b.shape != (layer.w.shape[0],):
            raise CheckpointError(f"checkpoint {path}: layer {index + 1} has inconsistent shapes")
        if index and layer.w.shape[1] != params[index - 1].w.shape[0]:
            raise CheckpointError(f"checkpoint {path}: layer {index + 1} does not fit layer {index}")


def restore_tree(template: Any, leaves: tuple[np.ndarray, ...], what: str) -> Any:
    """Puts saved ``leaves`` into the structure of ``template`` (e.g. a fresh optimizer state)."""
    structure = jax.tree.structure(template)
    if structure.num_leaves != len(leaves):
        raise CheckpointError(
            f"the checkpoint's {what} has {len(leaves)} arrays, the current settings expect "
            f"{structure.num_leaves}: resume with the same optimizer settings"
        )
    return jax.tree.unflatten(structure, [jnp.asarray(leaf) for leaf in leaves])
