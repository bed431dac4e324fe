"""deltaprop.sklearn against scikit-learn's own MLP from the same starting weights: sample
weights, scikit-learn's Adam, L-BFGS, the Poisson loss and sparse input, for both estimators,
sgd and adam, with and without early stopping."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from sklearn import neural_network as sk_nn
from sklearn.metrics import r2_score

import deltaprop as dp
from deltaprop.sklearn import MLPClassifier, MLPRegressor, SklearnAdam

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

OURS = {"classifier": MLPClassifier, "regressor": MLPRegressor}
THEIRS = {"classifier": sk_nn.MLPClassifier, "regressor": sk_nn.MLPRegressor}


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    sparse_X = np.where(X > 0.3, X, 0.0)
    return {
        "X": X,
        "sparse_X": sparse_X,
        "multiclass": rng.integers(0, 3, 60),
        "binary": (X[:, 0] + 0.3 * X[:, 1] > 0).astype(int),
        "regression": np.c_[X @ [1.0, 2.0, 0.0, -1.0], X[:, 1] ** 2],
        "counts": rng.poisson(np.exp(0.4 * X[:, 0])).astype(float),
        "weights": rng.uniform(0.2, 2.0, 60),
    }


def twin_fits(kind, X, y, epochs, sample_weight=None, **params):
    """Ours and scikit-learn's, from the same weights (ours, copied into scikit-learn's after
    one epoch each), trained ``epochs`` more epochs (iterations for lbfgs) each."""
    params = dict(hidden_layer_sizes=(6, 5), batch_size=16, shuffle=False, random_state=0, **params)
    ours = OURS[kind](**params, warm_start=True, max_iter=1).fit(X, y, sample_weight=sample_weight)
    theirs = THEIRS[kind](**params, warm_start=True, max_iter=1)
    theirs.fit(X, y, sample_weight=sample_weight)
    theirs.coefs_ = [c.copy() for c in ours.coefs_]
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    if params.get("early_stopping"):
        # Each first epoch scored its own weights; from -inf the next epoch is the best so far
        # for both, and both keep it as their best weights.
        ours.best_validation_score_ = theirs.best_validation_score_ = -np.inf
    ours.set_params(max_iter=epochs).fit(X, y, sample_weight=sample_weight)
    theirs.set_params(max_iter=epochs).fit(X, y, sample_weight=sample_weight)
    return ours, theirs


def assert_same_training(ours, theirs, X, rtol=1e-10, atol=1e-12):
    assert ours.n_iter_ == theirs.n_iter_
    if hasattr(theirs, "loss_curve_"):
        assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=rtol)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=rtol)
    if theirs.validation_scores_ if hasattr(theirs, "validation_scores_") else None:
        assert_allclose(ours.validation_scores_[1:], theirs.validation_scores_[1:], rtol=rtol)
        assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert_allclose(a, b, rtol=rtol, atol=atol)
    method = "predict_proba" if hasattr(theirs, "predict_proba") else "predict"
    assert_allclose(getattr(ours, method)(X), getattr(theirs, method)(X), rtol=rtol, atol=atol)


# ---------------------------------------------------------------- Adam and sample weights
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    "kind, target",
    [("classifier", "multiclass"), ("classifier", "binary"), ("regressor", "regression")],
)
def test_training_equals_scikit_learns(data, kind, target, solver, early_stopping, weighted):
    sample_weight = data["weights"] if weighted else None
    ours, theirs = twin_fits(
        kind,
        data["X"],
        data[target],
        epochs=15,
        sample_weight=sample_weight,
        solver=solver,
        alpha=0.3,
        learning_rate_init=0.05 if solver == "sgd" else 0.01,
        early_stopping=early_stopping,
    )
    assert_same_training(ours, theirs, data["X"])


def test_adam_is_scikit_learns_rule_not_torchs(data):
    # 25 warm-started epochs: scikit-learn's ε placement to rounding; torch's (dp.Adam), as
    # the estimators used before, drifts.
    ours, theirs = twin_fits(
        "classifier", data["X"], data["multiclass"], epochs=25, solver="adam", alpha=0.0
    )
    assert type(ours._optimizer) is SklearnAdam
    assert_same_training(ours, theirs, data["X"])


def test_sklearn_adam_step_by_hand():
    # One step from m = v = 0: m = (1-β1) g, v = (1-β2) g², γ_1 = γ √(1-β2) / (1-β1), so the
    # step is γ g / (|g| + ε / √(1-β2)): ε enters after the bias correction, unlike torch's.
    g = np.array([0.5, -1e-8, 0.0])
    p = np.zeros(3)
    SklearnAdam(lr=0.1, eps=1e-8).step([p], [g])
    expected = -0.1 * np.sqrt(1 - 0.999) / (1 - 0.9) * (0.1 * g) / (np.sqrt(0.001 * g**2) + 1e-8)
    assert_allclose(p, expected, rtol=1e-15)
    torch_rule = np.zeros(3)
    dp.Adam(lr=0.1, eps=1e-8).step([torch_rule], [g])
    assert abs(torch_rule[1] - p[1]) > 1e-3  # where |g| ~ ε the two rules differ


def test_the_batch_engine_fuses_sklearn_adam_bit_for_bit(data, monkeypatch):
    # Its own kernel (not torch's Adam), the same operations in SklearnAdam.step's order: with
    # scikit-learn's L2 term and sample weights, in both dtypes, the fused step's weights are
    # those of SklearnAdam.step in the same engine (clip_norm, never reached, turns the fused
    # updates off) exactly.
    from deltaprop.sklearn._engine import make_optimizer
    from deltaprop.train.engines import updates
    from deltaprop.train.engines.batch import fusable

    args = dict(learning_rate_init=0.01, momentum=0.9, nesterovs_momentum=True, beta_1=0.9,
                beta_2=0.999, epsilon=1e-8)  # fmt: skip
    assert fusable(make_optimizer("adam", alpha=0.3, **args))
    fused_calls = []
    kernel = updates.sklearn_adam_step
    monkeypatch.setattr(
        updates, "sklearn_adam_step", lambda *a: fused_calls.append(1) or kernel(*a)
    )
    T = np.eye(3)[data["multiclass"]]
    for dtype in (np.float64, np.float32):
        nets = []
        for clip_norm in (None, 1e30):
            net = dp.Network([4, 6, 3], activation="relu", output_activation="softmax",
                             loss="cross_entropy", seed=2, l2=0.3, penalty_scale="sum",
                             dtype=dtype)  # fmt: skip
            net.fit(data["X"], T, optimizer=SklearnAdam(lr=0.01), epochs=4, batch_size=16,
                    sample_weight=data["weights"], engine="batch", clip_norm=clip_norm)  # fmt: skip
            nets.append(net)
        for a, b in zip(nets[0].parameters(), nets[1].parameters()):
            assert np.array_equal(a, b)
    assert len(fused_calls) == 4 * 4 * 4 * 2  # (W, b) x 2 layers, 4 batches, 4 epochs, 2 dtypes


def test_unit_weights_train_as_no_weights(data):
    # With weights the estimator steps on scikit-learn's weighted objective itself; all 1 it
    # is the same training as Network.fit's, shuffling included.
    params = dict(hidden_layer_sizes=(5,), alpha=0.2, batch_size=16, max_iter=6, random_state=1)
    plain = MLPClassifier(**params).fit(data["X"], data["multiclass"])
    ones = MLPClassifier(**params).fit(data["X"], data["multiclass"], sample_weight=np.ones(60))
    assert_allclose(ones.loss_curve_, plain.loss_curve_, rtol=1e-12)
    for a, b in zip(ones.coefs_, plain.coefs_):
        assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_integer_weights_are_repeated_examples_in_full_batch_sgd(data):
    X, y = data["X"][:20], data["multiclass"][:20]
    w = np.arange(20) % 3 + 1
    params = dict(hidden_layer_sizes=(5,), solver="sgd", momentum=0.0, shuffle=False,
                  max_iter=3, random_state=2, alpha=0.1)  # fmt: skip
    weighted = MLPClassifier(batch_size=20, **params).fit(X, y, sample_weight=w)
    repeated = MLPClassifier(batch_size=int(w.sum()), **params).fit(
        np.repeat(X, w, axis=0), np.repeat(y, w)
    )
    for a, b in zip(weighted.coefs_, repeated.coefs_):
        assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_partial_fit_with_sample_weight_equals_scikit_learns(data):
    X, y, w = data["X"], data["multiclass"], data["weights"]
    params = dict(hidden_layer_sizes=(5,), solver="sgd", momentum=0.0, batch_size=16,
                  shuffle=False, random_state=0)  # fmt: skip
    ours = MLPClassifier(**params).partial_fit(X, y, sample_weight=w, classes=[0, 1, 2])
    theirs = sk_nn.MLPClassifier(**params).partial_fit(X, y, classes=[0, 1, 2])
    theirs.coefs_ = [c.copy() for c in ours.coefs_]
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    for _ in range(3):
        ours.partial_fit(X, y, sample_weight=w)
        theirs.partial_fit(X, y, sample_weight=w)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- L-BFGS
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    "kind, target, loss",
    [
        ("classifier", "multiclass", None),
        ("classifier", "binary", None),
        ("regressor", "regression", "squared_error"),
        ("regressor", "counts", "poisson"),
    ],
)
def test_lbfgs_equals_scikit_learns(data, kind, target, loss, weighted):
    extra = {} if loss is None else {"loss": loss}
    ours, theirs = twin_fits(
        kind,
        data["X"],
        data[target],
        epochs=30,
        sample_weight=data["weights"] if weighted else None,
        solver="lbfgs",
        alpha=0.3,
        **extra,
    )
    # L-BFGS-B from the same point with the same function: the same iterations, to rounding
    # amplified by its line searches. Binary targets separate here, and probabilities reach
    # 1 - 1e-11, where scikit-learn's log(1 - p), taken from p, keeps 5 digits (deltaprop's,
    # from the net input, all): the functions differ by 1e-7, the weights by 1e-5.
    binary = target == "binary"
    assert_same_training(
        ours, theirs, data["X"], rtol=1e-5 if binary else 1e-7, atol=1e-4 if binary else 1e-9
    )
    for name in ("loss_curve_", "best_loss_", "validation_scores_"):
        assert hasattr(ours, name) == hasattr(theirs, name) is False


def test_lbfgs_stops_at_max_fun_and_warns_as_scikit_learn(data):
    from sklearn.exceptions import ConvergenceWarning

    X, y = data["X"], data["multiclass"]
    with pytest.warns(ConvergenceWarning, match=r"lbfgs failed to converge after \d+ iteration"):
        with warnings.catch_warnings():
            warnings.simplefilter("always", ConvergenceWarning)
            ours = MLPClassifier(solver="lbfgs", max_fun=7, random_state=0).fit(X, y)
    theirs = sk_nn.MLPClassifier(solver="lbfgs", max_fun=7, random_state=0).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 200
    converged = MLPClassifier(solver="lbfgs", tol=1e-2, max_iter=500, random_state=0).fit(X, y)
    assert converged.n_iter_ < 500 and converged.score(X, y) > 0.6


def test_lbfgs_accepts_and_ignores_batch_size_and_has_no_partial_fit(data):
    X, y = data["X"], data["binary"]
    a = MLPClassifier(solver="lbfgs", max_iter=20, random_state=0).fit(X, y)
    b = MLPClassifier(solver="lbfgs", max_iter=20, random_state=0, batch_size=1000).fit(X, y)
    assert_allclose(a.coefs_[0], b.coefs_[0], rtol=0, atol=0)
    for cls in (MLPClassifier, MLPRegressor):
        assert not hasattr(cls(solver="lbfgs"), "partial_fit")
        assert hasattr(cls(solver="sgd"), "partial_fit")
        with pytest.raises(AttributeError, match="has no attribute .partial_fit."):
            cls(solver="lbfgs").partial_fit(X, y)
    assert not hasattr(sk_nn.MLPClassifier(solver="lbfgs"), "partial_fit")


# ---------------------------------------------------------------- Poisson
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_poisson_regression_equals_scikit_learns(data, solver, early_stopping):
    ours, theirs = twin_fits(
        "regressor",
        data["X"],
        data["counts"],
        epochs=15,
        sample_weight=data["weights"],
        solver=solver,
        loss="poisson",
        learning_rate_init=0.01,
        early_stopping=early_stopping,
    )
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    assert ours.network_.loss_function.name == "poisson"
    assert_same_training(ours, theirs, data["X"])
    assert (ours.predict(data["X"]) > 0).all()


def test_poisson_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    net = dp.Network([3, 4, 2], activation="tanh", output_activation="exp", loss="poisson", seed=1)
    X, T = rng.normal(size=(7, 3)), rng.poisson(2.0, size=(7, 2)).astype(float)
    assert dp.gradcheck(net, X, T) < 1e-6
    # E is scikit-learn's poisson_loss (from sklearn.neural_network._base), averaged.
    from sklearn.neural_network._base import poisson_loss

    assert net.loss(X, T) == pytest.approx(poisson_loss(T, net.predict(X)), rel=1e-12)


def test_poisson_refuses_negative_targets():
    with pytest.raises(ValueError, match="poisson targets must be counts or rates >= 0"):
        MLPRegressor(loss="poisson", max_iter=2).fit(np.ones((4, 2)), [1.0, -1.0, 0.0, 2.0])


# ---------------------------------------------------------------- sparse input
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("to_sparse", [sp.csr_matrix, sp.csc_matrix, sp.csr_array])
def test_sparse_input_equals_dense(data, solver, to_sparse):
    X, Xs = data["sparse_X"], to_sparse(data["sparse_X"])
    for kind, y in (("classifier", data["multiclass"]), ("regressor", data["regression"])):
        params = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=8, random_state=0)
        dense = OURS[kind](**params).fit(X, y, sample_weight=data["weights"])
        sparse = OURS[kind](**params).fit(Xs, y, sample_weight=data["weights"])
        for a, b in zip(dense.coefs_ + dense.intercepts_, sparse.coefs_ + sparse.intercepts_):
            assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        assert dense.score(X, y) == pytest.approx(sparse.score(Xs, y), rel=1e-10)
        method = "predict_proba" if kind == "classifier" else "predict"
        assert_allclose(getattr(sparse, method)(Xs), getattr(dense, method)(X), rtol=1e-10)


def test_sparse_partial_fit_equals_dense_and_scikit_learns(data):
    X, Xs, y = data["sparse_X"], sp.csr_matrix(data["sparse_X"]), data["binary"]
    dense = MLPClassifier(hidden_layer_sizes=(5,), random_state=0)
    sparse = MLPClassifier(hidden_layer_sizes=(5,), random_state=0)
    for _ in range(3):
        dense.partial_fit(X, y, classes=[0, 1])
        sparse.partial_fit(Xs, y, classes=[0, 1])
    assert_allclose(sparse.predict_proba(Xs), dense.predict_proba(X), rtol=1e-10)
    ours, theirs = twin_fits("classifier", Xs, y, epochs=10, solver="sgd", alpha=0.1)
    assert_same_training(ours, theirs, Xs)
    ours, theirs = twin_fits(
        "regressor", sp.csc_matrix(X), data["regression"], epochs=10, solver="adam",
        sample_weight=data["weights"], early_stopping=True, learning_rate_init=0.01,
    )  # fmt: skip
    assert_same_training(ours, theirs, Xs)


def test_sparse_inputs_are_never_made_dense(data, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("X was densified")

    Xs = sp.csr_matrix(data["sparse_X"])
    for name in ("toarray", "todense"):
        monkeypatch.setattr(sp.csr_matrix, name, refuse)
        monkeypatch.setattr(sp.csc_matrix, name, refuse)
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    clf.fit(Xs, data["multiclass"], sample_weight=data["weights"])
    clf.predict_proba(Xs)
    MLPRegressor(solver="lbfgs", max_iter=3).fit(Xs, data["counts"])


def test_network_fit_takes_sparse_inputs_on_the_reference_engine(data):
    from deltaprop.train.engines.choose import choose_engine

    X, T = data["sparse_X"], data["regression"]
    a = dp.Network([4, 5, 2], activation="tanh", output_activation="identity", seed=1)
    b = dp.Network([4, 5, 2], activation="tanh", output_activation="identity", seed=1)
    a.fit(X, T, optimizer=dp.Adam(lr=0.01), epochs=3, batch_size=8)
    b.fit(sp.csr_matrix(X), T, optimizer=dp.Adam(lr=0.01), epochs=3, batch_size=8)
    for p, q in zip(a.parameters(), b.parameters()):
        assert_allclose(p, q, rtol=1e-10, atol=1e-13)
    assert choose_engine(a, dp.SGD(), 8, [], "auto", sparse_inputs=True) == "reference"
    with pytest.raises(ValueError, match="engine='batch' cannot run this training: the inputs"):
        choose_engine(a, dp.SGD(), 8, [], "batch", sparse_inputs=True)


# ---------------------------------------------------------------- score
def test_regressor_score_is_r2_score_uniform_average(data):
    X, y = data["X"], data["regression"] * [1.0, 30.0]  # outputs of different scales
    reg = MLPRegressor(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(X, y)
    uniform = r2_score(y, reg.predict(X))
    pooled = 1 - np.sum((y - reg.predict(X)) ** 2) / np.sum((y - y.mean(axis=0)) ** 2)
    assert reg.score(X, y) == pytest.approx(uniform, rel=1e-12)
    assert abs(uniform - pooled) > 1e-3
    w = data["weights"]
    assert reg.score(X, y, sample_weight=w) == pytest.approx(
        r2_score(y, reg.predict(X), sample_weight=w)
    )


# ---------------------------------------------------------------- the kernels' Poisson
@pytest.mark.parametrize("engine, batch_size", [("batch", 8), ("online", 1)])
def test_fast_engines_train_poisson_and_exp_as_the_reference(data, engine, batch_size):
    from deltaprop.train.engines import choose

    if choose.load_kernels() is None:
        pytest.skip("Numba is not available")
    X, T = data["X"], np.c_[data["counts"], data["counts"][::-1]]
    nets = []
    for name in (engine, "reference"):
        net = dp.Network([4, 5, 3, 2], activation=["exp", "tanh"], output_activation="exp",
                         loss="poisson", seed=3)  # fmt: skip
        for layer in net.layers:
            layer.W *= 0.3
        optimizer = dp.SGD(lr=0.01, momentum=0.9) if engine == "online" else dp.Adam(lr=0.01)
        net.fit(X, T, optimizer=optimizer, epochs=3, batch_size=batch_size, engine=name)
        nets.append(net)
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        assert_allclose(p, q, rtol=1e-11, atol=1e-13)
    assert nets[0].loss(X, T) == pytest.approx(nets[1].loss(X, T), rel=1e-12)
