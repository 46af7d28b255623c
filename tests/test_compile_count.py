"""A run compiles few programs: each is traced, lowered and read from the cache even warm.

``jaxmlp train``'s start-up is mostly JAX's work per program (see docs/performance.md); a
jnp operation outside ``jit`` on a device array, a ``jnp.asarray`` of a host array (an
identity program in jax 0.10) or a Python loop over leaves adds one program per shape.
The bounds below are the counts measured when they were cut (27 → 4 for a seed-like run):
a change that adds a program fails here with the programs' names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import pytest
from data_fixtures import REAL_MNIST_DIR, needs_real_mnist
from helpers import blobs_dataset

from jaxmlp import timings, train
from jaxmlp.settings import Settings

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
SOLO_PROGRAMS = 4
"""Fresh state, epoch keys, the epoch, the evaluator (shared by every split of one size)."""


def compiled_programs(run) -> list[str]:
    """The names of the programs compiled while ``run()`` runs, JAX's caches cleared first."""
    names: list[str] = []

    def listen(event: str, duration: float, **kwargs) -> None:
        if event == COMPILE_EVENT:
            names.append(str(kwargs.get("fun_name")))

    jax.clear_caches()
    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        run()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return names


def test_a_solo_run_compiles_one_program_per_job():
    dataset = blobs_dataset(num_train=200)
    settings = Settings(sizes=(16, 9, 3), epochs=3, batch_size=7)
    names = compiled_programs(lambda: train.fit(train.prepare(settings, dataset)).test)
    assert len(names) <= SOLO_PROGRAMS, f"{len(names)} programs compiled: {names}"


def test_a_population_compiles_as_few_programs_as_a_solo_run():
    dataset = blobs_dataset(num_train=200)
    members = [Settings(sizes=(16, 9, 3), epochs=2, batch_size=7, seed=s) for s in (1, 2, 3)]
    names = compiled_programs(lambda: train.fit(train.prepare(members, dataset)).tests)
    assert len(names) <= SOLO_PROGRAMS, f"{len(names)} programs compiled: {names}"


def test_timings_count_phases_exclusively():
    now = [100.0]
    recorder = timings.Recorder(clock=lambda: now[0])
    recorder.open("outer")
    now[0] += 1.0
    recorder.open("inner")
    now[0] += 1.0
    recorder.on_jax_duration("/jax/core/compile/backend_compile_duration", 0.25)
    recorder.on_jax_duration("/jax/some/other_event", 5.0)
    recorder.on_jax_event("/jax/compilation_cache/cache_hits")
    recorder.close()
    now[0] += 1.0
    recorder.close()
    now[0] += 0.5
    summary = recorder.summary()
    assert recorder.seconds == {"compile": 0.25, "inner": 0.75, "outer": 2.0}
    assert (summary["other"], summary["total"]) == (0.5, 3.5)
    assert (summary["compilations"], summary["cache_hits"]) == (1, 1)
    assert timings.parse_report("noise\n" + timings.PREFIX + json.dumps(summary)) == summary


@pytest.mark.slow
@needs_real_mnist
def test_the_cli_reports_its_timings_and_a_warm_run_compiles_nothing(tmp_path):
    env = {**os.environ, "JAXMLP_TIMINGS": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "jaxmlp", "train", "--quiet", "--epochs", "2"]
    command += ["--data-dir", str(REAL_MNIST_DIR), "--limit", "300", "--val-size", "300"]
    reports = []
    for _ in range(2):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        reports.append(timings.parse_report(done.stderr))
    cold, warm = reports
    assert cold["compilations"] <= SOLO_PROGRAMS, json.dumps(cold)
    assert cold.get("cache_hits", 0) == 0, json.dumps(cold)
    assert warm["cache_hits"] == warm["compilations"] == cold["compilations"], json.dumps(warm)
    phases = ("commands", "jax", "data", "prepare", "trace", "lower", "compile", "train")
    assert all(warm[name] > 0 for name in (*phases, "evaluate", "other")), json.dumps(warm)
    assert sum(warm[name] for name in (*phases, "evaluate", "other")) == pytest.approx(
        warm["total"], abs=0.01
    )
