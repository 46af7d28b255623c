"""Smoke tests of scripts/bench.py, scripts/reproduce_seed.py and scripts/compare_search.py
(no timing targets)."""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from data_fixtures import REAL_MNIST_DIR, needs_real_mnist

from jaxmlp.backprop import manual_grad
from jaxmlp.model import Layer

SCRIPTS_DIR = Path(__file__).resolve().parent.parent / "scripts"
NUMBER = r"(\d+(?:\.\d+)?)"

pytestmark = pytest.mark.slow


def load_script(name: str):
    """Imports ``scripts/<name>.py`` (which imports ``_common`` beside it)."""
    sys.path.insert(0, str(SCRIPTS_DIR))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(SCRIPTS_DIR))


bench = load_script("bench")
reproduce_seed = load_script("reproduce_seed")


@needs_real_mnist
def test_bench_seed_config_prints_rows_and_ratios(capsys, tmp_path):
    figures_path = tmp_path / "bench.json"
    argv = ["--data-dir", str(REAL_MNIST_DIR), "--skip-large", "--skip-e2e", "--epochs", "1"]
    argv += ["--limit", "2000", "--numpy-epochs", "1", "--numpy-examples", "100"]

    assert bench.main([*argv, "--json", str(figures_path)]) == 0

    out = capsys.readouterr().out
    assert re.search(r"^Machine: .+, \d+ cores .*jax \S+ on cpu", out, re.M)
    numpy_row = re.search(rf"^  numpy per-example \(seed\)\s+{NUMBER} s\s+1\.0×", out, re.M)
    assert numpy_row and float(numpy_row[1]) > 0
    for grad in ("manual", "autodiff"):
        row = re.search(rf"^  jaxmlp --grad {grad}\s+{NUMBER} s\s+{NUMBER}×", out, re.M)
        assert row and float(row[1]) > 0 and float(row[2]) > 0
    verdicts = r"target: jaxmlp ≥ 18× numpy: manual (PASS|MISS) .* autodiff (PASS|MISS)"
    assert re.search(verdicts, out)
    assert "scaled to 2000" in out
    figures = json.loads(figures_path.read_text())
    assert set(figures["seed_config"]) >= {"numpy", "jaxmlp_manual", "jaxmlp_autodiff"}
    assert figures["seed_config"]["numpy"]["examples_timed_per_epoch"] == 100
    assert "large_config" not in figures and "end_to_end" not in figures


def test_bench_help_says_targets_are_not_enforced(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--help"])
    assert exit_info.value.code == 0
    assert "not enforced" in capsys.readouterr().out


def test_numpy_reference_gradient_matches_jaxmlp_bp1_to_bp4():
    rng = np.random.default_rng(1)
    network = bench.SeedNetwork((6, 5, 4, 3), rng)
    images = rng.uniform(size=(7, 6))
    labels = rng.integers(0, 3, 7)
    targets = np.eye(3)[labels]
    sums_b = [np.zeros_like(b) for b in network.biases]
    sums_w = [np.zeros_like(w) for w in network.weights]
    for x, y in zip(images, targets):
        nabla_b, nabla_w = network.backprop(x[:, None], y[:, None])
        sums_b = [total + part for total, part in zip(sums_b, nabla_b)]
        sums_w = [total + part for total, part in zip(sums_w, nabla_w)]
    params = tuple(
        Layer(jnp.asarray(w, jnp.float32), jnp.asarray(b[:, 0], jnp.float32))
        for w, b in zip(network.weights, network.biases)
    )

    grads = manual_grad(params, jnp.asarray(images, jnp.float32), jnp.asarray(labels))

    for layer, total_w, total_b in zip(grads, sums_w, sums_b):
        np.testing.assert_allclose(layer.w, total_w / 7, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(layer.b, total_b[:, 0] / 7, rtol=1e-4, atol=1e-5)


def test_numpy_reference_softmax_is_stable():
    probabilities = bench.stable_softmax(np.array([[1000.0], [0.0], [-1000.0]]))
    np.testing.assert_allclose(probabilities[:, 0], [1.0, 0.0, 0.0])


def test_flop_counts_of_an_epoch():
    assert bench.counted_flops_per_epoch((784, 15, 10), 2) == 6 * (784 * 15 + 15 * 10) * 2
    assert bench.multiplied_flops_per_epoch((784, 15, 10), 2) == (
        6 * (784 * 15 + 15 * 10) * 2 - 2 * 784 * 15 * 2
    )


def test_each_epoch_is_compared_with_the_matmul_calls_around_it():
    ratios = bench.bracketed_ratios([50.0, 80.0], [100.0, 60.0, 100.0])

    assert ratios == pytest.approx([50 / 80, 80 / 80])


def test_matmul_chain_multiplies_repeatedly():
    x, w = bench.matmul_operands((3, 4, 4))
    expected = np.asarray(x) @ np.asarray(w) @ np.asarray(w)
    np.testing.assert_allclose(bench.make_matmul_chain(2)(x, w), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(w).T @ np.asarray(w), np.eye(4), atol=1e-5)


def test_run_measured_reports_the_childs_own_peak_memory_and_output():
    child = "x = bytearray(64 * 2**20); print('Test: 1/1 (100.00%), loss 0.0000')"
    parent_ballast = np.ones(256 * 2**20 // 8)

    run = bench.run_measured([sys.executable, "-c", child], {})

    assert parent_ballast.sum() > 0
    assert run.returncode == 0 and run.seconds > 0
    assert 64 <= run.max_rss_mib < 200
    assert bench.accuracy_line(run.stdout) == "Test: 1/1 (100.00%), loss 0.0000"


@needs_real_mnist
def test_reproduce_seed_prints_both_experiments(capsys, tmp_path):
    figures_path = tmp_path / "reproduce.json"
    argv = ["--data-dir", str(REAL_MNIST_DIR), "--seeds", "0", "--epochs", "1", "--limit", "300"]

    assert reproduce_seed.main([*argv, "--json", str(figures_path)]) == 0

    out = capsys.readouterr().out
    for lr, seed_document in (("0.1", "91.90"), ("0.5", "86.69")):
        row = re.search(rf"^lr {lr}\s+{NUMBER} ± n/a %\s+{seed_document} %\s+{NUMBER}$", out, re.M)
        assert row and 0 <= float(row[1]) <= 100 and row[1] == row[2]
    assert re.search(rf"^Total time: {NUMBER} s \(2 runs\)", out, re.M)
    experiments = json.loads(figures_path.read_text())["experiments"]
    assert [experiment["lr"] for experiment in experiments] == [0.1, 0.5]
    assert all(len(experiment["runs"]) == 1 for experiment in experiments)


def test_reproduce_seed_summarises_mean_and_sample_sd():
    runs = [{"test_accuracy": 0.9}, {"test_accuracy": 0.8}, {"test_accuracy": None}]

    summary = reproduce_seed.summarise(runs)

    assert summary["mean"] == pytest.approx(0.85)
    assert summary["sd"] == pytest.approx(np.std([0.9, 0.8], ddof=1))
    assert (summary["converged"], summary["diverged"]) == (2, 1)


def test_reproduce_seed_rejects_bad_seeds(capsys):
    with pytest.raises(SystemExit) as exit_info:
        reproduce_seed.main(["--seeds", "0,x"])
    assert exit_info.value.code == 2


def test_compare_search_counts_compute_until_the_target():
    compare_search = load_script("compare_search")
    halving = [
        [{"val_accuracy": v} for v in values]
        for values in ([0.5, 0.7, 0.9], [0.6, 0.8], [0.4], [0.3])
    ]
    curve = compare_search.compute_curve(halving)
    assert curve == [(4, 0.6), (6, 0.8), (7, 0.9)], "each epoch adds the members that trained it"
    assert compare_search.reached(curve, 0.8) == 6 and compare_search.reached(curve, 0.95) is None
    members = compare_search.halving_members(81, (1, 3), 9, 3)
    assert members == 33 and compare_search.search.halving_network_epochs(34, (1, 3), 9, 3) > 81


FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=f"no Fashion-MNIST in {FASHION_DIR}")
def test_bench_fashion_preset_compares_against_the_replaced_recipe(capsys, tmp_path):
    bench_fashion = load_script("bench_fashion_preset")
    figures_path = tmp_path / "fashion.json"
    argv = ["--limit", "300", "--rounds", "2", "--json", str(figures_path)]

    assert bench_fashion.main(argv) == 0

    out = capsys.readouterr().out
    reference = re.search(rf"^  replaced .* \(1\.00×\), +{NUMBER} s CPU \(1\.00×\)", out, re.M)
    preset = re.search(rf"^  preset best .* {NUMBER} s CPU \({NUMBER}×\); training", out, re.M)
    assert reference and preset and float(preset[1]) > 0
    figures = json.loads(figures_path.read_text())["recipes"]
    assert [len(figures[name]["epoch_cpu_s"]) for name in figures] == [2, 2]
    assert figures["replaced"]["recipe"] == "784-1024-1024-10, batch 128, 30 epochs"


def test_every_mutant_still_finds_its_line_once():
    """A mutant whose line was rewritten is skipped as stale: the check would then claim a
    kill rate over fewer bugs than it lists, so each must still find its line exactly once."""
    mutation_check = load_script("mutation_check")
    repo = SCRIPTS_DIR.parent
    stale = [
        mutant.name
        for mutant in mutation_check.MUTANTS
        if (repo / mutant.path).read_text().count(mutant.old) != 1
    ]
    assert not stale, f"mutants whose line is not found once: {stale}"
