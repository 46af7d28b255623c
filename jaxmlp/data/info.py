"""A summary of a loaded dataset, as a dict (for JSON) or as text (for people)."""

from __future__ import annotations

from typing import Any

from jaxmlp.data.splits import Dataset, class_counts


def dataset_summary(dataset: Dataset) -> dict[str, Any]:
    """Returns the dataset's name, source, shapes, and size and class counts per split."""
    return {
        "dataset": dataset.name,
        "source": dataset.source,
        "files": dataset.identity,
        "image_shape": list(dataset.image_shape),
        "num_classes": dataset.num_classes,
        "class_names": list(dataset.class_names),
        "splits": {
            name: {
                "size": len(split),
                "class_counts": class_counts(split.labels, dataset.num_classes),
            }
            for name, split in dataset.splits.items()
        },
    }


def identity_note(summary: dict[str, Any]) -> str:
    """``" (unrecognised files)"``, or nothing when the files are the dataset's own."""
    files = summary.get("files")
    return "" if files is None or files == summary["dataset"] else f" ({files})"


def format_summary(summary: dict[str, Any]) -> str:
    """Renders :func:`dataset_summary` as an aligned table, one row per split."""
    rows, cols = summary["image_shape"]
    names = summary["class_names"]
    header = ["split", "size", *names]
    table = [header] + [
        [split, str(info["size"]), *map(str, info["class_counts"])]
        for split, info in summary["splits"].items()
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        f"dataset: {summary['dataset']}" + identity_note(summary),
        f"source:  {summary['source']}",
        f"images:  {rows}x{cols}, {summary['num_classes']} classes",
        "",
    ]
    for row in table:
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
