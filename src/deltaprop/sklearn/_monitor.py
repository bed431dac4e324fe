"""scikit-learn's end-of-epoch rules, run as a deltaprop callback.

After every epoch scikit-learn's stochastic solvers (``_fit_stochastic`` in
sklearn/neural_network/_multilayer_perceptron.py) record the loss, count the epochs without
improvement, update the learning rate, and decide whether to stop. :class:`EpochMonitor`
does the same, in the same order, from inside ``Network.fit``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from deltaprop.core.network import FeedForward
from deltaprop.optim.optimizers import Optimizer
from deltaprop.train.callbacks import Callback

if TYPE_CHECKING:
    from deltaprop.sklearn._base import BaseMLP

# scikit-learn's SGDOptimizer stops "adaptive" training once the rate is this small.
_MIN_ADAPTIVE_LR = 1e-6


class HoldOut(NamedTuple):
    """The early-stopping hold-out, and how the estimator scores the network on it."""

    X: object  # dense, or sparse CSR
    y: np.ndarray
    weights: np.ndarray | None  # the validation part of sample_weight
    score: Callable[[object, np.ndarray, np.ndarray | None], float]  # accuracy or R² now


class EpochMonitor(Callback):
    """scikit-learn's end-of-epoch rules for one ``fit`` or ``partial_fit`` call of ``est``.

    It updates the estimator's public fitted attributes as scikit-learn's solver does
    (``n_iter_``, ``t_``, ``loss_``, ``loss_curve_``, ``best_loss_``, ``validation_scores_``,
    ``best_validation_score_``) and reads its parameters (``solver``, ``learning_rate``,
    ``tol``, ...). What else it needs it is handed:

    optimizer: the optimizer ``fit`` steps with; its learning rate.
    n_train: training examples (after any validation split).
    loss_divisor: what deltaprop's loss is divided by to give scikit-learn's.
    hold_out: the early-stopping hold-out, or None without early stopping.
    no_improvement_count: epochs without improvement, carried over from earlier calls; the
        monitor keeps counting in its own ``no_improvement_count``, for the estimator to
        carry on (scikit-learn's ``_no_improvement_count``).
    best_params: arrays of the network's parameters' shapes; under early stopping the best
        parameters seen are copied into them.
    """

    def __init__(
        self,
        est: BaseMLP,
        optimizer: Optimizer,
        *,
        n_train: int,
        loss_divisor: int,
        hold_out: HoldOut | None,
        no_improvement_count: int,
        best_params: list[np.ndarray],
        incremental: bool,
    ) -> None:
        self.est = est
        self.optimizer = optimizer
        self.n_train = n_train
        self.loss_divisor = loss_divisor
        self.hold_out = hold_out
        self.no_improvement_count = no_improvement_count
        self.best_params = best_params
        self.incremental = incremental
        self.reached_max_iter = False

    def epoch_loss(self, logs: dict) -> float:
        """scikit-learn's loss of the epoch that ``logs`` report."""
        # deltaprop's loss is the epoch mean of batch losses taken before each update, as
        # scikit-learn's; scikit-learn's squared error also averages over the outputs, its
        # L2 penalty (the history's "penalty", part of "loss") does not.
        return self.sklearn_scale(logs["loss"], logs.get("penalty", 0.0))

    def sklearn_scale(self, loss: float, penalty: float) -> float:
        """A deltaprop loss holding ``penalty`` in scikit-learn's scale."""
        return (loss - penalty) / self.loss_divisor + penalty

    def on_epoch_end(self, net: FeedForward, epoch: int, logs: dict) -> bool:
        est, opt = self.est, self.optimizer
        est.n_iter_ += 1
        est.loss_ = self.epoch_loss(logs)
        est.t_ += self.n_train
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")

        self._update_no_improvement_count(net)

        sgd = est.solver == "sgd"
        if sgd and est.learning_rate == "invscaling":
            opt.lr = float(est.learning_rate_init) / (est.t_ + 1) ** est.power_t

        if self.no_improvement_count > est.n_iter_no_change:
            what = "Validation score" if self.hold_out is not None else "Training loss"
            msg = (
                f"{what} did not improve more than tol={est.tol:f} for "
                f"{est.n_iter_no_change} consecutive epochs."
            )
            if sgd and est.learning_rate == "adaptive" and opt.lr > _MIN_ADAPTIVE_LR:
                opt.lr = opt.lr / 5.0
                self.no_improvement_count = 0
                if est.verbose:
                    print(f"{msg} Setting learning rate to {opt.lr:f}")
            else:
                if est.verbose:
                    small = sgd and est.learning_rate == "adaptive"
                    print(msg + (" Learning rate too small." if small else "") + " Stopping.")
                return True

        if self.incremental:
            return True
        # The estimator warns once fit returns, so that the warning points at the caller.
        self.reached_max_iter = est.n_iter_ == est.max_iter
        return False

    def _update_no_improvement_count(self, net: FeedForward) -> None:
        est = self.est
        if self.hold_out is None:
            if est.loss_curve_[-1] > est.best_loss_ - est.tol:
                self.no_improvement_count += 1
            else:
                self.no_improvement_count = 0
            if est.loss_curve_[-1] < est.best_loss_:
                est.best_loss_ = est.loss_curve_[-1]
            return
        hold_out = self.hold_out
        score = hold_out.score(hold_out.X, hold_out.y, hold_out.weights)
        est.validation_scores_.append(score)
        if est.verbose:
            print(f"Validation score: {score:f}")
        # A NaN score compares False both ways, which resets the count, as in scikit-learn.
        if score < est.best_validation_score_ + est.tol:
            self.no_improvement_count += 1
        else:
            self.no_improvement_count = 0
        if score > est.best_validation_score_:
            est.best_validation_score_ = score
            for best, param in zip(self.best_params, net.parameters()):
                np.copyto(best, param)


class WeightedEpochMonitor(EpochMonitor):
    """:class:`EpochMonitor` for a fit with sample weights. scikit-learn's epoch loss is then
    the mean of the batch losses by batch size, Σ_b n_b L_b / n (each L_b a weighted mean),
    where ``Network.fit``'s is by batch weight, Σ_b W_b L_b / Σ_b W_b; so this monitor sums
    scikit-learn's from the batches themselves. The stopping rules read that loss too."""

    size_weighted_sum = 0.0  # Σ_b n_b L_b of the epoch so far

    def on_batch_end(
        self, net: FeedForward, epoch: int, batch: int, loss: float, logs: dict
    ) -> None:
        self.size_weighted_sum += logs["size"] * self.sklearn_scale(loss, logs["penalty"])

    def epoch_loss(self, logs: dict) -> float:
        loss, self.size_weighted_sum = self.size_weighted_sum / self.n_train, 0.0
        return loss
