"""``jaxmlp info``: what JAX sees — versions, backend, processes and devices."""

from __future__ import annotations

import json
from typing import Any

import typer

from jaxmlp.cli.app import command
from jaxmlp.cli.startup import population_cpu_devices
from jaxmlp.environment import require_backend
from jaxmlp.settings import SPECS


def format_report(report: dict[str, Any]) -> str:
    """The report as aligned lines, one per device at the end."""
    lines = [
        f"jax {report['jax']}, jaxlib {report['jaxlib']}, Python {report['python']}",
        f"backend: {report['backend']} (matmul precision {report['matmul_precision']})",
        f"process: {report['process_index']} of {report['process_count']}",
        f"devices: {report['local_device_count']} local, {report['global_device_count']} global",
    ]
    lines += [
        f"  {device['platform']}:{device['id']}  {device['kind']}  "
        f"(process {device['process_index']})"
        for device in report["devices"]
    ]
    if report.get("sweep_cpu_devices"):
        lines.append(
            f"sweeps: {report['sweep_cpu_devices']} CPU devices (one per core, or "
            "JAX_NUM_CPU_DEVICES), members spread over them"
        )
    return "\n".join(lines)


@command("info")
def info_command(
    platform: str | None = typer.Option(
        None,
        metavar=f"<{'|'.join(SPECS['platform'].choices)}>",
        help="Start this backend.",
        show_default="JAX's choice",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> int:
    """Show the jax/jaxlib versions, the backend and every device.

    Each device is shown with its process; on CPU, also the devices a sweep starts (one
    per core).

    Exit codes: 0, or 2 when --platform (or JAX_PLATFORMS) names a backend that is not
    available here.
    """
    from jaxmlp import parallel

    parallel.configure_backend(platform, None)
    if platform is None:
        require_backend()
    else:
        parallel.check_platform(platform)
    report = parallel.backend_report()
    if report["backend"] == "cpu":
        report["sweep_cpu_devices"] = population_cpu_devices()
    typer.echo(json.dumps(report, indent=2) if as_json else format_report(report))
    return 0
