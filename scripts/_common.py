"""Helpers shared by the scripts: where the data is, what machine this is, JSON output,
and the FLOP counts and plain matmul that the throughput figures compare against."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MNIST_DIR = REPO_ROOT.parent / "shared" / "datasets" / "mnist"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package puts Fashion-MNIST."""


def default_data_dir() -> Path | None:
    """``../shared/datasets/mnist`` beside the repository if present, else ``None``
    (``load_dataset`` then looks where it always does)."""
    return SHARED_MNIST_DIR if SHARED_MNIST_DIR.is_dir() else None


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--json``, the options every script has."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help=f"MNIST IDX files or the seed's mnist.pkl.gz (default: {SHARED_MNIST_DIR} if it "
        "exists, else wherever jaxmlp finds MNIST)",
    )
    add_json_option(parser)


def add_fashion_options(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` (Fashion-MNIST's) and ``--json``, for the Fashion-MNIST scripts."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=FASHION_DIR,
        help=f"Fashion-MNIST's IDX files (default: {FASHION_DIR})",
    )
    add_json_option(parser)


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json FILE``: every figure also written there."""
    parser.add_argument("--json", type=Path, metavar="FILE", help="Also write every figure here.")


def cpu_model() -> str:
    """The ``model name`` of the first CPU in /proc/cpuinfo (or what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def machine_info() -> dict[str, Any]:
    """CPU, cores, JAX version and backend, and the load right now."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(device) for device in jax.devices()],
        "load_average": load_average(),
    }


def format_machine(info: dict[str, Any]) -> str:
    """One line describing :func:`machine_info`."""
    return (
        f"Machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
        f"jax {info['jax']} on {info['backend']} ({', '.join(info['devices'])}); "
        f"{format_load(info['load_average'])}"
    )


def format_load(averages: list[float]) -> str:
    """``load average 3.22 2.81 2.08 (1/5/15 min)``."""
    return f"load average {' '.join(f'{value:.2f}' for value in averages)} (1/5/15 min)"


def write_json(path: Path, figures: dict[str, Any]) -> None:
    """Writes ``figures`` as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


def counted_flops_per_epoch(sizes: Sequence[int], examples: int) -> float:
    """``6 × Σ(in·out) × examples``: 2 for the forward matmuls, 4 for the backward ones."""
    return 6.0 * sum(n_in * n_out for n_in, n_out in itertools.pairwise(sizes)) * examples


def multiplied_flops_per_epoch(sizes: Sequence[int], examples: int) -> float:
    """The matmul FLOPs the manual gradient really does: no error for the input layer."""
    return counted_flops_per_epoch(sizes, examples) - 2.0 * sizes[0] * sizes[1] * examples


def make_matmul_chain(count: int) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``x ↦ x·w·w·…·w`` (``count`` matmuls) jitted as one ``fori_loop``."""

    def chain(x, w):
        return jax.lax.fori_loop(0, count, lambda _, a: a @ w, x)

    return jax.jit(chain)


def matmul_operands(shape: tuple[int, int, int]) -> tuple[jax.Array, jax.Array]:
    """float32 ``x (m×k)`` and an orthogonal ``w (k×n)``, so the chain neither grows nor fades."""
    m, k, n = shape
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((k, n)))
    return jnp.asarray(rng.standard_normal((m, k)), jnp.float32), jnp.asarray(q, jnp.float32)
