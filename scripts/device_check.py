"""Checks jaxmlp on this machine's accelerator and prints one table.

Runs, on JAX's default device (or ``--platform``):

* ``jaxmlp compare-grads`` in float32 and float64 on 784-15-10 and a 5-layer net;
* a short run of the seed's experiment (784-15-10, SGD, lr 0.1, batch 10) on MNIST from
  ``--data-dir``, or on synthetic MNIST-shaped data when none is given;
* the throughput of the large configuration (784-1024-1024-10, batch 1000): matmul
  GFLOP/s of a training epoch against a plain jitted matmul of the same width.

Takes well under 5 minutes on a GPU with the defaults; ``--quick`` shrinks everything for
a CPU::

    python scripts/device_check.py --data-dir ~/mnist
    python scripts/device_check.py --quick
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

import jax
import numpy as np
from _common import make_matmul_chain, matmul_operands, multiplied_flops_per_epoch

from jaxmlp import parallel, runs, train
from jaxmlp.cli import main as jaxmlp_main
from jaxmlp.data import Dataset, Split
from jaxmlp.optim import make_optimizer
from jaxmlp.settings import Settings

GRADIENT_NETS = ("784,15,10", "784,128,64,32,16,10")
GRADIENT_DTYPES = ("float32", "float64")
LARGE_SIZES = (784, 1024, 1024, 10)
LARGE_BATCH = 1000
SEED_ACCURACY_FLOOR = 0.85


def parse_arguments() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="MNIST files (default: synthetic data).")
    parser.add_argument("--epochs", type=int, default=3, help="Epochs of the seed run.")
    parser.add_argument("--train-size", type=int, default=50_000, help="Synthetic examples.")
    parser.add_argument(
        "--throughput-examples", type=int, default=50_000, help="Examples in the timed epoch."
    )
    parser.add_argument("--platform", choices=parallel.PLATFORMS, help="Backend to check.")
    parser.add_argument("--matmul-precision", choices=parallel.MATMUL_PRECISIONS)
    parser.add_argument(
        "--quick", action="store_true", help="Small settings for a CPU: 2 epochs, 5,000 examples."
    )
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.epochs, arguments.train_size, arguments.throughput_examples = 2, 5_000, 5_000
    return arguments


def gradient_row(sizes: str, dtype: str) -> list[str]:
    """``jaxmlp compare-grads`` on ``sizes`` in ``dtype``: the worst relative errors."""
    began = time.perf_counter()
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = jaxmlp_main(["compare-grads", "--sizes", sizes, "--dtype", dtype, "--json"])
    report = json.loads(captured.getvalue())
    autodiff = max(check["autodiff"]["relative"] for check in report["checks"])
    differences = max(check["finite_differences"]["relative"] for check in report["checks"])
    return [
        "compare-grads",
        f"{sizes} {dtype}",
        f"rel. error {autodiff:.1e} vs jax.grad, {differences:.1e} vs finite diff.",
        "pass" if code == 0 else "FAIL",
        f"{time.perf_counter() - began:.1f}",
    ]


def synthetic_split(rng: np.random.Generator, templates: np.ndarray, size: int) -> Split:
    """``size`` noisy copies of the class templates, pixels clipped to [0, 1]."""
    labels = rng.integers(0, len(templates), size).astype(np.int32)
    noise = rng.normal(0, 0.3, (size, templates.shape[1])).astype(np.float32)
    return Split(np.clip(templates[labels] + noise, 0, 1), labels)


def synthetic_mnist(train_size: int, seed: int = 0) -> Dataset:
    """MNIST-shaped data (784 pixels, 10 classes) that an MLP can learn, for any machine."""
    rng = np.random.default_rng(seed)
    templates = (rng.uniform(size=(10, 784)) < 0.2).astype(np.float32)
    held_out = max(train_size // 5, 1)
    return Dataset(
        name="synthetic-mnist",
        train=synthetic_split(rng, templates, train_size),
        validation=synthetic_split(rng, templates, held_out),
        test=synthetic_split(rng, templates, held_out),
        source="generated",
        class_names=tuple(str(digit) for digit in range(10)),
    )


def seed_training_row(data_dir: Path | None, epochs: int, train_size: int) -> list[str]:
    """The seed's experiment for ``epochs`` epochs: test accuracy and steady epoch time."""
    began = time.perf_counter()
    dataset = None if data_dir else synthetic_mnist(train_size)
    explicit = {"epochs": epochs, "data_dir": data_dir, "download": False}
    options = runs.RunOptions(explicit=explicit, quiet=True)
    result = runs.train_from_options(options, echo=lambda line: None, dataset=dataset)
    accuracy = result.test["test_accuracy"]
    steady = min(record["seconds"] for record in result.history[1:] or result.history)
    source = f"MNIST {data_dir}" if data_dir else f"synthetic, {train_size} train"
    return [
        "seed training",
        f"784-15-10 sgd b10, {epochs} epochs, {source}",
        f"test {100 * accuracy:.2f}%, {steady:.2f} s/epoch",
        "pass" if accuracy >= SEED_ACCURACY_FLOOR else "FAIL",
        f"{time.perf_counter() - began:.1f}",
    ]


def timed(function, *args) -> float:
    """Seconds of one call after a warm-up call (compilation excluded)."""
    jax.block_until_ready(function(*args))
    began = time.perf_counter()
    jax.block_until_ready(function(*args))
    return time.perf_counter() - began


def epoch_gflops(examples: int) -> float:
    """GFLOP/s of one training epoch of the large configuration."""
    config = Settings(sizes=LARGE_SIZES, init="he", batch_size=LARGE_BATCH, epochs=1)
    per_epoch = examples // LARGE_BATCH
    program, values = config.program(), config.values(per_epoch)
    tx = make_optimizer(program, values, per_epoch)
    run_epoch = train.make_epoch_fn(program, per_epoch)
    keys = jax.random.split(jax.random.key(0), 2)
    images = jax.random.uniform(keys[0], (examples, LARGE_SIZES[0]))
    labels = jax.random.randint(keys[1], (examples,), 0, LARGE_SIZES[-1])
    key = train.epoch_key(0, 0)

    def epoch():
        state = train.init_state(program, config.seed, tx)
        return run_epoch(state, values, images, labels, key)[1]

    return multiplied_flops_per_epoch(LARGE_SIZES, examples) / timed(epoch) / 1e9


def matmul_gflops(repeats: int = 50) -> float:
    """GFLOP/s of ``repeats`` chained (1000 × 1024) @ (1024 × 1024) products in one jit."""
    width = LARGE_SIZES[1]
    x, w = matmul_operands((LARGE_BATCH, width, width))
    chain = make_matmul_chain(repeats)
    return 2 * LARGE_BATCH * width * width * repeats / timed(chain, x, w) / 1e9


def throughput_row(examples: int) -> list[str]:
    """The large configuration's epoch against the plain matmul, in GFLOP/s."""
    began = time.perf_counter()
    examples = max(examples // LARGE_BATCH, 1) * LARGE_BATCH
    epoch, matmul = epoch_gflops(examples), matmul_gflops()
    return [
        "throughput",
        f"784-1024-1024-10 b{LARGE_BATCH}, {examples} examples",
        f"epoch {epoch:.1f} GFLOP/s, matmul {matmul:.1f} GFLOP/s ({100 * epoch / matmul:.0f}%)",
        "info",
        f"{time.perf_counter() - began:.1f}",
    ]


def format_table(rows: list[list[str]]) -> str:
    """Rows under a header, columns padded to their widest cell."""
    header = ["check", "setting", "result", "status", "s"]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def device_line() -> str:
    """The device the checks ran on, with versions."""
    device = jax.devices()[0]
    precision = jax.config.jax_default_matmul_precision or "default"
    return (
        f"Device: {device.device_kind} ({device.platform}, {jax.device_count()} device(s)); "
        f"jax {jax.__version__}; matmul precision {precision}"
    )


def main() -> int:
    """Runs every check; exit code 1 if any failed."""
    arguments = parse_arguments()
    parallel.configure_backend(arguments.platform, arguments.matmul_precision)
    parallel.check_platform(arguments.platform)
    began = time.perf_counter()
    rows = [gradient_row(sizes, dtype) for sizes in GRADIENT_NETS for dtype in GRADIENT_DTYPES]
    rows.append(seed_training_row(arguments.data_dir, arguments.epochs, arguments.train_size))
    rows.append(throughput_row(arguments.throughput_examples))
    print(device_line())
    print(format_table(rows))
    print(f"Total {time.perf_counter() - began:.1f} s")
    return 1 if any(row[3] == "FAIL" for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
