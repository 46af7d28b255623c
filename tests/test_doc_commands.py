"""The shell commands that the README and the guide mark as runnable run as written.

A block is runnable when the line before its opening ```` ```sh ```` is ``<!-- runnable -->``.
Its lines are ``jaxmlp`` commands (comments allowed); they run in order, in one fresh
working directory per document (a later block may use a file an earlier one wrote), on the
real MNIST files of ``../shared/datasets/mnist`` through ``JAXMLP_DATA_DIR``. Each must exit
0. Blocks that are not marked (the drawing page, the best recipe's two minutes) are left out.
"""

from __future__ import annotations

import re
import shlex

import pytest
from data_fixtures import REAL_MNIST_DIR, REPO_ROOT, needs_real_mnist

MARKER = "<!-- runnable -->"
DOCUMENTS = ["README.md", "docs/guide.md"]
BLOCK = re.compile(r"^<!-- runnable -->\n```sh\n(.*?)^```", re.DOTALL | re.MULTILINE)


def runnable_commands(document: str) -> list[list[str]]:
    """The command lines of a document's runnable blocks, as argument lists."""
    text = (REPO_ROOT / document).read_text(encoding="utf-8")
    blocks = BLOCK.findall(text)
    markers = sum(line == MARKER for line in text.splitlines())
    assert len(blocks) == markers, f"{document}: a {MARKER} not right above ```sh"
    lines = [line for block in blocks for line in block.splitlines()]
    return [shlex.split(line, comments=True) for line in lines if shlex.split(line, comments=True)]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_runnable_blocks_are_jaxmlp_commands(document):
    commands = runnable_commands(document)
    assert commands, f"{document} marks no command as runnable"
    for command in commands:
        assert command[0] == "jaxmlp", f"{document}: only jaxmlp commands run here: {command}"


@pytest.mark.slow
@needs_real_mnist
@pytest.mark.parametrize("document", DOCUMENTS)
def test_runnable_commands_run(document, tmp_path, monkeypatch, capsys):
    from jaxmlp.cli import main

    monkeypatch.setenv("JAXMLP_DATA_DIR", str(REAL_MNIST_DIR))
    monkeypatch.chdir(tmp_path)
    for command in runnable_commands(document):
        code = main(command[1:])
        captured = capsys.readouterr()
        assert code == 0, (document, shlex.join(command), captured.out[-2000:], captured.err)
        assert "Traceback" not in captured.err, captured.err
        if command[1] == "compare-grads":
            assert captured.out.rstrip().endswith("all 4 parameters pass")
