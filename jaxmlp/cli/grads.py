"""``jaxmlp compare-grads``: BP1–BP4 against ``jax.grad`` and finite differences."""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING

import typer

from jaxmlp.architecture import parse_sizes
from jaxmlp.cli.app import command
from jaxmlp.environment import require_backend
from jaxmlp.errors import ConfigError
from jaxmlp.memory import check_elements
from jaxmlp.settings import SPECS, check_setting

if TYPE_CHECKING:
    import jax

MAX_PARAMETERS = 1 << 24
"""The most parameters a gradient check builds: 16.8 M, 134 MB a float64 copy."""
MAX_ACTIVATIONS = 1 << 26
"""The most activations it holds at once: 512 MiB in float64. Finite differences evaluate
the batch (batch × the widths of all layers) twice per probed coordinate, all at once."""


def random_batch(key: jax.Array, batch_size: int, n_in: int, num_classes: int):
    """Inputs uniform in [0, 1) like pixels, labels uniform over the classes."""
    import jax
    import jax.numpy as jnp

    x_key, y_key = jax.random.split(key)
    x = jax.random.uniform(x_key, (batch_size, n_in), jnp.float32)
    y = jax.random.randint(y_key, (batch_size,), 0, num_classes)
    return x, y


def check_arguments(
    layer_widths: tuple[int, ...],
    batch_size: int,
    seed: int,
    coords: int,
    dropout: float,
    label_smoothing: float,
) -> None:
    """Refuses, before anything is allocated, values JAX cannot take or memory cannot hold."""
    check_setting("seed", seed)
    check_setting("batch_size", batch_size)
    check_setting("dropout", dropout)
    check_setting("label_smoothing", label_smoothing)
    if coords < 1:
        raise ConfigError(f"must be at least 1, got {coords}", setting="coords")
    shown = ",".join(map(str, layer_widths))
    pairs = list(itertools.pairwise(layer_widths))
    leaves = [size for n_in, n_out in pairs for size in (n_in * n_out, n_out)]
    check_elements(f"--sizes {shown}", sum(leaves), MAX_PARAMETERS, "parameters")
    probed = sum(min(coords, size) for size in leaves)
    check_elements(
        f"--batch-size {batch_size} and --coords {coords} with --sizes {shown}",
        2 * probed * batch_size * sum(layer_widths),
        MAX_ACTIVATIONS,
        "activations for finite differences",
    )


@command("compare-grads")
def compare_grads(
    sizes: str = typer.Option(
        "784,15,10", metavar="<int,int,…>", help="Layer widths, input first."
    ),
    batch_size: int = typer.Option(8, help="Examples in the batch the loss averages over."),
    seed: int = typer.Option(0, help="Seeds the parameters, the batch and the coordinates."),
    dtype: str = typer.Option(
        "float64",
        metavar="<float64|float32>",
        help="float64: pass if relative error ≤ 1e-10 vs jax.grad and ≤ 1e-6 vs finite "
        "differences; float32: ≤ 1e-5 and ≤ 1e-4. Finite differences always run in float64.",
    ),
    init: str = typer.Option(
        "normal",
        metavar=f"<{'|'.join(SPECS['init'].choices)}>",
        help="Initialisation: N(0,1) as in the seed, He or Glorot.",
    ),
    coords: int = typer.Option(20, help="Coordinates per parameter probed by finite differences."),
    dropout: float = typer.Option(0.0, help="Dropout rate of hidden layers (same masks for all)."),
    label_smoothing: float = typer.Option(
        0.0, help="Targets (1 - e) one-hot + e/K instead of one-hot, as in training."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> int:
    """Check the hand-written gradient (BP1–BP4) against jax.grad and finite differences.

    Runs on random inputs, so it needs no data.

    Exit codes: 0 when every parameter passes, 1 when any fails, 2 on bad arguments.
    """
    import jax

    from jaxmlp import gradcheck
    from jaxmlp.model import init_params

    layer_widths = parse_sizes(sizes)
    check_arguments(layer_widths, batch_size, seed, coords, dropout, label_smoothing)
    require_backend()
    param_key, data_key, check_key = jax.random.split(jax.random.key(seed), 3)
    params = init_params(param_key, layer_widths, init)
    x, y = random_batch(data_key, batch_size, layer_widths[0], layer_widths[-1])
    report = gradcheck.compare_gradients(
        params,
        x,
        y,
        key=check_key,
        dtype=dtype,
        coordinates=coords,
        dropout=dropout,
        label_smoothing=label_smoothing,
    )
    typer.echo(
        json.dumps(report.to_dict(), indent=2) if as_json else gradcheck.format_report(report)
    )
    return 0 if report.passed else 1
