"""MLPRegressor: scikit-learn's multi-layer perceptron regressor, trained by deltaprop."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils import Tags, column_or_1d
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import validate_data

from deltaprop.sklearn._base import BaseMLP, stochastic_solver


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor with scikit-learn's interface, trained by deltaprop.

    A drop-in for :class:`sklearn.neural_network.MLPRegressor`: identity outputs trained on
    squared error, or exponential outputs on the Poisson deviance. Parameters and attributes
    are those of :class:`MLPClassifier` (see its docstring), with these differences:

    loss : {"squared_error", "poisson"}, default="squared_error"
        scikit-learn's first positional parameter. "poisson": o = exp(a) (``out_activation_``
        "exp") trained on the Poisson deviance Σ_k [y log(y/o) − y + o] (deltaprop's loss
        "poisson", scikit-learn's poisson_loss), for targets y >= 0 (negative ones raise
        ValueError; scikit-learn's loss is NaN there).
    early_stopping : bool, default=False
        Monitors the validation R² (``validation_scores_``, weighted by the sample weights);
        the split is not stratified.

    ``score`` is scikit-learn's R² (``sklearn.metrics.r2_score``, the uniform average over
    the outputs).

    Loss scale: scikit-learn's squared error, reported in ``loss_``, ``loss_curve_`` and
    ``best_loss_``, is ½ · mean over samples *and outputs* of (y - ŷ)²; deltaprop's ``"mse"``
    sums ½ (y - ŷ)² over the outputs and averages over samples, so it is n_outputs times
    larger. The gradients are the same (scikit-learn's gradient is that of deltaprop's mse),
    so training is unaffected; the estimator divides the network's loss by ``n_outputs_``
    before reporting it (and adds the L2 term).
    """

    _parameter_constraints: dict = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: tuple[int, ...] | int = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int | float = 10,
        max_fun: int = 15000,
    ) -> None:
        self.loss = loss
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: object, y: object, sample_weight: object = None) -> MLPRegressor:
        """Fit the network to X (n_samples, n_features), dense or sparse, and y (n_samples,)
        or (n_samples, n_outputs), for up to max_iter epochs; returns self.
        ``sample_weight`` as in :meth:`MLPClassifier.fit`."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    # scikit-learn's MLPRegressor writes ``available_if(lambda est: est._check_solver)``,
    # without the call, so its partial_fit exists even for "lbfgs"; here, as for its
    # classifier, it does not.
    @available_if(stochastic_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: object, y: object, sample_weight: object = None) -> MLPRegressor:
        """One epoch over (X, y), continuing the optimizer's state from the previous call;
        absent (AttributeError) for solver="lbfgs"."""
        self._start_partial_fit()
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _validate_input(
        self, X: object, y: object, incremental: bool, reset: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _encode_targets(self, y: np.ndarray) -> np.ndarray:
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def _output_layer(self) -> tuple[str, str]:
        if self.loss == "poisson":
            return "exp", "poisson"
        return "identity", "mse"

    def _loss_divisor(self) -> int:
        # scikit-learn's poisson_loss sums over the outputs, as deltaprop's does.
        return 1 if self.loss == "poisson" else self.n_outputs_

    def _predictions(self, outputs: np.ndarray) -> np.ndarray:
        return outputs.ravel() if outputs.shape[1] == 1 else outputs

    def _validation_score(
        self, X_val: object, y_val: np.ndarray, weights: np.ndarray | None
    ) -> float:
        outputs = self.network_.forward(X_val).output
        if not self._finite(outputs):
            return np.nan
        with np.errstate(over="ignore", invalid="ignore"):  # outputs about to diverge
            return float(r2_score(y_val, self._predictions(outputs), sample_weight=weights))

    def predict(self, X: object) -> np.ndarray:
        """Predictions, (n_samples,) for one output, else (n_samples, n_outputs)."""
        return self._predictions(self._forward(X))

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
