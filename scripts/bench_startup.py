"""Measures how fast jaxmlp starts: its help and version, and reading MNIST.

1. Wall clock of ``jaxmlp --version``, ``--help`` and each command's ``--help`` as
   subprocesses, beside ``python -c pass`` (the interpreter's own start) measured in the same
   rounds. Target: each ≤ 0.3 s.
2. ``load_dataset("mnist")`` in a fresh process: the first time (decoding the gzip files and
   filling an empty decoded-data cache) and the times after (from the cache). Target: ≤ 0.1 s
   after the first time.

Commands are run round-robin, ``--repeats`` rounds, and the median is printed; the machine's
load averages are printed at start and end. ``--reference DIR`` also times another
checkout's help in the same rounds and prints this one's time as a ratio of it. Imports no
JAX itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jaxmlp.cli.app import app

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MNIST_DIR = REPO_ROOT.parent / "shared" / "datasets" / "mnist"
"""As in scripts/_common.py, which this script does not import: that module imports JAX."""
HELP_TARGET_S = 0.3
DATA_TARGET_S = 0.1
COMMANDS = [command.name for command in app.registered_commands]
"""Every command of the app (importing it imports no JAX: tests/test_startup.py checks)."""
LOAD_PROBE = """
import sys, time
from jaxmlp.data import load_dataset
began = time.perf_counter()
load_dataset("mnist", data_dir=sys.argv[1])
print(time.perf_counter() - began)
"""


def jaxmlp_command() -> list[str]:
    """The console script beside this interpreter, or ``python -m jaxmlp``."""
    script = Path(sys.executable).with_name("jaxmlp")
    return [str(script)] if script.exists() else [sys.executable, "-m", "jaxmlp"]


def wall_seconds(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    """Seconds ``argv`` takes to run to its end (its output discarded); it must succeed."""
    began = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True, cwd=cwd)
    return time.perf_counter() - began


def help_requests(jaxmlp: list[str]) -> dict[str, list[str]]:
    """``--version``, ``--help`` and each command's ``--help``, run by ``jaxmlp``."""
    requests = {"jaxmlp --version": [*jaxmlp, "--version"], "jaxmlp --help": [*jaxmlp, "--help"]}
    return requests | {f"jaxmlp {name} --help": [*jaxmlp, name, "--help"] for name in COMMANDS}


def time_help(
    repeats: int, env: dict[str, str], reference: Path | None = None, cwd: Path | None = None
) -> dict[str, float]:
    """Median wall seconds of each help request and of ``python -c pass``.

    With ``reference`` (another checkout's root), each request is also run by that
    checkout's jaxmlp, right after this one's in each round (labels ``reference: ...``);
    both run as ``python -m jaxmlp`` from ``cwd``, each with its root as ``PYTHONPATH``.
    """
    runs: dict[str, tuple[list[str], dict[str, str]]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], env)
    }
    if reference is None:
        runs |= {label: (argv, env) for label, argv in help_requests(jaxmlp_command()).items()}
    else:
        module = [sys.executable, "-m", "jaxmlp"]
        for label, argv in help_requests(module).items():
            runs[label] = (argv, {**env, "PYTHONPATH": str(REPO_ROOT)})
            runs[f"reference: {label}"] = (argv, {**env, "PYTHONPATH": str(reference.resolve())})
    times: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(repeats):
        for label, (argv, run_env) in runs.items():
            times[label].append(wall_seconds(argv, run_env, cwd))
    return {label: statistics.median(values) for label, values in times.items()}


def time_data(
    repeats: int, data_dir: Path, env: dict[str, str], empty_dir: Path
) -> dict[str, float]:
    """Seconds ``load_dataset`` takes in a fresh process: first, then the median after."""

    def once() -> float:
        done = subprocess.run(  # from an empty directory: the installed jaxmlp, not ./jaxmlp
            [sys.executable, "-c", LOAD_PROBE, str(data_dir.resolve())],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=empty_dir,
        )
        return float(done.stdout.strip())

    first = once()
    return {"first": first, "after": statistics.median(once() for _ in range(repeats))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=SHARED_MNIST_DIR)
    parser.add_argument("--json", type=Path, metavar="FILE", help="Also write every figure here.")
    parser.add_argument(
        "--reference",
        type=Path,
        metavar="DIR",
        help="Another checkout's root (e.g. an older commit's, from git worktree or git "
        "archive): its help requests run in the same rounds, and each line gets the ratio.",
    )
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as temporary:
        (Path(temporary) / "cwd").mkdir()
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(temporary) / "cache")}
        help_times = time_help(args.repeats, env, args.reference, Path(temporary) / "cwd")
        data_times = (
            time_data(args.repeats, args.data_dir, env, Path(temporary) / "cwd")
            if args.data_dir.is_dir()
            else {}
        )
    print(f"\nStart-up (median of {args.repeats}; target ≤ {HELP_TARGET_S} s each)")
    for label, seconds in help_times.items():
        if label.startswith("reference: "):
            continue
        mark = (
            "" if label.startswith("python") else ("  ok" if seconds <= HELP_TARGET_S else "  MISS")
        )
        against = help_times.get(f"reference: {label}")
        ratio = "" if against is None else f"  reference {against:6.3f} s: {seconds / against:.2f}×"
        print(f"  {label:<28} {seconds:6.3f} s{mark}{ratio}")
    if data_times:
        mark = "ok" if data_times["after"] <= DATA_TARGET_S else "MISS"
        print(f"\nReading MNIST (target ≤ {DATA_TARGET_S} s after the first time)")
        print(f"  first (decode, fill the cache) {data_times['first']:6.3f} s")
        print(f"  after (median of {args.repeats})         {data_times['after']:6.3f} s  {mark}")
    print(f"\nload average at end: {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps({"help": help_times, "data": data_times}, indent=2) + "\n")


if __name__ == "__main__":
    main()
