"""``jaxmlp serve``: draw a digit in the browser and watch BP1–BP4 run on it."""

from __future__ import annotations

from pathlib import Path

import typer

from jaxmlp.cli.app import command


@command("serve")
def serve(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by 'jaxmlp train'."),
    host: str = typer.Option(
        "127.0.0.1", help="Address to listen on (0.0.0.0 opens the page to your network)."
    ),
    port: int = typer.Option(8000, min=0, max=65535, help="Port to listen on (0: any free one)."),
) -> None:
    """Draw a digit in the browser and watch BP1–BP4 run on it.

    The page shows the 28×28 image the network sees (as 'jaxmlp predict'
    makes it), the class probabilities, the hidden activations, and
    BP1–BP4 for a label you pick. It takes SGD steps on your digit in
    memory; the checkpoint file is never written. Ctrl-C stops it.
    """
    from jaxmlp.runs import class_names_of, load_image_classifier
    from jaxmlp.web import DigitLab, ServerInterrupted, make_server
    from jaxmlp.web.server import is_loopback

    model = load_image_classifier(checkpoint)
    lab = DigitLab(model.params, class_names_of(model), str(checkpoint))
    server = make_server(lab, host, port)
    if not is_loopback(host):
        typer.echo(
            f"jaxmlp serve: warning: {host} is not a loopback address: anyone who can reach "
            "this machine can use the page and train the network in memory",
            err=True,
        )
    try:
        typer.echo(f"Serving {checkpoint} at {server.url} (Ctrl-C stops)")
        server.serve_forever()
    except KeyboardInterrupt:
        raise ServerInterrupted("jaxmlp serve: stopped") from None
    finally:
        server.server_close()
