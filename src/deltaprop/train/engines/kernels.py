"""Numba kernels behind the fast training engines (see :mod:`deltaprop.train.engines.choose`):
the codes, each activation's rule for one unit, one example's output layer, one SGD
coordinate. The mini-batch loops are in batch_kernels.py, the online epoch in
online_kernel.py, the optimizers' updates in updates.py.

Numba is imported (through compiling.py) only when a fast engine first needs these, so
``import deltaprop`` stays as cheap as NumPy alone. Every kernel computes the reference's
formulas (network.py, losses.py, activations.py, optimizers.py) in its order of operations,
so float64 results agree with it to rounding; the differences: the forward dot products are
reordered (as BLAS reorders them), and exponentials come from exponential.py (within 1 ulp
of NumPy's, and vectorisable). Arithmetic stays in the arrays' dtype: a float32 value mixed
with a float64 literal would be promoted, so constants come in ``c`` (see ``constants``), in
the network's dtype, as NumPy casts a Python float to float32 under NEP 50.

activate, derivative, output_activation and is_correct are not compiled on their own: a
kernel's call compiles one rule (compiling.by_code) where it names a constant code, the
general dispatch over every rule where the code is known only at run time; output_row is
inlined into its callers, so that a constant loss keeps only its row. Compilation is
cached on disk with the calling kernel, and Numba checks only that kernel's own file for
changes: so the kernels cached before an edit of this file (or of any kernel source) are
deleted when a process next loads them (compile_record.discard_stale_kernels).
"""

from __future__ import annotations

import math

import numpy as np

from deltaprop.core import activations, losses
from deltaprop.core.activations import ELU_ALPHA, LEAKY_RELU_SLOPE
from deltaprop.train.engines.compiling import by_code, jit
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
# The hidden activations whose rule (forward) or slope (derivative) the kernels compute by a
# scalar libm call per element (math.tanh, expm1, log1p, exp), which LLVM cannot vectorise
# and NumPy's ufuncs do: tanh on a 128x256 float32 block took 293 us in bias_activate and
# 11 us as activations.tanh, softplus's slope 222 us and 18 us. The batch engine applies
# activations.py's rules to a whole block for these instead of calling its loops.
BLOCK_RULES = frozenset({TANH, ELU, SOFTPLUS, EXP})
BLOCK_SLOPES = frozenset({SOFTPLUS})
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


# ------------------------------------------------------------------ element-wise rules
# Each activation's h(a) and h'(a) (written through z = h(a), as activations.py writes it)
# for one unit. Each takes the code first, as activate and derivative do (compiling.by_code).
# Inlined into the general dispatch (_any_activation), which so compiles as one function, as
# a kernel with the code known only at run time needs: eight separately compiled rules
# took the online kernel's first compile from 5.4 s to 6.8 s.
@jit(inline="always")
def _sigmoid(code, a, c):
    # 1 / (1 + e^-a), from e^-|a| so that nothing overflows; branch-free arithmetic, so
    # that a loop of them vectorises (see exponential.py).
    zero, one = c[ZERO], c[ONE]
    e = exp_nonpositive(-abs(a))
    return one / (one + e) if a >= zero else e / (one + e)


@jit(inline="always")
def _tanh(code, a, c):
    return math.tanh(a)


@jit(inline="always")
def _relu(code, a, c):  # NaN propagates, as in np.maximum
    return a if (a >= c[ZERO] or a != a) else c[ZERO]


@jit(inline="always")
def _leaky_relu(code, a, c):
    slope = c[SLOPE]  # loaded before the choice, as in _relu_slope
    return a if a > c[ZERO] else slope * a


@jit(inline="always")
def _elu(code, a, c):
    return a if a > c[ZERO] else c[ALPHA] * math.expm1(a)


@jit(inline="always")
def _softplus(code, a, c):
    return _relu(code, a, c) + math.log1p(exp_nonpositive(-abs(a)))


@jit(inline="always")
def _exp(code, a, c):
    return math.exp(a)


@jit(inline="always")
def _identity(code, a, c):  # and softmax's, whose rows output_activation computes
    return a


@jit(inline="always")
def _sigmoid_slope(code, z, c):
    return z * (c[ONE] - z)


@jit(inline="always")
def _tanh_slope(code, z, c):
    return c[ONE] - z * z


@jit(inline="always")
def _relu_slope(code, z, c):
    # Both constants loaded before the choice: ``c[ONE] if ... else c[ZERO]`` is one load
    # from a chosen address, which LLVM vectorises as a gather (a third of the speed).
    one, zero = c[ONE], c[ZERO]
    return one if z > zero else zero


@jit(inline="always")
def _leaky_relu_slope(code, z, c):
    one, slope = c[ONE], c[SLOPE]  # loaded before the choice, as in _relu_slope
    return one if z > c[ZERO] else slope


@jit(inline="always")
def _elu_slope(code, z, c):
    one, alpha = c[ONE], c[ALPHA]  # loaded before the choice, as in _relu_slope
    return one if z > c[ZERO] else z + alpha


@jit(inline="always")
def _softplus_slope(code, z, c):
    return -math.expm1(-z)


@jit(inline="always")
def _exp_slope(code, z, c):
    return z


@jit(inline="always")
def _identity_slope(code, z, c):
    return c[ONE]


_ACTIVATE = {SIGMOID: _sigmoid, TANH: _tanh, RELU: _relu, LEAKY_RELU: _leaky_relu, ELU: _elu,
             SOFTPLUS: _softplus, EXP: _exp}  # fmt: skip
_DERIVATIVE = {SIGMOID: _sigmoid_slope, TANH: _tanh_slope, RELU: _relu_slope,
               LEAKY_RELU: _leaky_relu_slope, ELU: _elu_slope, SOFTPLUS: _softplus_slope,
               EXP: _exp_slope}  # fmt: skip


def _any_activation(code, a, c):
    if code == SIGMOID:
        return _sigmoid(code, a, c)
    if code == TANH:
        return _tanh(code, a, c)
    if code == RELU:
        return _relu(code, a, c)
    if code == LEAKY_RELU:
        return _leaky_relu(code, a, c)
    if code == ELU:
        return _elu(code, a, c)
    if code == SOFTPLUS:
        return _softplus(code, a, c)
    if code == EXP:
        return _exp(code, a, c)
    return _identity(code, a, c)


def _any_derivative(code, z, c):
    if code == SIGMOID:
        return _sigmoid_slope(code, z, c)
    if code == TANH:
        return _tanh_slope(code, z, c)
    if code == RELU:
        return _relu_slope(code, z, c)
    if code == LEAKY_RELU:
        return _leaky_relu_slope(code, z, c)
    if code == ELU:
        return _elu_slope(code, z, c)
    if code == SOFTPLUS:
        return _softplus_slope(code, z, c)
    if code == EXP:
        return _exp_slope(code, z, c)
    return _identity_slope(code, z, c)


@by_code(_ACTIVATE, _any_activation, otherwise=_identity)
def activate(code, a, c):
    """h(a) for one unit (element-wise activations; NaN propagates as in np.maximum)."""
    raise TypeError("activate runs inside the Numba kernels only")


@by_code(_DERIVATIVE, _any_derivative, otherwise=_identity_slope)
def derivative(code, z, c):
    """h'(a) for one unit, written through its output z = h(a), as activations.py writes it."""
    raise TypeError("derivative runs inside the Numba kernels only")


# ------------------------------------------------------------------ one example's output layer
# One function per loss, paired with its output delta; the formulas are losses.py's: the
# cross-entropies are taken from the net inputs a (log-softmax, softplus). a, o, t, delta are
# 1-D views of one row.
@jit(inline="always")
def _softmax_outputs(act, a, o, c):
    n = a.shape[0]
    top, total = a[0], c[ZERO]
    for k in range(1, n):
        top = max(top, a[k])
    for k in range(n):
        o[k] = exp_nonpositive(a[k] - top)
        total += o[k]
    for k in range(n):
        o[k] = o[k] / total
    return top, total


@jit(inline="always")
def _unit_outputs(act, a, o, c):
    for k in range(a.shape[0]):
        o[k] = activate(act, a[k], c)
    return a[0], c[ZERO]


def _any_outputs(act, a, o, c):
    if act == SOFTMAX:
        return _softmax_outputs(act, a, o, c)
    if act == SIGMOID:  # a loop of its own vectorises, where act is not a constant
        return _unit_outputs(SIGMOID, a, o, c)
    return _unit_outputs(act, a, o, c)


@by_code({SOFTMAX: _softmax_outputs}, _any_outputs, otherwise=_unit_outputs)
def output_activation(act, a, o, c):
    """o = h(a); returns (max a, Σ exp(a - max)) for softmax, (a[0], 0) otherwise. A row
    naming the activation as a constant compiles that activation's loop alone (sigmoid's
    row no softmax, cross-entropy's no element-wise activation)."""
    raise TypeError("output_activation runs inside the Numba kernels only")


@jit(callee=True)
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


@jit(callee=True)
def _cross_entropy_row(a, o, t, delta, c):
    # Its outputs are softmax's (losses.py checks), whose maximum and Σ exp(a - max) are the
    # ones log-softmax needs: lse = log Σ exp(a - max).
    n = a.shape[0]
    top, total = _softmax_outputs(SOFTMAX, a, o, c)
    lse = math.log(total)
    value = c[ZERO]
    for k in range(n):
        value += t[k] * ((a[k] - top) - lse)
    value = -value
    for k in range(n):
        delta[k] = t[k] - o[k]
    return value


@jit(callee=True)
def _binary_cross_entropy_row(act, a, o, t, delta, c):
    n = a.shape[0]  # E = Σ softplus(a) - t a
    output_activation(act, a, o, c)
    value = c[ZERO]
    for k in range(n):
        value += activate(SOFTPLUS, a[k], c) - t[k] * a[k]
    for k in range(n):
        delta[k] = t[k] - o[k]
    return value


@jit(callee=True)
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


@jit(inline="always")
def _threshold_correct(mode, o, t, c):
    for k in range(o.shape[0]):
        if (o[k] > c[HALF]) != (t[k] > c[HALF]):
            return 0
    return 1


@jit(inline="always")
def _argmax_correct(mode, o, t, c):
    best_o, best_t = 0, 0
    for k in range(1, o.shape[0]):  # the first maximum wins, as in np.argmax
        if o[k] > o[best_o] or (o[k] != o[k] and o[best_o] == o[best_o]):
            best_o = k
        if t[k] > t[best_t]:
            best_t = k
    return 1 if best_o == best_t else 0


def _any_correct(mode, o, t, c):
    if mode == THRESHOLD:
        return _threshold_correct(mode, o, t, c)
    return _argmax_correct(mode, o, t, c)


@by_code({THRESHOLD: _threshold_correct}, _any_correct, otherwise=_argmax_correct)
def is_correct(mode, o, t, c):
    """1 if the example counts as right (core.losses.fraction_right for one row), else 0."""
    raise TypeError("is_correct runs inside the Numba kernels only")


# ------------------------------------------------------------------ SGD, one coordinate
@jit(callee=True)
def sgd_coordinate(p, g, buf, hp, wd, mode, first):
    """One SGD coordinate update, in optimizers.SGD's order; returns (new p, new buffer).

    hp = [lr, weight_decay, momentum, 1 - dampening]; mode 0 plain, 1 momentum, 2 Nesterov.
    """
    d = p * hp[1] + g if wd else g
    if mode != 0:
        buf = d if first else buf * hp[2] + d * hp[3]
        d = d + buf * hp[2] if mode == 2 else buf
    return p - d * hp[0], buf
