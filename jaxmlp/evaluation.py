"""Evaluating a trained network: batched jitted inference, confusion matrix, per-class scores.

Also the glue between a checkpoint and the data it was trained on: which dataset and
class names it uses, and a check that it takes 28×28 images.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import numpy as np

from jaxmlp.checkpoint import Checkpoint, load_checkpoint
from jaxmlp.errors import CheckpointError, ConfigError
from jaxmlp.model import Params, forward, layer_sizes

EVAL_BATCH_SIZE = 10_000
"""Examples per jitted forward call; a 10,000-example split takes one call."""
IMAGE_PIXELS = 28 * 28
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class ClassScores:
    """Per-class scores, each an array indexed by class."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    """How many examples of the class there are."""


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """A network's outputs on a split of examples and the scores derived from them."""

    loss: float
    """Mean cross-entropy."""
    labels: np.ndarray
    predictions: np.ndarray
    confidences: np.ndarray
    """The probability the network gave its predicted class, per example."""
    confusion: np.ndarray
    """``confusion[true, predicted]`` counts examples."""

    @property
    def total(self) -> int:
        """The number of examples."""
        return int(self.labels.size)

    @property
    def correct(self) -> int:
        """The number of examples whose prediction is the label."""
        return int(np.trace(self.confusion))

    @property
    def accuracy(self) -> float:
        """The fraction of correct predictions."""
        return self.correct / self.total

    @property
    def scores(self) -> ClassScores:
        """Precision, recall, F1 and support of each class."""
        return class_scores(self.confusion)


@jax.jit
def log_probabilities(params: Params, images: jax.Array) -> jax.Array:
    """``log softmax`` of the network's logits for a batch of images."""
    return jax.nn.log_softmax(forward(params, images), axis=-1)


def batched_log_probabilities(
    params: Params, images: np.ndarray, batch_size: int = EVAL_BATCH_SIZE
) -> np.ndarray:
    """Log-probabilities of every image, in jitted batches of one shape.

    The last batch is padded with zeros to ``batch_size`` (then trimmed), so that a
    split of any size compiles the forward pass at most once.
    """
    size = min(batch_size, len(images))
    outputs = []
    for start in range(0, len(images), size):
        batch = images[start : start + size]
        padded = np.zeros((size, images.shape[1]), np.float32)
        padded[: len(batch)] = batch
        outputs.append(np.asarray(log_probabilities(params, padded))[: len(batch)])
    return np.concatenate(outputs)


def evaluate_params(
    params: Params, images: np.ndarray, labels: np.ndarray, batch_size: int = EVAL_BATCH_SIZE
) -> Evaluation:
    """Runs the network on ``images`` and scores it against integer ``labels``."""
    log_probs = batched_log_probabilities(params, images, batch_size)
    labels = np.asarray(labels, np.int64)
    predictions = log_probs.argmax(axis=1)
    rows = np.arange(len(labels))
    return Evaluation(
        loss=float(-log_probs[rows, labels].mean()),
        labels=labels,
        predictions=predictions,
        confidences=np.exp(log_probs[rows, predictions]),
        confusion=confusion_matrix(labels, predictions, log_probs.shape[1]),
    )


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``(num_classes, num_classes)`` counts: row = true class, column = predicted class."""
    flat = np.asarray(labels, np.int64) * num_classes + np.asarray(predictions, np.int64)
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ``numerator / denominator``, 0 where the denominator is 0."""
    numerator = np.asarray(numerator, np.float64)
    denominator = np.asarray(denominator, np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator != 0)


def class_scores(confusion: np.ndarray) -> ClassScores:
    """Precision, recall, F1 and support per class; a score with a zero denominator is 0."""
    hits = np.diag(confusion)
    precision = safe_divide(hits, confusion.sum(axis=0))
    recall = safe_divide(hits, confusion.sum(axis=1))
    return ClassScores(
        precision=precision,
        recall=recall,
        f1=safe_divide(2 * precision * recall, precision + recall),
        support=confusion.sum(axis=1),
    )


def averaged_scores(scores: ClassScores) -> dict[str, dict[str, float]]:
    """Macro (mean over classes) and weighted (by support) precision, recall and F1."""
    total = max(int(scores.support.sum()), 1)
    names = ("precision", "recall", "f1")
    return {
        "macro": {name: float(getattr(scores, name).mean()) for name in names},
        "weighted": {
            name: float((getattr(scores, name) * scores.support).sum() / total) for name in names
        },
    }


def most_confident_mistakes(evaluation: Evaluation, count: int) -> np.ndarray:
    """Indices of up to ``count`` misclassified examples, most confident first."""
    wrong = np.flatnonzero(evaluation.predictions != evaluation.labels)
    order = np.argsort(-evaluation.confidences[wrong], kind="stable")
    return wrong[order[:count]]


def top_classes(probabilities: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``top`` most probable classes of each row, and their probabilities, best first."""
    order = np.argsort(-probabilities, axis=-1, kind="stable")[..., :top]
    return order, np.take_along_axis(probabilities, order, axis=-1)


def predict_probabilities(params: Params, images: np.ndarray) -> np.ndarray:
    """Class probabilities of each image ``(N, 784)``, from one jitted forward pass per batch."""
    return np.exp(batched_log_probabilities(params, np.asarray(images, np.float32)))


def evaluation_report(
    evaluation: Evaluation, class_names: tuple[str, ...], **context: Any
) -> dict[str, Any]:
    """A JSON-ready summary: ``context`` (checkpoint, split, ...) then every score."""
    scores = evaluation.scores
    return {
        **context,
        "examples": evaluation.total,
        "loss": evaluation.loss,
        "accuracy": evaluation.accuracy,
        "correct": evaluation.correct,
        "per_class": [
            {
                "class": label,
                "name": name,
                "precision": float(scores.precision[label]),
                "recall": float(scores.recall[label]),
                "f1": float(scores.f1[label]),
                "support": int(scores.support[label]),
            }
            for label, name in enumerate(class_names)
        ],
        **{f"{kind}_avg": values for kind, values in averaged_scores(scores).items()},
        "confusion_matrix": evaluation.confusion.tolist(),
    }


def load_image_classifier(path: str | os.PathLike) -> Checkpoint:
    """Loads a checkpoint and checks that it classifies 28×28 images into its dataset's classes.

    Raises:
        CheckpointError: The file is not a checkpoint, or its network does not fit.
    """
    checkpoint = load_checkpoint(path)
    sizes = layer_sizes(checkpoint.params)
    if sizes[0] != IMAGE_PIXELS:
        raise CheckpointError(
            f"checkpoint {path} takes {sizes[0]} inputs, but images have "
            f"28×28 = {IMAGE_PIXELS} pixels"
        )
    expected = len(class_names_of(checkpoint))
    if sizes[-1] != expected:
        raise CheckpointError(
            f"checkpoint {path} has {sizes[-1]} outputs, but {dataset_name_of(checkpoint)} "
            f"has {expected} classes"
        )
    return checkpoint


def dataset_name_of(checkpoint: Checkpoint) -> str:
    """The dataset a checkpoint was trained on (``mnist`` when its config does not say)."""
    return str(checkpoint.config.get("dataset", "mnist"))


def class_names_of(checkpoint: Checkpoint) -> tuple[str, ...]:
    """The class names of the checkpoint's dataset, by label."""
    from jaxmlp.data.sources import get_spec

    return get_spec(dataset_name_of(checkpoint)).class_names


def load_training_data(checkpoint: Checkpoint, data_dir: str | os.PathLike | None = None):
    """Loads the checkpoint's dataset split as in training (same ``val_size``).

    Args:
        checkpoint: Its config names the dataset, and may hold ``data_dir`` and ``val_size``.
        data_dir: Overrides the config's ``data_dir``.

    Returns:
        A :class:`jaxmlp.data.Dataset`.
    """
    from jaxmlp.data import load_dataset

    config = checkpoint.config
    return load_dataset(
        dataset_name_of(checkpoint),
        data_dir=data_dir if data_dir is not None else config.get("data_dir"),
        val_size=int(config.get("val_size", 10_000)),
    )


def split_of(dataset: Any, name: str):
    """The split ``name`` of ``dataset``; raises ConfigError if it is unknown or empty."""
    if name not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got {name!r}")
    split = getattr(dataset, name)
    if len(split.labels) == 0:
        raise ConfigError(f"the {name} split of {dataset.name} is empty (trained with val_size 0?)")
    return split


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The most probable classes of one image, best first."""

    source: str
    """Where the image came from: a file name, or e.g. ``test #17``."""
    pixels: np.ndarray
    """The ``(784,)`` image the network saw."""
    classes: np.ndarray
    probabilities: np.ndarray
    label: int | None = None
    """The true class, when known."""

    def to_dict(self, class_names: tuple[str, ...]) -> dict[str, Any]:
        """A JSON-ready record: source, label and the top classes with probabilities."""
        return {
            "source": self.source,
            "label": self.label,
            "top": [
                {"class": int(label), "name": class_names[int(label)], "probability": float(p)}
                for label, p in zip(self.classes, self.probabilities)
            ],
        }


def predict_images(
    params: Params,
    pixels: np.ndarray,
    sources: list[str],
    top: int,
    labels: np.ndarray | None = None,
) -> list[Prediction]:
    """The ``top`` most probable classes of each image, from one batched forward pass.

    Args:
        params: The network.
        pixels: ``(N, 784)`` images in [0, 1].
        sources: A name for each image.
        top: How many classes to keep (at most the number of classes).
        labels: The true classes, if known.
    """
    probabilities = predict_probabilities(params, pixels)
    classes, best = top_classes(probabilities, min(top, probabilities.shape[1]))
    return [
        Prediction(
            source=source,
            pixels=np.asarray(pixels[row]),
            classes=classes[row],
            probabilities=best[row],
            label=None if labels is None else int(labels[row]),
        )
        for row, source in enumerate(sources)
    ]


def example_indices(
    indices: list[int] | None, count: int | None, size: int, split: str
) -> list[int]:
    """Which examples of a split of ``size`` to take.

    Args:
        indices: Explicit indices; a single one with ``count`` starts a run of ``count``.
        count: How many consecutive examples (from index 0 when no index is given).
        size: The number of examples in the split.
        split: The split's name, for error messages.

    Raises:
        ConfigError: Several indices together with ``count``, or an index out of range.
    """
    indices = list(indices or [])
    if len(indices) > 1 and count is not None:
        raise ConfigError("give several --index values or one --index with --count, not both")
    if count is not None:
        start = indices[0] if indices else 0
        indices = list(range(start, start + count))
    indices = indices or [0]
    outside = [index for index in indices if not 0 <= index < size]
    if outside:
        raise ConfigError(
            f"example {outside[0]} is out of range: the {split} split has {size:,} examples "
            f"(indices 0 to {size - 1})"
        )
    return indices
