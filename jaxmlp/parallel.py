"""The device mesh (members × data), several hosts, and the choice of backend.

One mesh of two axes, ``"members"`` then ``"data"`` (:class:`DeviceLayout`). A population's
members are split over the member axis: each device group trains its own members
(``shard_map``), and nothing crosses between members. Each member's mini-batches are split
over the data axis: its parameters and optimizer state are replicated on the data axis's
devices and each mini-batch is split along its batch axis (``P("data")``, applied inside
the compiled step by :meth:`DeviceLayout.shard_batch`). A solo run on D devices is one
member split D ways (data parallel), as before populations existed. The loss is the mean
over the batch, so its gradient (BP3/BP4: ``Δᵀ 1`` and ``Δᵀ A``) contracts over the sharded
axis and the compiler (GSPMD) inserts the all-reduce: every device ends each step with the
same parameters, as if one device had taken the whole batch.

How batches reach the devices: the data set (MNIST: 188 MB of float32) is placed
*replicated* on every device, on every host. Every process draws the same permutation
from the shared key ``fold_in(key(seed), epoch)`` inside the compiled epoch; the gather
``images[batch_indices]`` is partitioned like its output, so each device gathers only its
own rows of each batch, from its own copy. No example crosses the network; only gradients
do. The price is one copy of the data set per device, negligible at MNIST's size.

Divisibility: the batch size must be a multiple of the data axis's size, so every full batch
splits evenly. A ragged last batch (when ``--drop-last`` is off) need not divide: XLA pads
its shards and masks the padding, so the step is still exact.

Several hosts: :func:`initialize_distributed` calls ``jax.distributed.initialize`` before
the backend starts; then ``jax.devices()`` lists the devices of every process, the mesh
spans them all, and only process 0 prints, writes metrics and saves checkpoints.
"""

from __future__ import annotations

import dataclasses
import platform as host_platform
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from jaxmlp.environment import require_backend
from jaxmlp.errors import ConfigError, JaxmlpError
from jaxmlp.settings import SPECS, Settings, check_setting

MEMBER_AXIS = "members"
DATA_AXIS = "data"
PLATFORMS = SPECS["platform"].choices
MATMUL_PRECISIONS = SPECS["matmul_precision"].choices
DISTRIBUTED_MODES = ("off", "auto")
INSTALL_HINTS = {"gpu": 'pip install -U "jax[cuda13]"', "tpu": 'pip install -U "jax[tpu]"'}
JAX_PLATFORMS_SETTING = {"cpu": "cpu", "tpu": "tpu", "gpu": ""}
"""``jax_platforms`` per ``--platform``. Not ``"gpu"`` for GPUs: JAX expands it to every GPU
plugin (CUDA, ROCm, oneAPI) and fails unless all start; left empty, JAX picks the GPU
backend that works ahead of the CPU, and :func:`check_platform` checks that it did."""


class DistributedError(JaxmlpError):
    """``jax.distributed.initialize`` failed: no coordinator, a timeout, a started backend."""


@dataclasses.dataclass(frozen=True)
class ClusterOptions:
    """How this process joins a multi-process run: per process, so not a run's settings.

    (The devices, platform and matmul precision are :class:`~jaxmlp.settings.Settings`.)
    """

    distributed: str = "off"
    """``"auto"``: let JAX detect the cluster (Slurm, Open MPI, TPU pods, Kubernetes)."""
    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None


@dataclasses.dataclass(frozen=True)
class DeviceLayout:
    """A 2-D mesh, members × data: members split over the first axis, each member's
    mini-batches over the second."""

    mesh: Mesh
    MEMBER_AXIS = MEMBER_AXIS
    DATA_AXIS = DATA_AXIS

    @property
    def num_devices(self) -> int:
        """Devices in the mesh, on all hosts."""
        return self.mesh.devices.size

    @property
    def members(self) -> int:
        """Devices along the member axis."""
        return self.mesh.shape[MEMBER_AXIS]

    @property
    def data(self) -> int:
        """Devices that share each member's mini-batches."""
        return self.mesh.shape[DATA_AXIS]

    @property
    def batch_sharding(self) -> NamedSharding:
        """Split along the first (batch) axis over the data axis, every other axis whole."""
        return NamedSharding(self.mesh, PartitionSpec(DATA_AXIS))

    @property
    def replicated(self) -> NamedSharding:
        """A whole copy on every device of the mesh."""
        return NamedSharding(self.mesh, PartitionSpec())

    def place(self, value) -> jax.Array:
        """Puts ``value`` (the same on every process) on every device of the mesh."""
        if jax.process_count() == 1:
            return jax.device_put(value, self.replicated)
        return jax.make_array_from_process_local_data(self.replicated, np.asarray(value))

    def place_members(self, tree):
        """Splits the leading (member) axis of every leaf over the member axis."""
        return jax.device_put(tree, NamedSharding(self.mesh, PartitionSpec(MEMBER_AXIS)))

    def shard_batch(self, x: jax.Array) -> jax.Array:
        """Inside ``jit``: lays a mini-batch out split across the data axis along axis 0."""
        return jax.lax.with_sharding_constraint(x, self.batch_sharding)

    def shard_member_batch(self, x: jax.Array) -> jax.Array:
        """:meth:`shard_batch` inside a ``shard_map`` over the member axis."""
        return jax.lax.with_sharding_constraint(x, PartitionSpec(DATA_AXIS))

    def check(self, members: int, batch_size: int) -> None:
        """Raises :class:`ConfigError` unless ``members`` divide among the member axis and
        ``batch_size`` splits evenly over the data axis."""
        if members % self.members:
            raise ConfigError(f"{members} members do not divide among {self.members} devices")
        if batch_size % self.data:
            raise ConfigError(
                f"{batch_size} does not divide by the {self.data} devices; use a "
                f"multiple of {self.data} (the ragged last batch may be any size)",
                setting="batch_size",
            )

    def describe(self, batch_size: int) -> str:
        """The run's device line."""
        kind = self.mesh.devices.flat[0].platform
        hosts = jax.process_count()
        over = f" on {hosts} processes" if hosts > 1 else ""
        split = (
            f"each batch of {batch_size} is split {batch_size // self.data} per device"
            if self.data > 1
            else "each member's batches on one device"
        )
        spread = f"members over {self.members}, " if self.members > 1 else ""
        return f"{self.num_devices} {kind} devices{over}: {spread}{split}"


def first_line(error: Exception) -> str:
    """The first line of an exception's message (its type when it has none)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def configure_backend(platform: str | None, matmul_precision: str | None) -> None:
    """Selects the JAX platform and the default matmul precision; call before first use."""
    check_setting("platform", platform)
    check_setting("matmul_precision", matmul_precision)
    if platform is not None:
        jax.config.update("jax_platforms", JAX_PLATFORMS_SETTING[platform])
    if matmul_precision is not None:
        jax.config.update("jax_default_matmul_precision", matmul_precision)


def check_platform(platform: str | None) -> None:
    """Starts the backend; raises :class:`ConfigError` if ``platform`` is not what runs.

    The platform is chosen when JAX starts: in a process where JAX already runs on another
    one, this reports that platform as not available. Without ``platform``, JAX's own
    choice (``JAX_PLATFORMS``) must start (:func:`jaxmlp.environment.require_backend`).
    """
    if platform is None:
        require_backend()
        return
    hint = f"; for it, {INSTALL_HINTS[platform]}" if platform in INSTALL_HINTS else ""
    try:
        running = jax.default_backend()
    except RuntimeError as error:
        reason = first_line(error).split(" (set JAX_PLATFORMS")[0]
        raise ConfigError(f"{platform} is not available here: {reason}{hint}", "platform") from None
    if platform is not None and running != platform:
        raise ConfigError(
            f"{platform} is not available here: JAX runs on {running}{hint}", "platform"
        )


def check_coordinator(address: str) -> None:
    """Raises :class:`ConfigError` unless ``address`` looks like ``HOST:PORT``."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--coordinator must be HOST:PORT, got {address!r}")


def distributed_arguments(options: ClusterOptions) -> dict[str, Any] | None:
    """The ``jax.distributed.initialize`` arguments, or ``None`` for a single process."""
    if options.distributed not in DISTRIBUTED_MODES:
        raise ConfigError(
            f"--distributed must be one of {', '.join(DISTRIBUTED_MODES)}, "
            f"got {options.distributed!r}"
        )
    given = {
        "coordinator": options.coordinator,
        "num_processes": options.num_processes,
        "process_id": options.process_id,
    }
    explicit = {
        ("coordinator_address" if name == "coordinator" else name): value
        for name, value in given.items()
        if value is not None
    }
    if options.coordinator is not None:
        check_coordinator(options.coordinator)
    if options.num_processes is not None and options.num_processes < 1:
        raise ConfigError(f"--num-processes must be at least 1, got {options.num_processes}")
    if options.distributed == "auto":
        return explicit
    if not explicit:
        return None
    missing = [f"--{name.replace('_', '-')}" for name, value in given.items() if value is None]
    if missing:
        raise ConfigError(
            f"a multi-process run needs --coordinator, --num-processes and --process-id "
            f"(or --distributed auto); missing {', '.join(missing)}"
        )
    if not 0 <= options.process_id < options.num_processes:
        raise ConfigError(
            f"--process-id must be in 0..{options.num_processes - 1}, got {options.process_id}"
        )
    return explicit


def initialize_distributed(arguments: dict[str, Any]) -> None:
    """Joins the job's other processes (blocks until all have joined, or times out).

    A no-op when this process already joined (a second run in the same notebook).
    """
    if jax.distributed.is_initialized():
        return
    try:
        jax.distributed.initialize(**arguments)
    except (RuntimeError, ValueError) as error:
        reason = first_line(error)
        raise DistributedError(f"could not start the multi-process run: {reason}") from None


def parse_devices(text: str | None) -> int | None:
    """``"all"`` → ``None`` (every device), ``"4"`` → 4; anything else is an error."""
    if text is None or text == "all":
        return None
    check_setting("devices", text)
    return int(text)


def select_devices(count: int | None) -> list:
    """``count`` devices (all if ``None``), the same number from each process."""
    processes = jax.process_count()
    everything = jax.devices()
    if count is None:
        return everything
    if count > len(everything):
        raise ConfigError(
            f"is {count} but only {len(everything)} {jax.default_backend()} devices are visible",
            setting="devices",
        )
    if count % processes:
        raise ConfigError(
            f"{count} does not divide among the {processes} processes; use a multiple of "
            f"{processes} or 'all'",
            setting="devices",
        )
    per_process = count // processes
    chosen = []
    for index in range(processes):
        chosen += [d for d in everything if d.process_index == index][:per_process]
    return chosen


def member_devices(members: int, devices: int) -> int:
    """How many of ``devices`` take members: all when there are as many members, else the
    largest divisor of ``devices`` not above ``members`` (the rest split each batch)."""
    if members >= devices:
        return devices
    return max(d for d in range(1, members + 1) if devices % d == 0)


def device_layout(
    devices: str | None, members: int = 1, *, spread_members: bool = False
) -> DeviceLayout | None:
    """The mesh ``--devices`` asks for, members first (:func:`member_devices`), then data;
    ``None`` for the plain one-device path.

    Without ``--devices`` in one process: one device, or with ``spread_members`` on a CPU
    backend (a sweep, whose start-up made one CPU device per core), as many CPU devices as
    take members (:func:`member_devices`), none splitting a batch.
    """
    count = parse_devices(devices)
    if devices is None and jax.process_count() == 1:
        count = 1
        if spread_members and jax.default_backend() == "cpu":
            count = member_devices(members, jax.local_device_count())
    chosen = select_devices(count)
    if len(chosen) == 1:
        return None
    across = member_devices(members, len(chosen))
    if across > 1 and jax.process_count() > 1:
        raise ConfigError("a population spans the devices of one process only", "devices")
    shape = (across, len(chosen) // across)
    mesh = jax.make_mesh(shape, (MEMBER_AXIS, DATA_AXIS), (AxisType.Auto,) * 2, devices=chosen)
    return DeviceLayout(mesh)


def setup(
    settings: Settings, cluster: ClusterOptions, members: int = 1, *, spread_members: bool = False
) -> DeviceLayout | None:
    """Backend, then hosts, then mesh: the order JAX requires. Call before any JAX work."""
    configure_backend(settings.platform, settings.matmul_precision)
    arguments = distributed_arguments(cluster)
    if arguments is not None:
        initialize_distributed(arguments)
    check_platform(settings.platform)
    return device_layout(settings.devices, members, spread_members=spread_members)


def is_main_process() -> bool:
    """True in process 0, the one that prints, writes metrics and saves checkpoints."""
    return jax.process_index() == 0


def backend_report() -> dict[str, Any]:
    """Versions, backend, processes and devices, as JSON-ready values."""
    import jaxlib

    return {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "python": host_platform.python_version(),
        "backend": jax.default_backend(),
        "matmul_precision": jax.config.jax_default_matmul_precision or "default",
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "local_device_count": jax.local_device_count(),
        "global_device_count": jax.device_count(),
        "jax_platforms": jax.config.jax_platforms or None,
        "devices": [
            {
                "id": device.id,
                "platform": device.platform,
                "kind": device.device_kind,
                "process_index": device.process_index,
            }
            for device in jax.devices()
        ],
    }
