"""The online (batch size 1) SGD epoch as one Numba kernel, run by :mod:`.online`.

For each example in turn: forward, loss, deltas by the delta rule, and the seed's update
w_ji ← w_ji - η ∂E/∂w_ji with ∂E/∂w_ji = -δ_j z_i (plus momentum, Nesterov, weight decay and
dampening exactly as optimizers.SGD has them).

Like the batch engine's loops it is compiled for the configuration a process trains first
(compiling.Specialised): the hidden layers' activation, the output's, the loss, the accuracy
rule and the SGD variant are constants there, so that only their rules compile (1.20 s on a
first fit, 2026-12-04, against 2.7 s for the general form, which branches on them at run time
and serves the configurations past the first). Both forms run one source, _epoch_for's
closure.

All weights live in one flat vector [W0, b0, W1, b1, ...] (row-major W) and every activation
and delta in another, addressed by offsets (the engine starts each layer's on a cache line
and fills the gaps with zeros: online.line_aligned_zeros). Offsets and loop counters are
uint64: Numba then skips its negative-index wrap-around, whose per-element branch would stop
LLVM from vectorising the loops. The few views made per example (a weight copy, the target
row, the output layer's slices) cost nothing: the kernels count no references (see
compiling._without_reference_counts).
"""

from __future__ import annotations

import math

from deltaprop.train.engines.compiling import Specialised
from deltaprop.train.engines.kernels import (
    IDENTITY,
    NO_ACCURACY,
    SIGMOID,
    ZERO,
    activate,
    derivative,
    is_correct,
    jit,
    output_row,
    sgd_coordinate,
)


@jit(fastmath={"reassoc", "contract"}, callee=True)
def _forward_layer(w, wo, z, zi, fan_in, units, a, c):
    """a_j = Σ_i w_ji z_i + b_j; returns Σ_j a_j, finite only when every a_j is (how the
    epoch learns that its last update was finite, see _online_epoch). Reassociation lets
    LLVM vectorise the dot products (BLAS reorders its sums too); nothing else is computed
    under these flags."""
    bo = wo + fan_in * units
    total = c[ZERO]
    for j in range(units):
        row = wo + j * fan_in
        s = c[ZERO]
        for i in range(fan_in):
            s += w[row + i] * z[zi + i]
        a[j] = s + w[bo + j]
        total += a[j]
    return total


@jit(inline="always")
def _activate_layer(code, a, z, zo, units, c):
    """z = h(a) for a hidden layer's units. The sigmoid, the seed's activation, has a loop
    of its own, which LLVM vectorises with its exponential (about 1.07× the whole epoch
    of 64-32-10 on digits); the others go through activate's per-unit dispatch, which keeps
    this general kernel's compilation short."""
    if code == SIGMOID:
        for j in range(units):
            z[zo + j] = activate(SIGMOID, a[j], c)
    else:
        for j in range(units):
            z[zo + j] = activate(code, a[j], c)


@jit(inline="always")
def _backpropagate(w, wo, z, dl, zi, zo, fan_in, units, act_below, c):
    """Deltas of the layer below: δ_i = h'(z_i) Σ_j δ_j w_ji. Inlined at its one call, as it
    needs no flags of its own (a first compile 0.09 s shorter than compiling it apart)."""
    for i in range(fan_in):
        dl[zi + i] = c[ZERO]
    for j in range(units):
        dj = dl[zo + j]
        row = wo + j * fan_in
        for i in range(fan_in):
            dl[zi + i] += dj * w[row + i]
    for i in range(fan_in):
        dl[zi + i] = derivative(act_below, z[zi + i], c) * dl[zi + i]


@jit(inline="always")
def _update_layer(w, mom, wo, z, dl, zi, zo, fan_in, units, hp, wd, mode, first):
    """w ← SGD step of w, in place, with ∂E/∂w_ji = -δ_j z_i and ∂E/∂b_j = -δ_j. Plain SGD gets a
    loop of its own that leaves the (unused) momentum buffer alone; otherwise the settings
    are loop-invariant branches LLVM takes out."""
    bo = wo + fan_in * units
    for j in range(units):
        dj = dl[zo + j]
        row = wo + j * fan_in
        if mode == 0:
            for i in range(fan_in):
                k = row + i
                w[k], _ = sgd_coordinate(w[k], -(dj * z[zi + i]), w[k], hp, wd, 0, first)
        else:
            for i in range(fan_in):
                k = row + i
                w[k], mom[k] = sgd_coordinate(w[k], -(dj * z[zi + i]), mom[k], hp, wd, mode,
                                              first)  # fmt: skip
    for j in range(units):
        k = bo + j
        w[k], mom[k] = sgd_coordinate(w[k], -dl[zo + j], mom[k], hp, wd, mode, first)


# Called, not inlined: it runs once an epoch, and at a step only when the sum of the net
# inputs is not finite (see _online_epoch).
@jit(callee=True)
def _all_finite(w):
    finite = True
    for k in range(w.shape[0]):
        finite &= math.isfinite(w[k])
    return finite


# A code that is not a constant of the kernel: ``codes`` holds it (the general form's every
# code; a compiled-for-one-configuration kernel's hidden activation when the layers differ).
AT_RUN_TIME = -1


@jit(inline="always")
def _code(constant, codes, index):
    """``constant``, or ``codes[index]`` when it is AT_RUN_TIME. In a kernel compiled for one
    configuration ``constant`` is a constant and the branch is pruned, so that what the code
    chooses compiles that choice's rule alone."""
    if constant == AT_RUN_TIME:
        return codes[index]
    return constant


def hidden_constant(acts) -> int:
    """The hidden layers' activation for a network whose layers have the activation codes
    ``acts``: their one code, AT_RUN_TIME when they differ, IDENTITY (never used) when there
    are none."""
    hidden = {int(code) for code in acts[:-1]}
    if not hidden:
        return IDENTITY
    return hidden.pop() if len(hidden) == 1 else AT_RUN_TIME


def _epoch_for(hidden, out_act, loss, acc_mode, mode):
    """The epoch of online SGD for these codes (each a constant or AT_RUN_TIME), as a Python
    closure: Numba compiles a closure's variables as constants, and prunes the branches on
    them, so the kernel compiled from it holds only its configuration's rules. The general
    form is the same closure with every code AT_RUN_TIME. Building the kernel as a closure of
    its own, not a closure calling an IR-inlined epoch, spares Numba a copy of the epoch's IR
    (0.2 s of a first compile)."""

    def online_epoch_as(X, T, order, w, sizes, woff, zoff, codes, hp, wd, first, mom, z,
                        dl, a_out, c):  # fmt: skip
        n_layers = sizes.shape[0] - 1
        top = n_layers - 1
        out_code = _code(out_act, codes, top)
        loss_code = _code(loss, codes, n_layers)
        accuracy = _code(acc_mode, codes, n_layers + 1)
        variant = _code(mode, codes, n_layers + 2)
        n_in, n_out, out = sizes[0], sizes[n_layers], zoff[n_layers]
        loss_sum = 0.0
        correct = 0
        for step in range(order.shape[0]):
            row = order[step]
            for i in range(n_in):
                z[i] = X[row, i]
            total = c[ZERO]
            for layer in range(n_layers):
                fan_in, units, zo = sizes[layer], sizes[layer + 1], zoff[layer + 1]
                total += _forward_layer(w, woff[layer], z, zoff[layer], fan_in, units, a_out, c)
                if layer < top:
                    _activate_layer(_code(hidden, codes, layer), a_out, z, zo, units, c)
            # A finite forward pass proves the last update finite (see _online_epoch).
            doomed = not math.isfinite(total) and not _all_finite(w)
            if doomed and step > 0:
                return 2, step - 1, loss_sum, correct
            o, d_out = z[out : out + n_out], dl[out : out + n_out]
            value = output_row(loss_code, out_code, a_out[:n_out], o, T[row], d_out, c)
            if not math.isfinite(value):
                return 1, step, loss_sum, correct
            loss_sum += value
            if accuracy != NO_ACCURACY:
                correct += is_correct(accuracy, o, T[row], c)
            # Deltas from the weights before the update, then every layer's update.
            for layer in range(top, 0, -1):
                below = _code(hidden, codes, layer - 1)
                _backpropagate(w, woff[layer], z, dl, zoff[layer], zoff[layer + 1], sizes[layer],
                               sizes[layer + 1], below, c)  # fmt: skip
            for layer in range(n_layers):
                _update_layer(w, mom, woff[layer], z, dl, zoff[layer], zoff[layer + 1],
                              sizes[layer], sizes[layer + 1], hp, wd, variant, first)  # fmt: skip
            if doomed:  # weights that came in non-finite stay so after the first step
                return 2, step, loss_sum, correct
            first = False
        if order.shape[0] and not _all_finite(w):
            return 2, order.shape[0] - 1, loss_sum, correct
        return 0, order.shape[0], loss_sum, correct

    return online_epoch_as


_any_configuration = jit()(_epoch_for(*[AT_RUN_TIME] * 5))


def _online_epoch(hidden, out_act, loss, acc_mode, mode, X, T, order, w, sizes, woff,
                  zoff, codes, hp, wd, first, mom, z, dl, a_out, c):  # fmt: skip
    """A whole epoch of online SGD, one example per step, in ``order``.

    The configuration's codes come first: ``hidden`` the hidden layers' activation
    (AT_RUN_TIME: each layer's is its own), ``out_act`` the output layer's, the loss, the
    accuracy rule, ``mode`` the SGD variant (0 plain, 1 momentum, 2 Nesterov). ``codes``
    holds them too, as the general form (this one) reads them at run time: each layer's
    activation code, then the loss's, the accuracy rule's and the SGD variant's. The general
    form compiles every branch; ``online_epoch`` below compiles the fit's.

    w is the flattened parameters (each layer's W then b from woff[layer]; anything between
    layers finite and left alone), updated in place, one copy: two (each step reading one and
    writing the other, so that the weights from before a failing step survived) no longer
    fit the 32 KiB L1 cache of a Zen 4 core beside the rest for 64-32-10 (19 KiB a copy), and
    the epoch took 767-783 ns an example against 664-719 ns in place (2026-12-06,
    benchmarks/online_epoch.py's kernel figure, the versions alternating; float32, whose two
    copies fitted, within noise). The weights from
    before a failing step are recomputed instead, by the engine (online.OnlineEngine), from
    the epoch's start. ``mom`` is the flattened momentum buffer, updated in place (a dummy when
    mode is 0). z and dl hold every layer's activations and deltas at offsets zoff (uint64,
    like sizes and woff); layer 0's activations are the input. a_out (as long as the widest
    layer) receives each layer's net inputs in turn. ``first``: the first step is the
    optimizer's first (its momentum buffer then starts as the gradient). hp = [lr,
    weight_decay, momentum, 1 - dampening]. The epoch trains the rows ``order`` names, as
    many as it has.

    Returns (status, examples done, Σ loss, number correct): status 0 finished, 1 the loss of
    example ``done`` was not finite (no update made), 2 its update made a weight non-finite
    (or the weights came in non-finite and ``done`` is 0): w then holds that update, and the
    momentum buffer has taken the step, as in the reference path.

    Status 2 is found without reading every new weight after every step (which took about a
    tenth of the epoch): a non-finite weight makes its unit's net input non-finite in the next
    example's forward pass (inf·z is ±inf, inf·0 and NaN·z are NaN, and a sum with a
    non-finite term is non-finite in any order, so the sum of all the net inputs is too). The
    weights are read only when that sum is not finite (finite weights can overflow it: that is
    no divergence, and training goes on), and once after the epoch's last step.
    """
    return _any_configuration(X, T, order, w, sizes, woff, zoff, codes, hp, wd, first,
                              mom, z, dl, a_out, c)  # fmt: skip


# online_epoch(hidden, out_act, loss, acc_mode, mode, X, ...): compiled for the first
# configuration a process trains (compiling.Specialised), the general form past it.
online_epoch = Specialised(_online_epoch, _epoch_for, 5)
