"""``load_dataset``: find the data, read it, split it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from jaxmlp.data import cache
from jaxmlp.data.download import download_dataset, is_verified
from jaxmlp.data.identity import check_identity
from jaxmlp.data.idx import read_idx_pair
from jaxmlp.data.seed_pickle import load_seed_pickle
from jaxmlp.data.sources import (
    DATA_DIR_ENV,
    DatasetSpec,
    find_idx_files,
    get_spec,
    locate_in_given_path,
    system_dirs,
    user_cache_dir,
)
from jaxmlp.data.splits import (
    Dataset,
    Split,
    check_limit,
    check_val_size,
    pixels_to_unit,
    split_train_validation,
    take_first,
)
from jaxmlp.errors import DatasetError

OFFICIAL_TRAIN_SIZE = 60_000
Location = Path | dict[str, Path]


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    val_size: int = 10_000,
    limit: int | None = None,
    download: bool = True,
    data_dir_origin: str = "--data-dir",
) -> Dataset:
    """Loads ``"mnist"`` or ``"fashion-mnist"``, split as in the seed.

    Args:
        name: The dataset, one of :data:`DATASETS`.
        data_dir: A directory of IDX files (gz or raw) or a seed ``mnist.pkl.gz``;
            by default the data is looked for as :mod:`jaxmlp.data.sources` describes.
        val_size: How many of the last official training examples validate (0: none).
        limit: Keep only the first ``limit`` examples of every split.
        download: Download into the user cache when the data is found nowhere.
        data_dir_origin: Where ``data_dir`` came from, as error messages name it.

    Returns:
        The dataset: images float32 ``(N, 784)`` in [0, 1], labels int32 ``(N,)``.

    Raises:
        ConfigError: Unknown dataset, ``val_size`` outside [0, 60000) or a bad ``limit``.
        DatasetError: The data is missing, malformed or could not be downloaded.
    """
    spec = get_spec(name)
    check_val_size(val_size, OFFICIAL_TRAIN_SIZE)
    check_limit(limit)
    location, source = locate_dataset(spec, data_dir, download, data_dir_origin)
    identity = None
    if isinstance(location, Path):
        train, test = read_seed_pickle_splits(location)
    else:
        identity = check_identity(spec, location, str(location["train_images"].parent))
        train = cache.read_pair(location["train_images"], location["train_labels"], decode_pair)
        test = cache.read_pair(location["test_images"], location["test_labels"], decode_pair)
    train_split, validation_split = split_train_validation(*train, val_size)
    return Dataset(
        name=spec.name,
        train=finish_split(train_split, limit),
        validation=finish_split(validation_split, limit),
        test=finish_split(Split(*test), limit),
        source=source,
        class_names=spec.class_names,
        identity=identity,
    )


def locate_dataset(
    spec: DatasetSpec,
    data_dir: str | os.PathLike | None,
    download: bool,
    data_dir_origin: str = "--data-dir",
) -> tuple[Location, str]:
    """Finds the data of ``spec`` in the order documented in :mod:`jaxmlp.data.sources`.

    Returns:
        The seed pickle's path or the IDX file of each role, and a description of the
        source such as ``"/root/.cache/jaxmlp/mnist (user cache)"``.
    """
    if data_dir is not None:
        return _given(Path(data_dir), spec.name, data_dir_origin)
    if os.environ.get(DATA_DIR_ENV):
        return _given(Path(os.environ[DATA_DIR_ENV]), spec.name, DATA_DIR_ENV)
    cache = user_cache_dir(spec.name)
    if all(is_verified(cache / file, spec.sha256[file]) for file in spec.files):
        return find_idx_files(cache), f"{cache} (user cache)"
    for directory in system_dirs(spec.name):
        found = find_idx_files(directory)
        if len(found) == len(spec.files):
            return found, f"{directory} (system)"
    if download:
        download_dataset(spec.name, cache)
        return find_idx_files(cache), f"{cache} (user cache, downloaded)"
    raise DatasetError(
        f"{spec.name} not found and downloading is off: pass --data-dir DIR (IDX files or "
        f"mnist.pkl.gz), set {DATA_DIR_ENV}, put the official .gz files in {cache}, "
        f"or run 'jaxmlp download --dataset {spec.name}'"
    )


def read_seed_pickle_splits(path: Path) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Reads the seed pickle as (official training set, test set); its validation split
    is the last 10,000 official training images, so train + validation restores it."""
    (train_x, train_y), (val_x, val_y), test = load_seed_pickle(path)
    return (np.concatenate([train_x, val_x]), np.concatenate([train_y, val_y])), test


def decode_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads an IDX pair as float32 images in [0, 1] and int32 labels (what is cached)."""
    images, labels = read_idx_pair(images_path, labels_path)
    return pixels_to_unit(images), labels.astype(np.int32)


def finish_split(split: Split, limit: int | None) -> Split:
    """Caps ``split`` at ``limit`` examples, then makes pixels float32 in [0, 1], labels int32."""
    split = take_first(split, limit)
    images = split.images if split.images.dtype == np.float32 else pixels_to_unit(split.images)
    return Split(images, split.labels.astype(np.int32))


def _given(path: Path, name: str, origin: str) -> tuple[Location, str]:
    location = locate_in_given_path(path, name, origin)
    if isinstance(location, Path):
        return location, f"{location.resolve()} ({origin}, seed pickle)"
    return location, f"{location['train_images'].parent.resolve()} ({origin})"
