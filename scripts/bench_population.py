"""Benchmarks populations: many seed-config networks in one compiled program.

Two measurements, each printed beside its target (reported, never enforced):

1. Per network-epoch at R = 1, 10, 100, 1000 members (seed config: 784-15-10, SGD lr 0.1,
   batch 10, 50,000 examples), each R in a fresh process so that its peak memory is its
   own, against the numpy seed epoch measured in this run. Targets: R = 100 in the default
   layout at least 100× faster than numpy per network-epoch (printed on a line of its
   own); 1000 members within 2 GB. The first epoch (compilation included) is printed too:
   what compiling costs as R grows. Beside the wall-clock ratio, the ratio of CPU seconds
   (the process's, all threads) per network-epoch: on a shared machine a population's
   threads get less of the cores than numpy's one, so its wall-clock ratio falls with the
   load; on an idle machine the wall-clock ratio is about the CPU ratio times the cores the
   population keeps busy.
2. The seed's table (lr 0.1 and 0.5 × seeds 0–4, 10 epochs) as the README's plain
   ``jaxmlp sweep`` (no flag, no variable: one CPU device per core), as the same sweep on
   one CPU device (``JAX_NUM_CPU_DEVICES=1``, what a sweep used before it took every core),
   and as ten ``jaxmlp train`` processes, one after another. Target: the plain sweep in at
   most a third of the time of the ten processes.

``--devices N`` splits the CPU into N JAX devices (``JAX_NUM_CPU_DEVICES``) and spreads
the members over them; by default one per core, as ``jaxmlp sweep`` does. This machine is
shared and noisy: ratios are taken within the run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import (
    add_common_options,
    format_load,
    format_machine,
    load_average,
    machine_info,
    write_json,
)

SCRIPTS = Path(__file__).resolve().parent


def worker(members: int, epochs: int, data_dir: str | None, limit: int | None) -> dict:
    """Trains ``members`` seed-config networks for ``epochs`` timed epochs (after a
    compiling one); returns seconds per epoch and this process's peak memory."""
    import jax

    from jaxmlp import parallel, train
    from jaxmlp.data import load_dataset
    from jaxmlp.settings import Settings

    dataset = load_dataset("mnist", data_dir=data_dir, limit=limit)
    layout = parallel.device_layout("all", members)
    count = members + (-members % (1 if layout is None else layout.members))
    settings = [Settings(seed=seed, epochs=epochs + 1, limit=limit) for seed in range(count)]
    trainer = train.prepare(settings, dataset, layout=layout)
    state = trainer.initial_state()
    images, labels = trainer.data["train"]
    seconds, cpu_seconds = [], []
    for epoch in range(epochs + 1):
        began, cpu_began = time.perf_counter(), time.process_time()
        state, metrics = trainer.run_epoch(
            state, trainer.values, images, labels, trainer.epoch_keys(epoch)
        )
        jax.block_until_ready((state, metrics))
        seconds.append(time.perf_counter() - began)
        cpu_seconds.append(time.process_time() - cpu_began)
    scale = 50_000 / len(dataset.train)
    return {
        "members": count,
        "epoch_seconds": [s * scale for s in seconds[1:]],
        "epoch_cpu_seconds": [s * scale for s in cpu_seconds[1:]],
        "first_epoch_seconds": seconds[0],
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_worker(members: int, args) -> dict:
    """:func:`worker` in a fresh process."""
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(args.devices)}
    command = [sys.executable, __file__, "--worker", str(members), "--epochs", str(args.epochs)]
    if args.data_dir:
        command += ["--data-dir", str(args.data_dir)]
    if args.limit:
        command += ["--limit", str(args.limit)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def numpy_epoch_seconds(data_dir, examples: int) -> tuple[float, float]:
    """Wall and CPU seconds of one epoch of the seed's numpy network (scripts/bench.py),
    scaled to 50,000 examples."""
    import random

    import numpy as np
    from bench import SeedNetwork, seed_examples

    from jaxmlp.data import load_dataset

    dataset = load_dataset("mnist", data_dir=data_dir)
    data = seed_examples(dataset.train, examples)
    network = SeedNetwork((784, 15, 10), np.random.default_rng(0))
    began, cpu_began = time.perf_counter(), time.process_time()
    network.sgd_epoch(data, 10, 0.1, random.Random(0))
    scale = len(dataset.train) / len(data)
    return (time.perf_counter() - began) * scale, (time.process_time() - cpu_began) * scale


TARGET_MEMBERS = 100
"""The population size of the per-network-epoch target."""


def population_row(members: int, args, numpy_s: list[tuple[float, float]]) -> dict:
    """Times ``members`` in a fresh process, then numpy again; prints and returns the row
    (ratios against the mean of the numpy epochs just before and after)."""
    figures = run_worker(members, args)
    numpy_s.append(numpy_epoch_seconds(args.data_dir, args.numpy_examples))
    numpy_wall = statistics.fmean(wall for wall, _ in numpy_s[-2:])
    numpy_cpu = statistics.fmean(cpu for _, cpu in numpy_s[-2:])
    per_network = min(figures["epoch_seconds"]) / figures["members"]
    cpu_per_network = min(figures["epoch_cpu_seconds"]) / figures["members"]
    row = {
        **figures,
        "requested": members,
        "seconds_per_network_epoch": per_network,
        "cpu_seconds_per_network_epoch": cpu_per_network,
        "numpy_seconds": numpy_wall,
        "numpy_cpu_seconds": numpy_cpu,
        "times_numpy": numpy_wall / per_network,
        "cpu_times_numpy": numpy_cpu / cpu_per_network,
    }
    print(
        f"{figures['members']:>6}{args.devices:>9}{per_network:>19.4f}{row['times_numpy']:>9.1f}"
        f"{row['cpu_times_numpy']:>13.1f}{1 / per_network:>12.1f}{figures['peak_mb']:>10.0f}"
        f"{figures['first_epoch_seconds']:>13.1f}",
        flush=True,
    )
    return row


def timed(command: list[str], env: dict | None = None) -> float:
    """Wall seconds of a command (which must succeed)."""
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - began


def seed_table(args) -> dict:
    """The seed's table: the plain sweep and the sweep on one CPU device, alternating, the
    best of ``--rounds`` each, and ten ``jaxmlp train`` processes, one after another."""
    jaxmlp = [sys.executable, "-m", "jaxmlp"]
    data = ["--data-dir", str(args.data_dir)] if args.data_dir else []
    plain = {key: value for key, value in os.environ.items() if key != "JAX_NUM_CPU_DEVICES"}
    sweep = [*jaxmlp, "sweep", *data, "--lr", "0.1,0.5", "--seed", "0-4", "-q"]
    one_device = {**plain, "JAX_NUM_CPU_DEVICES": "1"}
    timed([*jaxmlp, "data-info", *data], plain)  # the decoded data cached for everyone
    rounds = [(timed(sweep, plain), timed(sweep, one_device)) for _ in range(args.rounds)]
    sweep_s = min(plain_s for plain_s, _ in rounds)
    one_device_s = min(one_s for _, one_s in rounds)
    serial_s = sum(
        timed([*jaxmlp, "train", *data, "--lr", str(lr), "--seed", str(seed), "--quiet"], plain)
        for lr in (0.1, 0.5)
        for seed in range(5)
    )
    return {
        "sweep_seconds": sweep_s,
        "one_device_sweep_seconds": one_device_s,
        "train_processes_seconds": serial_s,
        "ratio": serial_s / sweep_s,
        "one_device_ratio": serial_s / one_device_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument(
        "--members", default="1,10,100,1000", help="Population sizes (1,10,100,1000)."
    )
    parser.add_argument("--epochs", type=int, default=2, help="Timed epochs per size (2).")
    parser.add_argument(
        "--devices", type=int, help="CPU devices to spread members over (one per core)."
    )
    parser.add_argument(
        "--table-only", action="store_true", help="Only the sweep-vs-train comparison."
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="Sweeps of each kind, alternating (2)."
    )
    parser.add_argument("--limit", type=int, help="Train on the first N examples (timings scaled).")
    parser.add_argument(
        "--numpy-examples", type=int, default=10_000, help="numpy examples timed (10000)."
    )
    parser.add_argument("--skip-table", action="store_true", help="No sweep-vs-train comparison.")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.devices is None:
        from jaxmlp.cli.startup import population_cpu_devices

        args.devices = population_cpu_devices()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.epochs, args.data_dir, args.limit)))
        return 0
    print(format_machine(machine_info()))
    numpy_s = [numpy_epoch_seconds(args.data_dir, args.numpy_examples)]
    print(f"numpy seed epoch: {numpy_s[0][0]:.3f} s ({numpy_s[0][1]:.3f} CPU s)")
    print(
        f"\n{'R':>6}{'devices':>9}{'s / network-epoch':>19}{'× numpy':>9}{'CPU × numpy':>13}"
        f"{'networks/s':>12}{'peak MiB':>10}{'1st epoch s':>13}"
    )
    rows = []
    for members in [] if args.table_only else (int(m) for m in args.members.split(",")):
        rows.append(population_row(members, args, numpy_s))
    for row in rows:
        if row["requested"] == TARGET_MEMBERS:
            print(
                f"\nR = {TARGET_MEMBERS} on {args.devices} device(s): "
                f"{row['seconds_per_network_epoch']:.4f} s per network-epoch, "
                f"{row['times_numpy']:.1f}× the numpy seed epoch of this run "
                f"({row['numpy_seconds']:.3f} s; target ≥ 100×); "
                f"{row['cpu_times_numpy']:.1f}× per CPU second"
            )
    figures = {"machine": machine_info(), "devices": args.devices, "rows": rows}
    if not args.skip_table:
        table = seed_table(args)
        figures["seed_table"] = table
        print(
            f"\nThe seed's table (10 runs of 10 epochs): ten 'jaxmlp train' processes "
            f"{table['train_processes_seconds']:.1f} s; 'jaxmlp sweep' "
            f"{table['sweep_seconds']:.1f} s: {table['ratio']:.2f}× (target ≥ 3×); the same "
            f"sweep on one CPU device {table['one_device_sweep_seconds']:.1f} s: "
            f"{table['one_device_ratio']:.2f}×"
        )
    print(f"at the end: {format_load(load_average())}")
    if args.json:
        write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
