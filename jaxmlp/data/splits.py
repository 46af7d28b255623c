"""The :class:`Dataset` and :class:`Split` types and how the official files are split.

The seed's split: train = the first ``60,000 - val_size`` official training images,
validation = the last ``val_size`` (10,000 by default), test = the official 10,000.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jaxmlp.errors import ConfigError

IMAGE_SHAPE = (28, 28)
"""Height and width of an MNIST or Fashion-MNIST image."""


@dataclass(frozen=True)
class Split:
    """Examples of one split: images float32 ``(N, 784)`` in [0, 1], labels int32 ``(N,)``."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Dataset:
    """A dataset split into train, validation and test, and where it came from."""

    name: str
    train: Split
    validation: Split
    test: Split
    source: str
    class_names: tuple[str, ...]
    image_shape: tuple[int, int] = IMAGE_SHAPE
    identity: str | None = None
    """What the files were recognised as (see :mod:`jaxmlp.data.identity`); None for a
    seed pickle."""

    @property
    def num_classes(self) -> int:
        """The number of classes (10)."""
        return len(self.class_names)

    @property
    def splits(self) -> dict[str, Split]:
        """The three splits by name, in the order train, validation, test."""
        return {"train": self.train, "validation": self.validation, "test": self.test}


def pixels_to_unit(images: np.ndarray) -> np.ndarray:
    """Converts uint8 pixels to float32 in [0, 1] by dividing by 255."""
    return images.astype(np.float32) / np.float32(255)


def check_val_size(val_size: int, num_train: int) -> None:
    """Raises ConfigError unless ``0 <= val_size < num_train``."""
    if isinstance(val_size, bool) or not isinstance(val_size, (int, np.integer)):
        raise ConfigError(f"must be an integer, got {val_size!r}", setting="val_size")
    if not 0 <= val_size < num_train:
        raise ConfigError(
            f"must be in [0, {num_train}) for {num_train} training examples, got {val_size}",
            setting="val_size",
        )


def check_limit(limit: int | None) -> None:
    """Raises ConfigError unless ``limit`` is None or a positive integer."""
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ConfigError(f"must be a positive integer, got {limit!r}", setting="limit")


def split_train_validation(
    images: np.ndarray, labels: np.ndarray, val_size: int
) -> tuple[Split, Split]:
    """Splits the official training set: the last ``val_size`` examples validate."""
    check_val_size(val_size, len(labels))
    cut = len(labels) - val_size
    return Split(images[:cut], labels[:cut]), Split(images[cut:], labels[cut:])


def take_first(split: Split, limit: int | None) -> Split:
    """Returns the first ``limit`` examples of ``split`` (all of them when None)."""
    if limit is None or limit >= len(split):
        return split
    return Split(split.images[:limit], split.labels[:limit])


def class_counts(labels: np.ndarray, num_classes: int) -> list[int]:
    """Returns how many labels of each class 0..num_classes-1 there are."""
    return np.bincount(labels, minlength=num_classes)[:num_classes].tolist()
