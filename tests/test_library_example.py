"""The train-from-Python example, as the README and docs/library.md show it, runs."""

from __future__ import annotations

import pytest
from data_fixtures import REAL_MNIST_DIR, REPO_ROOT, needs_real_mnist

MARKER = "<!-- train-from-python"


def example(document: str) -> str:
    """The Python block after the document's ``<!-- train-from-python`` comment."""
    text = (REPO_ROOT / document).read_text(encoding="utf-8")
    block = text.split(MARKER, 1)[1].split("```python\n", 1)[1]
    return block.split("```", 1)[0]


def test_the_readme_and_the_library_page_show_the_same_example():
    assert example("README.md") == example("docs/library.md")
    assert len(example("README.md").splitlines()) <= 12


@pytest.mark.slow
@needs_real_mnist
def test_the_train_from_python_example_runs(monkeypatch, capsys):
    """On the real MNIST (its first 1,000 examples of each split)."""
    monkeypatch.setenv("JAXMLP_DATA_DIR", str(REAL_MNIST_DIR))
    exec(compile(example("README.md"), "README.md", "exec"), {})
    solo, *members = capsys.readouterr().out.splitlines()
    assert len(members) == 4
    val_accuracy, test_accuracy = map(float, solo.split())
    assert 0.5 < val_accuracy <= 1 and 0.5 < test_accuracy <= 1
    assert members[2] == f"0.1 0 {test_accuracy}", "the member with the solo run's settings"
