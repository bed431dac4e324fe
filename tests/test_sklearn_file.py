"""deltaprop.sklearn: scikit-learn's errors on bad input and its conditions, metadata routing,
and the estimator file (est.save, deltaprop.sklearn.load, the command line)."""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn import neural_network as sk_nn
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import deltaprop as dp
import deltaprop.sklearn as dsk
from deltaprop.cli import main
from deltaprop.sklearn import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    return {
        "X": X,
        "labels": np.array(["cat", "dog", "emu"])[rng.integers(0, 3, 40)],
        "binary": (X[:, 0] > 0).astype(int),
        "multilabel": (X > 0).astype(int),
        "y": X @ [1.0, -2.0, 0.5],
        "counts": rng.poisson(2.0, 40).astype(float),
    }


# ---------------------------------------------------------------- bad sample weights
@pytest.mark.parametrize(
    "weights, pattern",
    [
        (-np.ones(40), "Negative values in data passed to `sample_weight`"),
        (np.r_[np.nan, np.ones(39)], "sample_weight contains NaN"),
        (np.ones(39), r"sample_weight.shape == \(39,\), expected \(40,\)"),
        (np.zeros(40), "Sample weights must contain at least one non-zero number"),
        (np.ones((40, 2)), "Sample weights must be 1D array or scalar"),
    ],
)
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_bad_sample_weights_raise_before_anything_changes(data, weights, pattern, solver):
    for est, y in (
        (MLPClassifier(solver=solver), data["labels"]),
        (MLPRegressor(solver=solver), data["y"]),
    ):
        with pytest.raises(ValueError, match=pattern):
            est.fit(data["X"], y, sample_weight=weights)
        assert not [k for k in vars(est) if k.endswith("_") and not k.startswith("__")]
    fitted = MLPClassifier(max_iter=2, random_state=0).fit(data["X"], data["labels"])
    before = [c.copy() for c in fitted.coefs_]
    if solver != "lbfgs":
        with pytest.raises(ValueError, match=pattern):
            fitted.partial_fit(data["X"], data["labels"], sample_weight=weights)
        for a, b in zip(before, fitted.coefs_):
            assert_array_equal(a, b)


def test_sparse_input_with_nan_is_a_value_error(data):
    Xs = sp.csr_matrix(np.where(data["X"] > 0, data["X"], 0.0))
    Xs.data[0] = np.nan
    for est, y in ((MLPClassifier(), data["labels"]), (MLPRegressor(solver="lbfgs"), data["y"])):
        with pytest.raises(ValueError, match="Input X contains NaN"):
            est.fit(Xs, y)
    fitted = MLPRegressor(max_iter=2).fit(data["X"], data["y"])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fitted.predict(Xs)
    with pytest.raises(ValueError, match=r"X \(sparse\) contains NaN or inf"):
        dp.Network([3, 2, 1]).fit(Xs, data["y"], epochs=1)


# ---------------------------------------------------------------- scikit-learn's conditions
def test_too_few_members_for_a_stratified_split_is_scikit_learns_error(data):
    X, y = data["X"], np.r_[np.zeros(39, int), 1]  # one example of class 1
    errors = []
    for cls in (MLPClassifier, sk_nn.MLPClassifier):
        with pytest.raises(ValueError) as info:
            cls(early_stopping=True, max_iter=3, random_state=0).fit(X, y)
        errors.append(str(info.value))
    # The same message, but for the class named: scikit-learn's shows its binarised label
    # ('True'), deltaprop's the label itself (1).
    assert errors[0].split(". ")[:2] == errors[1].split(". ")[:2]
    assert "The least populated classes in y have only 1 member" in errors[0]


def test_divergence_under_early_stopping_keeps_the_best_weights_and_warns(data):
    X = data["X"] * 1e3
    params = dict(solver="sgd", learning_rate_init=1.0, max_iter=20, early_stopping=True)
    with pytest.warns(ConvergenceWarning, match="Training diverged .* weights of the best"):
        with warnings.catch_warnings():
            warnings.simplefilter("always", ConvergenceWarning)
            ours = MLPRegressor(**params, random_state=0).fit(X, X[:, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow in scikit-learn's own products
        theirs = sk_nn.MLPRegressor(**params, random_state=0).fit(X, X[:, 0])
    for est in (ours, theirs):
        assert all(np.isfinite(c).all() for c in est.coefs_)
        assert est.best_validation_score_ == max(s for s in est.validation_scores_ if s == s)
    assert np.isfinite(ours.predict(X)).all()
    # Without early stopping there are no best weights to keep: scikit-learn's ValueError.
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        MLPRegressor(**{**params, "early_stopping": False}).fit(X, X[:, 0])


# ---------------------------------------------------------------- metadata routing
def test_metadata_routing_is_scikit_learns(data):
    import sklearn

    for ours, theirs in (
        (MLPClassifier(), sk_nn.MLPClassifier()),
        (MLPRegressor(), sk_nn.MLPRegressor()),
    ):
        assert str(ours.get_metadata_routing()) == str(theirs.get_metadata_routing())
        assert hasattr(ours, "set_fit_request") and hasattr(ours, "set_partial_fit_request")
        assert hasattr(ours, "set_score_request")
    X, y, w = data["X"], data["labels"], np.linspace(0.1, 2.0, 40)
    params = dict(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(
            StandardScaler().set_fit_request(sample_weight=False),
            MLPClassifier(**params).set_fit_request(sample_weight=True),
        )
        pipe.fit(X, y, sample_weight=w)
    direct = MLPClassifier(**params).fit(StandardScaler().fit_transform(X), y, sample_weight=w)
    unweighted = MLPClassifier(**params).fit(StandardScaler().fit_transform(X), y)
    mlp = pipe[-1]
    assert_array_equal(mlp.coefs_[0], direct.coefs_[0])
    assert not np.array_equal(mlp.coefs_[0], unweighted.coefs_[0])
    # The step-name form, without routing enabled.
    named = make_pipeline(StandardScaler(), MLPClassifier(**params))
    named.fit(X, y, mlpclassifier__sample_weight=w)
    assert_array_equal(named[-1].coefs_[0], direct.coefs_[0])


# ---------------------------------------------------------------- the estimator file
def _fitted(kind: str, data: dict) -> tuple[object, np.ndarray, np.ndarray]:
    X = data["X"]
    if kind == "labels":
        return (
            MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(
                X, data["labels"]
            ),
            X,
            data["labels"],
        )
    if kind == "multilabel":
        return (
            MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(
                X, data["multilabel"]
            ),
            X,
            data["multilabel"],
        )
    if kind == "early":
        est = MLPClassifier(max_iter=30, early_stopping=True, n_iter_no_change=100, random_state=0)
        return est.fit(X, data["binary"]), X, data["binary"]
    if kind == "lbfgs":
        return (
            MLPRegressor(solver="lbfgs", max_iter=30, random_state=0).fit(X, data["y"]),
            X,
            data["y"],
        )
    est = MLPRegressor(loss="poisson", hidden_layer_sizes=(4, 3), max_iter=10, random_state=0)
    return est.fit(sp.csr_matrix(np.abs(X)), data["counts"]), np.abs(X), data["counts"]


@pytest.mark.parametrize("kind", ["labels", "multilabel", "early", "lbfgs", "poisson"])
def test_save_and_load_give_the_same_estimator(data, kind, tmp_path):
    est, X, y = _fitted(kind, data)
    path = tmp_path / "est.dpm"
    est.save(path)
    back = dsk.load(path)
    assert type(back) is type(est)
    assert back.get_params() == est.get_params()
    for a, b in zip(back.coefs_ + back.intercepts_, est.coefs_ + est.intercepts_):
        assert_array_equal(a, b)
    method = "predict_proba" if hasattr(est, "predict_proba") else "predict"
    assert_array_equal(getattr(back, method)(X), getattr(est, method)(X))
    assert_array_equal(back.predict(X), est.predict(X))
    assert back.score(X, y) == est.score(X, y)
    for name in (
        "n_iter_",
        "t_",
        "loss_",
        "n_layers_",
        "n_outputs_",
        "out_activation_",
        "n_features_in_",
        "loss_curve_",
        "best_loss_",
        "validation_scores_",
        "best_validation_score_",
    ):
        assert hasattr(back, name) == hasattr(est, name), name
        if hasattr(est, name):
            assert getattr(back, name) == getattr(est, name), name
    if hasattr(est, "classes_"):
        assert_array_equal(back.classes_, est.classes_)
        assert back.classes_.dtype == est.classes_.dtype
    # A loaded estimator trains on (a fresh optimizer) and pickles.
    if est.solver != "lbfgs" and not est.early_stopping:
        back.partial_fit(X, y)
    pickle.loads(pickle.dumps(back))
    # The file is a model file: deltaprop.load reads the network, with no pickle anywhere.
    assert path.read_bytes().find(b"\x80\x04") != 0
    assert_array_equal(dp.load(path).predict(X), est.network_.predict(X))


def test_load_refuses_what_is_not_an_estimator_file(data, tmp_path):
    net = dp.Network([3, 2, 1])
    net.save(tmp_path / "plain.dpm")
    with pytest.raises(dp.ModelFileError, match="not a scikit-learn estimator's"):
        dsk.load(tmp_path / "plain.dpm")
    (tmp_path / "junk.dpm").write_bytes(b"\x80\x04junk")
    with pytest.raises(dp.ModelFileError):
        dsk.load(tmp_path / "junk.dpm")
    with pytest.raises(FileNotFoundError):
        dsk.load(tmp_path / "missing.dpm")
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MLPClassifier().save(tmp_path / "unfitted.dpm")
    assert not (tmp_path / "unfitted.dpm").exists()


def test_the_command_line_reads_an_estimator_file(data, tmp_path, capsys):
    est, X, y = _fitted("labels", data)
    path = tmp_path / "clf.dpm"
    est.save(path)
    csv = tmp_path / "data.csv"
    rows = ["a,b,c,label"] + [f"{r[0]},{r[1]},{r[2]},{t}" for r, t in zip(X, y)]
    csv.write_text("\n".join(rows) + "\n")

    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "scikit-learn estimator: deltaprop.sklearn.MLPClassifier(solver='adam'" in out
    assert "class names: cat, dog, emu" in out
    assert main(["info", str(path), "--json"]) == 0
    assert (
        json.loads(capsys.readouterr().out)["metadata"]["sklearn"]["estimator"] == "MLPClassifier"
    )

    assert main(["predict", str(path), str(csv)]) == 0
    predicted = capsys.readouterr().out.split()[1:]
    assert predicted == list(est.predict(X))

    assert main(["evaluate", str(path), str(csv), "--target", "label"]) == 0
    out = capsys.readouterr().out
    assert f"accuracy: {est.score(X, y):.4f}" in out


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_feature_names_are_kept_in_the_file(data, tmp_path, capsys):
    est, X, y = _fitted("labels", data)
    # As fit sets them from a DataFrame's columns (pandas is not a test dependency).
    est.feature_names_in_ = np.array(["a", "b", "c"], dtype=object)
    est.save(tmp_path / "named.dpm")
    back = dsk.load(tmp_path / "named.dpm")
    assert_array_equal(back.feature_names_in_, est.feature_names_in_)
    assert dp.load(tmp_path / "named.dpm").metadata["feature_names"] == ["a", "b", "c"]
    csv = tmp_path / "shuffled.csv"  # the columns in another order: read by name
    rows = ["c,a,b"] + [f"{r[2]},{r[0]},{r[1]}" for r in X]
    csv.write_text("\n".join(rows) + "\n")
    assert main(["predict", str(tmp_path / "named.dpm"), str(csv)]) == 0
    assert capsys.readouterr().out.split()[1:] == list(est.predict(X))


@pytest.mark.parametrize("kind", ["multilabel", "lbfgs", "poisson"])
def test_the_command_line_reads_every_kind_of_estimator_file(data, kind, tmp_path, capsys):
    est, X, y = _fitted(kind, data)
    est.save(tmp_path / "est.dpm")
    np.savez(tmp_path / "X.npz", X=X)
    assert main(["info", str(tmp_path / "est.dpm")]) == 0
    assert "scikit-learn estimator" in capsys.readouterr().out
    assert main(["predict", str(tmp_path / "est.dpm"), str(tmp_path / "X.npz")]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[1:]
    # Multilabel: one probability per label; regression: the predictions.
    expected = est.predict_proba(X) if kind == "multilabel" else est.predict(X).reshape(-1, 1)
    np.testing.assert_allclose(
        np.array([[float(v) for v in row.split(",")] for row in rows]), expected, rtol=1e-7
    )
