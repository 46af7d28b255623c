"""What a population's compiled epoch costs to trace, lower and compile as R and steps grow.

For each population size R (``--members``) and each number of training examples
(``--examples``, i.e. steps of the seed's batch of 10), builds the seed-config trainer on
random data (no dataset needed), and times ``jax.jit(...).trace``, ``.lower`` and
``.compile`` of its epoch ahead of time, with the persistent compilation cache off. Also
prints how many copies of the step the program holds (``while`` loops in its HLO text),
since the members are trained in chunks of ``train.MEMBER_CHUNK`` and a remainder.
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
        "loops": lowered.as_text().count("stablehlo.while"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="1,10,16,17,32,100")
    parser.add_argument("--examples", default="1000,50000")
    args = parser.parse_args()
    jax.config.update("jax_enable_compilation_cache", False)
    print(f"load average at start: {os.getloadavg()}")
    print(f"{'R':>5}{'examples':>10}{'trace s':>9}{'lower s':>9}{'compile s':>11}{'loops':>7}")
    for examples in (int(n) for n in args.examples.split(",")):
        for members in (int(r) for r in args.members.split(",")):
            t = timings(members, examples)
            print(
                f"{members:>5}{examples:>10}{t['trace']:>9.2f}{t['lower']:>9.2f}"
                f"{t['compile']:>11.2f}{t['loops']:>7}",
                flush=True,
            )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
