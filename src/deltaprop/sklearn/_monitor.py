"""scikit-learn's end-of-epoch rules, run as a deltaprop callback.

After every epoch scikit-learn's stochastic solvers (``_fit_stochastic`` in
sklearn/neural_network/_multilayer_perceptron.py) record the loss, count the epochs without
improvement, update the learning rate, and decide whether to stop. :class:`EpochMonitor`
does the same, in the same order, from inside ``Network.fit``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from deltaprop.core.network import FeedForward
from deltaprop.train.loop import Callback

if TYPE_CHECKING:
    from deltaprop.sklearn._base import BaseMLP

# scikit-learn's SGDOptimizer stops "adaptive" training once the rate is this small.
_MIN_ADAPTIVE_LR = 1e-6


class EpochMonitor(Callback):
    """Bookkeeping for one ``fit`` or ``partial_fit`` call of estimator ``est``.

    ``n_train`` is the number of training examples (after any validation split); ``X_val``
    and ``y_val`` the early-stopping hold-out, or None.
    """

    def __init__(
        self,
        est: BaseMLP,
        n_train: int,
        X_val: np.ndarray | None,
        y_val: np.ndarray | None,
        incremental: bool,
    ) -> None:
        self.est = est
        self.n_train = n_train
        self.X_val = X_val
        self.y_val = y_val
        self.incremental = incremental
        self.reached_max_iter = False

    def on_epoch_end(self, net: FeedForward, epoch: int, logs: dict) -> bool:
        est, opt = self.est, self.est._optimizer
        penalty = opt.end_epoch(epoch)
        est.n_iter_ += 1
        # deltaprop's loss is the epoch mean of batch losses taken before each update, as
        # scikit-learn's; scikit-learn's squared error also averages over the outputs.
        est.loss_ = logs["loss"] / est._loss_divisor() + penalty / self.n_train
        est.t_ += self.n_train
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")

        self._count_no_improvement(net)

        sgd = est.solver == "sgd"
        if sgd and est.learning_rate == "invscaling":
            opt.lr = float(est.learning_rate_init) / (est.t_ + 1) ** est.power_t

        if est._no_improvement_count > est.n_iter_no_change:
            what = "Validation score" if est.early_stopping else "Training loss"
            msg = (
                f"{what} did not improve more than tol={est.tol:f} for "
                f"{est.n_iter_no_change} consecutive epochs."
            )
            if sgd and est.learning_rate == "adaptive" and opt.lr > _MIN_ADAPTIVE_LR:
                opt.lr = opt.lr / 5.0
                est._no_improvement_count = 0
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

    def _count_no_improvement(self, net: FeedForward) -> None:
        est = self.est
        if not est.early_stopping:
            if est.loss_curve_[-1] > est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if est.loss_curve_[-1] < est.best_loss_:
                est.best_loss_ = est.loss_curve_[-1]
            return
        assert self.X_val is not None and self.y_val is not None
        score = est._validation_score(self.X_val, self.y_val)
        est.validation_scores_.append(score)
        if est.verbose:
            print(f"Validation score: {score:f}")
        # A NaN score compares False both ways, which resets the count, as in scikit-learn.
        if score < est.best_validation_score_ + est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if score > est.best_validation_score_:
            est.best_validation_score_ = score
            for best, param in zip(est._best_params, net.parameters()):
                np.copyto(best, param)
