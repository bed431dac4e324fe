"""Losses, each paired with its output delta.

Sign convention (the seed's): the delta of a unit is the *negative* gradient of the error with
respect to its net input, δ_j = -∂E/∂a_j. With it the seed's formulas read literally:

    output unit, sigmoid + squared error:  δ_k = o_k (1 - o_k) (t_k - o_k)
    hidden unit:                           δ_j = h'(a_j) Σ_k δ_k w_kj
    update:                                w_ji ← w_ji + η δ_j z_i

Every loss is defined per example and averaged over the examples of a batch:

    mse                    E = ½ Σ_k (t_k - o_k)²          (any output activation)
    cross_entropy          E = -Σ_k t_k log o_k            (softmax outputs)
    binary_cross_entropy   E = -Σ_k [t_k log o_k + (1 - t_k) log(1 - o_k)]   (sigmoid outputs)
    poisson                E = Σ_k [t_k log(t_k / o_k) - t_k + o_k]        (exp outputs)

Note that PyTorch's ``MSELoss`` is the mean of (t - o)² over examples *and* outputs, so
deltaprop's mse equals ``MSELoss() * n_outputs / 2``. Cross-entropy matches
``CrossEntropyLoss`` on the logits; binary cross-entropy matches ``BCEWithLogitsLoss`` times the
number of outputs (deltaprop sums over outputs, PyTorch averages).

poisson is the Poisson deviance of scikit-learn's ``MLPRegressor(loss="poisson")`` (its
``poisson_loss``, the term t log t - t included so that a perfect fit has E = 0), for counts
t >= 0 predicted by o = e^a.

Losses computed from probabilities at o = 0 or 1 can be infinite even where the network's
loss is finite, so the network passes the net inputs ``a`` too and the cross-entropies are taken
from them directly (log-softmax, softplus), exactly and without overflow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deltaprop.core.activations import Activation, softmax_backward
from deltaprop.resources import check_fits

Array = np.ndarray


def _log_softmax(a: Array) -> Array:
    shifted = a - a.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _softplus(a: Array) -> Array:
    return np.maximum(a, 0.0) + np.log1p(np.exp(-np.abs(a)))


def _xlogy(x: Array, y: Array) -> Array:
    """x log y with 0 log 0 = 0 (the limit), without warnings."""
    safe = np.where(x == 0, 1.0, y)
    with np.errstate(divide="ignore"):
        return np.where(x == 0, 0.0, x * np.log(safe))


@dataclass(frozen=True)
class Loss:
    """A loss E(o, t) per example, with its output delta δ = -∂E/∂a for the output layer."""

    name: str
    formula: str
    requires_activation: str | None = None

    def per_example(self, o: Array, t: Array, a: Array | None = None) -> Array:
        """E for each example (row); ``a`` are the output net inputs when known."""
        raise NotImplementedError

    def value(self, o: Array, t: Array, a: Array | None = None) -> float:
        """E averaged over the examples."""
        return float(np.mean(self.per_example(o, t, a)))

    def output_delta(self, o: Array, t: Array, activation: Activation) -> Array:
        """δ_k = -∂E/∂a_k for every output unit k of every example."""
        raise NotImplementedError

    def check_activation(self, activation: Activation) -> None:
        if self.requires_activation and activation.name != self.requires_activation:
            raise ValueError(
                f"loss={self.name!r} expects output_activation={self.requires_activation!r}, "
                f"whose outputs it reads as probabilities. "
                f"Received: output_activation={activation.name!r}"
            )


class MeanSquaredError(Loss):
    def __init__(self) -> None:
        super().__init__("mse", "E = ½ Σ_k (t_k - o_k)²")

    def per_example(self, o: Array, t: Array, a: Array | None = None) -> Array:
        diff = t - o
        return 0.5 * np.einsum("ij,ij->i", diff, diff)

    def output_delta(self, o: Array, t: Array, activation: Activation) -> Array:
        # -∂E/∂o_k = t_k - o_k, then through the activation: δ_k = h'(a_k)(t_k - o_k);
        # for the sigmoid this is the seed's o(1 - o)(t - o).
        error = t - o
        if activation.elementwise:
            return activation.derivative(o) * error
        return softmax_backward(o, error)


class CrossEntropy(Loss):
    def __init__(self) -> None:
        super().__init__("cross_entropy", "E = -Σ_k t_k log o_k", requires_activation="softmax")

    def per_example(self, o: Array, t: Array, a: Array | None = None) -> Array:
        if a is not None:
            return -np.einsum("ij,ij->i", t, _log_softmax(a))
        return -_xlogy(t, o).sum(axis=1)

    def output_delta(self, o: Array, t: Array, activation: Activation) -> Array:
        # Softmax's Jacobian and -t/o cancel: δ_k = t_k - o_k (targets sum to 1 per row).
        return t - o


class BinaryCrossEntropy(Loss):
    def __init__(self) -> None:
        super().__init__(
            "binary_cross_entropy",
            "E = -Σ_k [t_k log o_k + (1 - t_k) log(1 - o_k)]",
            requires_activation="sigmoid",
        )

    def per_example(self, o: Array, t: Array, a: Array | None = None) -> Array:
        if a is not None:
            # -[t log σ(a) + (1 - t) log(1 - σ(a))] = softplus(a) - t a
            return (_softplus(a) - t * a).sum(axis=1)
        return -(_xlogy(t, o) + _xlogy(1.0 - t, 1.0 - o)).sum(axis=1)

    def output_delta(self, o: Array, t: Array, activation: Activation) -> Array:
        # σ'(a) = o(1 - o) cancels the denominators of ∂E/∂o: δ_k = t_k - o_k.
        return t - o


class PoissonDeviance(Loss):
    def __init__(self) -> None:
        super().__init__(
            "poisson", "E = Σ_k [t_k log(t_k / o_k) - t_k + o_k]", requires_activation="exp"
        )

    def per_example(self, o: Array, t: Array, a: Array | None = None) -> Array:
        # From o, as scikit-learn's poisson_loss writes it (0 log 0 = 0).
        with np.errstate(divide="ignore", invalid="ignore"):
            return (_xlogy(t, t / o) - t + o).sum(axis=1)

    def output_delta(self, o: Array, t: Array, activation: Activation) -> Array:
        # -∂E/∂o_k = t_k / o_k - 1 and h'(a_k) = o_k: δ_k = t_k - o_k.
        return t - o


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (MeanSquaredError(), CrossEntropy(), BinaryCrossEntropy(), PoissonDeviance())
}
ALIASES = {
    "squared_error": "mse",
    "mean_squared_error": "mse",
    "categorical_cross_entropy": "cross_entropy",
    "crossentropy": "cross_entropy",
    "bce": "binary_cross_entropy",
    "log_loss": "binary_cross_entropy",
}


# How an example counts as classified right (Network.accuracy, fit's accuracy, the kernels'
# codes in deltaprop.train.engines.kernels): every output on the same side of 0.5 as its
# target, or the largest output where the target is largest.
ACCURACY_RULES = ("threshold", "argmax")


def accuracy_rule(loss_name: str, n_outputs: int) -> str:
    """The accuracy rule of a network: "threshold" for one output and for binary
    cross-entropy's independent labels (an example is right when every label is), "argmax"
    for the other multi-output networks."""
    return "threshold" if n_outputs == 1 or loss_name == "binary_cross_entropy" else "argmax"


def fraction_right(rule: str, outputs: Array, T: Array) -> float:
    """The fraction of rows of ``outputs`` classified right by ``rule`` against targets T."""
    if rule == "threshold":
        return float(np.mean(np.all((outputs > 0.5) == (T > 0.5), axis=1)))
    return float(np.mean(outputs.argmax(axis=1) == T.argmax(axis=1)))


def accuracy_of(outputs: Array, T: Array, loss_name: str) -> float:
    """The fraction classified right, by the rule for this loss and number of outputs."""
    return fraction_right(accuracy_rule(loss_name, outputs.shape[1]), outputs, T)


def get_loss(spec: str | Loss) -> Loss:
    """Look a loss up by name (case-insensitive)."""
    if isinstance(spec, Loss):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"loss must be a name such as 'mse'. Received: loss={spec!r}")
    key = ALIASES.get(spec.lower(), spec.lower())
    if key not in LOSSES:
        raise ValueError(
            f"Unknown loss {spec!r}; expected one of {sorted(LOSSES)}. Received: loss={spec!r}"
        )
    return LOSSES[key]


def prepare_targets(loss: Loss, T: object, n_examples: int, n_outputs: int, dtype) -> Array:
    """Check targets against the loss and return them as a (n_examples, n_outputs) array.

    Cross-entropy also takes integer class labels, one per example, turned into one-hot rows.
    Raises ValueError naming the problem before anything is computed with the targets.
    """
    T = _checked_array(np.asarray(T), n_examples, n_outputs)
    if T.ndim == 1 and loss.name == "cross_entropy":
        return _one_hot_labels(T, n_examples, n_outputs, dtype)
    if T.ndim == 1:
        if n_outputs != 1:
            raise ValueError(
                f"1-D targets fit only a network with 1 output (or cross_entropy labels); this "
                f"network has {n_outputs} outputs. Expected targets of shape "
                f"({n_examples}, {n_outputs}). Received: shape {T.shape}"
            )
        T = T.reshape(-1, 1)
    if T.shape[1] != n_outputs:
        raise ValueError(
            f"targets have {T.shape[1]} columns but the network has {n_outputs} outputs. "
            f"Expected shape ({n_examples}, {n_outputs}). Received: shape {T.shape}"
        )
    if loss.name in ("cross_entropy", "binary_cross_entropy"):
        if np.any((T < 0) | (T > 1)):
            raise ValueError(
                f"{loss.name} targets must be probabilities in [0, 1]. "
                f"Received values from {T.min()!r} to {T.max()!r}"
            )
    if loss.name == "poisson" and np.any(T < 0):
        raise ValueError(
            "poisson targets must be counts or rates >= 0. "
            f"Received values from {T.min()!r} to {T.max()!r}"
        )
    if loss.name == "cross_entropy":
        return _distribution_rows(T, dtype)
    return np.asarray(T, dtype=dtype)


def _checked_array(T: Array, n_examples: int, n_outputs: int) -> Array:
    """T itself, once it is a finite numeric 1-D or 2-D array with one row per example."""
    if T.dtype.kind not in "biuf":
        raise ValueError(
            f"targets must be numeric; received an array of dtype {T.dtype}. "
            "Encode class names as integer labels or one-hot rows first."
        )
    if T.ndim == 0 or T.ndim > 2:
        raise ValueError(
            f"targets must be 1-D (one value or label per example) or 2-D "
            f"(n_examples, {n_outputs}). Received: shape {T.shape}"
        )
    if T.shape[0] != n_examples:
        raise ValueError(
            f"X has {n_examples} rows but the targets have {T.shape[0]}; "
            "expected one target row per example"
        )
    if not np.all(np.isfinite(T)):
        raise ValueError("targets contain NaN or inf; expected finite numbers")
    return T


def _one_hot_labels(T: Array, n_examples: int, n_outputs: int, dtype) -> Array:
    """Class labels 0..n_outputs-1, one per example, as one-hot rows."""
    if T.dtype.kind == "f" and not np.all(T == np.round(T)):
        raise ValueError(
            "1-D targets for cross_entropy are class labels and must be whole numbers. "
            f"Received values such as {T[T != np.round(T)][0]!r}"
        )
    bad = (T < 0) | (T >= n_outputs)  # before the cast, which would wrap 1e300 around
    if np.any(bad):
        raise ValueError(
            f"class labels must lie in [0, {n_outputs - 1}] for a network with {n_outputs} "
            f"outputs. Received: label {T[bad][0].item()!r}"
        )
    labels = T.astype(np.int64)
    check_fits(
        n_examples * n_outputs * np.dtype(dtype).itemsize,
        f"one-hot targets of {n_examples} examples × {n_outputs} classes",
    )
    onehot = np.zeros((n_examples, n_outputs), dtype=dtype)
    onehot[np.arange(n_examples), labels] = 1
    return onehot


def _distribution_rows(T: Array, dtype) -> Array:
    """Probability rows that sum to 1 (to 1e-6), renormalised to sum to it exactly."""
    sums = T.sum(axis=1)
    if not np.allclose(sums, 1.0, rtol=0, atol=1e-6):
        row = int(np.argmax(np.abs(sums - 1.0)))
        raise ValueError(
            "cross_entropy target rows must sum to 1 (one-hot or a distribution). "
            f"Received: row {row} sums to {sums[row]!r}"
        )
    # The output delta t - o is exact only for rows summing to exactly 1.
    return np.asarray(T / sums[:, None], dtype=dtype)
