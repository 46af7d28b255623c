"""Checks the hand-written gradient (BP1–BP4) against ``jax.grad`` and finite differences.

Three gradients of the same mean cross-entropy are compared parameter by parameter:

- ``manual``: :func:`jaxmlp.backprop.manual_grad`, computed in the requested dtype;
- ``autodiff``: ``jax.grad(loss)`` in the same dtype — compared on every coordinate;
- finite differences in float64, ``(E(θ + εe_i) − E(θ − εe_i)) / 2ε``, on a random sample
  of coordinates of each parameter. A coordinate whose ±ε step flips the sign of some
  hidden pre-activation straddles a ReLU kink, where the loss is not differentiable; it is
  left out and counted (``skipped``).

Each comparison reports the largest absolute difference and the relative error
``‖g_manual − g_ref‖ / ‖g_ref‖`` over the coordinates compared, and passes when
``‖Δ‖ ≤ tolerance · ‖g_ref‖ + atol``. ``atol`` is 0 against ``jax.grad``; against finite
differences it is their rounding noise, so that a gradient of exactly 0 (a dead unit)
is not failed for the noise of its estimate.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxmlp import backprop
from jaxmlp.errors import ConfigError
from jaxmlp.model import Params, dropout_masks, forward_trace, loss, smoothed_targets
from jaxmlp.settings import check_setting


class Tolerances(NamedTuple):
    """Largest relative errors that pass: against ``jax.grad``, against finite differences."""

    autodiff: float
    finite_differences: float


TOLERANCES = {
    "float64": Tolerances(autodiff=1e-10, finite_differences=1e-6),
    "float32": Tolerances(autodiff=1e-5, finite_differences=1e-4),
}
"""float64: both gradients agree to rounding; central differences with ε = 1e-6 carry an
O(ε²) truncation and O(1e-16/ε) rounding error. float32: ~1e-7 rounding, accumulated over
sums of hundreds of terms."""

FINITE_DIFFERENCE_STEP = 1e-6
FINITE_DIFFERENCE_NOISE = 1e-9
"""Absolute rounding noise of one central difference per unit of loss: float64's 1e-16
relative rounding of the loss, divided by the step 1e-6, with a margin of 10."""


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The hand-written gradient of one parameter against one reference.

    Passes when ``‖Δ‖ ≤ tolerance · ‖g_ref‖ + atol``: relative, with an absolute floor
    ``atol`` for the rounding noise of finite differences where the gradient is ~0.
    """

    max_abs: float
    relative: float
    tolerance: float
    coordinates: int
    skipped: int = 0
    error_norm: float = 0.0
    reference_norm: float = 0.0
    atol: float = 0.0

    @property
    def passed(self) -> bool:
        """Within tolerance; vacuously when every probed coordinate sat at a kink."""
        return self.error_norm <= self.tolerance * self.reference_norm + self.atol


@dataclasses.dataclass(frozen=True)
class ParameterCheck:
    """Both comparisons for one parameter array, e.g. ``W`` of layer 2."""

    layer: int
    name: str
    shape: tuple[int, ...]
    autodiff: Comparison
    finite_differences: Comparison

    @property
    def passed(self) -> bool:
        return self.autodiff.passed and self.finite_differences.passed


@dataclasses.dataclass(frozen=True)
class GradCheckReport:
    """The outcome of :func:`compare_gradients`."""

    sizes: tuple[int, ...]
    batch_size: int
    dtype: str
    dropout: float
    label_smoothing: float
    tolerances: Tolerances
    checks: tuple[ParameterCheck, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def to_dict(self) -> dict:
        """A JSON-ready dictionary."""
        return {
            "sizes": list(self.sizes),
            "batch_size": self.batch_size,
            "dtype": self.dtype,
            "dropout": self.dropout,
            "label_smoothing": self.label_smoothing,
            "tolerances": self.tolerances._asdict(),
            "passed": self.passed,
            "checks": [
                {
                    "layer": check.layer,
                    "parameter": check.name,
                    "shape": list(check.shape),
                    "passed": check.passed,
                    "autodiff": dataclasses.asdict(check.autodiff),
                    "finite_differences": dataclasses.asdict(check.finite_differences),
                }
                for check in self.checks
            ],
        }


def compare(
    candidate: np.ndarray, reference: np.ndarray, tolerance: float, skipped=0, atol=0.0
) -> Comparison:
    """Max absolute difference and relative error ``‖Δ‖/‖reference‖`` (0 if both are 0)."""
    difference = np.asarray(candidate, np.float64) - np.asarray(reference, np.float64)
    error, norm = float(np.linalg.norm(difference)), float(np.linalg.norm(reference))
    relative = error / norm if norm > 0 else (0.0 if error == 0 else math.inf)
    max_abs = float(np.max(np.abs(difference))) if difference.size else 0.0
    return Comparison(
        max_abs, relative, tolerance, int(difference.size), int(skipped), error, norm, atol
    )


def relu_pattern(params: Params, x: jax.Array, masks=None) -> jax.Array:
    """Which hidden pre-activations are positive, flattened: the loss's piece of linearity."""
    hidden = forward_trace(params, x, masks).pre_activations[:-1]
    if not hidden:
        return jnp.zeros((0,), bool)
    return jnp.concatenate([(z > 0).ravel() for z in hidden])


def finite_difference_gradient(
    loss_fn: Callable[[Params], jax.Array],
    pattern_fn: Callable[[Params], jax.Array],
    params: Params,
    flat_indices: np.ndarray,
    step: float = FINITE_DIFFERENCE_STEP,
) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of ``loss_fn`` along coordinates of the flattened parameters.

    ``flat_indices`` index ``ravel_pytree(params)``. Returns the estimates and a mask of
    the coordinates whose ±step keeps every ReLU on its side (estimates elsewhere straddle
    a kink and mean nothing). One compiled, ``vmap``-ed call evaluates all coordinates.
    """
    flat, unravel = ravel_pytree(params)
    base_pattern = pattern_fn(params)

    def one_coordinate(index):
        plus, minus = unravel(flat.at[index].add(step)), unravel(flat.at[index].add(-step))
        estimate = (loss_fn(plus) - loss_fn(minus)) / (2 * step)
        smooth = jnp.all(pattern_fn(plus) == base_pattern) & jnp.all(
            pattern_fn(minus) == base_pattern
        )
        return estimate, smooth

    estimates, smooth = jax.jit(jax.vmap(one_coordinate))(jnp.asarray(flat_indices))
    return np.asarray(estimates), np.asarray(smooth)


def sample_coordinates(key: jax.Array, sizes: list[int], count: int) -> list[np.ndarray]:
    """Up to ``count`` distinct coordinates of each leaf, as offsets into the flat vector."""
    offsets = np.cumsum([0, *sizes[:-1]])
    keys = jax.random.split(key, len(sizes))
    return [
        offset + np.asarray(jax.random.choice(k, size, (min(count, size),), replace=False))
        for k, size, offset in zip(keys, sizes, offsets)
    ]


def parameter_names(params: Params) -> list[tuple[int, str]]:
    """``(layer, "W" | "b")`` for each leaf of ``params``, in ``jax.tree.leaves`` order."""
    return [(index + 1, name) for index in range(len(params)) for name in ("W", "b")]


def compare_gradients(
    params: Params,
    x: jax.Array,
    y: jax.Array,
    *,
    key: jax.Array,
    dtype: str = "float64",
    coordinates: int = 20,
    dropout: float = 0.0,
    label_smoothing: float = 0.0,
    manual_grad_fn: Callable = backprop.manual_grad,
) -> GradCheckReport:
    """Compares the BP1–BP4 gradient with ``jax.grad`` and with finite differences.

    Args:
      params: the network; cast to ``dtype`` for the manual and autodiff gradients and to
        float64 for finite differences.
      x: a batch of inputs ``(B, n_in)``.
      y: integer labels ``(B,)``.
      key: draws the finite-difference coordinates and the dropout masks.
      dtype: ``"float64"`` or ``"float32"``.
      coordinates: how many coordinates of each parameter to probe by finite differences.
      dropout: dropout rate of the hidden layers (the same masks for all three gradients).
      label_smoothing: ``ε`` of the smoothed targets ``(1 − ε) one_hot(y) + ε / K``.
      manual_grad_fn: the hand-written gradient under test.

    Returns:
      A :class:`GradCheckReport`, one row per parameter array.
    """
    if dtype not in TOLERANCES:
        raise ConfigError(f"must be one of {', '.join(TOLERANCES)}, got {dtype!r}", setting="dtype")
    if coordinates < 1:
        raise ConfigError(f"must be at least 1, got {coordinates}", setting="coords")
    check_setting("dropout", dropout)
    check_setting("label_smoothing", label_smoothing)
    tolerances = TOLERANCES[dtype]
    mask_key, coordinate_key = jax.random.split(key)
    with jax.enable_x64(True), jax.default_matmul_precision("highest"):

        def cast(tree, kind):
            return jax.tree.map(lambda leaf: jnp.asarray(leaf, kind), tree)

        params64, x64 = cast(params, jnp.float64), jnp.asarray(x, jnp.float64)
        params_d, x_d = cast(params, dtype), jnp.asarray(x, dtype)
        masks64 = dropout_masks(mask_key, params64, (x64.shape[0],), dropout)
        masks_d = None if masks64 is None else cast(masks64, dtype)
        y64 = y_d = y
        if label_smoothing:
            num_classes = params64[-1].b.shape[0]
            y64 = smoothed_targets(y, num_classes, label_smoothing, jnp.float64)
            y_d = y64.astype(dtype)

        manual = jax.tree.leaves(jax.jit(manual_grad_fn)(params_d, x_d, y_d, masks_d))
        autodiff = jax.tree.leaves(jax.jit(backprop.autodiff_grad)(params_d, x_d, y_d, masks_d))

        def loss_fn(p):
            return loss(p, x64, y64, masks64)

        def pattern_fn(p):
            return relu_pattern(p, x64, masks64)

        sizes = [leaf.size for leaf in manual]
        chosen = sample_coordinates(coordinate_key, sizes, coordinates)
        estimates, smooth = finite_difference_gradient(
            loss_fn, pattern_fn, params64, np.concatenate(chosen)
        )
        noise = FINITE_DIFFERENCE_NOISE * max(1.0, abs(float(loss_fn(params64))))
        bounds = np.cumsum([0] + [len(c) for c in chosen])
        offsets = np.cumsum([0, *sizes[:-1]])
        checks = []
        for leaf_index, ((layer, name), g_manual, g_auto) in enumerate(
            zip(parameter_names(params), manual, autodiff)
        ):
            g_manual, g_auto = np.asarray(g_manual), np.asarray(g_auto)
            part = slice(bounds[leaf_index], bounds[leaf_index + 1])
            kept = smooth[part]
            local = chosen[leaf_index][kept] - offsets[leaf_index]
            checks.append(
                ParameterCheck(
                    layer=layer,
                    name=name,
                    shape=tuple(g_manual.shape),
                    autodiff=compare(g_manual, g_auto, tolerances.autodiff),
                    finite_differences=compare(
                        g_manual.ravel()[local],
                        estimates[part][kept],
                        tolerances.finite_differences,
                        skipped=int(np.sum(~kept)),
                        atol=noise * math.sqrt(max(kept.sum(), 1)),
                    ),
                )
            )
    return GradCheckReport(
        sizes=(params[0].w.shape[1], *tuple(layer.w.shape[0] for layer in params)),
        batch_size=int(x.shape[0]),
        dtype=dtype,
        dropout=dropout,
        label_smoothing=label_smoothing,
        tolerances=tolerances,
        checks=tuple(checks),
    )


def format_report(report: GradCheckReport) -> str:
    """The report as a plain-text table, one row per parameter, and a verdict line."""
    header = (
        f"{'param':<6} {'shape':>11}  {'vs jax.grad':>11} {'max |Δ|':>9}"
        f"  {'vs finite diff':>14} {'max |Δ|':>9} {'n':>4}  result"
    )
    lines = [
        f"Gradient check: sizes {','.join(map(str, report.sizes))}, batch {report.batch_size}, "
        f"{report.dtype}, dropout {report.dropout:g}, label smoothing {report.label_smoothing:g}",
        f"tolerance (relative ‖Δ‖/‖g‖): jax.grad {report.tolerances.autodiff:.0e}, "
        f"finite differences {report.tolerances.finite_differences:.0e}",
        "",
        header,
        "-" * len(header),
    ]
    for check in report.checks:
        auto, fd = check.autodiff, check.finite_differences
        fd_relative = f"{fd.relative:14.2e}" if fd.reference_norm > fd.atol else f"{'(g≈0)':>14}"
        skipped = (
            f" ({fd.skipped} of {fd.coordinates + fd.skipped} at a ReLU kink)" if fd.skipped else ""
        )
        lines.append(
            f"{check.name}{check.layer:<5} {'x'.join(map(str, check.shape)):>11}"
            f"  {auto.relative:11.2e} {auto.max_abs:9.2e}  {fd_relative}"
            f" {fd.max_abs:9.2e} {fd.coordinates:4d}  {'pass' if check.passed else 'FAIL'}"
            f"{skipped}"
        )
    failed = sum(not check.passed for check in report.checks)
    lines.append("")
    lines.append(
        f"all {len(report.checks)} parameters pass"
        if report.passed
        else f"{failed} of {len(report.checks)} parameters FAIL"
    )
    return "\n".join(lines)
