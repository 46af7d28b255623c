"""docs/cli.md is what scripts/cli_reference.py generates from the Typer app, whatever the
terminal's width, and it covers every command and every option its --help shows."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import typer
from typer.main import get_command

from jaxmlp.cli import app

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "scripts"))
try:
    cli_reference = importlib.import_module("cli_reference")
finally:
    sys.path.remove(str(REPO_ROOT / "scripts"))


def test_the_committed_reference_is_what_the_script_generates():
    committed = cli_reference.REFERENCE.read_text(encoding="utf-8")
    assert committed == cli_reference.reference(), (
        "docs/cli.md differs from the Typer app's help: run python scripts/cli_reference.py"
    )


def test_the_reference_does_not_depend_on_the_terminal(monkeypatch):
    wide = cli_reference.reference()
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("TERMINAL_WIDTH", "40")
    assert cli_reference.reference() == wide


def test_every_command_and_shown_option_is_in_the_reference():
    text = cli_reference.reference()
    root = get_command(app)
    for name, command in root.commands.items():
        assert f"## `jaxmlp {name}`" in text and f"(#jaxmlp-{name})" in text
        section = text.split(f"## `jaxmlp {name}`")[1].split("\n## ")[0]
        for param in command.get_params(typer.Context(command)):
            shown = not param.hidden and "--help" not in param.opts
            label = param.opts[0] if param.param_type_name == "option" else param.display_name_raw
            assert (f"| `{label}" in section) == shown, (name, label)


def test_check_mode_names_the_command_to_run(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli_reference, "REFERENCE", tmp_path / "cli.md")
    (tmp_path / "cli.md").write_text("stale\n")
    assert cli_reference.main(["--check"]) == 1
    assert "run python scripts/cli_reference.py" in capsys.readouterr().err
    assert cli_reference.main([]) == 0 and cli_reference.main(["--check"]) == 0
