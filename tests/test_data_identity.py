"""Datasets known by their files: another dataset's folder, a mixed folder, a user's own
files, and downloads that never replace what they did not put there.

Two small random datasets stand in for MNIST and Fashion-MNIST: their SHA-256 sums
replace the official ones in the specs, so no real data is needed (but for the last
tests, which read the real files where they are present).
"""

from __future__ import annotations

import dataclasses
import gzip
import re
import shutil
from pathlib import Path

import pytest
from data_fixtures import (  # noqa: F401
    OFFICIAL_FILES,
    REAL_MNIST_DIR,
    http_server,
    needs_real_mnist,
    offline_environment,
    sha256_hex,
    small_arrays,
    write_idx_dataset,
)

from jaxmlp.cli import main
from jaxmlp.data import identity, load_dataset, sources
from jaxmlp.data.identity import UNRECOGNISED, identify_file
from jaxmlp.errors import DatasetError

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def known(tmp_path, monkeypatch) -> dict[str, Path]:
    """Folders of the stand-in ``mnist`` and ``fashion-mnist``, whose sums the specs hold."""
    monkeypatch.setattr(identity, "_memo", {})
    folders = {}
    for seed, name in enumerate(("mnist", "fashion-mnist")):
        folder = write_idx_dataset(tmp_path / f"official-{name}", small_arrays(seed=seed))
        gz_sums = {file: sha256_hex((folder / file).read_bytes()) for file in OFFICIAL_FILES}
        content_sums = {
            file: sha256_hex(gzip.decompress((folder / file).read_bytes()))
            for file in OFFICIAL_FILES
        }
        spec = dataclasses.replace(sources.SPECS[name], sha256=gz_sums, content_sha256=content_sums)
        monkeypatch.setitem(sources.SPECS, name, spec)
        folders[name] = folder
    return folders


def copy_files(target: Path, sources_by_name: dict[str, Path]) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name, folder in sources_by_name.items():
        shutil.copy(folder / name, target / name)
    return target


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_each_dataset_loads_as_itself(known):
    for name, folder in known.items():
        assert load_dataset(name, data_dir=folder, val_size=0).identity == name


def test_another_datasets_folder_is_refused_naming_it(known):
    with pytest.raises(DatasetError) as caught:
        load_dataset("mnist", data_dir=known["fashion-mnist"], val_size=0)
    assert str(caught.value) == (
        f"{known['fashion-mnist']} holds fashion-mnist's files, not mnist's: pass --dataset "
        "fashion-mnist, or give a folder of mnist"
    )


def test_a_mixed_folder_is_refused_naming_the_odd_files(known, tmp_path):
    labels = ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    mixed = copy_files(
        tmp_path / "mixed",
        {name: known["fashion-mnist" if name in labels else "mnist"] for name in OFFICIAL_FILES},
    )

    with pytest.raises(DatasetError) as caught:
        load_dataset("mnist", data_dir=mixed, val_size=0)

    assert str(caught.value) == (
        f"{mixed} mixes datasets, so it is not read as mnist: train-labels-idx1-ubyte.gz is "
        "fashion-mnist's training labels; t10k-labels-idx1-ubyte.gz is fashion-mnist's test labels"
    )


def test_a_known_file_in_another_files_place_is_refused(known, tmp_path):
    swapped = copy_files(tmp_path / "swapped", dict.fromkeys(OFFICIAL_FILES, known["mnist"]))
    shutil.copy(
        known["mnist"] / "t10k-labels-idx1-ubyte.gz", swapped / "train-labels-idx1-ubyte.gz"
    )

    with pytest.raises(
        DatasetError, match=re.escape("train-labels-idx1-ubyte.gz is mnist's test labels")
    ):
        load_dataset("mnist", data_dir=swapped, val_size=0)


def test_recompressed_and_raw_copies_are_recognised_by_their_content(known, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in OFFICIAL_FILES:
        content = gzip.decompress((known["fashion-mnist"] / name).read_bytes())
        (raw / name.removesuffix(".gz")).write_bytes(content)
        (tmp_path / name).write_bytes(gzip.compress(content, compresslevel=1, mtime=7))

    assert identify_file(raw / "train-images-idx3-ubyte").describe() == (
        "fashion-mnist's training images"
    )
    assert identify_file(tmp_path / "t10k-labels-idx1-ubyte.gz").describe() == (
        "fashion-mnist's test labels"
    )
    with pytest.raises(DatasetError, match="holds fashion-mnist's files, not mnist's"):
        load_dataset("mnist", data_dir=raw, val_size=0)


def test_unknown_files_are_read_and_data_info_says_so(known, tmp_path, capsys):
    own = write_idx_dataset(tmp_path / "own", small_arrays(seed=9))

    assert load_dataset("fashion-mnist", data_dir=own, val_size=0).identity == UNRECOGNISED
    code, out, err = run_cli(capsys, "data-info", "--data-dir", str(own), "--val-size", "0")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "dataset: mnist (unrecognised files)"


def test_partly_recognised_files_are_read_naming_the_unknown_ones(known, tmp_path):
    own = write_idx_dataset(tmp_path / "own", small_arrays(seed=9))
    shutil.copy(known["mnist"] / "train-images-idx3-ubyte.gz", own)

    dataset = load_dataset("mnist", data_dir=own, val_size=0)

    assert dataset.identity == (
        "unrecognised train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        "t10k-labels-idx1-ubyte.gz"
    )


def test_data_dir_prefers_the_datasets_own_subfolder(known, tmp_path):
    root = copy_files(tmp_path / "root", dict.fromkeys(OFFICIAL_FILES, known["fashion-mnist"]))
    copy_files(root / "mnist", dict.fromkeys(OFFICIAL_FILES, known["mnist"]))

    assert load_dataset("mnist", data_dir=root, val_size=0).identity == "mnist"
    assert load_dataset("fashion-mnist", data_dir=root, val_size=0).identity == "fashion-mnist"


def serve_dataset(http_server, folder: Path, prefix: str) -> str:
    for name in OFFICIAL_FILES:
        http_server.routes[f"/{prefix}/{name}"] = (folder / name).read_bytes()
    return http_server.mirror(prefix)


def test_download_puts_each_dataset_in_its_own_folder(
    known, tmp_path, http_server, monkeypatch, capsys
):
    monkeypatch.setenv("JAXMLP_MNIST_MIRRORS", serve_dataset(http_server, known["mnist"], "m"))
    cache = copy_files(tmp_path / "cache", dict.fromkeys(OFFICIAL_FILES, known["fashion-mnist"]))
    before = {name: (cache / name).read_bytes() for name in OFFICIAL_FILES}

    code, out, err = run_cli(capsys, "download", "--dataset", "mnist", "--cache-dir", str(cache))

    assert (code, err) == (0, "")
    assert {name: (cache / name).read_bytes() for name in OFFICIAL_FILES} == before
    assert load_dataset("mnist", data_dir=cache, val_size=0).identity == "mnist"
    assert load_dataset("fashion-mnist", data_dir=cache, val_size=0).identity == "fashion-mnist"
    assert len(out.splitlines()) == 4


def test_download_never_replaces_a_file_it_did_not_put_there(
    known, tmp_path, http_server, monkeypatch, capsys
):
    monkeypatch.setenv("JAXMLP_MNIST_MIRRORS", serve_dataset(http_server, known["mnist"], "m"))
    folder = copy_files(
        tmp_path / "cache" / "mnist", dict.fromkeys(OFFICIAL_FILES, known["fashion-mnist"])
    )
    own = folder / "t10k-labels-idx1-ubyte.gz"
    own.write_bytes(b"my own notes")
    before = {name: (folder / name).read_bytes() for name in OFFICIAL_FILES}

    code, _, err = run_cli(
        capsys, "download", "--dataset", "mnist", "--cache-dir", str(tmp_path / "cache")
    )

    assert code == 1
    assert err.splitlines() == [
        (
            f"jaxmlp: error: {folder / 'train-images-idx3-ubyte.gz'} is fashion-mnist's "
            "training images; a download never replaces a file it did not put there: move it "
            "away, or download mnist into another --cache-dir"
        )
    ]
    assert {name: (folder / name).read_bytes() for name in OFFICIAL_FILES} == before
    for name in OFFICIAL_FILES[:3]:
        (folder / name).unlink()
    code, _, err = run_cli(
        capsys, "download", "--dataset", "mnist", "--cache-dir", str(tmp_path / "cache")
    )
    assert code == 1
    assert f"{own} is not the official file; a download never replaces" in err
    assert own.read_bytes() == b"my own notes"


@needs_real_mnist
@pytest.mark.slow
def test_the_real_mnist_folder_is_not_fashion_mnist(capsys):
    code, _, err = run_cli(
        capsys, "data-info", "--dataset", "fashion-mnist", "--data-dir", str(REAL_MNIST_DIR)
    )
    assert code == 1
    assert err.splitlines() == [
        (
            f"jaxmlp: error: {REAL_MNIST_DIR} holds mnist's files, not fashion-mnist's: pass "
            "--dataset mnist, or give a folder of fashion-mnist"
        )
    ]


@pytest.mark.skipif(
    not (DEBIAN_FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
@pytest.mark.slow
def test_debians_fashion_mnist_is_recognised_and_refused_as_mnist(capsys):
    for name in OFFICIAL_FILES:
        assert identify_file(DEBIAN_FASHION_DIR / name).dataset == "fashion-mnist"
    code, _, err = run_cli(capsys, "data-info", "--data-dir", str(DEBIAN_FASHION_DIR))
    assert code == 1
    assert "holds fashion-mnist's files, not mnist's" in err
