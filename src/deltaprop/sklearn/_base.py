"""What MLPClassifier and MLPRegressor share: parameters, the training loop, the weights.

The stochastic solvers train by ``Network.fit`` over the whole of ``max_iter`` epochs (one
epoch for ``partial_fit``; sample weights included), with scikit-learn's L2 term as the
network's own penalty (``_engine``) and :class:`~._monitor.EpochMonitor` applying
scikit-learn's end-of-epoch rules; ``solver="lbfgs"`` (:mod:`._lbfgs`) minimises scikit-learn's
weighted objective (:func:`~._weighted.objective`) over the whole training set.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from deltaprop.errors import TrainingDivergedError
from deltaprop.model import Network
from deltaprop.optim.optimizers import Optimizer
from deltaprop.sklearn._engine import SOLVERS, make_optimizer, network_penalty
from deltaprop.sklearn._file import EstimatorFile
from deltaprop.sklearn._inputs import (
    as_dtype,
    batch_size_for,
    checked_weights,
    engine_for,
    report_numpy_fit,
)
from deltaprop.sklearn._layout import SklearnLayout
from deltaprop.sklearn._lbfgs import fit_lbfgs
from deltaprop.sklearn._monitor import EpochMonitor, HoldOut, WeightedEpochMonitor

# scikit-learn's activation names -> deltaprop's.
HIDDEN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
# deltaprop's output activation -> scikit-learn's name for out_activation_.
_SKLEARN_OUTPUT_NAMES = {
    "softmax": "softmax",
    "sigmoid": "logistic",
    "identity": "identity",
    "exp": "exp",
}


class BaseMLP(SklearnLayout, EstimatorFile, BaseEstimator, ABC):
    """Base class of the estimators; use MLPClassifier or MLPRegressor."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS))],
        "solver": [StrOptions({*SOLVERS, "lbfgs"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
    }

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] | int,
        activation: str,
        solver: str,
        alpha: float,
        batch_size: int | str,
        learning_rate: str,
        learning_rate_init: float,
        power_t: float,
        max_iter: int,
        shuffle: bool,
        random_state: int | np.random.RandomState | None,
        tol: float,
        verbose: bool | int,
        warm_start: bool,
        momentum: float,
        nesterovs_momentum: bool,
        early_stopping: bool,
        validation_fraction: float,
        beta_1: float,
        beta_2: float,
        epsilon: float,
        n_iter_no_change: int | float,
        max_fun: int,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun

    # ------------------------------------------------------------ what subclasses define
    @abstractmethod
    def _validate_input(
        self, X: object, y: object, incremental: bool, reset: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) checked by scikit-learn's rules; X is float64 or float32."""

    @abstractmethod
    def _encode_targets(self, y: np.ndarray) -> np.ndarray:
        """The network's targets for y, shape (n_samples, n_outputs)."""

    @abstractmethod
    def _output_layer(self) -> tuple[str, str]:
        """(deltaprop output activation, deltaprop loss) for the targets seen."""

    @abstractmethod
    def _validation_score(
        self, X_val: np.ndarray, y_val: np.ndarray, weights: np.ndarray | None
    ) -> float:
        """The early-stopping score (accuracy or R², weighted by ``weights`` when given) of
        the network as it is now."""

    def _loss_divisor(self) -> int:
        """What deltaprop's loss is divided by to give scikit-learn's."""
        return 1

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        """Labels to stratify the early-stopping split by, or None."""
        return None

    # ------------------------------------------------------------ training
    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if not all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
            raise ValueError(
                "hidden_layer_sizes must be positive integers. "
                f"Received: hidden_layer_sizes={self.hidden_layer_sizes!r}"
            )
        return [int(s) for s in sizes]

    def _start_partial_fit(self) -> None:
        # Checked before partial_fit changes anything (scikit-learn checks it midway).
        if self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True. "
                f"Received: early_stopping={self.early_stopping!r}"
            )

    def _fit(
        self, X: object, y: object, incremental: bool, sample_weight: object = None
    ) -> BaseMLP:
        X, T, weights, hold_out = self._prepare_fit(X, y, incremental, sample_weight)
        network_penalty(self.network_, self.solver, self.alpha)
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, T, weights)
            return self
        n_train = X.shape[0]
        batch_size = batch_size_for(self.batch_size, n_train)
        epochs = 1 if incremental else self.max_iter
        self.n_iter_ = 0
        monitor = (EpochMonitor if weights is None else WeightedEpochMonitor)(
            self,
            self._optimizer,
            n_train=n_train,
            loss_divisor=self._loss_divisor(),
            hold_out=hold_out,
            no_improvement_count=self._no_improvement_count,
            best_params=self._best_params,
            incremental=incremental,
        )
        try:
            self._train(X, T, weights, epochs, batch_size, monitor)
        except TrainingDivergedError as exc:
            if not self.early_stopping:
                raise ValueError(
                    "Solver produced non-finite parameter weights. The input data may contain "
                    f"large values and need to be preprocessed. ({exc})"
                ) from exc
            # scikit-learn trains on with NaN weights and keeps the best epoch's; deltaprop
            # stops at the step that diverged and keeps them too, and says so.
            warnings.warn(
                f"Training diverged ({exc}); the weights of the best validation score "
                f"({self.best_validation_score_!r}) are kept.",
                ConvergenceWarning,
                stacklevel=4,
            )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=4)
        finally:
            self._no_improvement_count = monitor.no_improvement_count
        if monitor.reached_max_iter:
            # stacklevel 4: _fit, fit, scikit-learn's _fit_context wrapper, the caller.
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )
        if self.early_stopping:
            for param, best in zip(self.network_.parameters(), self._best_params):
                np.copyto(param, best)
        return self

    def _fit_lbfgs(self, X: object, T: np.ndarray, weights: np.ndarray | None) -> None:
        self.n_iter_, self.loss_ = fit_lbfgs(
            self.network_,
            X,
            T,
            weights,
            loss_divisor=self._loss_divisor(),
            max_iter=self.max_iter,
            max_fun=self.max_fun,
            tol=float(self.tol),
            verbose=self.verbose,
        )
        if not all(np.isfinite(p).all() for p in self.network_.parameters()):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed."
            )

    def _train(
        self,
        X: object,
        T: np.ndarray,
        weights: np.ndarray | None,
        epochs: int,
        batch_size: int,
        monitor: EpochMonitor,
    ) -> None:
        """The stochastic solvers' epochs: ``Network.fit`` (sample weights included)."""
        engine = engine_for(self.network_, self._optimizer, X, epochs, batch_size)
        history = self.network_.fit(
            X,
            T,
            sample_weight=weights,
            optimizer=self._optimizer,
            epochs=epochs,
            batch_size=batch_size,
            shuffle=self.shuffle,
            callbacks=[monitor],
            accuracy=False,
            engine=engine,
        )
        report_numpy_fit(self.network_, self._optimizer, X, engine, len(history.epoch), batch_size)

    def _prepare_fit(
        self, X: object, y: object, incremental: bool, sample_weight: object
    ) -> tuple[object, np.ndarray, np.ndarray | None, HoldOut | None]:
        """(X, T, sample weights, hold-out) checked, in the network's dtype (X dense or
        CSR); the network made (or checked, to continue it) and the optimizer made (unless
        partial_fit continues with it)."""
        hidden = self._hidden_sizes()
        weights = checked_weights(sample_weight, X)
        first_pass = not hasattr(self, "network_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        T = self._encode_targets(y)
        rs = check_random_state(self.random_state)
        if first_pass:
            # An int random_state is the network's seed itself; otherwise draw one, so that
            # None stays random and a RandomState instance stays reproducible.
            if isinstance(self.random_state, Integral):
                seed = int(self.random_state)
            else:
                seed = int(rs.randint(np.iinfo(np.int32).max))
            dtype = X.dtype
        else:
            self._check_continuation(hidden, T.shape[1])
            dtype = self.network_.dtype
        X = as_dtype(X, dtype)
        T = np.asarray(T, dtype=dtype)
        if weights is not None:
            weights = np.asarray(weights, dtype=dtype)

        hold_out = None
        stochastic = self.solver != "lbfgs"
        if self.early_stopping and stochastic:
            X, T, weights, hold_out = self._split(X, T, y, weights, rs)
        if first_pass:
            self._initialize(X.shape[1], hidden, T.shape[1], dtype, seed)
        if stochastic:
            self._prepare_monitoring()
            if not incremental or not hasattr(self, "_optimizer"):
                self._optimizer = self._make_optimizer()
        return X, T, weights, hold_out

    def _make_optimizer(self) -> Optimizer:
        return make_optimizer(
            self.solver,
            learning_rate_init=self.learning_rate_init,
            alpha=self.alpha,
            momentum=self.momentum,
            nesterovs_momentum=self.nesterovs_momentum,
            beta_1=self.beta_1,
            beta_2=self.beta_2,
            epsilon=self.epsilon,
        )

    def _initialize(
        self, n_features: int, hidden: list[int], n_outputs: int, dtype: np.dtype, seed: int
    ) -> None:
        output_activation, loss = self._output_layer()
        self.network_ = Network(
            [n_features, *hidden, n_outputs],
            activation=HIDDEN_ACTIVATIONS[self.activation],
            output_activation=output_activation,
            loss=loss,
            # deltaprop's default, U(±√(6 / (fan_in + fan_out))), is scikit-learn's weight
            # distribution except for the logistic activation (where it uses 2, not 6); the
            # biases start at 0 rather than from the same distribution. A standard initialiser
            # keeps network_ savable and loadable with deltaprop's model files.
            init="xavier",
            seed=seed,
            dtype=dtype,
        )
        self.n_layers_ = len(hidden) + 2
        self.n_outputs_ = n_outputs
        self.out_activation_ = _SKLEARN_OUTPUT_NAMES[output_activation]
        self.n_iter_ = 0
        self.t_ = 0
        self._best_params = [p.copy() for p in self.network_.parameters()]
        # The stochastic solvers' attributes; "lbfgs" has none of them, as in scikit-learn.
        for name in ("loss_curve_", "validation_scores_", "best_validation_score_", "best_loss_"):
            self.__dict__.pop(name, None)

    def _prepare_monitoring(self) -> None:
        # As scikit-learn: best_loss_ is None under early stopping, validation_scores_ None
        # without it. Set here rather than only at initialisation so that a warm start may
        # switch early stopping on or off (or from "lbfgs" to a stochastic solver).
        if not hasattr(self, "_no_improvement_count"):  # an estimator loaded from a file
            self._no_improvement_count = 0
            self._best_params = [p.copy() for p in self.network_.parameters()]
        if not hasattr(self, "loss_curve_"):
            self.loss_curve_: list[float] = []
            self._no_improvement_count = 0
            self.validation_scores_: list[float] | None = None
            self.best_validation_score_: float | None = None
            self.best_loss_: float | None = None
        if self.early_stopping:
            if self.validation_scores_ is None:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            if self.best_loss_ is None:
                self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _check_continuation(self, hidden: list[int], n_outputs: int) -> None:
        net = self.network_
        sizes = [net.n_inputs, *hidden, n_outputs]
        activation = HIDDEN_ACTIVATIONS[self.activation]
        output = self._output_layer()[0]
        if (
            net.sizes != sizes
            or (hidden and net.layers[0].activation.name != activation)
            or net.layers[-1].activation.name != output
        ):
            raise ValueError(
                "warm_start and partial_fit continue training the fitted network, of layer "
                f"sizes {net.sizes}, hidden activation {net.layers[0].activation.name!r} and "
                f"output activation {net.layers[-1].activation.name!r}; "
                f"hidden_layer_sizes={self.hidden_layer_sizes!r}, "
                f"activation={self.activation!r} and these targets ask for layer sizes "
                f"{sizes} and output activation {output!r}. Set warm_start=False to fit a new "
                "network."
            )

    def _split(
        self,
        X: object,
        T: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray | None,
        rs: np.random.RandomState,
    ) -> tuple[object, np.ndarray, np.ndarray | None, HoldOut]:
        """scikit-learn's early-stopping split (train_test_split from ``rs``, stratified as
        :meth:`_stratify` says, the weights split with the examples): the training part and
        the hold-out, scored with the validation part of the weights."""
        arrays = [X, T, y] + ([weights] if weights is not None else [])
        parts = train_test_split(
            *arrays, random_state=rs, test_size=self.validation_fraction, stratify=self._stratify(y)
        )
        X_train, X_val, T_train, _, _, y_val = parts[:6]
        w_train, w_val = parts[6:] if weights is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size "
                f"of your dataset. Received: validation_fraction={self.validation_fraction!r} "
                f"of {X.shape[0]} samples leaves {X_val.shape[0]} for validation"  # type: ignore[attr-defined]
            )
        return X_train, T_train, w_train, HoldOut(X_val, y_val, w_val, self._validation_score)

    # ------------------------------------------------------------ prediction
    def _forward(self, X: object) -> np.ndarray:
        """The network's outputs for X (dense, or sparse CSR/CSC), after scikit-learn's
        checks."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        net = self.network_
        return net.forward(as_dtype(X, net.dtype)).output

    def to_onnx(self, path: object = None, **kwargs: object) -> object:
        """The fitted estimator as an ONNX model by skl2onnx (see
        :func:`deltaprop.sklearn.onnx.estimator_to_onnx` for ``opset``, ``dtype``,
        ``options``); written atomically to ``path`` when given. Needs
        ``pip install 'deltaprop[onnx]'``."""
        # Imported here: it loads onnx and skl2onnx, an optional extra.
        from deltaprop.sklearn._onnx import estimator_to_onnx

        return estimator_to_onnx(self, path, **kwargs)

    @staticmethod
    def _finite(outputs: np.ndarray) -> bool:
        return bool(np.isfinite(outputs).all())


def stochastic_solver(est: BaseMLP) -> bool:
    """True for a stochastic solver; AttributeError for "lbfgs", which hides ``partial_fit``
    (``available_if``), as in scikit-learn."""
    if est.solver == "lbfgs":
        raise AttributeError(
            "partial_fit is only available for stochastic optimizers. "
            f"{est.solver} is not stochastic."
        )
    return True
