"""Evaluating a network: chunked jitted inference, confusion matrix, per-class scores.

One chunked forward pass serves every evaluation: training's per-epoch validation and
test totals (:func:`make_split_totals`) and the reports of ``evaluate``, ``predict`` and
``plot`` (:func:`log_probabilities`). A split is run in chunks of :data:`EVAL_CHUNK`
examples inside one compiled function, so its activations never exceed one chunk's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp.model import Params, forward

EVAL_CHUNK = 10_000
"""Examples per chunk of the evaluation's forward pass."""


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


def equal_chunks(rows: int, most: int) -> tuple[int, int]:
    """``(count, size)``: the fewest chunks of at most ``most`` rows that, all of one size,
    hold ``rows`` (the last ``count * size - rows`` rows of the last chunk are padding)."""
    count = -(-rows // most)
    return count, -(-rows // count)


def map_in_chunks(fn: Callable[[Any], Any], tree: Any, chunk: int = EVAL_CHUNK) -> Any:
    """``fn`` over the leading axis of every leaf of ``tree``, at most ``chunk`` rows at a time.

    Inside ``jit``: the rows are cut into :func:`equal_chunks`, run in one ``lax.map`` (or
    one call when a chunk holds them all), so the program holds ``fn`` once whatever the
    number of rows. The last chunk is filled up with copies of the first rows, whose
    outputs are dropped: ``fn`` must treat rows independently and map a chunk (a tree of
    leaves with ``size`` rows) to a tree of outputs with as many rows.
    """
    rows = jax.tree.leaves(tree)[0].shape[0]
    count, size = equal_chunks(rows, chunk)
    if count <= 1:
        return fn(tree)
    padding = count * size - rows

    def cut(a):
        padded = jnp.concatenate([a, a[:padding]]) if padding else a
        return padded.reshape(count, size, *a.shape[1:])

    mapped = jax.lax.map(fn, jax.tree.map(cut, tree))
    return jax.tree.map(lambda a: a.reshape(count * size, *a.shape[2:])[:rows], mapped)


def chunked_log_probabilities(
    params: Params, images: jax.Array, shard_batch=lambda x: x, chunk: int = EVAL_CHUNK
) -> jax.Array:
    """``log softmax`` of the network's logits for every image, chunk by chunk."""
    return map_in_chunks(
        lambda x: jax.nn.log_softmax(forward(params, shard_batch(x)), axis=-1), images, chunk
    )


log_probabilities = jax.jit(chunked_log_probabilities, static_argnames=("shard_batch", "chunk"))
"""The compiled :func:`chunked_log_probabilities`."""


def make_split_totals(shard_batch=lambda x: x, chunk: int = EVAL_CHUNK):
    """``totals(params, images, labels) -> (loss_sum, correct)``, compiled.

    ``loss_sum`` adds up the cross-entropy of every example, ``correct`` counts the
    examples whose most probable class is the label. ``shard_batch`` lays out each chunk,
    as in training.
    """

    def totals(params: Params, images: jax.Array, labels: jax.Array):
        log_probs = chunked_log_probabilities(params, images, shard_batch, chunk)
        picked = jnp.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]
        correct = jnp.sum(jnp.argmax(log_probs, axis=-1) == labels)
        return -jnp.sum(picked), correct

    return jax.jit(totals)


def evaluate_params(params: Params, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Runs the network on ``images`` and scores it against integer ``labels``."""
    log_probs = np.asarray(log_probabilities(params, jnp.asarray(images, jnp.float32)))
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
    return np.exp(np.asarray(log_probabilities(params, jnp.asarray(images, jnp.float32))))


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
