"""The optimizers' updates fused for the batch engine: SGD, Adam/AdamW and scikit-learn's Adam
on a flattened parameter, each in its optimizer's order of operations (optimizers.py,
sklearn_adam.py), consuming the gradient buffer, which is left holding the weights from
before the step for the divergence guard. Loaded with the kernels (see :mod:`.loading`).
"""

from __future__ import annotations

import math

from deltaprop.train.engines.compiling import Specialised, jit
from deltaprop.train.engines.kernels import sgd_coordinate


@jit()
def sgd_step(p, g, scale, buf, hp, wd, mode, first, penalized, l2):
    """SGD on a flattened parameter; g is Δᵀ Z (or Σ δ), the gradient being g · scale, plus
    l2 · p when ``penalized`` (an L2 term on the weights, added as the penalising wrapper adds
    it: the product first, then the gradient).

    Consumes g: it is left holding the weights from before the step, for the divergence guard.
    ``buf`` is the momentum buffer (unused when mode is 0). Returns True if a weight became
    NaN or infinite.
    """
    bad = False
    if mode == 0:
        for i in range(p.shape[0]):
            old = p[i]
            grad = old * l2 + g[i] * scale if penalized else g[i] * scale
            new, _ = sgd_coordinate(old, grad, old, hp, wd, 0, first)
            g[i] = old
            p[i] = new
            bad |= not math.isfinite(new)
    else:
        for i in range(p.shape[0]):
            old = p[i]
            grad = old * l2 + g[i] * scale if penalized else g[i] * scale
            new, buf[i] = sgd_coordinate(old, grad, buf[i], hp, wd, mode, first)
            g[i] = old
            p[i] = new
            bad |= not math.isfinite(new)
    return bad


# Indices into Adam's hyperparameter array, each already in the parameters' dtype.
A_LR, A_WD, A_W, A_1MW, A_B2, A_1MB2, A_BC2, A_EPS, A_STEP, A_DECAY = range(10)


@jit()
def _adam_step(wd, decoupled, amsgrad, lerp_small, p, g, scale, m, v, vmax, hp, penalized, l2):
    """Adam / AdamW on a flattened parameter, in optimizers.Adam's order of operations.

    hp: lr, weight_decay, w = 1 - β1 (the lerp weight), 1 - w, β2, 1 - β2,
    √(1 - β2^t), eps, lr / (1 - β1^t), 1 - lr·weight_decay. g is consumed, and l2 · p added
    to the gradient when ``penalized``, as in sgd_step. This general form compiles the loop
    twice (with and without amsgrad); adam_step below compiles the fit's one.
    """
    if amsgrad:
        return _adam_loop(
            p, g, scale, m, v, vmax, hp, wd, decoupled, True, lerp_small, penalized, l2
        )
    return _adam_loop(p, g, scale, m, v, vmax, hp, wd, decoupled, False, lerp_small, penalized, l2)


def _bind_adam_step(wd, decoupled, amsgrad, lerp_small):
    def adam_step_as(p, g, scale, m, v, vmax, hp, penalized, l2):
        return _adam_loop(
            p, g, scale, m, v, vmax, hp, wd, decoupled, amsgrad, lerp_small, penalized, l2
        )

    return adam_step_as


# Specialised on the settings fixed for a whole fit; ``penalized`` differs between a layer's
# W and b, so it stays an argument (one kernel serves both).
adam_update = Specialised(_adam_step, _bind_adam_step, 4)


def adam_step(p, g, scale, m, v, vmax, hp, wd, decoupled, amsgrad, lerp_small, penalized, l2):
    """_adam_step for these settings (adam_update.specialise), for one parameter."""
    kernel = adam_update.specialise(wd, decoupled, amsgrad, lerp_small)
    return kernel(p, g, scale, m, v, vmax, hp, penalized, l2)


@jit(callee=True)
def _adam_loop(p, g, scale, m, v, vmax, hp, wd, decoupled, amsgrad, lerp_small, penalized, l2):
    wdc, w, omw, b2, omb2 = hp[A_WD], hp[A_W], hp[A_1MW], hp[A_B2], hp[A_1MB2]
    bc2, eps, step, decay = hp[A_BC2], hp[A_EPS], hp[A_STEP], hp[A_DECAY]
    bad = False
    for i in range(p.shape[0]):
        old = p[i]
        grad = old * l2 + g[i] * scale if penalized else g[i] * scale
        q = old * decay if (decoupled and wd) else old
        d = old * wdc + grad if (wd and not decoupled) else grad
        diff = d - m[i]  # m ← lerp(m, d, w), with ATen's two branches
        mi = m[i] + diff * w if lerp_small else d - diff * omw
        m[i] = mi
        vi = v[i] * b2 + (d * omb2) * d
        v[i] = vi
        if amsgrad:
            top = vmax[i]
            top = top if (top >= vi or top != top) else vi  # np.maximum, NaN included
            vmax[i] = top
            vi = top
        new = q - (mi * step) / (math.sqrt(vi) / bc2 + eps)
        g[i] = old
        p[i] = new
        bad |= not math.isfinite(new)
    return bad


# Indices into SklearnAdam's hyperparameter array (its step_constants, in the parameters' dtype).
S_B1, S_1MB1, S_B2, S_1MB2, S_STEP, S_EPS = range(6)


@jit()
def sklearn_adam_step(p, g, scale, m, v, hp, penalized, l2):
    """scikit-learn's Adam (optim.sklearn_adam.SklearnAdam) on a flattened parameter, in its
    order of operations: m ← β1 m + (1 − β1) d, v ← β2 v + (1 − β2) d², and
    θ ← θ + (−γ_t m) / (√v + ε). g is consumed and l2 · p added to the gradient when
    ``penalized``, as in sgd_step; True if a weight became NaN or infinite."""
    b1, omb1, b2, omb2 = hp[S_B1], hp[S_1MB1], hp[S_B2], hp[S_1MB2]
    neg_step, eps = -hp[S_STEP], hp[S_EPS]
    bad = False
    for i in range(p.shape[0]):
        old = p[i]
        d = old * l2 + g[i] * scale if penalized else g[i] * scale
        mi = m[i] * b1 + d * omb1
        m[i] = mi
        vi = v[i] * b2 + (d * d) * omb2
        v[i] = vi
        new = old + (mi * neg_step) / (math.sqrt(vi) + eps)
        g[i] = old
        p[i] = new
        bad |= not math.isfinite(new)
    return bad
