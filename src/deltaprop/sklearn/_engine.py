"""The estimators' optimizers and scikit-learn's L2 penalty, as deltaprop expresses them.

scikit-learn's MLP minimises, for a batch of m examples,

    data loss (the batch mean)  +  alpha / (2 m) · Σ_layers ||W||²

where W are the connection weights only, never the biases: the network's own L2 penalty
with ``l2 = alpha`` and ``penalty_scale="sum"`` (the penalty joins the batch's summed loss
before the division by m; see :mod:`deltaprop.core.regularization`), which
:func:`network_penalty` gives. Solver "adamw" takes alpha as AdamW's decoupled decay of the
weights instead (``decay_biases=False``), outside the loss.
"""

from __future__ import annotations

from deltaprop.core.network import FeedForward
from deltaprop.core.regularization import check_penalty
from deltaprop.optim.optimizers import SGD, Adagrad, AdamW, Optimizer, RMSprop
from deltaprop.optim.sklearn_adam import SklearnAdam

__all__ = ["make_optimizer", "network_penalty", "SOLVERS"]

SOLVERS = ("sgd", "adam", "rmsprop", "adagrad", "adamw")


def make_optimizer(
    solver: str,
    *,
    learning_rate_init: float,
    alpha: float,
    momentum: float,
    nesterovs_momentum: bool,
    beta_1: float,
    beta_2: float,
    epsilon: float,
) -> Optimizer:
    """The deltaprop optimizer for a scikit-learn ``solver`` name.

    sgd: SGD(momentum, nesterov); scikit-learn's velocity v ← μv − ηg holds steps where
        torch's buffer holds gradients: the updates are equal while η is constant and differ
        only after "invscaling" or "adaptive" change η.
    adam: scikit-learn's own Adam rule (:class:`~deltaprop.optim.sklearn_adam.SklearnAdam`,
        its ε placement), so that the steps equal scikit-learn's; deltaprop's Adam is torch's.
    rmsprop, adagrad: learning_rate_init and epsilon; their other settings are torch's
        defaults (RMSprop α = 0.99, no momentum).
    adamw: AdamW with alpha as its decoupled decay of the weights (not the biases).
    """
    lr = float(learning_rate_init)
    inner: Optimizer
    if solver == "sgd":
        # torch (and deltaprop) refuse Nesterov without momentum; scikit-learn's Nesterov
        # step with momentum 0 is the plain step.
        inner = SGD(lr=lr, momentum=momentum, nesterov=bool(nesterovs_momentum and momentum > 0))
    elif solver == "adam":
        inner = SklearnAdam(lr=lr, betas=(beta_1, beta_2), eps=epsilon)
    elif solver == "adamw":
        inner = AdamW(
            lr=lr, betas=(beta_1, beta_2), eps=epsilon, weight_decay=alpha, decay_biases=False
        )
    elif solver == "rmsprop":
        inner = RMSprop(lr=lr, eps=epsilon)
    elif solver == "adagrad":
        inner = Adagrad(lr=lr, eps=epsilon)
    else:
        raise ValueError(f"solver must be one of {SOLVERS}. Received: solver={solver!r}")
    return inner


def network_penalty(net: FeedForward, solver: str, alpha: float) -> None:
    """Give ``net`` scikit-learn's L2 penalty for ``alpha`` (none for solver "adamw", whose
    optimizer decays the weights instead)."""
    coefficient = 0.0 if solver == "adamw" else alpha
    net.l2 = check_penalty(coefficient, len(net.layers), "alpha")
    net.l1 = check_penalty(0.0, len(net.layers), "l1")
    net.penalty_scale = "sum"
