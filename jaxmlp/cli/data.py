"""``jaxmlp download`` and ``jaxmlp data-info``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from jaxmlp.cli.app import command
from jaxmlp.cli.options import DATA_SETTINGS, with_settings
from jaxmlp.outputs import check_outputs
from jaxmlp.settings import Settings


@command("download")
@with_settings(["dataset"])
def download(
    cache_dir: Path | None = typer.Option(
        None,
        "--cache-dir",
        help="Put the files in DIR/<dataset> (default: the user cache, ~/.cache/jaxmlp).",
    ),
    settings: dict[str, Any] | None = None,
) -> int:
    """Download a dataset's official files into the cache and verify their SHA-256.

    Mirrors are tried in order; JAXMLP_MNIST_MIRRORS or JAXMLP_FASHION_MNIST_MIRRORS
    (comma-separated base URLs) replace them.
    """
    from jaxmlp.data import download_dataset
    from jaxmlp.data.sources import user_cache_dir

    dataset = Settings(**(settings or {})).dataset
    if cache_dir is not None:
        directory, label = cache_dir / dataset, "--cache-dir"
    else:
        directory, label = user_cache_dir(dataset), "the data cache"
    check_cache_files(dataset, directory, label)
    for name, status in download_dataset(dataset, directory).items():
        action = (
            f"downloaded from {status.downloaded_from}"
            if status.downloaded_from
            else "already present"
        )
        typer.echo(f"{name}: {action}, verified ({status.path})")
    return 0


def check_cache_files(dataset: str, directory: Path, label: str) -> None:
    """Checks the paths of the dataset's files in the cache before anything is fetched."""
    from jaxmlp.data.sources import get_spec

    check_outputs({label: [directory / name for name in get_spec(dataset).files]})


@command("data-info")
@with_settings([*DATA_SETTINGS, "val_size", "limit"])
def data_info(
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    settings: dict[str, Any] | None = None,
) -> int:
    """Show the sizes and class counts of each split and where the data came from."""
    from jaxmlp.data import dataset_summary, format_summary
    from jaxmlp.runs import load_settings_data

    summary = dataset_summary(load_settings_data(Settings(**(settings or {}))))
    typer.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))
    return 0
