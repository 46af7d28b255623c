"""The BP1–BP4 notebook under docs/: stored with its outputs, and still running top to bottom."""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from data_fixtures import REAL_MNIST_DIR, needs_real_mnist

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "scripts"))
try:
    make_notebook = importlib.import_module("make_notebook")
finally:
    sys.path.remove(str(REPO_ROOT / "scripts"))

NOTEBOOK = REPO_ROOT / "docs" / "backprop_by_hand.ipynb"
MIN_IMAGES = 6


def code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def images(notebook) -> int:
    """How many PNG images the notebook's outputs hold."""
    return sum(
        "image/png" in output.get("data", {})
        for cell in code_cells(notebook)
        for output in cell.outputs
    )


def assert_ran_cleanly(notebook) -> None:
    """Every code cell ran, in order, with no error and nothing on standard error."""
    cells = code_cells(notebook)
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1))
    for cell in cells:
        for output in cell.outputs:
            assert output.output_type != "error", output.get("evalue")
            assert output.get("name") != "stderr", output.get("text")
    assert images(notebook) >= MIN_IMAGES


def test_the_notebook_uses_only_what_jaxmlp_exports():
    import re

    import jaxmlp

    source = "\n".join(cell.source for cell in code_cells(nbformat.read(NOTEBOOK, as_version=4)))
    assert not re.search(r"from jaxmlp|import jaxmlp\.", source)
    used = set(re.findall(r"jaxmlp\.(\w+)", source))
    assert used and used <= set(jaxmlp.__all__), used - set(jaxmlp.__all__)


def test_the_notebook_is_stored_with_its_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert_ran_cleanly(notebook)
    sources = "\n".join(cell.source for cell in code_cells(notebook))
    assert "import jaxmlp" in sources
    assert sources.count("Settings(") == 1  # the one cell that sets up training


@pytest.mark.slow
@needs_real_mnist
def test_the_notebook_runs_top_to_bottom(tmp_path):
    copy = shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    notebook = make_notebook.execute(Path(copy), REAL_MNIST_DIR)  # raises if a cell fails
    assert_ran_cleanly(notebook)
    outputs = "".join(
        output.get("text", "") for cell in code_cells(notebook) for output in cell.outputs
    )
    assert "max |manual − jax.grad|" in outputs
    assert "test accuracy" in outputs
