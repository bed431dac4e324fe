"""scikit-learn's objective with sample weights, which solver="lbfgs" minimises.

scikit-learn's MLP (``_backprop`` in sklearn/neural_network/_multilayer_perceptron.py) takes,
for a batch of examples i with weights w_i (all 1 without ``sample_weight``) and S = Σ_i w_i,

    loss      Σ_i w_i E_i / S  (÷ n_outputs for squared error)  +  alpha / (2 S) · Σ ||W||²
    gradient  Σ_i w_i ∂E_i/∂θ / S                              +  (alpha / S) · W

(the weights W only, never the biases). The hidden deltas are linear in the output deltas,
row by row, so weighting every layer's delta rows by w_i · m / S after ``Network.backward``
turns ``Network.gradients_from``'s batch mean into the weighted mean above.

:func:`objective` computes that for any batch, from the network's public methods (the L2 term
is the network's own penalty); "lbfgs" minimises it over the whole training set
(:mod:`._lbfgs`). The stochastic solvers train through ``Network.fit``, whose engines weigh
the examples the same way.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from deltaprop.core.network import FeedForward

Array = np.ndarray


class Objective(NamedTuple):
    """scikit-learn's objective on one batch: ``data`` (Σ w E / S on deltaprop's loss scale,
    before the ÷ n_outputs of squared error), ``penalty`` (alpha / (2 S) · Σ ||W||²), and the
    gradient of the estimator's loss, in ``parameters()`` order."""

    data: float
    penalty: float
    gradients: list[Array]


def objective(net: FeedForward, X: object, T: Array, weights: Array | None) -> Objective:
    """scikit-learn's weighted loss and gradient (see the module docstring) at the network's
    parameters, for checked X (dense or CSR) and T; ``weights`` None counts every example
    once. The L2 term is the network's own penalty (scikit-learn's alpha with
    ``penalty_scale="sum"``, see ``_engine.network_penalty``)."""
    n = T.shape[0]
    fp = net.forward(X)  # type: ignore[arg-type]
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        per_example = net.loss_function.per_example(fp.output, T, fp.a[-1])
        deltas = net.backward(fp, T)
    if weights is None:
        data = float(np.mean(per_example))
    else:
        total = float(weights.sum())
        data = float(np.dot(weights, per_example)) / total
        rows = (weights * (n / total))[:, None].astype(T.dtype)
        deltas = [delta * rows for delta in deltas]
    gradients = [g for pair in net.gradients_from(fp, deltas, weights) for g in pair]
    return Objective(data, net.penalty_term(weights, n), gradients)
