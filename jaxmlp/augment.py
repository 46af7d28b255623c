"""What happens to the training examples before a step: shuffling, shifts, flips, random
erasing, input dropout.

Everything here is a pure function of a key, so a run's batches depend on its seed alone.
Augmentations change the data a step sees, not the network: BP1–BP4 are unchanged.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxmlp.model import inverted_dropout_mask

SHUFFLE_KEY_BITS = 8
"""Below this many random bits per sort key, :func:`shuffled_indices` defers to JAX."""


def shuffled_indices(key: jax.Array, n: int) -> jax.Array:
    """A random permutation of ``0 … n−1``: ``jax.random.permutation`` at a quarter of the cost.

    Each round sorts one ``uint32`` array whose low bits hold positions ``0 … n−1`` and
    whose high bits are random, then reads the positions back: a sort of one operand,
    where ``jax.random.permutation`` sorts key–value pairs, several times slower on CPU
    (20 ms for 50,000 examples, a fifth of a seed-config epoch). Positions whose random
    bits tie keep their order within a round; like ``jax.random.permutation``, enough
    rounds are composed that the random bits add up to 3 × log₂ n.
    """
    index_bits = max((n - 1).bit_length(), 1)
    random_bits = 32 - index_bits
    if random_bits < SHUFFLE_KEY_BITS:
        return jax.random.permutation(key, n)
    rounds = math.ceil(3 * index_bits / random_bits)
    index_mask = jnp.uint32((1 << index_bits) - 1)
    positions = jnp.arange(n, dtype=jnp.uint32)
    order = positions
    for round_key in jax.random.split(key, rounds):
        random_high = jax.random.bits(round_key, (n,), jnp.uint32) & ~index_mask
        order = order[jnp.sort(random_high | positions) & index_mask]
    return order.astype(jnp.int32)


def shift_images(key: jax.Array, x: jax.Array, image_shape: tuple[int, int], shift: int):
    """Translates each image of a batch by up to ``shift`` pixels each way, zero-filled."""
    height, width = image_shape
    batch = x.shape[0]
    images = x.reshape(batch, height, width)
    padded = jnp.pad(images, ((0, 0), (shift, shift), (shift, shift)))
    offsets = jax.random.randint(key, (batch, 2), 0, 2 * shift + 1)

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1]), (height, width))

    return jax.vmap(crop)(padded, offsets).reshape(batch, height * width)


def flip_images(key: jax.Array, x: jax.Array, image_shape: tuple[int, int]) -> jax.Array:
    """Mirrors each image of a batch left–right with probability ½ (rows ``(B, H·W)``).

    Clothes are (nearly) symmetric, so a mirrored garment is another example of its class.
    The input is data, not a layer: BP1–BP4 are unchanged.
    """
    height, width = image_shape
    images = x.reshape(x.shape[0], height, width)
    flip = jax.random.bernoulli(key, 0.5, (x.shape[0], 1, 1))
    return jnp.where(flip, images[:, :, ::-1], images).reshape(x.shape)


ERASE_AREA = (0.02, 0.4)
"""Random erasing's rectangle covers this fraction of the image (Zhong et al. 2017)."""
ERASE_ASPECT = (0.3, 1 / 0.3)
"""… with height / width in this range, drawn log-uniformly."""


def erase_boxes(key: jax.Array, batch: int, image_shape: tuple[int, int]):
    """Random erasing's rectangles: ``(top, left, height, width)``, ``(batch,)`` int32 each.

    The area is uniform in :data:`ERASE_AREA` of the image and the aspect ratio log-uniform
    in :data:`ERASE_ASPECT`, as in Zhong et al. (2017); where a side would exceed the image
    it is clipped to it (instead of the paper's redraw, which has no fixed cost), and the
    rectangle is placed uniformly inside the image.
    """
    height, width = image_shape
    area_key, aspect_key, top_key, left_key = jax.random.split(key, 4)
    area = jax.random.uniform(area_key, (batch,), minval=ERASE_AREA[0], maxval=ERASE_AREA[1])
    area = area * (height * width)
    log_aspect = jax.random.uniform(
        aspect_key, (batch,), minval=math.log(ERASE_ASPECT[0]), maxval=math.log(ERASE_ASPECT[1])
    )
    aspect = jnp.exp(log_aspect)
    box_height = jnp.clip(jnp.round(jnp.sqrt(area * aspect)), 1, height).astype(jnp.int32)
    box_width = jnp.clip(jnp.round(jnp.sqrt(area / aspect)), 1, width).astype(jnp.int32)
    top = jax.random.randint(top_key, (batch,), 0, height - box_height + 1)
    left = jax.random.randint(left_key, (batch,), 0, width - box_width + 1)
    return top, left, box_height, box_width


def erase_images(key: jax.Array, x: jax.Array, image_shape: tuple[int, int], probability):
    """Random erasing: with ``probability`` (may be traced), zeroes a random rectangle of
    each image (:func:`erase_boxes`); zero is the background of these images.

    The input is data, not a layer: BP1–BP4 are unchanged.
    """
    height, width = image_shape
    batch = x.shape[0]
    box_key, apply_key = jax.random.split(key)
    top, left, box_height, box_width = erase_boxes(box_key, batch, image_shape)
    rows = jnp.arange(height)[None, :, None]
    cols = jnp.arange(width)[None, None, :]

    def inside(start, size, index):
        start, size = start[:, None, None], size[:, None, None]
        return (index >= start) & (index < start + size)

    apply = jax.random.uniform(apply_key, (batch, 1, 1)) < probability
    erased = apply & inside(top, box_height, rows) & inside(left, box_width, cols)
    images = x.reshape(batch, height, width)
    return jnp.where(erased, jnp.zeros((), x.dtype), images).reshape(x.shape)


def drop_inputs(key: jax.Array, x: jax.Array, keep) -> jax.Array:
    """Inverted dropout on the pixels, each kept with probability ``keep`` (``1 − rate``).

    The input is data, not a layer: BP1–BP4 are unchanged.
    """
    return x * inverted_dropout_mask(key, x.shape, keep, x.dtype)
