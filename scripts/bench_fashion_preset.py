"""Fashion-MNIST's ``--preset best`` against the recipe it replaced, epoch for epoch.

Both recipes are prepared in one process and trained one epoch each in turn (the first
epoch, which compiles, is not timed), so the ratios hold on a shared machine whose load
changes during the run. For each recipe it prints the median wall time and process CPU
time (user + sys) of an epoch, and the run's training time (an epoch × its epochs) as a
ratio of the old recipe's. ``--variants`` adds the old recipe without flips, without
dropout, and at batch 256 and 512: what each part of an epoch costs. Start-up (import,
data, compilation, test) is not included: time ``jaxmlp train --preset best --dataset
fashion-mnist`` for the whole run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from _common import (
    add_fashion_options,
    format_load,
    format_machine,
    load_average,
    machine_info,
    write_json,
)

import jaxmlp
from jaxmlp.presets import preset_values

REPLACED_RECIPE: dict[str, Any] = {
    "sizes": (784, 1024, 1024, 10),
    "init": "he",
    "optimizer": "adam",
    "lr": 0.001,
    "batch_size": 128,
    "schedule": "cosine",
    "dropout": 0.1,
    "label_smoothing": 0.1,
    "augment_flip": True,
    "epochs": 30,
    "val_size": 0,
}
"""``--preset best`` on Fashion-MNIST until 2026-11-29: 90.74 % test, 219 s quiet."""


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_fashion_options(parser)
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed epochs of each recipe (default: 3)"
    )
    parser.add_argument("--limit", type=int, help="train on this many examples (default: all)")
    parser.add_argument(
        "--variants", action="store_true", help="also time variants of the replaced recipe"
    )
    return parser.parse_args(argv)


VARIANTS: dict[str, dict[str, Any]] = {
    "no flips": {"augment_flip": False},
    "no dropout": {"dropout": 0.0},
    "batch 256": {"batch_size": 256},
    "batch 512": {"batch_size": 512},
}
"""Changes to the replaced recipe that ``--variants`` times."""


def recipes(variants: bool = False) -> dict[str, dict[str, Any]]:
    """The recipes compared, the replaced one first (the reference)."""
    chosen = {"replaced": REPLACED_RECIPE, "preset best": preset_values("best", "fashion-mnist")}
    if variants:
        chosen.update({name: {**REPLACED_RECIPE, **change} for name, change in VARIANTS.items()})
    return chosen


def timed_epoch(trainer, progress):
    """One epoch: the new progress, its wall seconds and its process CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    progress = trainer.train_epoch(progress)
    return progress, time.perf_counter() - wall, time.process_time() - cpu


def describe(recipe: dict[str, Any]) -> str:
    """``784-1024-1024-10, batch 128, 30 epochs``."""
    sizes = "-".join(str(size) for size in recipe["sizes"])
    return f"{sizes}, batch {recipe['batch_size']}, {recipe['epochs']} epochs"


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    print(format_machine(machine_info()))
    data = jaxmlp.load_dataset(
        "fashion-mnist", data_dir=args.data_dir, val_size=0, limit=args.limit
    )
    trainers, progress = {}, {}
    for name, recipe in recipes(args.variants).items():
        settings = jaxmlp.Settings(**{**recipe, "dataset": "fashion-mnist", "limit": args.limit})
        trainers[name] = jaxmlp.prepare(settings, data)
        progress[name], _, _ = timed_epoch(trainers[name], trainers[name].start())
    walls = {name: [] for name in trainers}
    cpus = {name: [] for name in trainers}
    for _ in range(args.rounds):
        for name, trainer in trainers.items():
            progress[name], wall, cpu = timed_epoch(trainer, progress[name])
            walls[name].append(wall)
            cpus[name].append(cpu)
    figures: dict[str, Any] = {"load_average_after": load_average(), "recipes": {}}
    reference = None
    print(f"Training examples: {len(data.train)}; epochs timed: {args.rounds}")
    for name, recipe in recipes(args.variants).items():
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        run = cpu * recipe["epochs"]
        reference = reference or (wall, cpu, run)
        figures["recipes"][name] = {
            "recipe": describe(recipe),
            "epoch_wall_s": walls[name],
            "epoch_cpu_s": cpus[name],
            "run_cpu_ratio": run / reference[2],
        }
        print(
            f"  {name:12s} {describe(recipe):38s} epoch {wall:5.2f} s wall "
            f"({wall / reference[0]:.2f}×), {cpu:5.2f} s CPU ({cpu / reference[1]:.2f}×); "
            f"training {run / reference[2]:.2f}× the replaced recipe's CPU time"
        )
    print(format_load(load_average()))
    if args.json:
        write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
