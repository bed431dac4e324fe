"""skl2onnx on deltaprop's estimators: labels equal predict, probabilities predict_proba,
regression predict, for binary, multiclass, multilabel and regression targets and both dtypes;
through est.to_onnx(), through skl2onnx itself (after the one registration line), in a Pipeline."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from deltaprop.sklearn import MLPClassifier, MLPRegressor

pytest.importorskip("skl2onnx", reason="needs pip install 'deltaprop[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="needs pip install 'deltaprop[onnx]'")
import skl2onnx  # noqa: E402
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType  # noqa: E402

import deltaprop.sklearn.onnx  # noqa: E402,F401  registers the estimators with skl2onnx

TOLERANCE = {"float32": 1e-5, "float64": 1e-10}
RNG = np.random.default_rng(0)
FEATURES = RNG.normal(size=(80, 4))
TARGETS = {
    "binary": (FEATURES[:, 0] + FEATURES[:, 1] > 0).astype(int) * 5 + 2,  # classes 2 and 7
    "multiclass": np.array(["ant", "bee", "cat"])[
        (FEATURES[:, 0] > 0).astype(int) + (FEATURES[:, 1] > 0)
    ],
    "multilabel": (FEATURES[:, :3] > 0).astype(int),
    "regression": FEATURES @ [1.0, -2.0, 0.5, 0.0],
    "multi-output regression": FEATURES[:, :2] * [3.0, -1.0],
}


def fitted(task: str, dtype: str, activation: str = "relu"):
    cls = MLPRegressor if "regression" in task else MLPClassifier
    est = cls(hidden_layer_sizes=(6, 5), activation=activation, max_iter=15, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(FEATURES.astype(dtype), TARGETS[task])


def run(model, X, name="input"):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {name: X})


def check_outputs(est, outputs, X, dtype):
    tol = TOLERANCE[dtype]
    if isinstance(est, MLPRegressor):
        (predicted,) = outputs
        expected = est.predict(X)
        np.testing.assert_allclose(predicted, expected.reshape(len(X), -1), rtol=tol, atol=tol)
        return
    labels, probabilities = outputs
    np.testing.assert_array_equal(labels, est.predict(X))
    np.testing.assert_allclose(probabilities, est.predict_proba(X), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("task", list(TARGETS))
def test_to_onnx_equals_predict(task, dtype):
    est = fitted(task, dtype)
    X = FEATURES.astype(dtype)
    options = None if "regression" in task else {"zipmap": False}
    check_outputs(est, run(est.to_onnx(options=options), X), X, dtype)


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh"])
def test_every_hidden_activation(activation):
    est = fitted("multiclass", "float64", activation)
    check_outputs(est, run(est.to_onnx(options={"zipmap": False}), FEATURES), FEATURES, "float64")


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_skl2onnx_convert_sklearn_with_its_default_zipmap(task):
    est = fitted(task, "float32")
    X = FEATURES.astype(np.float32)
    model = skl2onnx.convert_sklearn(est, initial_types=[("X", FloatTensorType([None, 4]))])
    labels, probabilities = run(model, X, "X")
    np.testing.assert_array_equal(labels, est.predict(X))
    # ZipMap: one {class: probability} per row, as skl2onnx gives for scikit-learn's MLP.
    keys = list(probabilities[0])
    rows = np.array([[row[k] for k in keys] for row in probabilities])
    np.testing.assert_allclose(rows, est.predict_proba(X), rtol=1e-5, atol=1e-5)


def test_skl2onnx_to_onnx_in_a_pipeline():
    pipe = make_pipeline(
        StandardScaler(), MLPRegressor(hidden_layer_sizes=(5,), max_iter=10, random_state=0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(FEATURES, TARGETS["regression"])
    model = skl2onnx.to_onnx(pipe, initial_types=[("X", DoubleTensorType([None, 4]))])
    (predicted,) = run(model, FEATURES, "X")
    np.testing.assert_allclose(predicted.ravel(), pipe.predict(FEATURES), rtol=1e-10, atol=1e-10)


def test_nocl_option_gives_class_indices():
    est = fitted("multiclass", "float64")
    labels, _ = run(est.to_onnx(options={"zipmap": False, "nocl": True}), FEATURES)
    np.testing.assert_array_equal(labels, est.predict_proba(FEATURES).argmax(axis=1))


def test_metadata_and_file(tmp_path):
    est = fitted("multiclass", "float64")
    path = tmp_path / "clf.onnx"
    model = est.to_onnx(path, options={"zipmap": False})
    assert path.read_bytes() == model.SerializeToString()
    props = {p.key: p.value for p in model.metadata_props}
    assert props["classes"] == '["ant", "bee", "cat"]'
    assert '"sizes": [4, 6, 5, 3]' in props["architecture"]
    assert [i.name for i in model.graph.input] == ["input"]


def test_bad_input_raises_and_leaves_no_file(tmp_path):
    with pytest.raises(NotFittedError):
        MLPClassifier().to_onnx(tmp_path / "a.onnx")
    with pytest.raises(NotFittedError):
        skl2onnx.convert_sklearn(MLPRegressor(), initial_types=[("X", FloatTensorType([None, 4]))])
    est = fitted("binary", "float64")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        est.to_onnx(tmp_path / "missing" / "a.onnx")
    with pytest.raises(ValueError, match="dtype"):
        est.to_onnx(tmp_path / "a.onnx", dtype="int8")
    with pytest.raises(ValueError, match="opset"):
        est.to_onnx(tmp_path / "a.onnx", opset=7)
    assert list(tmp_path.iterdir()) == []
