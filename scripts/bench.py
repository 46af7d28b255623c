"""Benchmarks jaxmlp: against the seed's numpy network, a plain matmul, and its own CLI.

Three measurements, each printed beside its target (reported, never enforced):

1. Seed config (784-15-10, batch 10, 50,000 examples): seconds per training epoch of
   jaxmlp (``--grad manual`` and ``autodiff``) against a per-example numpy network written
   here after the seed's ``network.py``. Target: jaxmlp ≥ 18× faster.
2. Large config (784-1024-1024-10, batch 1000, he init): GFLOP/s of a jaxmlp training
   epoch against a chain of jitted float32 matmuls. Target: ≥ 85 % of the matmul rate.
3. End to end: ``jaxmlp train --quiet`` as a subprocess, with an empty compilation cache
   (cold) and again with the cache it filled (warm), the decoded MNIST cached in both (it is
   decoded once, untimed, before). Each run prints where its time went (``JAXMLP_TIMINGS``,
   :mod:`jaxmlp.timings`): the bench shows that breakdown, the interpreter's start before it
   and its shutdown after. ``--reference-python`` times another installation's ``jaxmlp
   train`` (e.g. the main branch's) in the same rounds, alternating, for a ratio. Targets:
   warm ≤ 3 s, cold ≤ 4 s.

Timings are medians of repeated runs; the machine's load is printed at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice, pairwise
from pathlib import Path
from typing import Any

import jax
import numpy as np
from _common import (
    add_common_options,
    counted_flops_per_epoch,
    format_load,
    format_machine,
    load_average,
    machine_info,
    make_matmul_chain,
    matmul_operands,
    multiplied_flops_per_epoch,
    write_json,
)

from jaxmlp.data import Dataset, Split, load_dataset
from jaxmlp.settings import Settings
from jaxmlp.timings import ENV_VAR as TIMINGS_VAR
from jaxmlp.timings import parse_report
from jaxmlp.train import prepare

SEED_CONFIG = Settings()
LARGE_CONFIG = Settings(sizes=(784, 1024, 1024, 10), batch_size=1000, init="he")
SPEEDUP_TARGET = 18.0
MATMUL_FRACTION_TARGET = 0.85
COLD_START_TARGET_S = 4.0
WARM_START_TARGET_S = 3.0
MATMUL_SHAPE = (1000, 1024, 1024)
MATMULS_PER_CALL = 40


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def sizes_text(sizes: Sequence[int]) -> str:
    return "-".join(map(str, sizes))


# --- The seed's network in numpy ------------------------------------------------------


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


def relu_derivative(z: np.ndarray) -> np.ndarray:
    return (z > 0).astype(z.dtype)


def stable_softmax(z: np.ndarray) -> np.ndarray:
    """The softmax of a column vector, shifted by its maximum so that ``exp`` cannot overflow."""
    exponentials = np.exp(z - np.max(z))
    return exponentials / np.sum(exponentials)


class SeedNetwork:
    """The seed's ``network.py``: float64 column vectors, BP1–BP4 one example at a time."""

    def __init__(self, sizes: Sequence[int], rng: np.random.Generator):
        self.num_layers = len(sizes)
        self.biases = [rng.standard_normal((n, 1)) for n in sizes[1:]]
        self.weights = [rng.standard_normal((n_out, n_in)) for n_in, n_out in pairwise(sizes)]

    def backprop(self, x: np.ndarray, y: np.ndarray) -> tuple[list, list]:
        """One example's gradient of its cross-entropy, as ``(nabla_b, nabla_w)``."""
        activation, activations, zs = x, [x], []
        for index, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = relu(z) if index < self.num_layers - 2 else stable_softmax(z)
            activations.append(activation)
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        delta = activations[-1] - y  # BP1
        nabla_b[-1] = delta  # BP3
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())  # BP4
        for layer in range(2, self.num_layers):
            delta = np.dot(self.weights[-layer + 1].transpose(), delta) * relu_derivative(
                zs[-layer]
            )  # BP2
            nabla_b[-layer] = delta
            nabla_w[-layer] = np.dot(delta, activations[-layer - 1].transpose())
        return nabla_b, nabla_w

    def update_mini_batch(self, mini_batch: list, learning_rate: float) -> None:
        """Sums the examples' gradients, then steps by ``learning_rate / len(mini_batch)``."""
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        eta = learning_rate / len(mini_batch)
        self.biases = [b - eta * nb for b, nb in zip(self.biases, nabla_b)]
        self.weights = [w - eta * nw for w, nw in zip(self.weights, nabla_w)]

    def sgd_epoch(self, examples: list, batch_size: int, learning_rate: float, rng) -> None:
        """Shuffles ``examples`` in place, then updates once per mini-batch, as the seed's SGD."""
        rng.shuffle(examples)
        for start in range(0, len(examples), batch_size):
            self.update_mini_batch(examples[start : start + batch_size], learning_rate)

    def accuracy(self, split: Split) -> float:
        """The fraction of ``split`` classified correctly (all examples at once: untimed)."""
        a = split.images.astype(np.float64).T
        for index, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = w @ a + b
            a = relu(z) if index < self.num_layers - 2 else z
        return float(np.mean(np.argmax(a, axis=0) == split.labels))


def seed_examples(split: Split, limit: int | None, num_classes: int = 10) -> list:
    """``(x, y)`` pairs as in the seed: a ``(784, 1)`` float64 image and a one-hot ``(10, 1)``."""
    images = split.images[:limit].astype(np.float64)
    labels = split.labels[:limit]
    targets = np.zeros((len(labels), num_classes, 1))
    targets[np.arange(len(labels)), labels, 0] = 1.0
    return list(zip(images[:, :, None], targets))


@dataclass
class NumpyTiming:
    """The numpy network's epochs and the test accuracy they reached."""

    seconds_per_epoch: list[float]
    """Per epoch of the full training set (scaled up when fewer examples were timed)."""
    examples_timed: int
    test_accuracy: float


def time_numpy_epochs(
    config: Settings, train: Split, test: Split, epochs: int, examples: int | None
) -> NumpyTiming:
    """Seconds per full epoch of :class:`SeedNetwork` trained on the first ``examples``."""
    network = SeedNetwork(config.sizes, np.random.default_rng(config.seed))
    data = seed_examples(train, examples)
    shuffler = random.Random(config.seed)
    scale = len(train) / len(data)
    seconds = []
    for _ in range(epochs):
        began = time.perf_counter()
        network.sgd_epoch(data, config.batch_size, config.lr, shuffler)
        seconds.append((time.perf_counter() - began) * scale)
    return NumpyTiming(seconds, len(data), network.accuracy(test))


# --- jaxmlp ---------------------------------------------------------------------------


def jaxmlp_epoch_seconds(config: Settings, dataset: Dataset) -> Iterator[float]:
    """Seconds of each training epoch, one after another; the first one compiles."""
    trainer = prepare(config, dataset)
    state = trainer.initial_state()
    images, labels = trainer.data["train"]
    epoch = 0
    while True:
        began = time.perf_counter()
        key = trainer.epoch_keys(epoch)
        state, metrics = trainer.run_epoch(state, trainer.values, images, labels, key)
        jax.block_until_ready((state, metrics))
        yield time.perf_counter() - began
        epoch += 1


@dataclass
class EpochTiming:
    """jaxmlp's timed epochs."""

    warmup_seconds: float
    """The first epoch, compilation included."""
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def time_jaxmlp_epochs(
    config: Settings, dataset: Dataset, epochs: int, between: Callable[[], Any] = lambda: None
) -> EpochTiming:
    """A warm-up (compiling) epoch, then ``epochs`` timed ones with ``between`` called
    before, between and after them (``epochs + 1`` calls)."""
    timer = jaxmlp_epoch_seconds(config, dataset)
    warmup = next(timer)
    between()
    seconds = []
    for epoch_seconds in islice(timer, epochs):
        seconds.append(epoch_seconds)
        between()
    return EpochTiming(warmup, seconds)


# --- Seed config ----------------------------------------------------------------------


def bench_seed_config(dataset, args) -> dict[str, Any]:
    """numpy and jaxmlp seconds per epoch of the seed's experiment, and their ratios."""
    config = SEED_CONFIG.replace(limit=args.limit)
    train = dataset.train
    print(
        f"\nSeed config ({sizes_text(config.sizes)}, {config.init} init, SGD lr {config.lr:g}, "
        f"batch {config.batch_size}, {len(train)} examples per epoch): training seconds per epoch"
    )
    figures: dict[str, Any] = {"examples_per_epoch": len(train)}
    numpy_median = None
    if not args.skip_numpy:
        numpy_timing = time_numpy_epochs(
            config, train, dataset.test, args.numpy_epochs, args.numpy_examples
        )
        numpy_median = statistics.median(numpy_timing.seconds_per_epoch)
        figures["numpy"] = {
            "median_seconds_per_epoch": numpy_median,
            "seconds_per_epoch": numpy_timing.seconds_per_epoch,
            "examples_timed_per_epoch": numpy_timing.examples_timed,
            "test_accuracy": numpy_timing.test_accuracy,
        }
        print(
            f"  {'numpy per-example (seed)':<26}{numpy_median:>9.3f} s{1.0:>9.1f}×   "
            f"median of {len(numpy_timing.seconds_per_epoch)}: "
            f"{' '.join(f'{s:.3f}' for s in numpy_timing.seconds_per_epoch)}"
            + scaled_note(numpy_timing.examples_timed, len(train))
        )
    for grad in ("manual", "autodiff"):
        timing = time_jaxmlp_epochs(config.replace(grad=grad), dataset, args.epochs)
        ratio = numpy_median / timing.median if numpy_median else None
        figures[f"jaxmlp_{grad}"] = {
            "median_seconds_per_epoch": timing.median,
            "seconds_per_epoch": timing.seconds,
            "warmup_seconds": timing.warmup_seconds,
            "speedup_vs_numpy": ratio,
        }
        ratio_text = f"{ratio:>9.1f}×" if ratio else f"{'—':>10}"
        print(
            f"  {'jaxmlp --grad ' + grad:<26}{timing.median:>9.3f} s{ratio_text}   "
            f"median of {len(timing.seconds)}: {' '.join(f'{s:.3f}' for s in timing.seconds)}; "
            f"warm-up epoch with compilation {timing.warmup_seconds:.2f} s"
        )
    if numpy_median:
        print_speedup_verdict(figures)
        numpy_figures = figures["numpy"]
        print(
            f"  numpy reference check: test accuracy {100 * numpy_figures['test_accuracy']:.2f}% "
            f"after {args.numpy_epochs} epoch(s) of {numpy_figures['examples_timed_per_epoch']} "
            "examples"
        )
    return figures


def scaled_note(examples_timed: int, examples_per_epoch: int) -> str:
    if examples_timed == examples_per_epoch:
        return ""
    return f" (timed on {examples_timed} examples, scaled to {examples_per_epoch})"


def print_speedup_verdict(figures: dict[str, Any]) -> None:
    verdicts = []
    for grad in ("manual", "autodiff"):
        ratio = figures[f"jaxmlp_{grad}"]["speedup_vs_numpy"]
        figures[f"jaxmlp_{grad}"]["target_met"] = ratio >= SPEEDUP_TARGET
        verdicts.append(f"{grad} {verdict(ratio >= SPEEDUP_TARGET)} ({ratio:.1f}×)")
    print(f"  target: jaxmlp ≥ {SPEEDUP_TARGET:g}× numpy: {', '.join(verdicts)}")


# --- Large config ---------------------------------------------------------------------


def matmul_gflops(chain, x: jax.Array, w: jax.Array) -> float:
    """GFLOP/s of one call of ``chain`` (``MATMULS_PER_CALL`` matmuls)."""
    m, k = x.shape
    n = w.shape[1]
    began = time.perf_counter()
    jax.block_until_ready(chain(x, w))
    return 2.0 * m * k * n * MATMULS_PER_CALL / (time.perf_counter() - began) / 1e9


def bracketed_ratios(epoch_rates: list[float], matmul_rates: list[float]) -> list[float]:
    """Each epoch's rate over the mean of the matmul rates measured just before and after it,
    so that a load that changes during the run affects both sides alike."""
    return [
        epoch_rate / ((before + after) / 2)
        for epoch_rate, before, after in zip(epoch_rates, matmul_rates, matmul_rates[1:])
    ]


def bench_large_config(dataset, args) -> dict[str, Any]:
    """GFLOP/s of a large jaxmlp epoch against plain matmuls timed around each of its epochs."""
    config = LARGE_CONFIG.replace(limit=args.limit)
    train = dataset.train
    counted = counted_flops_per_epoch(config.sizes, len(train))
    multiplied = multiplied_flops_per_epoch(config.sizes, len(train))
    print(
        f"\nLarge config ({sizes_text(config.sizes)}, {config.init} init, SGD lr {config.lr:g}, "
        f"batch {config.batch_size}, {len(train)} examples per epoch, --grad {config.grad})"
    )
    print(
        f"  FLOPs per epoch: {multiplied / 1e9:.1f} GFLOP actually multiplied (no error is "
        f"propagated into the input layer; the 6 × Σ(in·out) × examples convention would "
        f"count {counted / 1e9:.1f})"
    )
    chain = make_matmul_chain(MATMULS_PER_CALL)
    x, w = matmul_operands(MATMUL_SHAPE)
    matmul_gflops(chain, x, w)
    matmul_rates: list[float] = []
    timing = time_jaxmlp_epochs(
        config, dataset, args.large_epochs, lambda: matmul_rates.append(matmul_gflops(chain, x, w))
    )
    epoch_rates = [multiplied / seconds / 1e9 for seconds in timing.seconds]
    ratios = bracketed_ratios(epoch_rates, matmul_rates)
    fraction = statistics.median(ratios)
    m, k, n = MATMUL_SHAPE
    print(f"  {'':<38}{'seconds':>9}{'GFLOP/s':>10}")
    print(
        f"  {'jaxmlp training epoch':<38}{timing.median:>9.3f}"
        f"{statistics.median(epoch_rates):>10.1f}   median of {len(timing.seconds)}: "
        f"{' '.join(f'{s:.3f}' for s in timing.seconds)} s; warm-up epoch "
        f"{timing.warmup_seconds:.2f} s"
    )
    print(
        f"  {f'matmul ({m}×{k})·({k}×{n}) float32':<38}{'':>9}"
        f"{statistics.median(matmul_rates):>10.1f}   median of {len(matmul_rates)} calls of "
        f"{MATMULS_PER_CALL} chained matmuls, before and after each epoch: "
        f"{' '.join(f'{r:.1f}' for r in matmul_rates)}"
    )
    print(
        f"  ratio jaxmlp/matmul: {100 * fraction:.1f}% (median over epochs of the epoch's rate "
        f"over the matmul calls around it: {' '.join(f'{100 * r:.1f}' for r in ratios)}; "
        f"{100 * counted / multiplied * fraction:.1f}% by the 6× convention)"
    )
    print(
        f"  target: ≥ {100 * MATMUL_FRACTION_TARGET:.0f}% of the matmul rate: "
        f"{verdict(fraction >= MATMUL_FRACTION_TARGET)}"
    )
    return {
        "counted_gflop_per_epoch": counted / 1e9,
        "multiplied_gflop_per_epoch": multiplied / 1e9,
        "median_seconds_per_epoch": timing.median,
        "seconds_per_epoch": timing.seconds,
        "warmup_seconds": timing.warmup_seconds,
        "epoch_gflops": epoch_rates,
        "matmul_shape": list(MATMUL_SHAPE),
        "matmul_gflops": matmul_rates,
        "fractions_of_matmul": ratios,
        "fraction_of_matmul": fraction,
        "target_met": fraction >= MATMUL_FRACTION_TARGET,
    }


# --- End to end -----------------------------------------------------------------------


@dataclass
class ChildRun:
    """A finished subprocess: wall time, peak resident memory, exit code and output."""

    seconds: float
    max_rss_mib: float
    returncode: int
    stdout: str
    stderr: str
    launched: float = 0.0
    exited: float = 0.0

    def phases(self) -> dict[str, float]:
        """Seconds per phase (:mod:`jaxmlp.timings`), with the ``interpreter``'s start
        before the first measurement and its ``exit`` after the last; empty when the run
        printed no timings (an installation without them)."""
        report = parse_report(self.stderr)
        if report is None:
            return {}
        phases = {name: report.get(name, 0.0) for name in PHASES}
        counts = {name: report.get(name, 0) for name in COUNTS}
        edges = {
            "interpreter": report["began"] - self.launched,
            "exit": self.exited - report["ended"],
        }
        return {**edges, **phases, **counts}


MEASURING_LAUNCHER = """
import json, os, subprocess, sys, time
launched, began = time.time(), time.perf_counter()
process = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(process.pid, 0)
seconds = time.perf_counter() - began
figures = {"seconds": seconds, "max_rss_kib": usage.ru_maxrss, "status": status}
figures.update(launched=launched, exited=time.time())
with open(sys.argv[1], "w") as result:
    json.dump(figures, result)
"""
"""Runs ``argv[2:]`` and writes its wall time, peak RSS and wall-clock times of start and
end to ``argv[1]``. A child forked
from this (large) process would count this process's RSS as its own peak; forked from the
small launcher, it counts only the launcher's few MiB."""


def run_measured(command: Sequence[str], env: dict[str, str]) -> ChildRun:
    """Runs ``command`` in an empty directory (so that ``python -m jaxmlp`` imports the
    interpreter's installation, not a checkout it was started in): wall seconds from its
    start, and its own peak RSS (``wait4``)."""
    with (
        tempfile.TemporaryDirectory() as scratch,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        result_path = Path(scratch) / "measured.json"
        launcher = [sys.executable, "-c", MEASURING_LAUNCHER, str(result_path), *command]
        subprocess.run(launcher, stdout=out, stderr=err, env=env, check=True, cwd=scratch)
        figures = json.loads(result_path.read_text())
        out.seek(0)
        err.seek(0)
        return ChildRun(
            figures["seconds"],
            figures["max_rss_kib"] / 1024,
            os.waitstatus_to_exitcode(figures["status"]),
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            figures["launched"],
            figures["exited"],
        )


def train_command(python: str, data_dir: Path | None) -> list[str]:
    """``jaxmlp train --quiet`` (the seed config) through ``python``."""
    command = [python, "-m", "jaxmlp", "train", "--quiet"]
    return command + (["--data-dir", str(data_dir.resolve())] if data_dir is not None else [])


def run_cli(python: str, data_dir: Path | None, cache_home: Path) -> ChildRun:
    """One timed ``jaxmlp train`` run with ``XDG_CACHE_HOME=cache_home``; raises if it
    failed."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home), TIMINGS_VAR: "1"}
    run = run_measured(train_command(python, data_dir), env)
    if run.returncode != 0:
        raise RuntimeError(f"jaxmlp train exited with {run.returncode}:\n{run.stderr[-2000:]}")
    return run


def decode_data_once(python: str, data_dir: Path | None, cache_home: Path) -> None:
    """Fills the decoded-data cache under ``cache_home`` (untimed)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    data = str(data_dir.resolve()) if data_dir is not None else ""
    subprocess.run([python, "-c", DECODE_PROBE, data], env=env, check=True, cwd=cache_home)


DECODE_PROBE = """
import sys
from jaxmlp.data import load_dataset
load_dataset("mnist", data_dir=sys.argv[1] or None)
"""


def accuracy_line(stdout: str) -> str:
    """The ``Test: …`` line the CLI printed."""
    return next((line for line in stdout.splitlines() if line.startswith("Test:")), "(none)")


def cold_and_warm(python: str, data_dir: Path | None, cache_home: Path) -> tuple[ChildRun, ...]:
    """A run with an empty compilation cache, then one with the cache it filled."""
    shutil.rmtree(cache_home / "jaxmlp" / "xla", ignore_errors=True)
    return run_cli(python, data_dir, cache_home), run_cli(python, data_dir, cache_home)


def bench_end_to_end(args) -> dict[str, Any]:
    """Cold and warm wall time, breakdown and peak RSS of ``jaxmlp train``, ``--e2e-runs``
    pairs, alternating with ``--reference-python``'s when given."""
    pythons = {"this": sys.executable}
    if args.reference_python:
        pythons["reference"] = str(args.reference_python)
    shown = " ".join(["python", *train_command("", args.data_dir)[1:]])
    print(f"\nEnd to end: {shown} (seed config, 10 epochs), {args.e2e_runs} cold/warm pairs")
    runs: dict[str, dict[str, list[ChildRun]]] = {
        name: {"cold": [], "warm": []} for name in pythons
    }
    with tempfile.TemporaryDirectory(prefix="jaxmlp-bench-cache-") as scratch:
        cache_home = Path(scratch)
        decode_data_once(sys.executable, args.data_dir, cache_home)
        for _ in range(args.e2e_runs):
            for name, python in pythons.items():
                cold, warm = cold_and_warm(python, args.data_dir, cache_home)
                runs[name]["cold"].append(cold)
                runs[name]["warm"].append(warm)
    figures = {
        name: {kind: run_figures(kind_runs) for kind, kind_runs in by_kind.items()}
        for name, by_kind in runs.items()
    }
    print_wall_times(figures)
    print_breakdown(figures)
    this = figures["this"]
    cold_ok = this["cold"]["median_seconds"] <= COLD_START_TARGET_S
    warm_ok = this["warm"]["median_seconds"] <= WARM_START_TARGET_S
    print(
        f"  target: warm ≤ {WARM_START_TARGET_S:g} s: {verdict(warm_ok)}; "
        f"cold ≤ {COLD_START_TARGET_S:g} s: {verdict(cold_ok)}"
    )
    print(f"  printed: {this['cold']['test_lines'][0]}")
    return {**this, "reference": figures.get("reference"), "targets_met": [warm_ok, cold_ok]}


def print_wall_times(figures: dict[str, dict[str, Any]]) -> None:
    """Wall time and peak memory of each installation, cold and warm; the ratios to the
    reference's when there is one."""
    print(f"  {'':<46}{'wall s':>9}{'max RSS MiB':>13}")
    for name, by_kind in figures.items():
        for kind, label in (("cold", "empty compilation cache"), ("warm", "cache filled")):
            row = by_kind[kind]
            times = " ".join(f"{seconds:.2f}" for seconds in row["seconds"])
            print(
                f"  {f'{name}, {kind} ({label})':<46}{row['median_seconds']:>9.2f}"
                f"{row['max_rss_mib']:>13.0f}   median of {len(row['seconds'])}: {times}"
            )
    if "reference" in figures:
        for kind in ("cold", "warm"):
            ratio = (
                figures["reference"][kind]["median_seconds"]
                / figures["this"][kind]["median_seconds"]
            )
            print(f"  {kind}: this is {ratio:.2f}× as fast as the reference")


def print_breakdown(figures: dict[str, dict[str, Any]]) -> None:
    """Median seconds per phase and the programs compiled, cold and warm, of each
    installation that printed its timings."""
    columns = [
        (f"{name} {kind}", by_kind[kind]["phases"])
        for name, by_kind in figures.items()
        for kind in ("cold", "warm")
        if by_kind[kind]["phases"]
    ]
    if not columns:
        return
    print(f"  where the time went (median s)  {''.join(f'{title:>16}' for title, _ in columns)}")
    for name in ("interpreter", *PHASES, "exit"):
        row = "".join(f"{phases[name]:>16.3f}" for _, phases in columns)
        print(f"    {PHASE_NAMES[name]:<30}{row}")
    for name in COUNTS:
        print(f"    {COUNT_NAMES[name]:<30}{''.join(f'{p[name]:>16.0f}' for _, p in columns)}")


PHASES = (
    "commands",
    "jax",
    "data",
    "prepare",
    "trace",
    "lower",
    "compile",
    "train",
    "evaluate",
    "other",
)
"""The phases a ``jaxmlp train`` run reports (:mod:`jaxmlp.timings`), in order."""
COUNTS = ("compilations", "cache_hits")
PHASE_NAMES = {
    "interpreter": "interpreter start",
    "commands": "import the CLI, parse",
    "jax": "import JAX, set up its cache",
    "data": "read MNIST (decoded cache)",
    "prepare": "prepare (data to the device)",
    "trace": "trace (JAX)",
    "lower": "lower to MLIR (JAX)",
    "compile": "compile or read from cache",
    "train": "train 10 epochs",
    "evaluate": "evaluate (val ×10, test)",
    "other": "the rest (imports, records)",
    "exit": "interpreter shutdown",
}
COUNT_NAMES = {"compilations": "programs compiled", "cache_hits": "  of them from the cache"}


def run_figures(runs: list[ChildRun]) -> dict[str, Any]:
    phases = [run.phases() for run in runs]
    return {
        "median_seconds": statistics.median(run.seconds for run in runs),
        "seconds": [run.seconds for run in runs],
        "max_rss_mib": max(run.max_rss_mib for run in runs),
        "rss_mib": [run.max_rss_mib for run in runs],
        "test_lines": [accuracy_line(run.stdout) for run in runs],
        "phases": median_phases(phases) if all(phases) else {},
        "phases_per_run": phases,
    }


def median_phases(phases: list[dict[str, float]]) -> dict[str, float]:
    """The median of each phase over runs."""
    return {name: statistics.median(run[name] for run in phases) for name in phases[0]}


# --- Command line ---------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Targets are reported as PASS/MISS, not enforced: the exit code is 0 unless "
        "the benchmark itself failed.",
    )
    add_common_options(parser)
    parser.add_argument(
        "--epochs", type=int, default=5, metavar="N", help="Timed jaxmlp seed-config epochs (5)."
    )
    parser.add_argument(
        "--numpy-epochs", type=int, default=3, metavar="N", help="Timed numpy epochs (3)."
    )
    parser.add_argument(
        "--numpy-examples",
        type=int,
        metavar="N",
        help="Time the numpy network on only N examples per epoch, scaled up (default: all).",
    )
    parser.add_argument(
        "--large-epochs", type=int, default=3, metavar="N", help="Timed large-config epochs (3)."
    )
    parser.add_argument(
        "--e2e-runs", type=int, default=3, metavar="N", help="Cold/warm pairs of CLI runs (3)."
    )
    parser.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="Train on only the first N examples per epoch, for quick checks (not the CLI runs).",
    )
    parser.add_argument("--skip-numpy", action="store_true", help="No numpy reference.")
    parser.add_argument("--skip-large", action="store_true", help="No large-config benchmark.")
    parser.add_argument("--skip-e2e", action="store_true", help="No end-to-end CLI runs.")
    parser.add_argument(
        "--reference-python",
        type=Path,
        metavar="PYTHON",
        help="Also time the end-to-end runs with this interpreter's jaxmlp (e.g. a venv of "
        "the main branch), alternating with this one's, and print the ratios.",
    )
    args = parser.parse_args(argv)
    positive = ("epochs", "numpy_epochs", "large_epochs", "e2e_runs", "numpy_examples", "limit")
    for name in positive:
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmarks chosen by ``argv`` and prints them; returns 0."""
    args = parse_args(argv)
    figures: dict[str, Any] = {"machine": machine_info()}
    print("jaxmlp benchmark (targets are reported, not enforced)")
    print(format_machine(figures["machine"]))
    dataset = load_dataset(
        "mnist", data_dir=args.data_dir, val_size=SEED_CONFIG.val_size, limit=args.limit
    )
    print(f"Data: {dataset.source}")
    figures["seed_config"] = bench_seed_config(dataset, args)
    if not args.skip_large:
        figures["large_config"] = bench_large_config(dataset, args)
    if not args.skip_e2e:
        figures["end_to_end"] = bench_end_to_end(args)
    figures["load_average_at_end"] = load_average()
    print(f"\nAt the end: {format_load(figures['load_average_at_end'])}")
    if args.json:
        write_json(args.json, figures)
        print(f"Figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
