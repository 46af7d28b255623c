"""``jaxmlp sweep``: a grid of runs, trained as populations, summarised as a table."""

from __future__ import annotations

import dataclasses
import enum
import json
import statistics
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import typer

from jaxmlp import checkpoint as checkpoints
from jaxmlp import memory, plots, population, runs, search, search_loop, sweep
from jaxmlp.cli.app import app
from jaxmlp.cli.options import TRAIN_SETTINGS, with_settings
from jaxmlp.environment import require_backend
from jaxmlp.errors import ConfigError, TrainingInterrupted
from jaxmlp.outputs import check_outputs
from jaxmlp.parallel import configure_backend
from jaxmlp.settings import PRESET_NAMES, Settings, shown

Preset = enum.Enum("Preset", {name: name for name in PRESET_NAMES}, type=str)
Method = enum.Enum("Method", {name: name for name in search.METHODS}, type=str)
SEARCH_PANEL = "Search"


def grid_from_flags(preset: str, given: dict[str, Any]) -> tuple[list[Settings], dict[str, list]]:
    """The members of the grid the flags describe, and its axes of more than one value."""
    axes = {
        name: sweep.parse_axis(name, text) for name, text in given.items() if sweep.takes_list(name)
    }
    fixed = {name: value for name, value in given.items() if not sweep.takes_list(name)}
    members = sweep.expand_grid(preset, axes, fixed)
    if members[0].val_size == 0:
        raise ConfigError("must be above 0: a sweep ranks its rows by validation", "val_size")
    return members, {name: values for name, values in axes.items() if len(values) > 1}


def search_from_flags(
    preset: str, given: dict[str, Any], method: str, flags: dict[str, Any]
) -> tuple[list[Settings], dict[str, list], dict[str, search.Distribution], search.SearchPlan]:
    """The members, the grid axes, the distributions and the plan the flags describe.

    Raises:
      ConfigError: a bad distribution, grid or search flag (see
        :func:`jaxmlp.search.resolve_search`).
    """
    distributions, rest = search.split_search_space(given)
    members, axes = grid_from_flags(preset, rest)
    plan = search.resolve_search(
        method, members[0].epochs, distributions=distributions, **flags
    )
    if distributions:
        grid_axes = {
            name: sweep.parse_axis(name, text) for name, text in rest.items()
            if sweep.takes_list(name)
        }
        fixed = {name: value for name, value in rest.items() if not sweep.takes_list(name)}
        members = search.draw_members(
            preset, distributions, grid_axes, fixed, plan.runs, plan.search_seed
        )
    if plan.method in ("halving", "pbt"):
        search_loop.one_program(members, plan.method)
    return members, axes, distributions, plan


def progress_line(number: int, programs: int, epochs: int, result, seconds: float) -> str:
    """``Program 1/2, epoch 3/10: val best 91.23%, median 89.10% (2 diverged)  1.2 s``."""
    accuracies = [
        history[-1]["val_accuracy"]
        for history, diverged in zip(result.histories, result.diverged)
        if history and diverged is None
    ]
    diverged = sum(d is not None for d in result.diverged)
    where = f"Program {number}/{programs}, " if programs > 1 else ""
    summary = (
        f"val best {100 * max(accuracies):.2f}%, median {100 * statistics.median(accuracies):.2f}%"
        if accuracies
        else "every run diverged"
    )
    extra = f" ({diverged} diverged)" if diverged else ""
    return f"{where}epoch {result.epochs_done}/{epochs}: {summary}{extra}  {seconds:.1f} s"


def mesh_for(devices: str | None):
    """The member mesh ``--devices`` asks for (default: one device)."""
    return population.member_mesh(None if devices == "all" else int(devices or 1))


@app.command("sweep")
@with_settings(TRAIN_SETTINGS, as_list=sweep.takes_list)
def sweep_command(
    preset: Preset = typer.Option("seed", help="Starting settings of every run (see 'train')."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    metrics_out: Path | None = typer.Option(
        None, help="JSON lines: a start record, then each run's epochs and test result."
    ),
    save_best: Path | None = typer.Option(
        None, help="Save the run with the best validation accuracy as a checkpoint."
    ),
    plot_dir: Path | None = typer.Option(
        None, help="Write sweep_curves.png: validation accuracy per setting, min-max band."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the table."),
    method: Method = typer.Option(
        "grid", "--search", help="grid: every combination; random: --runs draws from the "
        "distributions; halving: stop the worst at each rung; pbt: population-based training.",
        rich_help_panel=SEARCH_PANEL,
    ),
    drawn: int | None = typer.Option(
        None, "--runs", help="Members drawn from the distributions (each crossed with the grid's lists).",
        rich_help_panel=SEARCH_PANEL,
    ),
    search_seed: int | None = typer.Option(
        None, help="Seeds the draws and PBT's choices.  [default: 0]", rich_help_panel=SEARCH_PANEL
    ),
    eta: int | None = typer.Option(
        None, help="halving: the top 1/eta (rounded up) go on at each rung.  [default: 3]",
        rich_help_panel=SEARCH_PANEL,
    ),
    rungs: str | None = typer.Option(
        None, help="halving: the rungs in epochs, e.g. 2,6 (below --epochs).  "
        "[default: --epochs / eta^k]", rich_help_panel=SEARCH_PANEL,
    ),
    ready: int | None = typer.Option(
        None, help="pbt: exploit and explore every N epochs.  [default: 1]",
        rich_help_panel=SEARCH_PANEL,
    ),
    truncation: float | None = typer.Option(
        None, help="pbt: the bottom fraction copies the top fraction, in (0, 0.5].  "
        "[default: 0.2]", rich_help_panel=SEARCH_PANEL,
    ),
    perturb: str | None = typer.Option(
        None, help="pbt: a copied value is multiplied by one of these factors.  "
        "[default: 0.8,1.2]", rich_help_panel=SEARCH_PANEL,
    ),
    resample: float | None = typer.Option(
        None, help="pbt: the probability that a copied value is drawn afresh instead.  "
        "[default: 0.25]", rich_help_panel=SEARCH_PANEL,
    ),
    settings: dict[str, Any] | None = None,
) -> int:
    """Train a grid of runs: a comma list makes a grid axis (--lr 0.1,0.5), integers also
    take ranges (--seed 0-4), --sizes takes ';' between alternatives.

    Runs that share sizes, batch size, epochs, optimizer, schedule, gradient method and
    augmentation train together, as one population in one compiled program. Prints a
    table, one row per setting over its seeds, best mean validation accuracy first.

    A setting may take a distribution instead of a list (--lr 1e-3..3e-1:log, --dropout
    0..0.5, --optimizer sgd,adam:choice) with --search random, halving or pbt and --runs N.
    Exit codes: 0 done, 1 data problem, 2 bad arguments, 130 Ctrl-C (after the table).
    """
    flags = {
        "runs": drawn, "search_seed": search_seed, "eta": eta, "rungs": rungs, "ready": ready,
        "truncation": truncation, "perturb": perturb, "resample": resample,
    }
    members, axes, distributions, plan = search_from_flags(
        Preset(preset).value, settings or {}, Method(method).value, flags
    )
    first = members[0]
    if plot_dir is not None:
        plots.require_matplotlib()
    plot_path = None if plot_dir is None else plot_dir / plots.SWEEP_CURVES
    check_outputs({"--metrics-out": metrics_out, "--save-best": save_best, "--plot-dir": plot_path})
    groups = sweep.group_by_program(members)
    needed, largest = max((memory.run_bytes(members[g[0]], members=len(g)), len(g)) for g in groups)
    memory.check_fits_memory(needed, f"a population of {largest} runs")
    configure_backend(first.platform, first.matmul_precision)
    require_backend()
    mesh = mesh_for(first.devices)
    devices = 1 if mesh is None else mesh.devices.size
    if devices > 1 and plan.method in ("halving", "pbt"):
        raise ConfigError(f"--search {plan.method} trains on one device; leave out --devices")
    say = (lambda line: None) if quiet or as_json else typer.echo
    columns = sweep.varying(members)
    settings_count = len({sweep.row_key(member) for member in members})
    say(
        f"Sweep: {len(members)} runs ({settings_count} settings) in {len(groups)} "
        f"program{'s' * (len(groups) > 1)} on {devices} {jax.default_backend()} "
        f"device{'s' * (devices > 1)}; memory estimate {memory.mebibytes(needed)}"
        + "".join(f"; {name} {sweep.shown_values(values)}" for name, values in axes.items())
        + search_summary(plan, distributions)
    )
    dataset = runs.load_settings_data(first)
    clock = [time.perf_counter()]

    def on_epoch(number, programs, group, result):
        now = time.perf_counter()
        epochs = members[group[0]].epochs
        say(progress_line(number, programs, epochs, result, now - clock[0]))
        clock[0] = now

    def on_search_epoch(epoch, running, outcome):
        now = time.perf_counter()
        say(search_progress_line(epoch, first.epochs, running.indices, outcome, now - clock[0]))
        clock[0] = now

    def on_event(event):
        for line in event_lines(event):
            say(line)

    began = time.perf_counter()
    start = {**sweep_start_record(members, axes), **search_record(plan, distributions)}
    with runs.metrics_sink(metrics_out, start, []) as write:

        def write_member(record):
            if "member" not in record:
                write(record)
                return
            member = members[record["member"]]
            chosen = {name: member.to_dict()[name] for name in [*columns, "seed"]}
            write({**record, "settings": {**chosen, **record.get("values", {})}})

        hooks = {"on_epoch": on_search_epoch, "on_event": on_event, "write": write_member}
        if plan.method == "halving":
            outcome = search_loop.run_halving(members, dataset, plan, **hooks)
        elif plan.method == "pbt":
            outcome = search_loop.run_pbt(members, dataset, plan, distributions, **hooks)
        else:
            outcome = sweep.run_sweep(
                members, dataset, mesh=mesh, on_epoch=on_epoch, write=write_member
            )
    seconds = time.perf_counter() - began
    final = getattr(outcome, "members", None) or members
    columns = sweep.varying(final)
    done = [index for index, result in enumerate(outcome.results) if result is not None]
    rows = sweep.make_rows([final[i] for i in done], [outcome.results[i] for i in done])
    network_epochs = getattr(outcome, "network_epochs", None)
    if network_epochs is None:
        network_epochs = sum(len(history) for history in outcome.histories)
    if as_json:
        report = {
            "rows": [row.to_dict() for row in rows],
            "runs": len(members),
            "programs": len(groups),
            "devices": devices,
            "seconds": seconds,
            "interrupted": outcome.interrupted,
            "search": search_report(plan, distributions, outcome, network_epochs),
        }
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(sweep.format_table(rows, columns, epochs_column(plan, final, outcome)))
        say(
            f"{len(done)} runs in {seconds:.1f} s ({seconds / max(len(done), 1):.2f} s a run); "
            f"{network_epochs} network-epochs"
        )
        if plan.method == "pbt" and outcome.best is not None:
            index = outcome.best[1]
            say(f"Best member {index}'s values by epoch: {schedule_text(outcome.schedules[index])}")
    if save_best is not None and outcome.best is not None:
        value, index, trainer, state, slot = outcome.best
        history = (
            outcome.checkpoint_history(index)
            if plan.method == "pbt"
            else outcome.histories[index]
        )
        save_member(save_best, final[index], trainer, state, slot, history)
        say(f"saved the best run (validation {100 * value:.2f}%) to {save_best}")
    if plot_path is not None:
        curves = {}
        for index in done:
            curves.setdefault(sweep.row_key(final[index]), []).append(outcome.histories[index])
        labels = [
            ", ".join(f"{name} {getattr(row.settings, name)}" for name in columns) or "all runs"
            for row in rows
        ]
        ordered = [curves[sweep.row_key(row.settings)] for row in rows]
        say(f"wrote {plots.save_sweep_curves(ordered, labels, plot_path)}")
    if outcome.interrupted:
        raise TrainingInterrupted(None, done=outcome.interrupted)
    return 0


def epochs_column(plan: search.SearchPlan, members: list[Settings], outcome) -> dict:
    """Halving's extra column: the epochs each row's members trained (others: none)."""
    if plan.method != "halving":
        return {}
    trained: dict[tuple, set[int]] = {}
    for member, history in zip(members, outcome.histories):
        trained.setdefault(sweep.row_key(member), set()).add(len(history))
    return {"epochs": lambda row: ",".join(map(str, sorted(trained[sweep.row_key(row.settings)])))}


def search_summary(plan: search.SearchPlan, distributions: dict) -> str:
    """``; search halving (eta 3, rungs 2, 6); lr 0.001..0.3:log`` for the header line."""
    if plan.method == "grid":
        return ""
    detail = {
        "halving": f" (eta {plan.eta}, rungs {', '.join(map(str, plan.rungs))})",
        "pbt": f" (every {plan.ready} epoch{'s' * (plan.ready > 1)}, truncation "
        f"{plan.truncation:g}, perturb {','.join(f'{f:g}' for f in plan.perturb)}, resample "
        f"{plan.resample:g})",
    }.get(plan.method, "")
    drawn = "".join(f"; {name} {d.text()}" for name, d in distributions.items())
    return f"; search {plan.method}{detail}" + drawn


def search_record(plan: search.SearchPlan, distributions: dict) -> dict[str, Any]:
    """The search's plan and distributions, as the metrics' start record and the JSON carry them."""
    return {
        "search": {
            **dataclasses.asdict(plan),
            "distributions": {name: d.text() for name, d in distributions.items()},
        }
    }


def search_report(plan, distributions, outcome, network_epochs: int) -> dict[str, Any]:
    """The ``--json`` report's ``search``: the plan, the events, the compute, PBT's schedules."""
    report = {
        **search_record(plan, distributions)["search"],
        "network_epochs": network_epochs,
        "events": getattr(outcome, "events", []),
        "epochs": [len(history) for history in outcome.histories],
    }
    if plan.method == "pbt":
        report["schedules"] = {str(k): v for k, v in outcome.schedules.items()}
        report["best_member"] = None if outcome.best is None else outcome.best[1]
    return report


def search_progress_line(epoch: int, epochs: int, indices, outcome, seconds: float) -> str:
    """``epoch 3/18, 9 members: val best 91.23%, median 89.10%  1.2 s``."""
    accuracies = [
        outcome.histories[i][-1]["val_accuracy"]
        for i in indices
        if outcome.histories[i] and outcome.diverged[i] is None
    ]
    summary = (
        f"val best {100 * max(accuracies):.2f}%, median {100 * statistics.median(accuracies):.2f}%"
        if accuracies
        else "every run diverged"
    )
    members = f"{len(indices)} member{'s' * (len(indices) > 1)}"
    return f"epoch {epoch}/{epochs}, {members}: {summary}  {seconds:.1f} s"


def event_lines(event: dict[str, Any]) -> list[str]:
    """A rung's or an exploit's report, a line each."""
    if event["event"] == "rung":
        survivors = event["survivors"]
        stopped = len(event["members"]) - len(survivors)
        kept = [
            accuracy
            for member, accuracy in zip(event["members"], event["val_accuracy"])
            if member in survivors and accuracy is not None
        ]
        floor = f"; val ≥ {100 * min(kept):.2f}%" if kept else ""
        line = (
            f"rung at epoch {event['epoch']}: {len(survivors)} of {len(event['members'])} go on "
            f"(member{'s' * (len(survivors) > 1)} {', '.join(map(str, survivors))}{floor}), "
            f"{stopped} stop"
        )
        return [line]
    accuracy = event["val_accuracy"]

    def val(member: int) -> str:
        return "-" if accuracy[member] is None else f"{100 * accuracy[member]:.2f}%"

    return [
        f"exploit after epoch {event['epoch']}: member {copy['member']} (val "
        f"{val(copy['member'])}) copies member {copy['source']} (val {val(copy['source'])}): "
        + ", ".join(
            f"{name} {shown(copy['inherited'][name])} → {shown(value)}"
            for name, value in copy["values"].items()
        )
        for copy in event["copies"]
    ]


def schedule_text(schedule: list[dict[str, Any]]) -> str:
    """``lr 0.01 (epochs 1-3), 0.012 (4-6)``: each value over the epochs it held."""
    parts = []
    for name in schedule[0] if schedule else []:
        spans: list[list] = []
        for epoch, values in enumerate(schedule, start=1):
            if spans and spans[-1][0] == values[name]:
                spans[-1][2] = epoch
            else:
                spans.append([values[name], epoch, epoch])
        texts = [
            f"{shown(value)} (epoch{'s' * (end > begin)} {begin}"
            + (f"-{end})" if end > begin else ")")
            for value, begin, end in spans
        ]
        parts.append(f"{name} " + ", ".join(texts))
    return "; ".join(parts)


def sweep_start_record(members: list[Settings], axes: dict[str, list]) -> dict[str, Any]:
    """The metrics file's header: the first run's settings, the grid's axes, versions."""
    record = runs.start_record(members[0], 0)
    record["axes"] = {name: [str(value) for value in values] for name, values in axes.items()}
    record["runs"] = len(members)
    return record


def save_member(path: Path, settings: Settings, trainer, state, slot: int, history: list) -> None:
    """Writes one member as an ordinary checkpoint (``train --resume`` continues it)."""
    member = trainer.member_state(state, slot)
    checkpoints.save_checkpoint(
        path,
        checkpoints.Checkpoint(
            params=member.params,
            settings=settings,
            epoch=len(history),
            metrics=list(history),
            opt_state_leaves=tuple(np.asarray(leaf) for leaf in jax.tree.leaves(member.opt_state)),
        ),
    )
