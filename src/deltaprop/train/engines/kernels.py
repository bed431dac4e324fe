"""Numba kernels behind the fast training engines (see :mod:`deltaprop.train.engines.choose`).

Numba is imported (through compiling.py) only when a fast engine first needs these, so
``import deltaprop`` stays as cheap as NumPy alone. Every kernel computes the reference's
formulas (network.py, losses.py, activations.py, optimizers.py) in its order of operations,
so float64 results agree with it to rounding; the differences: the forward dot products are
reordered (as BLAS reorders them), and exponentials come from exponential.py (within 1 ulp
of NumPy's, and vectorisable). Arithmetic stays in the arrays' dtype: a float32 value mixed
with a float64 literal would be promoted, so constants come in ``c`` (see ``constants``), in
the network's dtype, as NumPy casts a Python float to float32 under NEP 50.

Compilation is cached on disk (in memory where no cache directory is writable:
compiling.jit). bias_activate and backward_hidden (a vectorised loop per activation) and the
Adam steps (per setting) are compiled for the fit's setting only (compiling.Specialised);
the others in general form, once for every configuration.
"""

from __future__ import annotations

import math

import numpy as np

from deltaprop.core import activations, losses
from deltaprop.core.activations import ELU_ALPHA, LEAKY_RELU_SLOPE
from deltaprop.train.engines.compiling import Specialised, jit
from deltaprop.train.engines.exponential import exp_nonpositive

# The kernels' codes: a name's index in these tuples. They are written out rather than derived
# from core's tables because the compiled kernels are cached on disk with the code values baked
# in, and Numba invalidates that cache only when this file changes. _check_codes (below, at
# import) ties every code to its entry in core's tables, and tests/test_kernels.py checks that
# every entry of those tables has a code.
ACTIVATIONS = (
    "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "identity", "softmax", "exp"
)  # fmt: skip
SIGMOID, TANH, RELU, LEAKY_RELU, ELU, SOFTPLUS, IDENTITY, SOFTMAX, EXP = range(9)
LOSSES = ("mse", "cross_entropy", "binary_cross_entropy", "poisson")
MSE, CROSS_ENTROPY, BINARY_CROSS_ENTROPY, POISSON = range(4)
# core.losses.accuracy_rule's rules, after None: accuracy not measured.
ACCURACY_RULES = (None, "threshold", "argmax")
NO_ACCURACY, THRESHOLD, ARGMAX = range(3)
# SGD.variant's values.
SGD_VARIANTS = ("plain", "momentum", "nesterov")
# Indices into the constants array c.
ZERO, ONE, HALF, SLOPE, ALPHA = range(5)


def _check_codes() -> None:
    """Fail loudly if a code names nothing in core's tables (a rename there, say)."""
    tables = (
        (ACTIVATIONS, activations.ACTIVATIONS, "activation"),
        (LOSSES, losses.LOSSES, "loss"),
        (ACCURACY_RULES[1:], losses.ACCURACY_RULES, "accuracy rule"),
    )
    for codes, table, what in tables:
        unknown = [name for name in codes if name not in table]
        if unknown:
            raise RuntimeError(
                f"kernels.py has a code for the {what} {unknown[0]!r}, unknown to core"
            )


_check_codes()


def constants(dtype: np.dtype) -> np.ndarray:
    """The kernels' constants, in the network's dtype (see the module docstring)."""
    return np.array([0.0, 1.0, 0.5, LEAKY_RELU_SLOPE, ELU_ALPHA], dtype=dtype)


# ------------------------------------------------------------------ element-wise pieces
@jit()
def sigmoid(a, c):
    """1 / (1 + e^-a), from e^-|a| so that nothing overflows; branch-free arithmetic, so
    that a loop of them vectorises (see exponential.py)."""
    zero, one = c[ZERO], c[ONE]
    e = exp_nonpositive(-abs(a))
    return one / (one + e) if a >= zero else e / (one + e)


@jit()
def activate(code, a, c):
    """h(a) for one unit (element-wise activations; NaN propagates as in np.maximum)."""
    zero = c[ZERO]
    if code == SIGMOID:
        return sigmoid(a, c)
    if code == TANH:
        return math.tanh(a)
    if code == RELU:
        return a if (a >= zero or a != a) else zero
    if code == LEAKY_RELU:
        return a if a > zero else c[SLOPE] * a
    if code == ELU:
        return a if a > zero else c[ALPHA] * math.expm1(a)
    if code == SOFTPLUS:
        return (a if (a >= zero or a != a) else zero) + math.log1p(exp_nonpositive(-abs(a)))
    if code == EXP:
        return math.exp(a)
    return a


@jit()
def derivative(code, z, c):
    """h'(a) written through the output z = h(a), as activations.py writes it."""
    zero, one = c[ZERO], c[ONE]
    if code == SIGMOID:
        return z * (one - z)
    if code == TANH:
        return one - z * z
    if code == RELU:
        return one if z > zero else zero
    if code == LEAKY_RELU:
        return one if z > zero else c[SLOPE]
    if code == ELU:
        return one if z > zero else z + c[ALPHA]
    if code == SOFTPLUS:
        return -math.expm1(-z)
    if code == EXP:
        return z
    return one


# ------------------------------------------------------------------ one example's output layer
# One function per loss, so that a kernel specialised on the loss compiles only its own (see
# output_batch); the formulas are losses.py's: the cross-entropies are taken from the net
# inputs a (log-softmax, softplus). a, o, t, delta are 1-D views of one row.
@jit(inline="always")
def output_activation(act, a, o, c):
    """o = h(a); returns (max a, Σ exp(a - max)) for softmax, (a[0], 0) otherwise. Inlined:
    cross-entropy's row, which names softmax, then compiles no element-wise activation."""
    n = a.shape[0]
    top, total = a[0], c[ZERO]
    if act == SOFTMAX:
        for k in range(1, n):
            top = max(top, a[k])
        for k in range(n):
            o[k] = exp_nonpositive(a[k] - top)
            total += o[k]
        for k in range(n):
            o[k] = o[k] / total
    elif act == SIGMOID:  # a loop of its own vectorises, where act is not a constant
        for k in range(n):
            o[k] = sigmoid(a[k], c)
    else:
        for k in range(n):
            o[k] = activate(act, a[k], c)
    return top, total


@jit()
def _mse_row(act, a, o, t, delta, c):
    n = a.shape[0]
    zero = c[ZERO]
    output_activation(act, a, o, c)
    value = zero
    for k in range(n):
        d = t[k] - o[k]
        value += d * d
    value = c[HALF] * value
    if act == SOFTMAX:  # δ = softmax's Jacobian applied to t - o
        s = zero
        for k in range(n):
            s += o[k] * (t[k] - o[k])
        for k in range(n):
            delta[k] = o[k] * ((t[k] - o[k]) - s)
    else:
        for k in range(n):
            delta[k] = derivative(act, o[k], c) * (t[k] - o[k])
    return value


@jit()
def _cross_entropy_row(a, o, t, delta, c):
    # Its outputs are softmax's (losses.py checks), whose maximum and Σ exp(a - max) are the
    # ones log-softmax needs: lse = log Σ exp(a - max).
    n = a.shape[0]
    top, total = output_activation(SOFTMAX, a, o, c)
    lse = math.log(total)
    value = c[ZERO]
    for k in range(n):
        value += t[k] * ((a[k] - top) - lse)
    value = -value
    for k in range(n):
        delta[k] = t[k] - o[k]
    return value


@jit()
def _binary_cross_entropy_row(act, a, o, t, delta, c):
    n = a.shape[0]  # E = Σ softplus(a) - t a
    output_activation(act, a, o, c)
    value = c[ZERO]
    for k in range(n):
        value += activate(SOFTPLUS, a[k], c) - t[k] * a[k]
    for k in range(n):
        delta[k] = t[k] - o[k]
    return value


@jit()
def _poisson_row(act, a, o, t, delta, c):
    n = a.shape[0]  # E = Σ t log(t / o) - t + o, 0 log 0 = 0, from o as losses.py
    zero = c[ZERO]
    output_activation(act, a, o, c)
    value = zero
    for k in range(n):
        tk = t[k]
        value += (tk * math.log(tk / o[k]) if tk != zero else zero) - tk + o[k]
    for k in range(n):
        delta[k] = t[k] - o[k]
    return value


@jit(inline="always")
def output_row(loss, act, a, o, t, delta, c):
    """Output activation o = h(a), the loss E (returned) and δ = -∂E/∂a for one example.

    Inlined where it is called, so that a caller holding the loss as a constant compiles
    that loss's function only.
    """
    if loss == MSE:
        return _mse_row(act, a, o, t, delta, c)
    if loss == CROSS_ENTROPY:
        return _cross_entropy_row(a, o, t, delta, c)
    if loss == POISSON:
        return _poisson_row(act, a, o, t, delta, c)
    return _binary_cross_entropy_row(act, a, o, t, delta, c)


@jit()
def is_correct(mode, o, t, c):
    """1 if the example counts as right (core.losses.fraction_right for one row), else 0."""
    if mode == THRESHOLD:
        for k in range(o.shape[0]):
            if (o[k] > c[HALF]) != (t[k] > c[HALF]):
                return 0
        return 1
    best_o, best_t = 0, 0
    for k in range(1, o.shape[0]):  # the first maximum wins, as in np.argmax
        if o[k] > o[best_o] or (o[k] != o[k] and o[best_o] == o[best_o]):
            best_o = k
        if t[k] > t[best_t]:
            best_t = k
    return 1 if best_o == best_t else 0


# ------------------------------------------------------------------ SGD, one coordinate
@jit()
def sgd_coordinate(p, g, buf, hp, wd, mode, first):
    """One SGD coordinate update, in optimizers.SGD's order; returns (new p, new buffer).

    hp = [lr, weight_decay, momentum, 1 - dampening]; mode 0 plain, 1 momentum, 2 Nesterov.
    """
    d = p * hp[1] + g if wd else g
    if mode != 0:
        buf = d if first else buf * hp[2] + d * hp[3]
        d = d + buf * hp[2] if mode == 2 else buf
    return p - d * hp[0], buf


# ------------------------------------------------------------------ mini-batch pieces
@jit(inline="always")
def _bias_activate_as(code, a, b, c):
    for r in range(a.shape[0]):
        for j in range(a.shape[1]):
            a[r, j] = activate(code, a[r, j] + b[j], c)


@jit()
def _bias_activate(code, a, b, c):
    """a ← h(a + b) in place for a hidden layer's (m, units) block: ``a += b`` and h fused.

    Each branch inlines the loop with the code as a constant, so that LLVM drops the
    per-element dispatch on it and can vectorise the loop (relu: 15× faster). This general
    form compiles all seven loops; ``bias_activate`` below compiles the fit's one.
    """
    if code == SIGMOID:
        _bias_activate_as(SIGMOID, a, b, c)
    elif code == TANH:
        _bias_activate_as(TANH, a, b, c)
    elif code == RELU:
        _bias_activate_as(RELU, a, b, c)
    elif code == LEAKY_RELU:
        _bias_activate_as(LEAKY_RELU, a, b, c)
    elif code == ELU:
        _bias_activate_as(ELU, a, b, c)
    elif code == SOFTPLUS:
        _bias_activate_as(SOFTPLUS, a, b, c)
    elif code == EXP:
        _bias_activate_as(EXP, a, b, c)
    else:
        _bias_activate_as(IDENTITY, a, b, c)


def _bind_bias_activate(code):
    def bias_activate_as(a, b, c):
        _bias_activate_as(code, a, b, c)

    return bias_activate_as


# bias_activate(code, a, b, c); bias_activate.specialise(code) is the kernel for (a, b, c).
bias_activate = Specialised(_bias_activate, _bind_bias_activate, 1)


@jit(inline="always")
def _output_batch(loss, act, acc_mode, a, b, o, t, delta, db, c):
    """The output layer of a batch: a += b, o = h(a), δ = -∂E/∂a, db = Σ_rows δ.

    Returns (Σ of the examples' losses in float64, number classified right).
    """
    loss_sum = 0.0
    correct = 0
    for j in range(db.shape[0]):
        db[j] = c[ZERO]
    for r in range(a.shape[0]):
        for j in range(a.shape[1]):
            a[r, j] = a[r, j] + b[j]
        loss_sum += output_row(loss, act, a[r], o[r], t[r], delta[r], c)
        if acc_mode != NO_ACCURACY:
            correct += is_correct(acc_mode, o[r], t[r], c)
        for j in range(db.shape[0]):
            db[j] += delta[r, j]
    return loss_sum, correct


def _bind_output_batch(loss, act, acc_mode):
    def output_batch_as(a, b, o, t, delta, db, c):
        return _output_batch(loss, act, acc_mode, a, b, o, t, delta, db, c)

    return output_batch_as


# Specialised on (loss, activation, accuracy rule): the loop is inlined into the closure with
# output_row's choice of loss, and only that loss's function compiles.
output_batch = Specialised(_output_batch, _bind_output_batch, 3)


@jit(inline="always")
def _backward_hidden_as(code, delta, z, db, c):
    for j in range(db.shape[0]):
        db[j] = c[ZERO]
    for r in range(delta.shape[0]):
        for j in range(delta.shape[1]):
            d = derivative(code, z[r, j], c) * delta[r, j]
            delta[r, j] = d
            db[j] += d


@jit()
def _backward_hidden(code, delta, z, db, c):
    """δ ← h'(z) · δ in place (δ arrives as Δ_next W_next) and db = Σ_rows δ.

    The row-by-row sum is the order NumPy uses for ``delta.sum(axis=0)``. Dispatched on the
    code as bias_activate is.
    """
    if code == SIGMOID:
        _backward_hidden_as(SIGMOID, delta, z, db, c)
    elif code == TANH:
        _backward_hidden_as(TANH, delta, z, db, c)
    elif code == RELU:
        _backward_hidden_as(RELU, delta, z, db, c)
    elif code == LEAKY_RELU:
        _backward_hidden_as(LEAKY_RELU, delta, z, db, c)
    elif code == ELU:
        _backward_hidden_as(ELU, delta, z, db, c)
    elif code == SOFTPLUS:
        _backward_hidden_as(SOFTPLUS, delta, z, db, c)
    elif code == EXP:
        _backward_hidden_as(EXP, delta, z, db, c)
    else:
        _backward_hidden_as(IDENTITY, delta, z, db, c)


def _bind_backward_hidden(code):
    def backward_hidden_as(delta, z, db, c):
        _backward_hidden_as(code, delta, z, db, c)

    return backward_hidden_as


backward_hidden = Specialised(_backward_hidden, _bind_backward_hidden, 1)
