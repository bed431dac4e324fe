"""The batch engine's fused loops over a mini-batch's (m, units) blocks, between the matrix
products NumPy does: a hidden layer's bias and activation, the output layer, a hidden
layer's deltas. Loaded with the kernels (see :mod:`.loading`); the per-unit rules are
kernels.py's.

Each is compiled for the fit's configuration first (compiling.Specialised): a closure
holding the codes as constants calls the loop, which then compiles the configuration's
rule alone, with no per-element dispatch, so that LLVM can vectorise it (relu: 15× faster
than dispatching). The general form, compiled past the first configuration, branches on
the code and runs the same loop with the code as a constant in each branch; both forms run
the same source, so results do not depend on which one ran.
"""

from __future__ import annotations

from deltaprop.train.engines.compiling import Specialised, jit
from deltaprop.train.engines.kernels import (
    ELU,
    EXP,
    IDENTITY,
    LEAKY_RELU,
    NO_ACCURACY,
    RELU,
    SIGMOID,
    SOFTPLUS,
    TANH,
    ZERO,
    activate,
    derivative,
    is_correct,
    output_row,
)


# ------------------------------------------------------------------ a hidden layer, forward
@jit(inline="always")
def activate_rows(code, a, b, c):
    for r in range(a.shape[0]):
        for j in range(a.shape[1]):
            a[r, j] = activate(code, a[r, j] + b[j], c)


@jit()
def _bias_activate(code, a, b, c):
    """a ← h(a + b) in place for a hidden layer's (m, units) block: ``a += b`` and h fused.
    This general form compiles the loop for every activation; ``bias_activate`` below
    compiles the fit's one."""
    if code == SIGMOID:
        activate_rows(SIGMOID, a, b, c)
    elif code == TANH:
        activate_rows(TANH, a, b, c)
    elif code == RELU:
        activate_rows(RELU, a, b, c)
    elif code == LEAKY_RELU:
        activate_rows(LEAKY_RELU, a, b, c)
    elif code == ELU:
        activate_rows(ELU, a, b, c)
    elif code == SOFTPLUS:
        activate_rows(SOFTPLUS, a, b, c)
    elif code == EXP:
        activate_rows(EXP, a, b, c)
    else:
        activate_rows(IDENTITY, a, b, c)


def _bind_bias_activate(code):
    def bias_activate_as(a, b, c):
        activate_rows(code, a, b, c)

    return bias_activate_as


# bias_activate(code, a, b, c); bias_activate.specialise(code) is the kernel for (a, b, c).
bias_activate = Specialised(_bias_activate, _bind_bias_activate, 1)


# ------------------------------------------------------------------ the output layer
@jit(inline="always")
def output_rows(loss, act, acc_mode, a, b, o, t, delta, db, c):
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


@jit()
def _output_batch(loss, act, acc_mode, a, b, o, t, delta, db, c):
    """The output layer of a batch: a += b, o = h(a), δ = -∂E/∂a, db = Σ_rows δ.

    Returns (Σ of the examples' losses in float64, number classified right; 0 when
    ``acc_mode`` is NO_ACCURACY). This general form compiles every loss's row."""
    return output_rows(loss, act, acc_mode, a, b, o, t, delta, db, c)


def _bind_output_batch(loss, act, acc_mode):
    def output_batch_as(a, b, o, t, delta, db, c):
        return output_rows(loss, act, acc_mode, a, b, o, t, delta, db, c)

    return output_batch_as


# Specialised on (loss, activation, accuracy rule): only that loss's row and that rule compile.
output_batch = Specialised(_output_batch, _bind_output_batch, 3)


# ------------------------------------------------------------------ a hidden layer, backward
@jit(inline="always")
def derive_rows(code, delta, z, db, c):
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
    code as bias_activate is."""
    if code == SIGMOID:
        derive_rows(SIGMOID, delta, z, db, c)
    elif code == TANH:
        derive_rows(TANH, delta, z, db, c)
    elif code == RELU:
        derive_rows(RELU, delta, z, db, c)
    elif code == LEAKY_RELU:
        derive_rows(LEAKY_RELU, delta, z, db, c)
    elif code == ELU:
        derive_rows(ELU, delta, z, db, c)
    elif code == SOFTPLUS:
        derive_rows(SOFTPLUS, delta, z, db, c)
    elif code == EXP:
        derive_rows(EXP, delta, z, db, c)
    else:
        derive_rows(IDENTITY, delta, z, db, c)


def _bind_backward_hidden(code):
    def backward_hidden_as(delta, z, db, c):
        derive_rows(code, delta, z, db, c)

    return backward_hidden_as


backward_hidden = Specialised(_backward_hidden, _bind_backward_hidden, 1)
