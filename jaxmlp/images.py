"""MNIST-style preprocessing of a user's picture of a digit.

MNIST's digits were made by scaling each handwritten digit to fit a 20×20 box (keeping
its aspect ratio, antialiased) and placing it in a 28×28 field so that its centre of mass
is at the centre; ink is 1, background 0. :func:`load_digit` does the same to a PNG or
JPEG of any size and either polarity:

1. decode with Pillow (at most :data:`MAX_PIXELS`, and at most :data:`MAX_DECODED_BYTES`
   once decoded, checked from the header before decoding; JPEGs decoded at a reduced scale
   when large; EXIF rotation applied; transparency flattened onto a background that
   contrasts with the ink), shrink huge pictures to :data:`WORKING_SIDE` pixels, and take
   the luminance in [0, 1];
2. invert if the border is bright (dark digit on light paper), subtract the background
   level and stretch the ink to [0, 1];
3. crop to the bounding box of the ink, scale it to fit :data:`DIGIT_BOX` pixels
   (Lanczos), and paste it into the 28×28 field at the whole-pixel offset that puts its
   centre of mass nearest to :data:`CENTRE`.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageMode, ImageOps, UnidentifiedImageError

from jaxmlp.errors import InputFileError

MAX_PIXELS = 50_000_000
"""Larger pictures are refused (a guard against decompression bombs)."""
MAX_DECODED_BYTES = 64 << 20
"""The most memory one decoded picture may take (64 MiB), with its copy in the working
mode (L, RGBA or 32-bit I) when it needs one: width × height × bytes per pixel (bands ×
bytes per band, any bit depth; Pillow keeps 3 bands in 4 bytes) plus a pointer per row,
checked from the header before anything is decoded."""
ROW_POINTER_BYTES = 8
"""What Pillow keeps per row of a decoded image besides its pixels."""
WORKING_SIDE = 1024
"""Pictures are shrunk to at most this many pixels a side before the digit is located."""
IMAGE_SIDE = 28
DIGIT_BOX = 20
CENTRE = 14.0
"""Where MNIST's centres of mass lie, in pixel-index coordinates (mean over its test set)."""
MIN_CONTRAST = 0.1
"""The ink must differ from the background by at least this much, or the image is blank."""
INK_THRESHOLD = 0.1
"""Pixels above this fraction of the ink's contrast count towards its bounding box."""


def load_digit(path: str | os.PathLike) -> np.ndarray:
    """Reads a picture of one digit and preprocesses it like MNIST.

    Args:
        path: A PNG, JPEG or any other format Pillow reads.

    Returns:
        A ``(784,)`` float32 array in [0, 1], white digit on black, row-major 28×28.

    Raises:
        InputFileError: The file is missing, not an image, too large, or blank.
    """
    try:
        return preprocess_digit(read_grayscale(path)).reshape(-1)
    except InputFileError as error:
        raise InputFileError(f"image {path}: {error}") from None


def digit_from_bytes(data: bytes) -> np.ndarray:
    """:func:`load_digit` for an encoded image held in memory (a PNG drawn in a browser).

    Raises:
        InputFileError: The bytes are not an image, too large, or blank.
    """
    return preprocess_digit(decode_grayscale(io.BytesIO(data))).reshape(-1)


def read_grayscale(path: str | os.PathLike) -> np.ndarray:
    """Decodes an image file to its luminance, a float32 ``(H, W)`` array in [0, 1].

    Raises:
        InputFileError: The file is missing, unreadable, not an image, or too large.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError("no such file")
    if not path.is_file():
        raise InputFileError("not a file")
    return decode_grayscale(path)


def decode_grayscale(source: Path | BinaryIO) -> np.ndarray:
    """Decodes an image (a file path or a binary stream) to its luminance in [0, 1].

    Raises:
        InputFileError: Unreadable, not an image, or too large.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                check_pixel_count(image.size)
                image.draft(None, (WORKING_SIDE, WORKING_SIDE))
                check_decoded_size(image)
                ImageOps.exif_transpose(image, in_place=True)
                return grayscale_pixels(shrink_to_working_size(image))
    except UnidentifiedImageError:
        raise InputFileError(
            "not an image (expected PNG, JPEG or another format Pillow reads)"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputFileError(f"too large (more than {MAX_PIXELS:,} pixels)") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise InputFileError(f"could not be decoded ({error})") from None


def check_pixel_count(size: tuple[int, int]) -> None:
    """Raises InputFileError for images with no pixels or more than :data:`MAX_PIXELS`."""
    width, height = size
    if width < 1 or height < 1:
        raise InputFileError(f"has no pixels ({width}×{height})")
    if width * height > MAX_PIXELS:
        raise InputFileError(f"too large ({width}×{height} is more than {MAX_PIXELS:,} pixels)")


def pixel_bytes(mode: str) -> int:
    """The bytes Pillow keeps per pixel of an image of ``mode``: bands × bytes per band,
    3 bands kept in 4 bytes."""
    layout = ImageMode.getmode(mode)
    bands = len(layout.bands)
    return (4 if bands == 3 else bands) * int(layout.typestr[-1])


def decoded_bytes(size: tuple[int, int], mode: str) -> int:
    """The memory a decoded ``size`` image of ``mode`` takes: its pixels and row pointers."""
    width, height = size
    return height * (width * pixel_bytes(mode) + ROW_POINTER_BYTES)


def decoding_cost(image: Image.Image) -> int:
    """The memory an opened (not yet decoded) image will take: decoded, plus its copy in
    :func:`working_mode` when that differs."""
    cost = decoded_bytes(image.size, image.mode)
    mode = working_mode(image)
    return cost if mode == image.mode else cost + decoded_bytes(image.size, mode)


def check_decoded_size(image: Image.Image) -> None:
    """Raises InputFileError if decoding ``image`` would take over :data:`MAX_DECODED_BYTES`."""
    needed = decoding_cost(image)
    if needed > MAX_DECODED_BYTES:
        width, height = image.size
        raise InputFileError(
            f"too large to decode ({width}×{height} {image.mode} needs {needed / 2**20:,.0f} "
            f"MiB; the limit is {MAX_DECODED_BYTES / 2**20:,.0f} MiB)"
        )


def working_mode(image: Image.Image) -> str:
    """``"I"`` for 16- and 32-bit grayscale, ``"RGBA"`` with transparency, else ``"L"``."""
    if image.mode.startswith("I"):
        return "I"
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    return "RGBA" if has_alpha else "L"


def shrink_to_working_size(image: Image.Image) -> Image.Image:
    """Returns ``image`` as L, RGBA or 32-bit I, shrunk to at most :data:`WORKING_SIDE` a side.

    An image already in that mode is shrunk in place rather than copied.
    """
    mode = working_mode(image)
    converted = image if image.mode == mode else image.convert(mode)
    converted.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.LANCZOS)
    return converted


def grayscale_pixels(image: Image.Image) -> np.ndarray:
    """The luminance of an L, RGBA or 16-bit image as float32 in [0, 1].

    Transparent pixels are flattened onto black when the visible pixels are bright, onto
    white when they are dark, so that a digit drawn on a transparent canvas stays visible.
    """
    if image.mode.startswith("I"):
        return np.clip(np.asarray(image.convert("I"), np.float32) / 65535.0, 0.0, 1.0)
    if image.mode == "L":
        return np.asarray(image, np.float32) / 255.0
    rgba = np.asarray(image, np.float32) / 255.0
    luminance = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    alpha = rgba[..., 3]
    visible = float(alpha.sum())
    if visible == 0.0:
        return np.zeros_like(luminance)
    background = 0.0 if float((luminance * alpha).sum()) / visible > 0.5 else 1.0
    return luminance * alpha + background * (1.0 - alpha)


def preprocess_digit(gray: np.ndarray) -> np.ndarray:
    """Turns a grayscale picture of a digit into a 28×28 MNIST-style image.

    Args:
        gray: ``(H, W)`` luminance in [0, 1], either polarity.

    Returns:
        A float32 ``(28, 28)`` array in [0, 1]: white digit, black background, the ink's
        bounding box scaled to fit 20×20, its centre of mass at :data:`CENTRE`.

    Raises:
        InputFileError: The picture is blank (no ink stands out from the background).
    """
    ink = ink_intensity(gray)
    rows, cols = bounding_box(ink > INK_THRESHOLD)
    digit = fit_in_box(ink[rows, cols], DIGIT_BOX)
    return place_by_centre_of_mass(digit, IMAGE_SIDE, CENTRE)


def border_pixels(gray: np.ndarray) -> np.ndarray:
    """The pixels of the outermost rows and columns, as one flat array."""
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def has_light_background(gray: np.ndarray) -> bool:
    """Whether the picture is dark ink on light paper (its border is mostly bright)."""
    return float(np.median(border_pixels(gray))) > 0.5


def ink_intensity(gray: np.ndarray) -> np.ndarray:
    """Maps a picture to ink in [0, 1]: background 0, strongest ink 1, either polarity.

    Raises:
        InputFileError: The ink differs from the background by less than :data:`MIN_CONTRAST`.
    """
    ink = 1.0 - gray if has_light_background(gray) else gray
    background = float(np.median(border_pixels(ink)))
    contrast = float(ink.max()) - background
    if contrast < MIN_CONTRAST:
        raise InputFileError("is blank: no digit stands out from the background")
    return np.clip((ink - background) / contrast, 0.0, 1.0).astype(np.float32)


def bounding_box(mask: np.ndarray) -> tuple[slice, slice]:
    """The row and column slices of the smallest box holding every true pixel of ``mask``.

    Raises:
        InputFileError: ``mask`` has no true pixel.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise InputFileError("is blank: no digit stands out from the background")
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def fit_in_box(ink: np.ndarray, box: int) -> np.ndarray:
    """Scales ``ink`` (Lanczos) so that its longer side is ``box``, keeping its aspect ratio.

    The result is clipped to [0, 1] and stretched so that its strongest ink is 1.
    """
    height, width = ink.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    pixels = np.clip(np.asarray(resized, np.float32), 0.0, 1.0)
    return pixels / pixels.max()


def centre_of_mass(pixels: np.ndarray) -> tuple[float, float]:
    """The intensity-weighted mean ``(row, column)`` of a non-blank 2-D array."""
    total = float(pixels.sum())
    rows, cols = np.indices(pixels.shape)
    return float((rows * pixels).sum()) / total, float((cols * pixels).sum()) / total


def place_by_centre_of_mass(digit: np.ndarray, side: int, centre: float) -> np.ndarray:
    """Pastes ``digit`` into a black ``side``×``side`` field, its centre of mass near ``centre``.

    The offset is a whole number of pixels, clamped so that the digit stays in the field.
    """
    height, width = digit.shape
    row, col = centre_of_mass(digit)
    top = int(np.clip(round(centre - row), 0, side - height))
    left = int(np.clip(round(centre - col), 0, side - width))
    field = np.zeros((side, side), np.float32)
    field[top : top + height, left : left + width] = digit
    return field
