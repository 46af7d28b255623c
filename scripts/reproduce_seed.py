"""Reproduces the seed's two experiments with the library, over several seeds.

784-15-10, N(0, 1) init, SGD, batch 10, 10 epochs on the seed's 50,000/10,000/10,000
split, at learning rates 0.1 and 0.5, trained by :func:`jaxmlp.train.fit`. Prints the
final test accuracy per seed and its mean ± sd beside the seed document's single runs
(91.90% and 86.69%). The seed's per-epoch figures are test accuracy; jaxmlp's per-epoch
figures are validation accuracy, so only the final test accuracy is compared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from _common import (
    add_common_options,
    format_load,
    format_machine,
    load_average,
    machine_info,
    write_json,
)

from jaxmlp.data import load_dataset
from jaxmlp.display import percent
from jaxmlp.settings import Settings
from jaxmlp.sweep import run_sweep

SEED_DOCUMENT_ACCURACY = {0.1: 0.9190, 0.5: 0.8669}
"""The final test accuracy the seed document printed for each learning rate (one run each)."""


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` → ``[0, 1, 2]``."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"seeds must be integers such as 0,1,2, got {text!r}"
        ) from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed")
    return seeds


def train_all(members: list[Settings], dataset) -> list[dict[str, Any]]:
    """Every run's final test accuracy (``None`` if it diverged), as one sweep: the runs
    share one program and train together as one population."""
    outcome = run_sweep(members, dataset)
    return [
        {
            "seed": member.seed,
            "test_accuracy": None if result.diverged is not None else result.test_accuracy,
        }
        for member, result in zip(members, outcome.results)
    ]


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample sd (``None`` below two runs) of the runs that did not diverge."""
    accuracies = [run["test_accuracy"] for run in runs if run["test_accuracy"] is not None]
    return {
        "mean": statistics.mean(accuracies) if accuracies else None,
        "sd": statistics.stdev(accuracies) if len(accuracies) >= 2 else None,
        "converged": len(accuracies),
        "diverged": len(runs) - len(accuracies),
    }


def shared_settings(config: Settings) -> dict[str, Any]:
    """The settings every run shares: all but the learning rate and the seed."""
    return {k: v for k, v in config.to_dict().items() if k not in ("lr", "seed")}


def format_row(lr: float, summary: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    """``lr 0.1   91.73 ± 0.40 %   91.90 %   91.95 90.15 …``."""
    per_seed = " ".join(
        "diverged" if run["test_accuracy"] is None else percent(run["test_accuracy"])
        for run in runs
    )
    result = f"{percent(summary['mean'], 'n/a')} ± {percent(summary['sd'], 'n/a')} %"
    return f"lr {lr:<6g}{result:>20}{percent(SEED_DOCUMENT_ACCURACY[lr]) + ' %':>16}   {per_seed}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument(
        "--seeds",
        type=parse_seeds,
        default=[0, 1, 2, 3, 4],
        metavar="LIST",
        help="Comma-separated seeds (0,1,2,3,4).",
    )
    parser.add_argument(
        "--epochs", type=int, default=Settings().epochs, metavar="N", help="Epochs per run (10)."
    )
    parser.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="Use only the first N examples of each split (quick checks).",
    )
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Trains every (learning rate, seed) pair and prints the comparison; returns 0."""
    args = parse_args(argv)
    began = time.perf_counter()
    machine = machine_info()
    base = Settings(epochs=args.epochs, limit=args.limit)
    dataset = load_dataset(
        "mnist", data_dir=args.data_dir, val_size=base.val_size, limit=args.limit
    )
    print(
        f"Reproducing the seed's experiments: {'-'.join(map(str, base.sizes))}, {base.init} "
        f"init, SGD, batch {base.batch_size}, {base.epochs} epochs, split "
        f"{len(dataset.train)}/{len(dataset.validation)}/{len(dataset.test)}, "
        f"seeds {','.join(map(str, args.seeds))}"
    )
    print(format_machine(machine))
    print(f"Data: {dataset.source}")
    print(
        "Final test accuracy (the seed's per-epoch figures are test accuracy, jaxmlp's "
        "per-epoch ones validation: only the final test accuracy is compared)"
    )
    seeds_header = f"per seed ({', '.join(map(str, args.seeds))})"
    print(f"{'':<9}{'mean ± sd (jaxmlp)':>20}{'seed document':>16}   {seeds_header}")
    experiments = []
    members = [
        base.replace(lr=lr, seed=seed) for lr in SEED_DOCUMENT_ACCURACY for seed in args.seeds
    ]
    outcomes = train_all(members, dataset)
    for position, lr in enumerate(SEED_DOCUMENT_ACCURACY):
        runs = outcomes[position * len(args.seeds) : (position + 1) * len(args.seeds)]
        summary = summarise(runs)
        experiments.append(
            {"lr": lr, "seed_document": SEED_DOCUMENT_ACCURACY[lr], "runs": runs, **summary}
        )
        print(format_row(lr, summary, runs), flush=True)
    total = time.perf_counter() - began
    run_count = len(SEED_DOCUMENT_ACCURACY) * len(args.seeds)
    print(
        f"Total time: {total:.1f} s ({run_count} runs); at the end: {format_load(load_average())}"
    )
    if args.json:
        write_json(
            args.json,
            {
                "machine": machine,
                "config": shared_settings(base),
                "seeds": args.seeds,
                "experiments": experiments,
                "total_seconds": total,
            },
        )
        print(f"Figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
