"""Times the quick subset of some test files with an empty and then a filled compilation cache.

Each argument is one pytest selection (files or node ids, space-separated inside the
argument). Each runs ``pytest -q -m "not slow"`` twice in a fresh process: first with an
empty persistent compilation cache (``JAX_COMPILATION_CACHE_DIR`` set to a new folder), then
with the cache the first run filled, as the suite's ``conftest.py`` keeps it between
sessions. Prints the wall clock of each and their ratio, with the load average.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_pytest(selection: list[str], cache: Path) -> float:
    """Wall seconds of the quick subset of ``selection`` with ``cache`` (it must pass)."""
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(cache)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-m",
        "not slow",
        "-p",
        "no:cacheprovider",
        *selection,
    ]
    began = time.perf_counter()
    subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("selections", nargs="+", help="Test files, one pytest selection each.")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    print(f"{'selection':<48}{'empty cache':>13}{'filled':>9}{'ratio':>8}")
    for selection in args.selections:
        with tempfile.TemporaryDirectory() as cache:
            cold = run_pytest(selection.split(), Path(cache))
            warm = run_pytest(selection.split(), Path(cache))
        print(f"{selection:<48}{cold:>12.1f}s{warm:>8.1f}s{cold / warm:>7.2f}×", flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
