"""Mutation check: do the quick tests fail when the training code has a one-line bug?

Each mutant replaces one line of jaxmlp's training code (optimizer, schedules,
augmentations, dropout, the model, BP1–BP4, IDX reading, the training loop) with a
plausible bug. One at a time, in a temporary copy of the repository (``../shared`` linked
beside it, as beside the checkout), the mutant is applied and the quick subset
(``-m "not slow" -x``) of its module's test files is run: first the files that existed
before the reference tests (``old``), then, if the mutant survived them, the reference
tests written for this check (``new``). A mutant is killed when pytest fails.

Printed: each mutant's fate and the kill rate with the old files alone and with both. The
unmutated copy must pass every file first (a baseline), or the check stops. A mutant whose
line is no longer in its file is reported as ``stale`` and counted as neither.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

OLD_TESTS = {
    "optim": ["tests/test_train.py"],
    "augment": ["tests/test_augment.py"],
    "model": ["tests/test_model.py", "tests/test_backprop.py"],
    "backprop": ["tests/test_backprop.py"],
    "idx": ["tests/test_data_idx.py"],
    "splits": ["tests/test_data_idx.py", "tests/test_data_sources.py"],
    "train": ["tests/test_train.py"],
}
NEW_TESTS = {
    "optim": ["tests/test_optim_reference.py"],
    "augment": ["tests/test_augment_reference.py"],
    "model": ["tests/test_augment_reference.py", "tests/test_targets_reference.py"],
    "backprop": [],
    "idx": ["tests/test_idx_layout.py"],
    "splits": ["tests/test_data_cache.py"],
    "train": ["tests/test_randomness.py"],
}


@dataclass(frozen=True)
class Mutant:
    """A one-line bug: ``old`` (which must occur once in ``path``) becomes ``new``."""

    name: str
    group: str
    path: str
    old: str
    new: str


MUTANTS = [
    Mutant(
        "nesterov off",
        "optim",
        "jaxmlp/optim.py",
        "updates = jax.tree.map(lambda g, t: decay * t + g, updates, trace)",
        "updates = trace",
    ),
    Mutant(
        "weight decay on biases",
        "optim",
        "jaxmlp/optim.py",
        "Layer(w=True, b=False)",
        "Layer(w=True, b=True)",
    ),
    Mutant(
        "cosine one step late",
        "optim",
        "jaxmlp/optim.py",
        "count = jnp.minimum(count, decay_steps)",
        "count = jnp.minimum(count - 1, decay_steps)",
    ),
    Mutant(
        "warm-up ignored",
        "optim",
        "jaxmlp/optim.py",
        "    if not program.warmup:\n",
        "    if True:\n",
    ),
    Mutant(
        "linear ramp one step long",
        "optim",
        "jaxmlp/optim.py",
        "frac = 1 - jnp.clip(count, 0, steps) / steps",
        "frac = 1 - jnp.clip(count, 0, steps) / (steps + 1)",
    ),
    Mutant(
        "decay ignores the warm-up",
        "optim",
        "jaxmlp/optim.py",
        "decay_steps = total_steps(program, steps_per_epoch) - warmup",
        "decay_steps = total_steps(program, steps_per_epoch)",
    ),
    Mutant(
        "adamw without decoupled decay",
        "optim",
        "jaxmlp/optim.py",
        "return optax.chain(scale_by_adam(), decay, optax.scale_by_learning_rate(schedule))",
        "return optax.chain(decay, scale_by_adam(), optax.scale_by_learning_rate(schedule))",
    ),
    Mutant(
        "L2 weight decay dropped",
        "optim",
        "jaxmlp/optim.py",
        "return optax.chain(decay, base)",
        "return base",
    ),
    Mutant(
        "flip up-down",
        "augment",
        "jaxmlp/augment.py",
        "images[:, :, ::-1], images",
        "images[:, ::-1, :], images",
    ),
    Mutant(
        "shift never reaches +shift",
        "augment",
        "jaxmlp/augment.py",
        "(batch, 2), 0, 2 * shift + 1)",
        "(batch, 2), 0, 2 * shift)",
    ),
    Mutant(
        "erasing probability inverted",
        "augment",
        "jaxmlp/augment.py",
        "(batch, 1, 1)) < probability",
        "(batch, 1, 1)) > probability",
    ),
    Mutant(
        "one input-dropout mask for the batch",
        "augment",
        "jaxmlp/augment.py",
        "inverted_dropout_mask(key, x.shape, keep, x.dtype)",
        "inverted_dropout_mask(key, x.shape[1:], keep, x.dtype)",
    ),
    Mutant(
        "dropout not rescaled",
        "model",
        "jaxmlp/model.py",
        "return jax.random.bernoulli(key, keep, shape).astype(dtype) / keep",
        "return jax.random.bernoulli(key, keep, shape).astype(dtype)",
    ),
    Mutant(
        "relu derivative 1 at the kink",
        "model",
        "jaxmlp/model.py",
        "return (z > 0).astype(z.dtype)",
        "return (z >= 0).astype(z.dtype)",
    ),
    Mutant(
        "loss summed, not averaged",
        "model",
        "jaxmlp/model.py",
        "return jnp.mean(per_example)",
        "return jnp.sum(per_example)",
    ),
    Mutant(
        "smoothing floor dropped",
        "model",
        "jaxmlp/model.py",
        "num_classes, dtype=dtype) * on + floor",
        "num_classes, dtype=dtype) * on",
    ),
    Mutant(
        "argmax takes the last maximum",
        "model",
        "jaxmlp/model.py",
        "return jnp.min(jnp.where(is_max",
        "return jnp.max(jnp.where(is_max",
    ),
    Mutant(
        "BP1 sign flipped", "backprop", "jaxmlp/backprop.py", "return a_L - y", "return y - a_L"
    ),
    Mutant(
        "BP2 ignores the dropout mask",
        "backprop",
        "jaxmlp/backprop.py",
        "back = back * mask",
        "back = back",
    ),
    Mutant(
        "BP3 sums over the batch",
        "backprop",
        "jaxmlp/backprop.py",
        "return jnp.mean(deltas, axis=0)",
        "return jnp.sum(deltas, axis=0)",
    ),
    Mutant(
        "IDX rows and columns swapped",
        "idx",
        "jaxmlp/data/idx.py",
        "return images.reshape(len(images), image_shape[0] * image_shape[1])",
        "return images.transpose(0, 2, 1).reshape(len(images), -1)",
    ),
    Mutant(
        "IDX dimensions little-endian",
        "idx",
        "jaxmlp/data/idx.py",
        'np.frombuffer(dimensions, dtype=">u4")',
        'np.frombuffer(dimensions, dtype="<u4")',
    ),
    Mutant(
        "pixels divided by 256",
        "splits",
        "jaxmlp/data/splits.py",
        "images.astype(np.float32) / np.float32(255)",
        "images.astype(np.float32) / np.float32(256)",
    ),
    Mutant(
        "every epoch the same key",
        "train",
        "jaxmlp/train.py",
        "return jax.random.fold_in(jax.random.key(seed), epoch)",
        "return jax.random.fold_in(jax.random.key(seed), 0)",
    ),
    Mutant(
        "members report member 0's learning rate",
        "train",
        "jaxmlp/train.py",
        "return [reported_rate(schedule(step)) for schedule in self.schedules]",
        "return [reported_rate(self.schedules[0](step)) for schedule in self.schedules]",
    ),
]


def copy_repository(destination: Path) -> Path:
    """The tracked and untracked (not ignored) files, copied under ``destination/repo``,
    with ``destination/shared`` linked to the checkout's ``../shared``."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    repo = destination / "repo"
    for name in listed:
        source = REPO_ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    shared = REPO_ROOT.parent / "shared"
    if shared.is_dir():
        (destination / "shared").symlink_to(shared)
    return repo


def environment(repo: Path, cache: Path) -> dict[str, str]:
    """The copy's jaxmlp first on the path; one compilation cache for every run."""
    return {
        **os.environ,
        "PYTHONPATH": str(repo),
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


def tests_pass(repo: Path, files: list[str], env: dict[str, str], timeout: float) -> bool | None:
    """Whether the quick subset of ``files`` passes in the copy (``None``: timed out)."""
    if not files:
        return True
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-m",
        "not slow",
        "-p",
        "no:cacheprovider",
        *files,
    ]
    try:
        done = subprocess.run(command, cwd=repo, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return done.returncode == 0


def check_copy_is_imported(repo: Path, env: dict[str, str]) -> None:
    probe = [sys.executable, "-c", "import jaxmlp; print(jaxmlp.__file__)"]
    found = subprocess.run(probe, cwd=repo, env=env, capture_output=True, text=True, check=True)
    if not found.stdout.strip().startswith(str(repo)):
        sys.exit(f"the copy's jaxmlp is not the one imported: {found.stdout.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="Comma-separated mutant names (default: all).")
    parser.add_argument("--timeout", type=float, default=600.0, help="Seconds per pytest run.")
    args = parser.parse_args()
    mutants = MUTANTS
    if args.only:
        wanted = {name.strip() for name in args.only.split(",")}
        mutants = [mutant for mutant in MUTANTS if mutant.name in wanted]
    print(f"load average at start: {os.getloadavg()}", flush=True)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as temporary:
        repo = copy_repository(Path(temporary))
        env = environment(repo, Path(temporary) / "xla")
        check_copy_is_imported(repo, env)
        groups = {mutant.group for mutant in mutants}
        baseline = sorted({f for g in groups for f in OLD_TESTS[g] + NEW_TESTS[g]})
        baseline = [name for name in baseline if (repo / name).exists()]
        if not tests_pass(repo, baseline, env, args.timeout * 3):
            sys.exit(f"the unmutated copy fails its tests: {' '.join(baseline)}")
        fates = {}
        for mutant in mutants:
            path = repo / mutant.path
            original = path.read_text()
            if original.count(mutant.old) != 1:
                fates[mutant.name] = "stale"
            else:
                path.write_text(original.replace(mutant.old, mutant.new))
                old = [f for f in OLD_TESTS[mutant.group] if (repo / f).exists()]
                new = [f for f in NEW_TESTS[mutant.group] if (repo / f).exists()]
                passed_old = tests_pass(repo, old, env, args.timeout)
                if passed_old is None:
                    fates[mutant.name] = "timeout"
                elif not passed_old:
                    fates[mutant.name] = "killed by old"
                else:
                    passed_new = tests_pass(repo, new, env, args.timeout)
                    fates[mutant.name] = {
                        None: "timeout",
                        False: "killed by new",
                        True: "SURVIVED",
                    }[passed_new]
                path.write_text(original)
            print(f"  {mutant.group:<10} {mutant.name:<40} {fates[mutant.name]}", flush=True)
    counted = [fate for fate in fates.values() if fate != "stale"]
    by_old = sum(fate == "killed by old" for fate in counted)
    by_both = by_old + sum(fate == "killed by new" for fate in counted)
    print(
        f"\n{len(counted)} mutants ({len(fates) - len(counted)} stale), "
        f"{time.perf_counter() - began:.0f} s"
    )
    if counted:
        print(
            f"killed by the old test files alone: {by_old}/{len(counted)} "
            f"({100 * by_old / len(counted):.0f} %)"
        )
        print(
            f"killed with the reference tests:    {by_both}/{len(counted)} "
            f"({100 * by_both / len(counted):.0f} %)"
        )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
