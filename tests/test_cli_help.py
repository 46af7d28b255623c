"""``--help`` tells the truth: readable types, plain defaults, each command's own options,
the sweep's grid syntax once; the renamed output options and where pictures go."""

from __future__ import annotations

import json
import re

import pytest
import typer
from typer.main import get_command

from jaxmlp.cli import app, main
from jaxmlp.cli.helptext import COMMAND_ORDER, PANEL_ORDER

ROOT = get_command(app)
COMMANDS = sorted(ROOT.commands)
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
OTHER_COMMAND = re.compile(r"'(?:jaxmlp )?([a-z-]+)'")


def help_of(capsys, monkeypatch, *argv: str, columns: int = 80) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main([*argv, "--help"]) == 0
    return capsys.readouterr().out


def shown_texts(command) -> list[str]:
    """Every text a command's help shows: its description, each shown parameter's help
    and declared default, split into sentences."""
    texts = [command.help or ""]
    for param in command.get_params(typer.Context(command)):
        if getattr(param, "hidden", False):
            continue
        texts.append(getattr(param, "help", None) or "")
        if isinstance(getattr(param, "show_default", None), str):
            texts.append(param.show_default)
    return [sentence for text in texts for sentence in re.split(r"(?<=\.)\s+", text)]


def own_flags(command) -> set[str]:
    params = command.get_params(typer.Context(command))
    return {flag for param in params for flag in [*param.opts, *param.secondary_opts]}


@pytest.mark.parametrize("name", COMMANDS)
def test_a_commands_help_mentions_only_its_own_options(name):
    command = ROOT.commands[name]
    own = own_flags(command)
    for sentence in shown_texts(command):
        others = set(OTHER_COMMAND.findall(sentence)) & set(COMMANDS) - {name}
        foreign = set(FLAG.findall(sentence)) - own
        assert not foreign or others, f"{name} --help mentions {sorted(foreign)}: {sentence!r}"


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_help_shows_no_python_types_and_plain_defaults(capsys, monkeypatch, name):
    text = help_of(capsys, monkeypatch, *([name] if name else []))
    for leak in ("<bool>", "<str>", "list[", "range>", "x>=", "<=x", "[default: ("):
        assert leak not in text, f"{name or 'jaxmlp'} --help shows {leak!r}"


def test_help_fits_80_columns_without_wrapping_inside_a_sentence(capsys, monkeypatch):
    text = help_of(capsys, monkeypatch, "sweep")
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "gradient method and\n" not in text
    assert "Exit codes: 0 done, 1 data problem" in text


def test_the_sweeps_grid_syntax_is_explained_once(capsys, monkeypatch):
    text = help_of(capsys, monkeypatch, "sweep", columns=400)
    assert text.count("A comma list makes a grid axis") == 1
    assert text.count("integers also a range") == 0
    assert re.search(r"--optimizer +<sgd\|momentum\|adam\|adamw>,…", text)
    assert re.search(r"--init +<normal\|he\|glorot>,…", text)
    assert re.search(r"--lr +<float>,…", text)
    assert "on --resume" not in text and "--preset best:" not in text


@pytest.mark.parametrize("name", ["evaluate", "predict", "plot"])
def test_checkpoint_commands_take_the_checkpoints_data(capsys, monkeypatch, name):
    text = help_of(capsys, monkeypatch, name, columns=400)
    dataset = next(line for line in text.splitlines() if "--dataset" in line)
    assert "[default: the checkpoint's]" in dataset and "mnist]" not in dataset


def test_defaults_print_plainly_and_the_presets_recipes_once(capsys, monkeypatch):
    text = help_of(capsys, monkeypatch, "train", columns=400)
    assert re.search(r"--lr +<float> +Learning rate .*\[default: 0\.1\]", text)
    assert re.search(r"--download +Download .*--no-download turns it off\. +\[default: on\]", text)
    assert text.count("--sizes 784,800,800,10") == 1, "the best recipe is in --preset's help"


def test_panels_and_commands_come_in_order_of_use(capsys, monkeypatch):
    text = help_of(capsys, monkeypatch, "train")
    panels = re.findall(r"╭─ (.+?) ─", text)
    assert panels == [panel for panel in PANEL_ORDER if panel in panels]
    assert panels[0] == "Options" and panels[-1] == "Several processes"
    root = help_of(capsys, monkeypatch)
    listed = re.findall(r"^│ ([a-z-]+) ", root.split("Commands")[1], re.MULTILINE)
    assert listed == list(COMMAND_ORDER)


def test_train_help_is_shorter_than_it_was(capsys, monkeypatch):
    assert len(help_of(capsys, monkeypatch, "train").splitlines()) < 185


def test_renamed_plot_dir_still_works_and_says_so(capsys, tmp_path):
    (tmp_path / "learning_curves.png").write_bytes(b"earlier")
    code = main(["evaluate", str(tmp_path / "absent.npz"), "--plot-dir", str(tmp_path)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err[0] == "note: --plot-dir is now --out-dir; the old name goes away in the next release"
    assert err[1] == (
        f"jaxmlp: error: --out-dir {tmp_path / 'learning_curves.png'} already exists; "
        "pass --overwrite to replace it"
    )


@pytest.mark.parametrize("name", ["evaluate", "sweep"])
def test_new_and_old_names_together_are_refused(capsys, tmp_path, name):
    args = [str(tmp_path / "absent.npz")] if name == "evaluate" else []
    code = main([name, *args, "--out-dir", str(tmp_path), "--plot-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "jaxmlp: error: give --out-dir or its old name --plot-dir, not both\n"


def test_sweeps_old_plot_dir_is_its_out_dir(capsys, tmp_path):
    code = main(["sweep", "--run-dir", str(tmp_path / "run"), "--plot-dir", str(tmp_path)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and err[0].startswith("note: --plot-dir is now --out-dir")
    assert err[1].startswith("jaxmlp: error: give --run-dir or --out-dir, not both")


def test_show_keeps_an_existing_picture(capsys, tmp_path):
    picture = tmp_path / "grid.png"
    picture.write_bytes(b"earlier")
    code = main(["show", "--out", str(picture)])
    assert code == 2 and picture.read_bytes() == b"earlier"
    assert capsys.readouterr().err == (
        f"jaxmlp: error: --out {picture} already exists; pass --overwrite to replace it\n"
    )


def test_plot_writes_next_to_its_source_and_keeps_what_is_there(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    metrics = tmp_path / "run" / "metrics.jsonl"
    metrics.parent.mkdir()
    epoch = {"event": "epoch", "epoch": 1, "train_loss": 0.5, "train_accuracy": 0.8}
    metrics.write_text(json.dumps(epoch) + "\n")
    picture = tmp_path / "run" / "plots" / "learning_curves.png"

    assert main(["plot", str(metrics)]) == 0
    assert capsys.readouterr().out == f"wrote {picture}\n"
    written = picture.read_bytes()
    picture.write_bytes(b"edited")
    assert main(["plot", str(metrics)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert picture.read_bytes() == b"edited"
    assert main(["plot", str(metrics), "--overwrite"]) == 0
    assert picture.read_bytes() == written


def test_hand_written_choice_metavars_are_the_accepted_values():
    from jaxmlp import gradcheck, parallel

    def metavar(command: str, flag: str) -> str:
        params = ROOT.commands[command].get_params(typer.Context(ROOT.commands[command]))
        return next(param.metavar for param in params if flag in param.opts)

    assert metavar("train", "--distributed") == f"<{'|'.join(parallel.DISTRIBUTED_MODES)}>"
    assert metavar("compare-grads", "--dtype") == f"<{'|'.join(gradcheck.TOLERANCES)}>"
