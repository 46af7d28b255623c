"""``jaxmlp export``: a checkpoint's network as safetensors or ONNX."""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from jaxmlp.cli.app import command
from jaxmlp.outputs import check_not_replacing, check_outputs

LIBRARIES = {"safetensors": "safetensors.numpy", "onnx": "onnx"}
"""Each format of :data:`jaxmlp.export.FORMATS` and the module that writes it (named here, so
that ``jaxmlp export --help`` imports neither JAX nor numpy)."""
Format = enum.Enum("Format", {name: name for name in LIBRARIES}, type=str)


@command("export")
def export_command(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by 'jaxmlp train'."),
    fmt: Format = typer.Option(..., "--format", help="safetensors (PyTorch, numpy) or onnx."),
    out: Path | None = typer.Option(
        None, help="The file to write (default: the checkpoint's path with .safetensors/.onnx)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Write the network for use outside jaxmlp, as safetensors or ONNX.

    Safetensors in torch.nn.Linear's layout (weight (out, in)) with its metadata, or ONNX
    with its input preprocessing (uint8 28×28 images in, probabilities out). Needs the
    'export' extra.
    """
    from jaxmlp import export

    name = Format(fmt).value
    export.require_module(LIBRARIES[name])
    path = out if out is not None else export.default_output(checkpoint, name)
    check_outputs({"--out": path})
    check_not_replacing({"--out": path}, overwrite=overwrite)
    from jaxmlp.runs import class_names_of, load_image_classifier

    model = load_image_classifier(checkpoint)
    typer.echo(f"wrote {export.write_export(model, class_names_of(model), name, path)}")
