"""MNIST-style preprocessing of user pictures (jaxmlp.images)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from jaxmlp import images
from jaxmlp.errors import InputFileError


def rerender(
    digit: np.ndarray, size=(200, 160), side=140, offset=(30, 10), invert=True
) -> Image.Image:
    """An MNIST digit scaled to ``side`` pixels on a ``size`` canvas, black on white if
    ``invert``."""
    pixels = digit.reshape(28, 28)
    ink = Image.fromarray(np.round(255 * pixels).astype(np.uint8))
    big = np.asarray(ink.resize((side, side), Image.Resampling.BICUBIC), np.uint8)
    canvas = np.zeros(size[::-1], np.uint8)
    canvas[offset[1] : offset[1] + side, offset[0] : offset[0] + side] = big
    return Image.fromarray(255 - canvas if invert else canvas)


def canvas_with_rectangle(shape, top, left, height, width, ink=1.0, background=0.0) -> np.ndarray:
    """A grayscale canvas with one filled rectangle."""
    gray = np.full(shape, background, np.float32)
    gray[top : top + height, left : left + width] = ink
    return gray


def error_up_to_one_pixel_shift(pixels: np.ndarray, original: np.ndarray) -> float:
    """The mean absolute difference of two 28×28 images, at the best shift by at most a pixel.

    Centring by centre of mass rounds to whole pixels, and MNIST's own centring rounded a
    slightly different antialiasing: a digit may come back one pixel off.
    """
    moved, fixed = pixels.reshape(28, 28), original.reshape(28, 28)
    return min(
        float(np.abs(np.roll(moved, (down, right), axis=(0, 1)) - fixed).mean())
        for down in (-1, 0, 1)
        for right in (-1, 0, 1)
    )


def ink_box(pixels: np.ndarray, threshold: float = 0.3) -> tuple[int, int]:
    """Height and width of the box around pixels above ``threshold``."""
    rows = np.flatnonzero((pixels > threshold).any(axis=1))
    cols = np.flatnonzero((pixels > threshold).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


@pytest.fixture(scope="module")
def mnist_digits(mnist) -> np.ndarray:
    return mnist.test.images[:30]


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_rerendered_mnist_digit_comes_back_close_to_the_original(mnist_digits, tmp_path, suffix):
    for number, digit in enumerate(mnist_digits):
        path = tmp_path / f"digit{number}.{suffix}"
        rerender(digit).save(path)
        pixels = images.load_digit(path)
        assert pixels.shape == (784,) and pixels.dtype == np.float32
        assert np.abs(pixels - digit).mean() < 0.1
        assert error_up_to_one_pixel_shift(pixels, digit) < 0.05


def test_polarity_is_detected(mnist_digits, tmp_path):
    rerender(mnist_digits[0], invert=True).save(tmp_path / "dark_on_light.png")
    rerender(mnist_digits[0], invert=False).save(tmp_path / "light_on_dark.png")
    dark = images.load_digit(tmp_path / "dark_on_light.png")
    light = images.load_digit(tmp_path / "light_on_dark.png")
    np.testing.assert_allclose(dark, light, atol=1e-2)


def test_dark_digit_on_transparent_canvas(mnist_digits, tmp_path):
    ink = np.asarray(rerender(mnist_digits[1], invert=False))
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., 3] = ink
    Image.fromarray(rgba).save(tmp_path / "transparent.png")
    rerender(mnist_digits[1], invert=True).save(tmp_path / "opaque.png")
    np.testing.assert_allclose(
        images.load_digit(tmp_path / "transparent.png"),
        images.load_digit(tmp_path / "opaque.png"),
        atol=2e-2,
    )


@pytest.mark.parametrize(("height", "width"), [(120, 40), (40, 120), (90, 90)])
def test_aspect_ratio_is_kept_and_longer_side_is_20(height, width):
    pixels = images.preprocess_digit(canvas_with_rectangle((300, 260), 50, 70, height, width))
    rows, cols = ink_box(pixels)
    assert max(rows, cols) == images.DIGIT_BOX
    assert abs(rows / cols - height / width) < 0.15 * height / width


def test_centre_of_mass_of_an_l_shape_lands_at_the_centre():
    gray = canvas_with_rectangle((200, 200), 20, 20, 150, 20)
    gray[150:170, 20:120] = 1.0
    row, col = images.centre_of_mass(images.preprocess_digit(gray))
    assert abs(row - 14) <= 1 and abs(col - 14) <= 1


@settings(max_examples=40, deadline=None)
@given(
    top=st.integers(0, 60),
    left=st.integers(0, 60),
    height=st.integers(3, 60),
    width=st.integers(3, 60),
    light_background=st.booleans(),
)
def test_any_rectangle_becomes_a_centred_mnist_digit(top, left, height, width, light_background):
    ink, background = (0.1, 0.95) if light_background else (0.9, 0.05)
    gray = canvas_with_rectangle((130, 125), top, left, height, width, ink, background)
    pixels = images.preprocess_digit(gray)
    assert pixels.shape == (28, 28)
    assert pixels.min() >= 0.0 and pixels.max() == pytest.approx(1.0)
    row, col = images.centre_of_mass(pixels)
    assert abs(row - 14) <= 1 and abs(col - 14) <= 1


@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_blank_image_is_an_error(tmp_path, level):
    Image.new("L", (64, 48), int(255 * level)).save(tmp_path / "blank.png")
    with pytest.raises(InputFileError, match="blank"):
        images.load_digit(tmp_path / "blank.png")


def test_faint_noise_is_blank():
    noise = np.random.default_rng(0).uniform(0.9, 0.95, (50, 50)).astype(np.float32)
    with pytest.raises(InputFileError, match="blank"):
        images.preprocess_digit(noise)


def test_fully_transparent_image_is_blank(tmp_path):
    Image.new("RGBA", (40, 40), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    with pytest.raises(InputFileError, match="blank"):
        images.load_digit(tmp_path / "clear.png")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not an image"),
        (b"hello, world\n", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "not an image|could not be decoded"),
    ],
)
def test_files_that_are_not_images(tmp_path, content, message):
    path = tmp_path / "fake.png"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=message) as error:
        images.load_digit(path)
    assert str(error.value).startswith(f"image {path}: ")
    assert "\n" not in str(error.value)


def test_truncated_png(mnist_digits, tmp_path):
    rerender(mnist_digits[0]).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match=r"could not be decoded|not an image"):
        images.load_digit(tmp_path / "cut.png")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        images.load_digit(tmp_path / "absent.png")
    with pytest.raises(InputFileError, match="not a file"):
        images.load_digit(tmp_path)


@pytest.mark.parametrize("size", [(8000, 7000), (12000, 8000)])
def test_huge_image_is_refused_before_decoding(tmp_path, size):
    Image.new("1", size).save(tmp_path / "huge.png")
    with pytest.raises(InputFileError, match="too large"):
        images.load_digit(tmp_path / "huge.png")


def test_large_photo_is_shrunk_before_processing(tmp_path):
    gray = canvas_with_rectangle((3000, 2500), 1000, 1000, 900, 300, ink=0.0, background=1.0)
    Image.fromarray(np.round(255 * gray).astype(np.uint8)).save(tmp_path / "photo.png")
    rows, cols = ink_box(images.load_digit(tmp_path / "photo.png").reshape(28, 28))
    assert (rows, cols) in {(20, 7), (20, 6)}


def png_header_only(width: int, height: int, bit_depth: int, color_type: int) -> bytes:
    """A PNG whose header declares ``width``×``height`` but whose data is a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data).to_bytes(4, "big")
        return len(data).to_bytes(4, "big") + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    data = zlib.compress(bytes(64))
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


@pytest.mark.parametrize(
    ("width", "height", "bit_depth", "color_type", "message"),
    [
        (1, 50_000_000, 8, 0, "1×50000000 L needs 429 MiB"),
        (7000, 7000, 16, 0, "7000×7000 I;16 needs 280 MiB"),
        (4200, 4200, 8, 2, "4200×4200 RGB needs 84 MiB"),
        (5000, 5000, 8, 6, "5000×5000 RGBA needs 95 MiB"),
    ],
)
def test_decoding_cost_is_checked_from_the_header_at_any_bit_depth(
    width, height, bit_depth, color_type, message
):
    data = png_header_only(width, height, bit_depth, color_type)
    with pytest.raises(InputFileError) as caught:
        images.digit_from_bytes(data)
    assert str(caught.value) == f"too large to decode ({message}; the limit is 64 MiB)"


def test_a_palette_image_with_transparency_counts_its_rgba_copy(tmp_path, monkeypatch):
    picture = Image.new("P", (300, 300))
    picture.info["transparency"] = 0
    monkeypatch.setattr(images, "MAX_DECODED_BYTES", 300 * (300 + 8) + 1)
    picture.save(tmp_path / "palette.png", transparency=0)
    with pytest.raises(InputFileError, match=r"300×300 P needs 0 MiB"):
        images.load_digit(tmp_path / "palette.png")


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(tmp_path, monkeypatch):
    gray = canvas_with_rectangle((1200, 1200), 300, 500, 600, 200, ink=0.0, background=1.0)
    Image.fromarray(np.round(255 * gray).astype(np.uint8)).convert("RGB").save(
        tmp_path / "photo.jpg", quality=90
    )
    monkeypatch.setattr(images, "MAX_DECODED_BYTES", 1 << 20)
    monkeypatch.setattr(images, "WORKING_SIDE", 256)
    rows, cols = ink_box(images.load_digit(tmp_path / "photo.jpg").reshape(28, 28))
    assert rows == 20 and cols in (6, 7, 8)
    with Image.open(tmp_path / "photo.jpg") as whole:
        assert images.decoding_cost(whole) > 1 << 20


def test_a_large_sixteen_bit_image_is_shrunk_too(tmp_path):
    gray = canvas_with_rectangle((2500, 2000), 500, 800, 1200, 300, ink=60000, background=0)
    Image.fromarray(gray.astype(np.uint16)).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as opened:
        assert opened.mode == "I;16"
        assert max(images.shrink_to_working_size(opened).size) == images.WORKING_SIDE
    assert ink_box(images.load_digit(tmp_path / "deep.png").reshape(28, 28))[0] == 20


def test_sixteen_bit_grayscale(tmp_path):
    gray = canvas_with_rectangle((60, 60), 10, 20, 40, 15, ink=60000, background=0)
    Image.fromarray(gray.astype(np.uint16)).save(tmp_path / "deep.png")
    pixels = images.load_digit(tmp_path / "deep.png")
    assert pixels.max() == pytest.approx(1.0)
    assert ink_box(pixels.reshape(28, 28))[0] == 20


def encoded_digit(image_format: str, mode: str) -> bytes:
    pixels = np.zeros((40, 30), np.float32)
    pixels[10:30, 12:18] = 200.0
    picture = Image.fromarray(pixels) if mode == "F" else Image.fromarray(pixels.astype(np.uint8))
    buffer = io.BytesIO()
    picture.convert(mode).save(buffer, format=image_format)
    return buffer.getvalue()


ENCODED = {
    (image_format, mode): encoded_digit(image_format, mode)
    for image_format, mode in [
        ("PNG", "L"),
        ("PNG", "RGBA"),
        ("JPEG", "RGB"),
        ("TIFF", "F"),
        ("GIF", "P"),
    ]
}


@settings(max_examples=100, deadline=None)
@given(
    which=st.sampled_from(sorted(ENCODED)),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_damaged_pictures_raise_only_input_file_error_naming_the_file(
    tmp_path_factory, which, edits, cut
):
    content = bytearray(ENCODED[which])
    for position, value in edits:
        content[position % len(content)] = value
    path = tmp_path_factory.mktemp("damaged") / "digit"
    path.write_bytes(bytes(content[:cut] if cut is not None else content))
    try:
        images.load_digit(path)
    except InputFileError as error:
        assert str(error).startswith(f"image {path}: ") and "\n" not in str(error)
