"""What a network carries to generalise better: dropout rates and penalties on its weights;
and the checks of per-example weights.

Dropout (inverted, as Keras's ``Dropout`` and ``torch.nn.Dropout``): while training, each
hidden unit j of a layer with rate p is kept with probability 1 − p, independently for every
example of every step, and the kept outputs are divided by 1 − p, so that a unit's expected
output is its output without dropout and prediction (which never drops) needs no rescaling.
With the mask m_j ∈ {0, 1} the unit passes z̃_j = m_j z_j / (1 − p) on, and the delta rule
becomes δ_j = m_j h'(a_j) Σ_k δ_k w_kj / (1 − p). Masks are drawn from the network's own
generator, one ``rng.random((m, units)) >= p`` per layer with dropout per step, layers in
order, so one seed gives one run and a checkpoint (which saves the generator) resumes it.

Penalties on the weights W of each layer l, never on the biases (as scikit-learn's alpha,
Keras's ``kernel_regularizer`` and optax's masked weight decay)::

    P(W) = Σ_l [ l2_l / 2 · Σ w² + l1_l · Σ |w| ]     ∂P/∂w = l2_l w + l1_l sign(w)

(sign(0) = 0, the subgradient Keras and torch take). How P joins a batch's loss is the
network's ``penalty_scale``:

    "mean" (default):  E = Σ_i v_i E_i / Σ_i v_i  +  P(W)         Keras; torch's coupled
                                                                   weight_decay = l2
    "sum":             E = (Σ_i v_i E_i  +  P(W)) / Σ_i v_i        scikit-learn's alpha = l2

with v_i the examples' weights (1 without sample weights, so Σ v_i = m, the batch size): with
"sum" the penalty counts once per batch beside the examples' summed losses, so its share
shrinks as the batch grows, exactly as scikit-learn's ``alpha / (2 m) · Σ ||W||²`` per batch
(the last, shorter batch divides by its own m).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

import numpy as np

Array = np.ndarray

PENALTY_SCALES = ("mean", "sum")


def _rate_ok(value: object, low: float, high: float, high_open: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
        return False
    return low <= value < high if high_open else low <= value <= high


def _per_layer(value: object, n: int, name: str, what: str, check, expected: str) -> tuple:
    """One float per layer from a number (every layer) or a sequence of ``n`` numbers."""
    values = [value] * n if isinstance(value, Real) and not isinstance(value, bool) else value
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ValueError(
            f"{name} must be a number or a list with one per {what}. Received: {name}={value!r}"
        )
    values = list(values)
    if len(values) != n:
        raise ValueError(
            f"{name} lists one value per {what}: {n} for this network. "
            f"Received: {len(values)} values {values!r}"
        )
    for v in values:
        if not check(v):
            raise ValueError(f"{name} values must be {expected}. Received: {name}={value!r}")
    return tuple(float(v) for v in values)


def check_dropout(dropout: object, n_hidden: int) -> tuple[float, ...]:
    """One dropout rate in [0, 1) per hidden layer, from a rate or a list of them."""
    if n_hidden == 0 and isinstance(dropout, Real) and not isinstance(dropout, bool):
        if dropout != 0:
            raise ValueError(
                f"dropout applies to hidden layers and this network has none. "
                f"Received: dropout={dropout!r}"
            )
        return ()
    return _per_layer(
        dropout,
        n_hidden,
        "dropout",
        "hidden layer",
        lambda v: _rate_ok(v, 0.0, 1.0, True),
        "rates in [0, 1)",
    )


def check_penalty(value: object, n_layers: int, name: str) -> tuple[float, ...]:
    """One penalty coefficient >= 0 per layer of weights, from a number or a list."""
    return _per_layer(
        value,
        n_layers,
        name,
        "layer of weights",
        lambda v: _rate_ok(v, 0.0, np.inf, True),
        "finite numbers >= 0",
    )


def check_penalty_scale(value: object) -> str:
    if value not in PENALTY_SCALES:
        raise ValueError(
            f"penalty_scale must be one of {PENALTY_SCALES}. Received: penalty_scale={value!r}"
        )
    return str(value)


# ------------------------------------------------------------------ dropout
def draw_masks(
    rng: np.random.Generator, rates: Sequence[float], m: int, widths: Sequence[int], dtype: np.dtype
) -> list[Array | None]:
    """Per hidden layer, the scaled mask m_j / (1 − p) of ``m`` examples (0 or 1 / (1 − p)
    in ``dtype``), or None for a layer without dropout (nothing is drawn for it)."""
    masks: list[Array | None] = []
    for p, width in zip(rates, widths):
        if p == 0:
            masks.append(None)
            continue
        kept = rng.random((m, width)) >= p
        scaled = kept.astype(dtype)
        scaled *= dtype.type(1.0 / (1.0 - p))
        masks.append(scaled)
    return masks


# ------------------------------------------------------------------ penalties
def penalty_value(weights: Sequence[Array], l1: Sequence[float], l2: Sequence[float]) -> float:
    """P(W) = Σ_l [l2_l / 2 · Σ w² + l1_l · Σ |w|], in float64."""
    total = 0.0
    for W, a1, a2 in zip(weights, l1, l2):
        if a2:
            total += 0.5 * a2 * float(np.vdot(W, W))
        if a1:
            total += a1 * float(np.abs(W).sum(dtype=np.float64))
    return total


def add_penalty_gradient(dW: Array, W: Array, l1: float, l2: float, factor: float) -> None:
    """dW += factor · (l2 W + l1 sign(W)) in place, the L2 term first (as the fused kernels
    add it)."""
    if l2:
        dW += W * (factor * l2)
    if l1:
        dW += np.sign(W) * (factor * l1)


def penalty_factor(scale: str, weight_sum: float) -> float:
    """What P is multiplied by in a batch's loss whose example weights sum to
    ``weight_sum``: 1 for "mean", 1 / Σ v for "sum" (0 for a batch of no weight, which then
    contributes nothing)."""
    if scale == "mean":
        return 1.0
    return 1.0 / weight_sum if weight_sum > 0 else 0.0


# ------------------------------------------------------------------ example weights
def check_sample_weight(
    weights: object, n_examples: int, name: str = "sample_weight"
) -> Array | None:
    """Per-example weights as a float64 array of ``n_examples`` finite numbers >= 0, not all
    zero (None stays None: every example counts once); else ValueError naming the problem."""
    if weights is None:
        return None
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be numbers, one per example. Received: {name}={weights!r}"
        ) from None
    if w.ndim != 1 or w.shape[0] != n_examples:
        raise ValueError(
            f"{name} must be 1-D with one weight per example: shape ({n_examples},). "
            f"Received: shape {w.shape}"
        )
    if not np.all(np.isfinite(w)):
        i = int(np.argmax(~np.isfinite(w)))
        raise ValueError(f"{name} must be finite; received {float(w[i])!r} at index {i}")
    if np.any(w < 0):
        i = int(np.argmax(w < 0))
        raise ValueError(f"{name} must be >= 0; received {float(w[i])!r} at index {i}")
    if not np.any(w > 0):
        raise ValueError(f"{name} are all zero; at least one example must count")
    return w


def example_scale(weights: Array, m: int) -> Array:
    """m v_i / Σ v: what each example's delta is multiplied by so that the batch mean of the
    scaled terms (the library's −Δᵀ Z / m) is the weighted mean Σ v_i (…) / Σ v. Zeros for a
    batch of no weight."""
    total = float(weights.sum())
    if total <= 0:
        return np.zeros_like(weights)
    return weights * (m / total)


def weighted_mean(values: Array, weights: Array | None) -> float:
    """Σ v_i x_i / Σ v_i (the plain mean without weights; 0 for a batch of no weight)."""
    if weights is None:
        return float(np.mean(values))
    total = float(weights.sum())
    return float(np.dot(weights, values)) / total if total > 0 else 0.0
