"""Recipes: named starting points for a run's settings (setting name → value).

:func:`jaxmlp.settings.resolve_settings` layers a preset under a checkpoint's settings and
the values given explicitly.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "seed": {},
    "best": {
        "sizes": (784, 800, 800, 10),
        "init": "he",
        "optimizer": "momentum",
        "lr": 0.05,
        "batch_size": 128,
        "schedule": "cosine",
        "dropout": 0.2,
        "augment_shift": 1,
        "epochs": 15,
        "val_size": 0,
    },
}
"""Named starting points: ``seed`` is the seed document's experiment (the defaults);
``best`` is the README's recipe for ≥ 99 % on MNIST (other datasets: :data:`DATASET_PRESETS`)."""

DATASET_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "best": {
        "fashion-mnist": {
            "sizes": (784, 800, 800, 10),
            "init": "he",
            "optimizer": "adam",
            "lr": 0.001,
            "batch_size": 128,
            "schedule": "cosine",
            "dropout": 0.1,
            "label_smoothing": 0.1,
            "augment_flip": True,
            "epochs": 28,
            "val_size": 0,
        },
    },
}
"""Presets that depend on the dataset: preset name → dataset → its settings, which replace
:data:`PRESETS`' for that dataset. ``best`` on Fashion-MNIST is the README's recipe, chosen
on its validation split among recipes that train in under 3 minutes on 2 cores
(docs/results.md)."""


def preset_values(preset: str, dataset: str) -> dict[str, Any]:
    """The settings preset ``preset`` gives a run on ``dataset`` (a copy)."""
    return dict(DATASET_PRESETS.get(preset, {}).get(dataset, PRESETS[preset]))


PRESET_NAMES = tuple(PRESETS)
