"""Grid, random search, successive halving and PBT at the same budget in network-epochs.

Each method searches the learning rate (Adam) and the dropout rate of one network on
Fashion-MNIST's validation split, given the grid's budget: ``grid`` is ``lr × dropout``
(3 × 3 values, every member for every epoch); ``random`` draws as many members from
``lr 1e-4..1e-2:log``, ``dropout 0..0.5``; ``halving`` draws as many members as its rungs
let it train within the budget; ``pbt`` trains as many members as the grid, exploiting
every epoch. Every member starts from seed 0, so the methods differ only in the values.

For each method and search seed it prints the best member's validation and test accuracy
at the end, the network-epochs it trained, and the network-epochs after which a member
first reached the grid's best validation accuracy (``-``: never). Sized by flags for the
machine at hand: the defaults fit a shared 2-core CPU in minutes, far from the recipe
behind ``--preset best``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from _common import add_fashion_options, format_machine, machine_info, write_json

from jaxmlp import search, search_loop, sweep
from jaxmlp.data import load_dataset

GRID = {"lr": [1e-4, 1e-3, 1e-2], "dropout": [0.0, 0.2, 0.4]}
SPACE = {"lr": "1e-4..1e-2:log", "dropout": "0..0.5"}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_fashion_options(parser)
    parser.add_argument(
        "--limit", type=int, default=10_000, help="examples of each split (default: 10000)"
    )
    parser.add_argument("--epochs", type=int, default=9, help="epochs of a full run (default: 9)")
    parser.add_argument("--sizes", default="784,128,10", help="layer widths (default: 784,128,10)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--search-seeds", default="0", help="comma list (default: 0)")
    return parser.parse_args()


def fixed_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What every member shares."""
    return {
        "dataset": "fashion-mnist",
        "data_dir": args.data_dir,
        "download": False,
        "limit": args.limit,
        "epochs": args.epochs,
        "sizes": args.sizes,
        "batch_size": args.batch_size,
        "optimizer": "adam",
        "init": "he",
        "seed": 0,
    }


def compute_curve(histories: list[list[dict[str, Any]]]) -> list[tuple[int, float]]:
    """After each epoch: (network-epochs so far, best validation accuracy of that epoch)."""
    curve, spent = [], 0
    for epoch in range(1, max(map(len, histories)) + 1):
        records = [h[epoch - 1] for h in histories if len(h) >= epoch]
        spent += len(records)
        curve.append((spent, max(record["val_accuracy"] for record in records)))
    return curve


def reached(curve: list[tuple[int, float]], target: float) -> int | None:
    """The network-epochs after which a member first reached ``target``."""
    return next((spent for spent, best in curve if best >= target), None)


def halving_members(budget: int, rungs: tuple[int, ...], epochs: int, eta: int) -> int:
    """The most members halving can start within ``budget`` network-epochs."""
    members = 1
    while search.halving_network_epochs(members + 1, rungs, epochs, eta) <= budget:
        members += 1
    return members


def run_method(method: str, args, search_seed: int, dataset) -> dict[str, Any]:
    """Runs one method; returns its figures."""
    fixed = fixed_settings(args)
    grid_size = len(GRID["lr"]) * len(GRID["dropout"])
    budget = grid_size * args.epochs
    distributions = {name: search.parse_distribution(name, text) for name, text in SPACE.items()}
    began = time.perf_counter()
    if method == "grid":
        members = sweep.expand_grid("seed", GRID, fixed)
        outcome = sweep.run_sweep(members, dataset)
    elif method == "random":
        members = search.draw_members("seed", distributions, {}, fixed, grid_size, search_seed)
        outcome = sweep.run_sweep(members, dataset)
    elif method == "halving":
        rungs = search.default_rungs(args.epochs, args.eta)
        count = halving_members(budget, rungs, args.epochs, args.eta)
        members = search.draw_members("seed", distributions, {}, fixed, count, search_seed)
        plan = search.SearchPlan("halving", count, search_seed, eta=args.eta, rungs=rungs)
        outcome = search_loop.run_halving(members, dataset, plan)
    else:
        members = search.draw_members("seed", distributions, {}, fixed, grid_size, search_seed)
        plan = search.resolve_search(
            "pbt",
            args.epochs,
            distributions=distributions,
            runs=grid_size,
            search_seed=search_seed,
        )
        outcome = search_loop.run_pbt(members, dataset, plan, distributions)
    seconds = time.perf_counter() - began
    val, index = outcome.best[0], outcome.best[1]
    final = getattr(outcome, "members", None) or members
    figures = {
        "method": method,
        "search_seed": search_seed,
        "members": len(members),
        "network_epochs": sum(map(len, outcome.histories)),
        "best_val": val,
        "best_test": outcome.results[index].test_accuracy,
        "best_values": {name: getattr(final[index], name) for name in GRID},
        "curve": compute_curve(outcome.histories),
        "seconds": seconds,
    }
    if method == "pbt":
        figures["schedule"] = outcome.schedules[index]
    return figures


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def print_row(figures: dict[str, Any], target: float) -> None:
    """Prints one method's row of the table (as it finishes) and notes when it reached
    ``target``."""
    figures["to_grid_best"] = reached(figures["curve"], target)
    seed = "-" if figures["method"] == "grid" else figures["search_seed"]
    print(
        f"| {figures['method']} | {seed} | {figures['members']} | {figures['network_epochs']}"
        f" | {percent(figures['best_val'])} | {percent(figures['best_test'])} | "
        f"{figures['to_grid_best'] or '-'} | {figures['seconds']:.0f} |",
        flush=True,
    )


def main() -> None:
    args = parse_arguments()
    info = machine_info()
    print(format_machine(info))
    dataset = load_dataset(
        "fashion-mnist", data_dir=args.data_dir, limit=args.limit, download=False
    )
    print(
        f"Fashion-MNIST, first {args.limit} of each split; sizes {args.sizes}, adam, batch "
        f"{args.batch_size}, {args.epochs} epochs; grid {GRID}; space {SPACE}"
    )
    seeds = [int(seed) for seed in args.search_seeds.split(",")]
    grid = run_method("grid", args, 0, dataset)
    target = grid["best_val"]
    print(
        f"\n| method | search seed | members | network-epochs | best val % | its test % "
        f"| network-epochs to the grid's best val ({percent(target)} %) | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|")
    results = [grid]
    print_row(grid, target)
    for seed in seeds:
        for method in ("random", "halving", "pbt"):
            results.append(run_method(method, args, seed, dataset))
            print_row(results[-1], target)
    for figures in results:
        if figures["method"] == "pbt":
            print(
                f"PBT (search seed {figures['search_seed']}) best member's schedule: "
                f"{figures['schedule']}"
            )
    if args.json:
        write_json(
            args.json,
            {
                "machine": info,
                "arguments": vars(args) | {"data_dir": str(args.data_dir), "json": str(args.json)},
                "results": results,
            },
        )


if __name__ == "__main__":
    main()
