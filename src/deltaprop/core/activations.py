"""Activation functions h and their derivatives h'.

Each activation is a pair: ``forward(a) -> z = h(a)`` and ``derivative(z) -> h'(a)``. The derivative
is written in terms of the unit's *output* z, as the textbook does for the sigmoid
(h'(a) = z (1 - z)); every element-wise activation here admits such a form, which is why the
backward pass only needs the activations the forward pass already kept.

Softmax is not element-wise: its derivative is a Jacobian, so it is only used on the output layer,
where each loss in :mod:`deltaprop.core.losses` knows how to turn dE/do into the output deltas.

All functions but ``exp`` avoid overflow: exponentials are only ever taken of non-positive
numbers, so ``sigmoid(±1000)`` is exactly 0 or 1 and ``softmax`` of rows offset by 1e4 is exact.
Underflow to zero (for example ``exp(-1000)``) is the correctly rounded answer and is expected;
the network runs its passes under ``np.errstate(under="ignore")``. ``exp`` (the output of
Poisson regression, as scikit-learn's MLPRegressor has it) is e^a itself and overflows to inf
above a ≈ 709, the correctly rounded answer; training reports that as divergence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

Array = np.ndarray

LEAKY_RELU_SLOPE = 0.01
ELU_ALPHA = 1.0


@dataclass(frozen=True)
class Activation:
    """An activation h with its derivative expressed through the output z = h(a).

    ``formula`` and ``derivative_formula`` are the textbook expressions, used by explanations;
    ``constants`` the fixed numbers in h (leaky_relu's negative slope, elu's α), by the names
    PyTorch and ONNX give them, for whoever rebuilds h elsewhere (export).
    """

    name: str
    forward: Callable[[Array], Array]
    derivative: Callable[[Array], Array]
    formula: str
    derivative_formula: str
    elementwise: bool = True
    constants: Mapping[str, float] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


def sigmoid(a: Array) -> Array:
    """Logistic sigmoid 1 / (1 + e^-a), computed from e^-|a| so that no exponential overflows."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)


def sigmoid_derivative(z: Array) -> Array:
    return z * (1.0 - z)


def tanh(a: Array) -> Array:
    return np.tanh(a)


def tanh_derivative(z: Array) -> Array:
    return 1.0 - z * z


def relu(a: Array) -> Array:
    return np.maximum(a, 0.0).astype(a.dtype, copy=False)


def relu_derivative(z: Array) -> Array:
    # z > 0 exactly when a > 0; at a = 0 we take the derivative 0, as PyTorch does.
    return (z > 0).astype(z.dtype)


def leaky_relu(a: Array) -> Array:
    return np.where(a > 0, a, LEAKY_RELU_SLOPE * a).astype(a.dtype, copy=False)


def leaky_relu_derivative(z: Array) -> Array:
    return np.where(z > 0, 1.0, LEAKY_RELU_SLOPE).astype(z.dtype, copy=False)


def elu(a: Array) -> Array:
    # expm1 of min(a, 0) keeps exp from overflowing on large positive a.
    return np.where(a > 0, a, ELU_ALPHA * np.expm1(np.minimum(a, 0.0))).astype(a.dtype, copy=False)


def elu_derivative(z: Array) -> Array:
    # For a <= 0, z = alpha (e^a - 1), so h'(a) = alpha e^a = z + alpha. Far out (a < -20) the
    # sum cancels and keeps only absolute precision (~1e-16), of a derivative below 2e-9.
    return np.where(z > 0, 1.0, z + ELU_ALPHA).astype(z.dtype, copy=False)


def softplus(a: Array) -> Array:
    """log(1 + e^a) = max(a, 0) + log1p(e^-|a|), exact for large |a|."""
    return (np.maximum(a, 0.0) + np.log1p(np.exp(-np.abs(a)))).astype(a.dtype, copy=False)


def softplus_derivative(z: Array) -> Array:
    # h'(a) = sigmoid(a), and e^-z = 1 / (1 + e^a) = 1 - sigmoid(a).
    return -np.expm1(-z)


def exp(a: Array) -> Array:
    return np.exp(a)


def exp_derivative(z: Array) -> Array:
    # h'(a) = e^a = z
    return z.copy()


def identity(a: Array) -> Array:
    return a


def identity_derivative(z: Array) -> Array:
    return np.ones_like(z)


def softmax(a: Array) -> Array:
    """Row-wise softmax; subtracting each row's maximum keeps every exponent <= 0."""
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_derivative(z: Array) -> Array:
    raise TypeError(
        "softmax has a Jacobian, not an element-wise derivative; "
        "use softmax_backward(z, upstream) or a loss's output delta"
    )


def softmax_backward(z: Array, upstream: Array) -> Array:
    """Vector-Jacobian product of softmax: for g = dE/do, returns dE/da.

    With J = diag(o) - o oᵀ, (gᵀ J)_i = o_i (g_i - Σ_k o_k g_k).
    """
    return z * (upstream - np.sum(z * upstream, axis=-1, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("sigmoid", sigmoid, sigmoid_derivative, "1/(1+e^-a)", "z(1-z)"),
        Activation("tanh", tanh, tanh_derivative, "tanh(a)", "1-z^2"),
        Activation("relu", relu, relu_derivative, "max(a, 0)", "1 if z>0 else 0"),
        Activation(
            "leaky_relu",
            leaky_relu,
            leaky_relu_derivative,
            f"a if a>0 else {LEAKY_RELU_SLOPE}a",
            f"1 if z>0 else {LEAKY_RELU_SLOPE}",
            constants={"negative_slope": LEAKY_RELU_SLOPE},
        ),
        Activation(
            "elu",
            elu,
            elu_derivative,
            f"a if a>0 else {ELU_ALPHA:g}(e^a-1)",
            f"1 if z>0 else z+{ELU_ALPHA:g}",
            constants={"alpha": ELU_ALPHA},
        ),
        Activation("softplus", softplus, softplus_derivative, "log(1+e^a)", "1-e^-z"),
        Activation("identity", identity, identity_derivative, "a", "1"),
        Activation("exp", exp, exp_derivative, "e^a", "z"),
        Activation(
            "softmax",
            softmax,
            softmax_derivative,
            "e^a_k / Σ_m e^a_m",
            "z_k(δ_km - z_m)",
            elementwise=False,
        ),
    )
}

ALIASES = {"logistic": "sigmoid", "linear": "identity", "none": "identity"}


def get_activation(spec: str | Activation) -> Activation:
    """Look an activation up by name (case-insensitive; 'logistic' and 'linear' are aliases)."""
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str):
        raise ValueError(
            f"activation must be a name such as 'sigmoid'. Received: activation={spec!r}"
        )
    key = spec.lower()
    key = ALIASES.get(key, key)
    if key not in ACTIVATIONS:
        raise ValueError(
            f"Unknown activation {spec!r}; expected one of {sorted(ACTIVATIONS)}. "
            f"Received: activation={spec!r}"
        )
    return ACTIVATIONS[key]
