"""MLPClassifier: scikit-learn's multi-layer perceptron classifier, trained by deltaprop."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import Tags, column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import validate_data

from deltaprop.sklearn._base import BaseMLP, stochastic_solver


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier with scikit-learn's interface, trained by deltaprop.

    A drop-in for :class:`sklearn.neural_network.MLPClassifier`: the same parameters, the
    same fitted attributes, and the same training rules (batching, sample weights, L2 penalty,
    learning-rate schedules, stopping, early stopping, L-BFGS). The network is a
    :class:`deltaprop.Network`, exposed as ``network_``. X may be dense or a SciPy sparse
    matrix or array (CSR or CSC), which is never made dense. ``save(path)`` writes it to a
    safe file that :func:`deltaprop.sklearn.load` reads back.

    Multiclass targets get a softmax output trained on cross-entropy; binary and multilabel
    targets sigmoid outputs trained on binary cross-entropy, as in scikit-learn.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
        Units in each hidden layer.
    activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
        Hidden-layer activation (deltaprop's identity, sigmoid, tanh, relu).
    solver : {"adam", "sgd", "lbfgs", "rmsprop", "adagrad", "adamw"}, default="adam"
        "sgd", "adam" and "lbfgs" as in scikit-learn: "sgd" is deltaprop's SGD, "adam"
        scikit-learn's own Adam rule (its ε placement; ``deltaprop.Adam`` is torch's),
        "lbfgs" SciPy's L-BFGS-B over all the parameters at once (full batch: ``batch_size``,
        the schedules and early stopping do not apply, as in scikit-learn; no
        ``partial_fit``). "rmsprop" and "adagrad" use ``learning_rate_init`` and
        ``epsilon``; "adamw" is deltaprop's (torch's) Adam with ``alpha`` as decoupled
        weight decay.
    alpha : float, default=1e-4
        L2 penalty: ``alpha / (2 m) * sum(||W||^2)`` is added to each batch's loss (m its size,
        or the sum of its sample weights), on the weights only, as in scikit-learn. For
        "adamw", the decoupled decay rate of the weights instead (W ← W (1 - lr·alpha) each
        step), not part of the loss.
    batch_size : int or "auto", default="auto"
        "auto" is min(200, n_samples); larger than n_samples is clipped, with a warning.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        The schedule of ``solver="sgd"`` (ignored by the others, as in scikit-learn):
        "invscaling" sets lr = learning_rate_init / (t_ + 1) ** power_t after each epoch;
        "adaptive" divides lr by 5 whenever ``n_iter_no_change`` epochs pass without an
        improvement by ``tol``, and stops once lr <= 1e-6.
    learning_rate_init : float, default=1e-3
    power_t : float, default=0.5
    max_iter : int, default=200
        Epochs (passes over the data).
    shuffle : bool, default=True
        Shuffle the examples every epoch (with the network's own generator).
    random_state : int, RandomState instance or None, default=None
        An int is the network's seed (initial weights and shuffling) and seeds the
        early-stopping split; otherwise a seed is drawn from it.
    tol : float, default=1e-4
    verbose : bool, default=False
        Print the loss (and validation score) after every epoch.
    warm_start : bool, default=False
        Continue from the fitted network, with a fresh optimizer, as scikit-learn.
    momentum : float, default=0.9
        For "sgd".
    nesterovs_momentum : bool, default=True
        For "sgd" with momentum > 0.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (with their sample weights; stratified
        for binary targets, as in scikit-learn), stop once the validation accuracy (weighted)
        has not improved by ``tol`` for ``n_iter_no_change`` epochs, and keep the best epoch's
        weights. Training that diverges keeps them too, with a ConvergenceWarning.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's (and AdamW's) β₁, β₂ and ε; ``epsilon`` also serves RMSprop and Adagrad.
    n_iter_no_change : int, default=10
        Training stops (or "adaptive" divides lr) once the monitored quantity has failed to
        improve by ``tol`` for more than this many consecutive epochs.
    max_fun : int, default=15000
        "lbfgs" only: the most loss evaluations.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels, sorted.
    coefs_ : list of ndarray
        ``coefs_[i]`` has scikit-learn's shape (n_in, n_out): the transpose (a view) of
        deltaprop's ``network_.layers[i].W``, which is (n_out, n_in).
    intercepts_ : list of ndarray
        ``network_.layers[i].b``.
    network_ : deltaprop.Network
        The trained network.
    loss_ : float
        The last epoch's loss, on scikit-learn's scale (with the L2 term); for "lbfgs" the
        final loss. "lbfgs" has none of the curve, best and validation attributes below.
    loss_curve_ : list of float
        The loss of every epoch: the mean of the batches' losses, each taken before its
        update, plus the L2 term.
    best_loss_ : float or None
        The lowest loss seen; None with early stopping.
    validation_scores_ : list of float or None
        The validation accuracy after every epoch, with early stopping; else None.
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs run by the last call to fit (1 after partial_fit); L-BFGS iterations.
    t_ : int
        Training samples seen, over all calls.
    n_layers_, n_outputs_, out_activation_, n_features_in_, feature_names_in_
        As in scikit-learn; out_activation_ is "softmax" or "logistic".

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from deltaprop.sklearn import MLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier(max_iter=50, random_state=0).fit(X / 16, y)
    >>> clf.coefs_[0].shape, clf.network_.layers[0].W.shape
    ((64, 100), (100, 64))
    """

    def __init__(
        self,
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
    def fit(self, X: object, y: object, sample_weight: object = None) -> MLPClassifier:
        """Fit the network to X (n_samples, n_features), dense or sparse, and labels y, for up
        to max_iter epochs; returns self.

        ``sample_weight`` (n_samples,): each batch's loss and gradient are weighted means,
        Σ wᵢ Eᵢ / Σ wᵢ, as in scikit-learn (the L2 term divided by Σ wᵢ too). A wrong length,
        NaN, negative or all-zero weights raise ValueError before anything changes.
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    @available_if(stochastic_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(
        self, X: object, y: object, sample_weight: object = None, classes: object = None
    ) -> MLPClassifier:
        """One epoch over (X, y), continuing the optimizer's state from the previous call.

        ``classes`` (every label that will ever be seen) is required on the first call;
        ``sample_weight`` as in :meth:`fit`. Absent (AttributeError) for solver="lbfgs".
        """
        self._start_partial_fit()
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    @classmethod
    def from_saved(cls, net: object, entry: dict) -> MLPClassifier:
        est = super().from_saved(net, entry)
        # The label binarizer fit() would have made for these classes and outputs.
        binarizer = LabelBinarizer()
        binarizer.classes_ = est.classes_
        if est.out_activation_ == "softmax":
            binarizer.y_type_ = "multiclass"
        else:
            binarizer.y_type_ = "binary" if est.n_outputs_ == 1 else "multilabel-indicator"
        binarizer.sparse_input_ = False
        est._label_binarizer = binarizer
        return est

    # The rules below are scikit-learn's MLPClassifier._validate_input, so that labels,
    # classes_ and the errors for bad targets are the same.
    def _validate_input(
        self, X: object, y: object, incremental: bool, reset: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        return X, y

    def _encode_targets(self, y: np.ndarray) -> np.ndarray:
        return self._label_binarizer.transform(y)

    def _output_layer(self) -> tuple[str, str]:
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax", "cross_entropy"
        return "sigmoid", "binary_cross_entropy"

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        # scikit-learn stratifies when there is one output unit: binary targets. Too few
        # examples of a class is then train_test_split's ValueError, as there.
        return y if self._label_binarizer.y_type_ == "binary" else None

    def _labels(self, outputs: np.ndarray) -> np.ndarray:
        if self.n_outputs_ == 1:
            outputs = outputs.ravel()
        return self._label_binarizer.inverse_transform(outputs)

    def _validation_score(
        self, X_val: object, y_val: np.ndarray, weights: np.ndarray | None
    ) -> float:
        outputs = self.network_.forward(X_val).output
        if not self._finite(outputs):
            return np.nan
        return float(accuracy_score(y_val, self._labels(outputs), sample_weight=weights))

    def predict(self, X: object) -> np.ndarray:
        """Class labels: the most probable class, or probability > 0.5 for binary and
        multilabel targets."""
        return self._labels(self._forward(X))

    def predict_proba(self, X: object) -> np.ndarray:
        """Probabilities (n_samples, n_classes), columns in the order of ``classes_``; for
        multilabel targets, each label's probability."""
        outputs = self._forward(X)
        if self.n_outputs_ == 1:
            p = outputs.ravel()
            return np.vstack([1 - p, p]).T
        return outputs

    def predict_log_proba(self, X: object) -> np.ndarray:
        """log(predict_proba(X))."""
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.input_tags.sparse = True
        return tags
