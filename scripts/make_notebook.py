"""Runs the BP1–BP4 notebook top to bottom and stores its outputs in place.

    python scripts/make_notebook.py [--data-dir DIR] [--notebook docs/backprop_by_hand.ipynb]

The notebook reads MNIST where ``jaxmlp`` looks for it; ``--data-dir`` (by default
``../shared/datasets/mnist`` beside the repository, when present) becomes its
``JAXMLP_DATA_DIR``. A cell that raises stops the run and leaves the file unchanged.
The test suite executes a copy the same way (``tests/test_notebook.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import nbformat
from _common import REPO_ROOT, default_data_dir
from nbclient import NotebookClient

NOTEBOOK = REPO_ROOT / "docs" / "backprop_by_hand.ipynb"
CELL_TIMEOUT_S = 300


def execute(path: Path, data_dir: Path | None = None) -> nbformat.NotebookNode:
    """Runs the notebook at ``path`` in a fresh ``python3`` kernel; returns it with outputs.

    Raises:
        nbclient.exceptions.CellExecutionError: A cell raised.
    """
    notebook = nbformat.read(path, as_version=4)
    environment = dict(os.environ)
    if data_dir is not None:
        environment["JAXMLP_DATA_DIR"] = str(data_dir)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env=environment)
    return notebook


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    args = parser.parse_args(argv)
    began = time.perf_counter()
    notebook = execute(args.notebook, args.data_dir)
    nbformat.write(notebook, args.notebook)
    print(f"ran {args.notebook} in {time.perf_counter() - began:.1f} s and stored its outputs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
