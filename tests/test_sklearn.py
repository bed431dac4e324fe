"""deltaprop.sklearn: scikit-learn's estimator checks, its meta-estimators, and exact
agreement with scikit-learn's own MLP and with deltaprop networks trained directly."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network as sk_nn
from sklearn.datasets import load_digits, load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import deltaprop as dp
from deltaprop.sklearn import MLPClassifier, MLPRegressor

# Small fits stop at max_iter on purpose; the warning is tested on its own below.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture(scope="module")
def small() -> dict[str, np.ndarray]:
    """50 examples, 4 features, and targets of every kind."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4))
    return {
        "X": X,
        "multiclass": rng.integers(0, 3, 50),
        "binary": (X[:, 0] + 0.3 * X[:, 1] > 0).astype(int),
        "multilabel": (X[:, :3] > 0).astype(int),
        "regression2": np.c_[X @ [1.0, 2.0, 0.0, -1.0], X[:, 1] ** 2],
    }


# ---------------------------------------------------------------- scikit-learn's own checks
@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------- meta-estimators
def test_pipeline_in_grid_search(digits):
    X, y = digits
    X, y = X[:600], y[:600]
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("mlp", MLPClassifier(learning_rate_init=0.01, max_iter=60, random_state=0)),
        ]
    )
    grid = {"mlp__hidden_layer_sizes": [(8,), (32,)], "mlp__alpha": [1e-4, 1.0]}
    search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    assert len(search.cv_results_["mean_test_score"]) == 4
    # 8 hidden units learn digits less well than 32; the search must see that.
    scores = dict(
        zip(map(str, search.cv_results_["params"]), search.cv_results_["mean_test_score"])
    )
    small_net = scores[str({"mlp__alpha": 1e-4, "mlp__hidden_layer_sizes": (8,)})]
    big_net = scores[str({"mlp__alpha": 1e-4, "mlp__hidden_layer_sizes": (32,)})]
    assert big_net > small_net
    assert search.best_params_["mlp__hidden_layer_sizes"] == (32,)
    assert search.best_score_ > 0.8  # 400 training digits per fold, 60 epochs
    mlp = search.best_estimator_.named_steps["mlp"]
    assert mlp.coefs_[0].shape == (64, 32)
    assert search.score(X, y) > 0.95


def test_cross_val_score():
    X, y = load_iris(return_X_y=True)
    clf = Pipeline([("scale", StandardScaler()), ("mlp", MLPClassifier(random_state=0))])
    scores = cross_val_score(clf, X, y, cv=5)
    assert scores.shape == (5,) and scores.mean() > 0.9

    Xr, yr = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    reg = Pipeline(
        [
            ("scale", StandardScaler()),
            ("mlp", MLPRegressor(learning_rate_init=0.01, random_state=0)),
        ]
    )
    r2 = cross_val_score(reg, Xr, yr / yr.std(), cv=3)
    assert r2.mean() > 0.9


# ---------------------------------------------------------------- the digits promise
# Seeds 0-9 all reach >= 0.97 (mean 0.979, as scikit-learn's own MLPClassifier). Seed 2's
# split is left out: both implementations score 0.9704 there, one digit above the line, so a
# rounding change anywhere in training could flip it either way.
@pytest.mark.parametrize("seed", [0, 1, 3, 4])
def test_digits_held_out_accuracy_with_defaults(digits, seed):
    X, y = digits
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    clf = MLPClassifier(random_state=seed).fit(X_tr, y_tr)
    assert clf.score(X_te, y_te) >= 0.97


# ---------------------------------------------------------------- agreement with deltaprop
def test_one_sgd_epoch_equals_a_deltaprop_network_trained_directly(small):
    X, y = small["X"], small["multiclass"]
    est = MLPClassifier(
        hidden_layer_sizes=(6,),
        solver="sgd",
        momentum=0.0,
        alpha=0.0,
        learning_rate="constant",
        learning_rate_init=0.2,
        batch_size=16,  # 16, 16, 16, 2: the short last batch counts too
        shuffle=False,
        max_iter=1,
        random_state=3,
    ).fit(X, y)
    net = dp.Network(
        [4, 6, 3],
        activation="relu",
        output_activation="softmax",
        loss="cross_entropy",
        seed=3,
    )
    history = net.fit(X, y, optimizer=dp.SGD(lr=0.2), epochs=1, batch_size=16, shuffle=False)
    for coef, intercept, layer in zip(est.coefs_, est.intercepts_, net.layers):
        assert_array_equal(coef, layer.W.T)
        assert_array_equal(intercept, layer.b)
    assert est.loss_curve_ == history.loss


def test_shuffled_momentum_epochs_equal_deltaprop_sgd(small):
    X, y = small["X"], small["binary"]
    est = MLPClassifier(
        hidden_layer_sizes=(5, 4),
        activation="tanh",
        solver="sgd",
        alpha=0.0,
        learning_rate_init=0.05,
        batch_size=8,
        max_iter=3,
        random_state=11,
    ).fit(X, y)
    net = dp.Network(
        [4, 5, 4, 1],
        activation="tanh",
        output_activation="sigmoid",
        loss="binary_cross_entropy",
        seed=11,
    )
    opt = dp.SGD(lr=0.05, momentum=0.9, nesterov=True)
    net.fit(X, y.reshape(-1, 1), optimizer=opt, epochs=3, batch_size=8)
    for coef, layer in zip(est.coefs_, net.layers):
        assert_allclose(coef, layer.W.T, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- agreement with scikit-learn
def _twin_fits(ours_cls, sk_cls, X, y, epochs, **params):
    """Our estimator and scikit-learn's, started from the same weights (ours, copied into
    scikit-learn's by a warm start) and trained ``epochs`` more epochs each."""
    params = dict(hidden_layer_sizes=(6, 5), batch_size=16, shuffle=False, random_state=0, **params)
    ours = ours_cls(**params, warm_start=True, max_iter=1).fit(X, y)
    theirs = sk_cls(**params, warm_start=True, max_iter=1).fit(X, y)
    theirs.coefs_ = [c.copy() for c in ours.coefs_]
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    ours.set_params(max_iter=epochs).fit(X, y)
    theirs.set_params(max_iter=epochs).fit(X, y)
    return ours, theirs


@pytest.mark.parametrize(
    "target, params",
    [
        ("multiclass", dict(alpha=0.3, learning_rate_init=0.1)),  # Nesterov momentum
        ("binary", dict(alpha=0.1, momentum=0.0, learning_rate="invscaling")),
        ("multilabel", dict(momentum=0.0, learning_rate="adaptive", tol=10.0, n_iter_no_change=2)),
        ("regression2", dict(alpha=1.0, nesterovs_momentum=False, activation="logistic")),
    ],
)
def test_sgd_training_equals_scikit_learns(small, target, params):
    regression = target.startswith("regression")
    ours_cls, sk_cls = (
        (MLPRegressor, sk_nn.MLPRegressor) if regression else (MLPClassifier, sk_nn.MLPClassifier)
    )
    params = {"solver": "sgd", "learning_rate_init": 0.05, **params}
    ours, theirs = _twin_fits(ours_cls, sk_cls, small["X"], small[target], epochs=30, **params)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_
    assert ours._optimizer.lr == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12)
    # Entry 0 is the first fit's, from each estimator's own initial weights.
    assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-10)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    method = "predict" if regression else "predict_proba"
    assert_allclose(
        getattr(ours, method)(small["X"]),
        getattr(theirs, method)(small["X"]),
        rtol=1e-9,
        atol=1e-12,
    )


def test_adaptive_schedule_divides_by_five_then_stops(small):
    # tol=10 makes every epoch but the first a failure to improve: the rate is divided by 5
    # after every 3rd such epoch (count > n_iter_no_change=2) until it is <= 1e-6.
    est = MLPClassifier(
        solver="sgd",
        learning_rate="adaptive",
        learning_rate_init=1e-3,
        tol=10.0,
        n_iter_no_change=2,
        max_iter=100,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(small["X"], small["multiclass"])
    assert est._optimizer.lr == pytest.approx(1e-3 / 5**5)
    assert est.n_iter_ == 1 + 3 * 6


def test_adam_training_equals_scikit_learns(small):
    # solver="adam" is scikit-learn's own rule (SklearnAdam), so the same tolerance as sgd.
    ours, theirs = _twin_fits(
        MLPClassifier,
        sk_nn.MLPClassifier,
        small["X"],
        small["multiclass"],
        epochs=10,
        solver="adam",
        alpha=0.3,
        learning_rate_init=0.01,
    )
    assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-10)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_l2_gradient_matches_finite_differences_of_sklearns_loss(small):
    """One full-batch SGD step W1 = W0 - η ∇L(W0) reveals the gradient the estimator uses;
    it must be that of scikit-learn's loss, L = -mean Σ_k y_k log p_k + α/(2n) Σ ||W||²
    (weights only), here taken by central differences."""
    X, y = small["X"], small["multiclass"]
    n, alpha, eta = X.shape[0], 0.7, 0.5
    est = MLPClassifier(
        hidden_layer_sizes=(5,),
        solver="sgd",
        momentum=0.0,
        alpha=alpha,
        learning_rate_init=eta,
        batch_size=n,
        shuffle=False,
        max_iter=1,
        random_state=4,
    )
    start = dp.Network(
        [4, 5, 3],
        activation="relu",
        output_activation="softmax",
        loss="cross_entropy",
        seed=4,
    )
    W0 = [p.copy() for p in start.parameters()]
    est.fit(X, y)
    used = [(w0 - w1) / eta for w0, w1 in zip(W0, est.network_.parameters())]

    T = np.eye(3)[y]

    def sklearn_loss(params: list[np.ndarray]) -> float:
        z = X
        for i in range(0, len(params), 2):
            a = z @ params[i].T + params[i + 1]
            z = np.maximum(a, 0) if i + 2 < len(params) else a
        log_p = z - z.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        data = -np.mean(np.sum(T * log_p, axis=1))
        return data + alpha / (2 * n) * sum(np.sum(W**2) for W in params[0::2])

    h = 1e-6
    for k, p in enumerate(W0):
        numeric = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            plus = [q.copy() for q in W0]
            minus = [q.copy() for q in W0]
            plus[k][idx] += h
            minus[k][idx] -= h
            numeric[idx] = (sklearn_loss(plus) - sklearn_loss(minus)) / (2 * h)
        assert_allclose(used[k], numeric, rtol=1e-6, atol=1e-8)
    # The reported loss is the same L, before the step.
    assert est.loss_curve_[0] == pytest.approx(sklearn_loss(W0), rel=1e-12)


def test_regression_loss_is_reported_on_sklearns_scale(small):
    X, y = small["X"], small["regression2"]
    est = MLPRegressor(
        hidden_layer_sizes=(5,),
        solver="sgd",
        alpha=0.0,
        batch_size=50,
        shuffle=False,
        max_iter=1,
        random_state=2,
    )
    start = dp.Network(
        [4, 5, 2],
        activation="relu",
        output_activation="identity",
        loss="mse",
        seed=2,
    )
    before = start.predict(X)
    est.fit(X, y)
    # scikit-learn: ½ · mean over samples and outputs; deltaprop's mse is twice that here.
    assert est.loss_curve_[0] == pytest.approx(0.5 * np.mean((y - before) ** 2), rel=1e-12)
    assert start.loss(X, y) == pytest.approx(2 * est.loss_curve_[0], rel=1e-12)


# ---------------------------------------------------------------- attributes
@pytest.mark.parametrize("target", ["multiclass", "binary", "multilabel", "regression2"])
def test_fitted_attributes_match_sklearns(small, target):
    X, y = small["X"], small[target]
    regression = target.startswith("regression")
    ours_cls, sk_cls = (
        (MLPRegressor, sk_nn.MLPRegressor) if regression else (MLPClassifier, sk_nn.MLPClassifier)
    )
    ours = ours_cls(hidden_layer_sizes=(7, 5), max_iter=3, random_state=0).fit(X, y)
    theirs = sk_cls(hidden_layer_sizes=(7, 5), max_iter=3, random_state=0).fit(X, y)
    assert [c.shape for c in ours.coefs_] == [c.shape for c in theirs.coefs_]
    assert [b.shape for b in ours.intercepts_] == [b.shape for b in theirs.intercepts_]
    for name in ("n_layers_", "n_outputs_", "out_activation_", "n_iter_", "t_", "n_features_in_"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert len(ours.loss_curve_) == 3 and ours.loss_ == ours.loss_curve_[-1]
    assert ours.best_loss_ == min(ours.loss_curve_)
    assert ours.validation_scores_ is None and ours.best_validation_score_ is None
    if not regression:
        assert_array_equal(ours.classes_, theirs.classes_)
        assert ours.predict_proba(X).shape == theirs.predict_proba(X).shape
    assert ours.predict(X).shape == theirs.predict(X).shape
    # sklearn's layout is a view of deltaprop's: writing one writes the other.
    for coef, layer in zip(ours.coefs_, ours.network_.layers):
        assert coef.shape == layer.W.T.shape and np.shares_memory(coef, layer.W)
    ours.coefs_[0][0, 0] = 42.0
    assert ours.network_.layers[0].W[0, 0] == 42.0


def test_coefs_can_be_assigned_with_checked_shapes(small):
    X, y = small["X"], small["binary"]
    est = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, y)
    est.coefs_ = [np.ones((4, 3)), np.full((3, 1), 2.0)]
    assert_array_equal(est.network_.layers[1].W, np.full((1, 3), 2.0))
    with pytest.raises(
        ValueError, match=r"coefs_ must be 2 arrays of shapes \[\(4, 3\), \(3, 1\)\]"
    ):
        est.coefs_ = [np.ones((3, 4)), np.ones((3, 1))]


def test_labels_probabilities_and_threshold():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 3))
    y = np.where(X[:, 0] > 0, "yes", "no")
    clf = MLPClassifier(hidden_layer_sizes=(10,), learning_rate_init=0.01, random_state=0).fit(X, y)
    assert list(clf.classes_) == ["no", "yes"]
    proba = clf.predict_proba(X)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_array_equal(clf.predict(X), np.where(proba[:, 1] > 0.5, "yes", "no"))
    assert clf.score(X, y) > 0.95
    assert_allclose(clf.predict_log_proba(X), np.log(proba))

    y3 = np.array(["c", "a", "b"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0)]
    clf3 = MLPClassifier(hidden_layer_sizes=(10,), max_iter=20, random_state=0).fit(X, y3)
    assert list(clf3.classes_) == ["a", "b", "c"] and clf3.out_activation_ == "softmax"
    proba3 = clf3.predict_proba(X)
    assert_allclose(proba3.sum(axis=1), 1.0)
    assert_array_equal(clf3.predict(X), clf3.classes_[proba3.argmax(axis=1)])


# ---------------------------------------------------------------- dtype and randomness
def test_float32_input_trains_a_float32_network(small):
    X, y = small["X"], small["multiclass"]
    est32 = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(
        X.astype(np.float32), y
    )
    assert est32.network_.dtype == np.float32
    assert all(c.dtype == np.float32 for c in est32.coefs_ + est32.intercepts_)
    assert est32.predict_proba(X.astype(np.float32)).dtype == np.float32
    est64 = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    assert est64.network_.dtype == np.float64
    assert_allclose(est32.predict_proba(X), est64.predict_proba(X), atol=1e-4)
    est_int = MLPClassifier(hidden_layer_sizes=(8,), max_iter=1).fit((X * 10).astype(int), y)
    assert est_int.network_.dtype == np.float64


def test_random_state_seeds_the_network(small):
    X, y = small["X"], small["multiclass"]

    def fitted(rs: object) -> MLPClassifier:
        return MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=rs).fit(X, y)

    assert fitted(5).network_.seed == 5
    assert_array_equal(fitted(5).coefs_[0], fitted(5).coefs_[0])
    a, b = fitted(np.random.RandomState(7)), fitted(np.random.RandomState(7))
    assert a.network_.seed == b.network_.seed
    assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert not np.array_equal(fitted(5).coefs_[0], fitted(6).coefs_[0])


# ---------------------------------------------------------------- partial_fit, warm start
def test_partial_fit_continues_the_optimizer_like_fit(small):
    X, y = small["X"], small["multiclass"]
    whole = MLPClassifier(hidden_layer_sizes=(6,), max_iter=4, random_state=0).fit(X, y)
    parts = MLPClassifier(hidden_layer_sizes=(6,), random_state=0)
    for _ in range(4):
        parts.partial_fit(X, y, classes=[0, 1, 2])
    # Adam's moments carry over between calls and the network's generator keeps shuffling
    # where it left off, so four partial fits are four epochs of one fit.
    assert parts._optimizer.steps == whole._optimizer.steps == 4 * 1  # one batch per epoch
    for a, b in zip(parts.coefs_, whole.coefs_):
        assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert_allclose(parts.loss_curve_, whole.loss_curve_, rtol=1e-12)
    assert parts.n_iter_ == 1 and parts.t_ == whole.t_ == 4 * 50


def test_partial_fit_carries_the_no_improvement_count_across_calls(small):
    # tol=10: every call but the first fails to improve. As in scikit-learn, the count runs on
    # across partial_fit calls, and each 3rd failure (count > n_iter_no_change=2) cuts the
    # adaptive rate by 5.
    X, y = small["X"], small["multiclass"]
    params = dict(
        solver="sgd",
        learning_rate="adaptive",
        learning_rate_init=1e-3,
        tol=10.0,
        n_iter_no_change=2,
        random_state=0,
    )
    ours, theirs = MLPClassifier(**params), sk_nn.MLPClassifier(**params)
    for _ in range(7):
        ours.partial_fit(X, y, classes=[0, 1, 2])
        theirs.partial_fit(X, y, classes=[0, 1, 2])
        assert ours._optimizer.lr == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12)
    assert ours._optimizer.lr == pytest.approx(1e-3 / 5**2)


def test_partial_fit_needs_classes_first_and_rejects_new_ones(small):
    X, y = small["X"], small["multiclass"]
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit(X, y)
    clf = MLPClassifier(hidden_layer_sizes=(4,)).partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert clf.n_outputs_ == 3
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X, y + 1)
    with pytest.raises(ValueError, match="early_stopping=True"):
        MLPRegressor(early_stopping=True).partial_fit(X, X[:, 0])


def test_warm_start_refuses_a_changed_architecture(small):
    X, y = small["X"], small["binary"]
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, warm_start=True).fit(X, y)
    clf.set_params(hidden_layer_sizes=(5,))
    with pytest.raises(ValueError, match=r"layer sizes \[4, 4, 1\].*hidden_layer_sizes=\(5,\)"):
        clf.fit(X, y)


# ---------------------------------------------------------------- early stopping, convergence
def test_early_stopping_keeps_the_best_validation_weights(digits):
    X, y = digits
    X, y = X[:500], y[:500]
    clf = MLPClassifier(
        hidden_layer_sizes=(16,), early_stopping=True, n_iter_no_change=3, random_state=0
    ).fit(X, y)
    assert clf.best_loss_ is None
    assert len(clf.validation_scores_) == clf.n_iter_ < clf.max_iter
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # The hold-out is train_test_split's from random_state, not stratified for multiclass
    # targets (scikit-learn stratifies binary ones).
    _, X_val, _, y_val = train_test_split(X, y, test_size=0.1, random_state=0)
    assert clf.score(X_val, y_val) == clf.best_validation_score_


def test_max_iter_without_convergence_warns(small):
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        with warnings.catch_warnings():
            warnings.simplefilter("always", ConvergenceWarning)
            MLPClassifier(max_iter=3).fit(small["X"], small["binary"])


def test_training_stops_when_the_loss_stops_improving(small):
    est = MLPRegressor(tol=1.0, n_iter_no_change=4, max_iter=200, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(small["X"], small["regression2"])
    # The first epoch sets best_loss_ from inf; none improves on it by tol=1 afterwards, and
    # training stops once more than 4 epochs have not.
    assert est.n_iter_ == 1 + 5


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "params, pattern",
    [
        (dict(alpha=-1.0), r"'alpha' parameter .* Got -1.0 instead"),
        (dict(solver="newton"), r"'solver' parameter .* Got 'newton' instead"),
        (dict(max_fun=0), r"'max_fun' parameter .* Got 0 instead"),
        (dict(activation="softmax"), r"'activation' parameter .* Got 'softmax' instead"),
        (dict(batch_size=0), r"'batch_size' parameter .* Got 0 instead"),
        (dict(learning_rate_init=0.0), r"'learning_rate_init' parameter .* Got 0.0 instead"),
        (dict(momentum=1.5), r"'momentum' parameter .* Got 1.5 instead"),
        (dict(hidden_layer_sizes=(10, 0)), r"hidden_layer_sizes=\(10, 0\)"),
        (dict(hidden_layer_sizes=(10, 2.5)), r"hidden_layer_sizes=\(10, 2.5\)"),
    ],
)
def test_bad_parameters_name_themselves_and_the_value(small, params, pattern):
    for cls in (MLPClassifier, MLPRegressor):
        with pytest.raises(ValueError, match=pattern):
            cls(**params).fit(small["X"], small["binary"])


def test_regressor_losses_are_scikit_learns():
    with pytest.raises(ValueError, match=r"'loss' parameter .* Got 'huber' instead"):
        MLPRegressor(loss="huber").fit(np.ones((4, 2)), np.ones(4))


def test_batch_size_larger_than_the_data_is_clipped_with_a_warning(small):
    with pytest.warns(UserWarning, match=r"clipped. Received: batch_size=500 for 50 samples"):
        est = MLPClassifier(batch_size=500, max_iter=2).fit(small["X"], small["binary"])
    assert est.t_ == 100


def test_divergence_is_a_value_error(small):
    X = small["X"] * 1e150
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        MLPRegressor(solver="sgd", learning_rate_init=1.0, max_iter=5).fit(X, X[:, 0])


# ---------------------------------------------------------------- other solvers
@pytest.mark.parametrize("solver", ["rmsprop", "adagrad", "adamw"])
def test_our_solvers_learn_digits(digits, solver):
    X, y = digits
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    lr = {"rmsprop": 1e-3, "adagrad": 0.05, "adamw": 1e-3}[solver]
    clf = MLPClassifier(solver=solver, learning_rate_init=lr, max_iter=60, random_state=0)
    assert clf.fit(X_tr, y_tr).score(X_te, y_te) > 0.95
    used = type(clf._optimizer).__name__
    assert used == {"rmsprop": "RMSprop", "adagrad": "Adagrad", "adamw": "AdamW"}[solver]


def test_adamw_decays_weights_not_biases(small):
    X, y = small["X"], small["binary"]
    params = dict(
        hidden_layer_sizes=(3,),
        solver="adamw",
        learning_rate_init=0.1,
        batch_size=50,
        shuffle=False,
        max_iter=1,
        random_state=0,
    )
    plain = MLPClassifier(alpha=0.0, **params).fit(X, y)
    decayed = MLPClassifier(alpha=0.5, **params).fit(X, y)
    start = dp.Network(
        [4, 3, 1],
        activation="relu",
        output_activation="sigmoid",
        loss="binary_cross_entropy",
        seed=0,
    )
    # One step: W ← W (1 - lr·alpha), then the same Adam step (its first step is ±lr).
    for W0, a, b in zip(start.parameters()[0::2], plain.coefs_, decayed.coefs_):
        assert_allclose(b.T - a.T, -0.1 * 0.5 * W0, rtol=1e-12, atol=1e-15)
    for a, b in zip(plain.intercepts_, decayed.intercepts_):
        assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    # Not part of the loss (both losses are taken before the step, at the same weights).
    assert decayed.loss_curve_ == pytest.approx(plain.loss_curve_, rel=1e-12)


def test_network_saves_and_loads_as_a_deltaprop_model(small, tmp_path):
    X, y = small["X"], small["multiclass"]
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
    clf.network_.save(tmp_path / "mlp.model")
    net = dp.load(tmp_path / "mlp.model")
    assert_array_equal(net.predict(X), clf.predict_proba(X))


def test_pickle_round_trip_keeps_coefs_tied_to_the_network(small):
    X, y = small["X"], small["multiclass"]
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
    clone = pickle.loads(pickle.dumps(clf))
    assert_array_equal(clone.predict_proba(X), clf.predict_proba(X))
    clone.partial_fit(X, y)
    assert np.shares_memory(clone.coefs_[0], clone.network_.layers[0].W)
    assert not np.array_equal(clone.coefs_[0], clf.coefs_[0])


@pytest.mark.parametrize("solver", ["sgd", "adam", "adamw"])
def test_fused_batch_engine_fits_the_penalty_like_the_reference(small, monkeypatch, solver):
    # With alpha > 0 the batch engine folds the L2 term into its fused kernels; the estimator
    # must come out as on the readable reference path (loss curve included).
    from deltaprop.sklearn import _base
    from deltaprop.train.engines import choose as fastpath

    if fastpath.load_kernels() is None:
        pytest.skip("Numba is not available")
    fits = []
    for engine in ("batch", "reference"):
        monkeypatch.setattr(_base, "engine_for", lambda *args, engine=engine: engine)
        clf = MLPClassifier(
            solver=solver, alpha=0.3, batch_size=16, max_iter=5, random_state=0, momentum=0.9
        )
        fits.append(clf.fit(small["X"], small["multiclass"]))
    ours, ref = fits
    assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-12)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        assert_allclose(a, b, rtol=1e-12, atol=1e-14)
