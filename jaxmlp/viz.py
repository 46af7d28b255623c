"""Drawing digits and evaluation results: terminal (Unicode half-blocks, rich tables) and PNG.

In the terminal each character cell shows two pixels stacked: ``▀`` with the upper pixel
as foreground colour and the lower one as background colour. Without colour (output
piped to a file, ``NO_COLOR`` set, ``TERM=dumb``) each pixel is on or off and the cell
is one of `` ``, ``▀``, ``▄``, ``█``, which any UTF-8 terminal or file shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from rich import box
from rich.color import Color
from rich.columns import Columns
from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text

from jaxmlp.display import percent
from jaxmlp.evaluation import ClassScores, Evaluation, Prediction, averaged_scores

UPPER_HALF, LOWER_HALF, FULL_BLOCK = "▀", "▄", "█"
MONO_CELLS = {
    (False, False): " ",
    (True, False): UPPER_HALF,
    (False, True): LOWER_HALF,
    (True, True): FULL_BLOCK,
}
"""The character for a (upper pixel on, lower pixel on) pair when there is no colour."""
MONO_THRESHOLD = 0.5
GRID_SCALE = 4
GRID_GAP = 8
CAPTION_FONT_SIZE = 14


def as_square(image: np.ndarray) -> np.ndarray:
    """A flat ``(n*n,)`` or ``(H, W)`` image as a 2-D float array."""
    pixels = np.asarray(image, np.float32)
    if pixels.ndim == 1:
        side = math.isqrt(pixels.size)
        pixels = pixels.reshape(side, side)
    return pixels


def row_pairs(image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The image's rows in (upper, lower) pairs; an odd last row is paired with black."""
    pixels = as_square(image)
    if len(pixels) % 2:
        pixels = np.vstack([pixels, np.zeros((1, pixels.shape[1]), pixels.dtype)])
    return [(pixels[row], pixels[row + 1]) for row in range(0, len(pixels), 2)]


def halfblock_lines(image: np.ndarray, threshold: float = MONO_THRESHOLD) -> list[str]:
    """The image as lines of ``▀▄█`` and spaces, a pixel being on above ``threshold``."""
    return [
        "".join(
            MONO_CELLS[bool(up > threshold), bool(down > threshold)]
            for up, down in zip(upper, lower)
        )
        for upper, lower in row_pairs(image)
    ]


def gray(value: float) -> Color:
    """The gray of brightness ``value`` in [0, 1]."""
    level = round(float(np.clip(value, 0.0, 1.0)) * 255)
    return Color.from_rgb(level, level, level)


def halfblock_text(image: np.ndarray) -> Text:
    """The image as coloured ``▀`` cells: upper pixel as foreground, lower as background."""
    text = Text(no_wrap=True, overflow="crop")
    for index, (upper, lower) in enumerate(row_pairs(image)):
        if index:
            text.append("\n")
        for up, down in zip(upper, lower):
            text.append(UPPER_HALF, Style(color=gray(up), bgcolor=gray(down)))
    return text


def digit_text(image: np.ndarray, *, color: bool) -> Text:
    """The image for a terminal: coloured half-blocks if ``color``, else framed on/off ones."""
    if color:
        return halfblock_text(image)
    return Text("\n".join(framed(halfblock_lines(image))), no_wrap=True, overflow="crop")


def framed(lines: list[str]) -> list[str]:
    """``lines`` (all of one width) inside a thin box, so that a blank margin stays visible."""
    width = len(lines[0])
    rule = "─" * width
    return [f"┌{rule}┐", *(f"│{line}│" for line in lines), f"└{rule}┘"]


def captioned_digit(image: np.ndarray, caption: str, *, color: bool) -> Text:
    """The image with ``caption`` on the line below it, cut to the image's width."""
    width = as_square(image).shape[1]
    label = caption if len(caption) <= width else caption[: width - 1] + "…"
    return Text.assemble(digit_text(image, color=color), "\n", (label, "bold"))


def digit_gallery(images: Sequence[np.ndarray], captions: Sequence[str], *, color: bool) -> Columns:
    """Captioned digits side by side, as many a row as the terminal is wide."""
    return Columns(
        [captioned_digit(image, caption, color=color) for image, caption in zip(images, captions)],
        padding=(1, 2),
    )


def caption_font(size: int = CAPTION_FONT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at ``size`` pixels (a bitmap font when FreeType is absent)."""
    return ImageFont.load_default(size=size)


def fit_caption(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text``, shortened with an ellipsis until it is at most ``width`` pixels wide."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def digit_grid_image(
    images: Sequence[np.ndarray],
    captions: Sequence[str],
    *,
    scale: int = GRID_SCALE,
    columns: int | None = None,
) -> Image.Image:
    """A grayscale picture of the digits in a grid, each upscaled ×``scale`` with its caption.

    Args:
        images: Flat ``(784,)`` or ``(28, 28)`` arrays in [0, 1], white on black as in MNIST.
        captions: One line under each digit (cut with "…" to the digit's width).
        scale: Each pixel becomes a ``scale``×``scale`` square (nearest neighbour).
        columns: Digits per row; by default up to 10.

    Returns:
        A mode ``"L"`` image: digits on a white page, black captions.
    """
    tiles = [as_square(image) for image in images]
    columns = columns or min(len(tiles), 10)
    rows = math.ceil(len(tiles) / columns)
    tile_height, tile_width = (side * scale for side in tiles[0].shape)
    font = caption_font()
    caption_height = CAPTION_FONT_SIZE + 6
    cell_width, cell_height = tile_width + GRID_GAP, tile_height + caption_height + GRID_GAP
    page = Image.new("L", (columns * cell_width + GRID_GAP, rows * cell_height + GRID_GAP), 255)
    draw = ImageDraw.Draw(page)
    for index, (tile, caption) in enumerate(zip(tiles, captions)):
        left = GRID_GAP + (index % columns) * cell_width
        top = GRID_GAP + (index // columns) * cell_height
        digit = Image.fromarray(np.round(np.clip(tile, 0, 1) * 255).astype(np.uint8))
        page.paste(digit.resize((tile_width, tile_height), Image.Resampling.NEAREST), (left, top))
        label = fit_caption(draw, caption, font, tile_width)
        draw.text(
            (left + tile_width / 2, top + tile_height + 3), label, fill=0, font=font, anchor="ma"
        )
    return page


def class_scores_table(scores: ClassScores, class_names: Sequence[str]) -> Table:
    """Precision, recall, F1 and support per class, then the macro and weighted averages."""
    table = Table(title="Per-class scores", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("class")
    for heading in ("precision", "recall", "f1", "support"):
        table.add_column(heading, justify="right")
    for label, name in enumerate(class_names):
        table.add_row(
            class_label(label, name),
            f"{scores.precision[label]:.4f}",
            f"{scores.recall[label]:.4f}",
            f"{scores.f1[label]:.4f}",
            f"{int(scores.support[label]):,}",
        )
    table.add_section()
    total = f"{int(scores.support.sum()):,}"
    for kind, values in averaged_scores(scores).items():
        table.add_row(
            f"{kind} avg",
            *(f"{values[name]:.4f}" for name in ("precision", "recall", "f1")),
            total,
            style="italic",
        )
    return table


def class_label(label: int, name: str) -> str:
    """``"3"`` for MNIST's class 3, ``"0 T-shirt/top"`` where the name is not the number."""
    return name if name == str(label) else f"{label} {name}"


def confusion_table(confusion: np.ndarray, class_names: Sequence[str]) -> Table:
    """The confusion matrix: rows true classes, columns predicted, the diagonal in bold green.

    Off-diagonal counts are red, brighter the larger they are among the errors; zeros dim.
    """
    table = Table(
        title="Confusion matrix (rows: true class, columns: predicted class)",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        padding=(0, 1),
    )
    table.add_column("true")
    for label in range(len(class_names)):
        table.add_column(str(label), justify="right")
    errors = confusion - np.diag(np.diag(confusion))
    largest_error = max(int(errors.max()), 1)
    for label, name in enumerate(class_names):
        cells = [
            Text(str(count), style=confusion_style(label == predicted, count, largest_error))
            for predicted, count in enumerate(confusion[label])
        ]
        table.add_row(class_label(label, name), *cells)
    return table


def confusion_style(on_diagonal: bool, count: int, largest_error: int) -> str:
    """The style of one confusion-matrix cell."""
    if on_diagonal:
        return "bold green"
    if count == 0:
        return "dim"
    return "bold red" if count >= largest_error / 2 else "red"


def summary_text(evaluation: Evaluation, *, title: str) -> Text:
    """``title`` then accuracy (correct / total) and mean loss, on two lines."""
    return Text.assemble(
        (title, "bold"),
        "\n",
        "accuracy ",
        (f"{percent(evaluation.accuracy)}%", "bold"),
        f" ({evaluation.correct:,} / {evaluation.total:,})   loss ",
        (f"{evaluation.loss:.4f}", "bold"),
    )


def evaluation_view(evaluation: Evaluation, class_names: Sequence[str], *, title: str) -> Group:
    """The summary, the per-class table and the confusion matrix, for the terminal."""
    return Group(
        summary_text(evaluation, title=title),
        class_scores_table(evaluation.scores, class_names),
        confusion_table(evaluation.confusion, class_names),
    )


def probability_bar(probability: float, width: int = 20) -> str:
    """A bar of ``█`` proportional to ``probability``, ``width`` characters at 1."""
    return FULL_BLOCK * round(probability * width)


def top_classes_table(
    classes: Sequence[int], probabilities: Sequence[float], class_names: Sequence[str]
) -> Table:
    """The most probable classes, best first, with their probabilities and a bar each."""
    table = Table(box=None, show_header=False, padding=(0, 1))
    table.add_column(justify="left")
    table.add_column(justify="right")
    table.add_column()
    for rank, (label, probability) in enumerate(zip(classes, probabilities)):
        style = "bold" if rank == 0 else ""
        table.add_row(
            Text(class_label(int(label), class_names[int(label)]), style=style),
            Text(f"{100 * float(probability):6.2f}%", style=style),
            Text(probability_bar(float(probability)), style="green" if rank == 0 else "dim"),
        )
    return table


def prediction_heading(prediction: Prediction, class_names: Sequence[str]) -> Text:
    """The image's source and, when its label is known, the label and whether it was hit."""
    heading = Text(prediction.source, style="bold")
    if prediction.label is not None:
        hit = int(prediction.classes[0]) == prediction.label
        heading.append(f"  label {class_label(prediction.label, class_names[prediction.label])}  ")
        heading.append("✓ correct" if hit else "✗ wrong", style="green" if hit else "bold red")
    return heading


def prediction_view(
    prediction: Prediction, class_names: Sequence[str], *, show_image: bool, color: bool
) -> Group:
    """One image's block: heading, then its top classes (beside the image if ``show_image``)."""
    scores = top_classes_table(prediction.classes, prediction.probabilities, class_names)
    if not show_image:
        return Group(prediction_heading(prediction, class_names), scores, Text(""))
    layout = Table.grid(padding=(0, 3))
    layout.add_row(digit_text(prediction.pixels, color=color), scores)
    return Group(prediction_heading(prediction, class_names), layout, Text(""))
