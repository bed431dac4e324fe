"""Check backpropagation's gradients against central finite differences."""

from __future__ import annotations

import numpy as np

from deltaprop.core.network import FeedForward
from deltaprop.core.regularization import check_sample_weight


def numerical_gradients(
    net: FeedForward,
    X: object,
    T: object,
    eps: float = 1e-4,
    *,
    masks: list[np.ndarray | None] | None = None,
    sample_weight: object = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """∂E/∂w by central differences, for every weight and bias, one at a time.

    The five-point stencil (8[E(w+ε) - E(w-ε)] - [E(w+2ε) - E(w-2ε)]) / 12ε has error O(ε⁴)
    instead of the two-point O(ε²), so a larger ε keeps rounding error small as well
    (about 1e-12 in float64 at ε = 1e-4). Each weight is restored exactly after it is nudged.
    ``masks`` (as ``net.dropout_masks`` draws them) fix dropout's units for every nudge;
    ``sample_weight`` weights the examples.
    """
    X = net.check_inputs(X)
    T = net.check_targets(T, X.shape[0])
    w = check_sample_weight(sample_weight, X.shape[0])

    def loss() -> float:
        return net.loss_of(net.forward(X, masks), T, w)

    grads = []
    for layer in net.layers:
        pair = []
        for param in (layer.W, layer.b):
            g = np.empty_like(param)
            flat, gflat = param.reshape(-1), g.reshape(-1)
            for idx in range(flat.size):
                original = flat[idx]
                near = _nudged(loss, flat, idx, eps) - _nudged(loss, flat, idx, -eps)
                far = _nudged(loss, flat, idx, 2 * eps) - _nudged(loss, flat, idx, -2 * eps)
                flat[idx] = original
                gflat[idx] = (8 * near - far) / (12 * eps)
            pair.append(g)
        grads.append((pair[0], pair[1]))
    return grads


def _nudged(loss, flat: np.ndarray, idx: int, offset: float) -> float:
    """The loss with one weight moved by ``offset`` from its original value (then put
    back)."""
    original = flat[idx]
    flat[idx] = original + offset
    value = loss()
    flat[idx] = original
    return value


def gradcheck(
    net: FeedForward,
    X: object,
    T: object,
    eps: float = 1e-4,
    floor: float = 1e-8,
    *,
    masks: list[np.ndarray | None] | None = None,
    sample_weight: object = None,
) -> float:
    """Max relative error between ``net.gradients`` and central finite differences.

    The relative error of one weight is |g - g_num| / max(|g|, |g_num|, floor); the floor keeps
    weights whose gradient is zero (a dead ReLU, say) from dividing by nothing. A float32
    network is checked through a float64 copy, since float32 differences are too coarse to
    tell a right gradient from a wrong one. The network itself is left unchanged.

    Below 1e-6 the gradients are right; around 1e-2 or above, something is wrong. A ReLU
    unit whose net input lies within 2ε of its kink makes the difference quotient meaningless
    for the weights feeding it: give such tests non-zero biases.

    The loss is the network's whole loss, its weight penalties included (an L1 penalty's
    gradient has a kink at w = 0, as a ReLU's); ``masks`` fix dropout's units (float64
    masks from ``net.dropout_masks``) and ``sample_weight`` weights the examples.
    """
    if net.dtype != np.float64:
        net = _as_float64(net)
    if masks is None:
        analytic = net.gradients(X, T, sample_weight)
    else:
        Xc = net.check_inputs(X)
        Tc = net.check_targets(T, Xc.shape[0])
        w = check_sample_weight(sample_weight, Xc.shape[0])
        fp = net.forward(Xc, masks)
        analytic = net.gradients_from(fp, net.backward(fp, Tc, w), w)
    numeric = numerical_gradients(net, X, T, eps, masks=masks, sample_weight=sample_weight)
    worst = 0.0
    for pair_a, pair_n in zip(analytic, numeric):
        for g, g_num in zip(pair_a, pair_n):
            denom = np.maximum(np.maximum(np.abs(g), np.abs(g_num)), floor)
            worst = max(worst, float(np.max(np.abs(g - g_num) / denom)))
    return worst


def _as_float64(net: FeedForward) -> FeedForward:
    clone = net.copy()
    clone.dtype = np.dtype(np.float64)
    for layer in clone.layers:
        layer.W = layer.W.astype(np.float64)
        layer.b = layer.b.astype(np.float64)
    return clone
