"""What a population's compiled epoch costs to trace, lower and compile as R and steps grow.

For each population size R (``--members``) and each number of training examples
(``--examples``, i.e. steps of the seed's batch of 10), builds the seed-config trainer on
random data (no dataset needed), and times ``jax.jit(...).trace``, ``.lower`` and
``.compile`` of its epoch ahead of time, with the persistent compilation cache off. Also
prints how many copies of the epoch body the program holds (``scan`` s over the epoch's
steps in its jaxpr) and its ``while`` loops: the members are trained in equal chunks of at
most ``train.MEMBER_CHUNK``, so one copy whatever R.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

from jaxmlp import train
from jaxmlp.data import Dataset, Split
from jaxmlp.settings import Settings


def random_dataset(examples: int) -> Dataset:
    rng = np.random.default_rng(0)

    def split(n: int) -> Split:
        return Split(rng.random((n, 784), np.float32), rng.integers(0, 10, n).astype(np.int32))

    return Dataset(
        "random",
        split(examples),
        split(100),
        split(100),
        "generated",
        tuple(str(c) for c in range(10)),
    )


def sub_jaxprs(value):
    """The jaxprs inside an equation's parameter (a jaxpr, a closed one, or a tuple of them)."""
    if isinstance(value, (tuple, list)):
        for item in value:
            yield from sub_jaxprs(item)
    elif hasattr(value, "eqns"):
        yield value
    elif hasattr(value, "jaxpr") and hasattr(value.jaxpr, "eqns"):
        yield value.jaxpr


def step_scans(jaxpr, steps: int) -> int:
    """``scan`` s of ``steps`` iterations in ``jaxpr`` and the jaxprs inside it."""
    found = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scan" and eqn.params["length"] == steps:
            found += 1
        for value in eqn.params.values():
            found += sum(step_scans(inner, steps) for inner in sub_jaxprs(value))
    return found


def timings(members: int, examples: int) -> dict[str, float]:
    """Seconds to trace, lower and compile the epoch of ``members`` seed-config networks."""
    settings = [Settings(seed=seed) for seed in range(members)]
    trainer = train.prepare(settings, random_dataset(examples))
    state = trainer.initial_state()
    images, labels = trainer.data["train"]
    arguments = (state, trainer.values, images, labels, trainer.epoch_keys(0))
    began = time.perf_counter()
    traced = trainer.run_epoch.trace(*arguments)
    traced_at = time.perf_counter()
    lowered = traced.lower()
    lowered_at = time.perf_counter()
    lowered.compile()
    compiled_at = time.perf_counter()
    return {
        "trace": traced_at - began,
        "lower": lowered_at - traced_at,
        "compile": compiled_at - lowered_at,
        "bodies": step_scans(traced.jaxpr.jaxpr, examples // 10),
        "loops": lowered.as_text().count("stablehlo.while"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="1,10,16,17,32,100")
    parser.add_argument("--examples", default="1000,50000")
    args = parser.parse_args()
    jax.config.update("jax_enable_compilation_cache", False)
    print(f"load average at start: {os.getloadavg()}")
    print(
        f"{'R':>5}{'examples':>10}{'trace s':>9}{'lower s':>9}{'compile s':>11}"
        f"{'bodies':>8}{'loops':>7}"
    )
    for examples in (int(n) for n in args.examples.split(",")):
        for members in (int(r) for r in args.members.split(",")):
            t = timings(members, examples)
            print(
                f"{members:>5}{examples:>10}{t['trace']:>9.2f}{t['lower']:>9.2f}"
                f"{t['compile']:>11.2f}{t['bodies']:>8}{t['loops']:>7}",
                flush=True,
            )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
