"""What the estimators add to deltaprop's optimizers: scikit-learn's L2 penalty.

scikit-learn's MLP minimises, for a batch of m examples,

    data loss (the batch mean)  +  alpha / (2 m) · Σ_layers ||W||²

where W are the connection weights only, never the biases. Its gradient is the data gradient
plus (alpha / m) · W. deltaprop's optimizers see only parameters and gradients, and their
``weight_decay`` adds a fixed λθ to every parameter's gradient, biases included, so neither
gives this term. :class:`PenalizedOptimizer` wraps any deltaprop optimizer and adds it,
exactly, before the wrapped optimizer's rule runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np

from deltaprop.optim.optimizers import SGD, Adagrad, Adam, Optimizer, RMSprop

__all__ = ["PenalizedOptimizer", "make_optimizer", "SOLVERS"]

SOLVERS = ("sgd", "adam", "rmsprop", "adagrad", "adamw")


class PenalizedOptimizer(Optimizer):
    """Wraps a deltaprop optimizer and adds scikit-learn's L2 penalty on the weights.

    ``params`` must be ``Network.parameters()``, [W0, b0, W1, b1, ...]: even positions are
    weights, odd ones biases.

    coupled (the default): the gradient of W becomes g + (alpha / m) W, m the batch size,
        and ``penalty`` accumulates Σ_batches alpha/2 · Σ||W||², the batches' penalty terms
        weighted by their sizes, for the estimator's loss curve.
    decoupled (solver "adamw"): before the wrapped step, W ← W (1 - lr · alpha), AdamW's
        decoupled decay, applied to the weights only and not part of the loss.

    m is not among the step's arguments, so :meth:`begin` is told the epoch's size and the
    batch size and derives each batch's m from ``fit``'s documented batching (consecutive
    slices of ``batch_size``, the last one shorter); :meth:`end_epoch` checks that the engine
    made exactly that many steps, so a change in batching cannot go unnoticed.
    """

    name = "Penalized"

    def __init__(self, inner: Optimizer, alpha: float = 0.0, decoupled: bool = False) -> None:
        if not isinstance(inner, Optimizer):
            raise ValueError(
                f"inner must be a deltaprop Optimizer such as dp.Adam(). Received: inner={inner!r}"
            )
        ok = isinstance(alpha, Real) and not isinstance(alpha, bool) and math.isfinite(alpha)
        if not (ok and alpha >= 0):
            raise ValueError(f"alpha must be a finite number >= 0. Received: alpha={alpha!r}")
        self.inner = inner
        self.alpha = float(alpha)
        self.decoupled = bool(decoupled)
        self.penalty = 0.0
        self._sizes: list[int] = [1]
        self._k = 0
        self._handed_out = False
        self._scratch: list[np.ndarray] | None = None
        # Optimizer's own state slots, which deltaprop's engines inspect, stay empty: the
        # state lives in the wrapped optimizer.
        self._state = None
        self._layout: list = []

    # fit reads and schedules set the learning rate; it lives in the wrapped optimizer.
    @property
    def lr(self) -> float:
        return self.inner.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.inner.lr = value

    @property
    def steps(self) -> int:  # type: ignore[override]
        return self.inner.steps

    def reset(self) -> None:
        self.inner.reset()
        self._scratch = None
        self._state = None

    def begin(self, n_examples: int, batch_size: int) -> Optimizer:
        """Announce a ``fit`` over ``n_examples`` in batches of ``batch_size``; returns the
        optimizer to hand to ``fit``: the wrapped one itself when there is nothing to add,
        so that deltaprop's engines can run its fused update kernels."""
        full, rest = divmod(n_examples, batch_size)
        self._sizes = [batch_size] * full + ([rest] if rest else [])
        self._k = 0
        self.penalty = 0.0
        self._handed_out = self.alpha != 0.0
        return self if self._handed_out else self.inner

    def end_epoch(self, epoch: int) -> float:
        """Check the engine's step count after ``epoch`` epochs of this fit; return and clear
        the epoch's summed penalty."""
        expected = epoch * len(self._sizes)
        if self._handed_out and self._k != expected:
            raise RuntimeError(
                f"deltaprop's fit made {self._k} optimizer steps in {epoch} epochs; the batch "
                f"sizes {self._sizes} predict {expected}. The L2 penalty's per-batch scale "
                "alpha / m relies on fit's batching; deltaprop/sklearn/_engine.py must follow it."
            )
        penalty, self.penalty = self.penalty, 0.0
        return penalty

    def weight_term(self, weights: Sequence[np.ndarray]) -> float | None:
        """One step's bookkeeping, and the term it adds to the ``weights`` (the parameters
        before the step): None when alpha is 0; coupled, c with the gradient of W becoming
        g + c W (c = alpha / m), the step's penalty added to ``penalty``; decoupled, c with
        W ← c W before the wrapped step (c = 1 - lr · alpha).

        :meth:`step` is built on it, and deltaprop's batch engine calls it instead of
        ``step`` when it runs the wrapped optimizer's fused update with this term folded in
        (see deltaprop/minibatch.py), so both keep the same count of steps and penalty.
        """
        m = self._sizes[self._k % len(self._sizes)]
        self._k += 1
        if self.alpha == 0.0:
            return None
        if self.decoupled:
            return 1.0 - self.inner.lr * self.alpha
        self.penalty += 0.5 * self.alpha * sum(float(np.vdot(W, W)) for W in weights)
        return self.alpha / m

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        weights = params[0::2]
        c = self.weight_term(weights)
        if c is None:
            self.inner.step(params, grads)
            return
        if self.decoupled:
            for W in weights:
                W *= c
            self.inner.step(params, grads)
            return
        if self._scratch is None:
            self._scratch = [np.empty_like(W) for W in weights]
        # Separate buffers, because Optimizer.step promises to only read its grads.
        adjusted = list(grads)
        for i, (W, buf) in enumerate(zip(weights, self._scratch)):
            np.multiply(W, c, out=buf)
            buf += grads[2 * i]
            adjusted[2 * i] = buf
        self.inner.step(params, adjusted)

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inner": self.inner.config(),
            "alpha": self.alpha,
            "decoupled": self.decoupled,
        }

    def state_dict(self) -> dict[str, Any]:
        return {**self.config(), "inner": self.inner.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.inner.load_state_dict(state["inner"])
        self.alpha = float(state["alpha"])
        self.decoupled = bool(state["decoupled"])
        self._scratch = None

    def __repr__(self) -> str:
        return f"Penalized({self.inner!r}, alpha={self.alpha!r}, decoupled={self.decoupled})"


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
) -> PenalizedOptimizer:
    """The deltaprop optimizer for a scikit-learn ``solver`` name, wrapped with the penalty.

    sgd: SGD(momentum, nesterov); scikit-learn's velocity v ← μv − ηg holds steps where
        torch's buffer holds gradients: the updates are equal while η is constant and differ
        only after "invscaling" or "adaptive" change η.
    adam: Adam(betas=(beta_1, beta_2), eps=epsilon); torch adds ε after bias-correcting √v,
        scikit-learn before (an ε larger by 1/√(1 − β₂ᵗ)), a difference of order ε.
    rmsprop, adagrad: learning_rate_init and epsilon; their other settings are torch's
        defaults (RMSprop α = 0.99, no momentum).
    adamw: Adam plus alpha as AdamW's decoupled decay of the weights.
    """
    lr = float(learning_rate_init)
    inner: Optimizer
    if solver == "sgd":
        # torch (and deltaprop) refuse Nesterov without momentum; scikit-learn's Nesterov
        # step with momentum 0 is the plain step.
        inner = SGD(lr=lr, momentum=momentum, nesterov=bool(nesterovs_momentum and momentum > 0))
    elif solver in ("adam", "adamw"):
        inner = Adam(lr=lr, betas=(beta_1, beta_2), eps=epsilon)
    elif solver == "rmsprop":
        inner = RMSprop(lr=lr, eps=epsilon)
    elif solver == "adagrad":
        inner = Adagrad(lr=lr, eps=epsilon)
    else:
        raise ValueError(f"solver must be one of {SOLVERS}. Received: solver={solver!r}")
    return PenalizedOptimizer(inner, alpha=alpha, decoupled=solver == "adamw")
