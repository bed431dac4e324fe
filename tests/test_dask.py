"""Beyond one machine: the README's Dask recipes give what a serial run gives.

A ``distributed.LocalCluster`` bound to 127.0.0.1 (two worker threads talking TCP over the
loopback, no dashboard) stands in for a cluster: GridSearchCV under joblib's dask backend,
and dask-ml's Incremental feeding a dask array's blocks to ``partial_fit``.
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("dask")
pytest.importorskip("distributed")

import dask.array as da  # noqa: E402
import joblib  # noqa: E402
from distributed import Client, LocalCluster, get_task_stream  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from deltaprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402
from deltaprop.train.engines.choose import load_kernels  # noqa: E402


@pytest.fixture(scope="module")
def client():
    # The estimators run small fits on the NumPy path until this process has loaded the
    # kernels (engine_for_size); the serial and the dask runs share the process, so load
    # them first, and both take the same engines (which agree only to rounding).
    load_kernels()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cluster's start-up chatter
        cluster = LocalCluster(
            host="127.0.0.1",
            protocol="tcp://",
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            dashboard_address=None,
        )
        with Client(cluster) as c:
            yield c
        cluster.close()


def classes_data(n=150, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, (X[:, 0] + X[:, 1] ** 2 > 0.8).astype(int)


def same(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a, b))


def close(a, b):
    """Equal to rounding. Dask pickles the estimator from one block's task to the next, and
    an unpickled estimator's optimizer state is no longer laid out as views of one buffer;
    its next steps then differ from the unpickled run's in the last bits (~1e-17 here)."""
    for p, q in zip(a, b):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-15)
    return True


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_under_the_dask_backend_equals_the_serial_search(client):
    X, y = classes_data()
    grid = {"alpha": [1e-4, 1e-1], "learning_rate_init": [1e-3, 1e-2]}

    def search():
        est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=15, random_state=0)
        return GridSearchCV(est, grid, cv=3)

    serial = search().fit(X, y)
    with joblib.parallel_backend("dask"), get_task_stream(client) as tasks:
        distributed_ = search().fit(X, y)
    # The 4 settings × 3 folds ran as tasks on the cluster's workers (joblib batches them, so
    # how many tasks depends on how fast the first ones ran).
    workers = set(client.scheduler_info()["workers"])
    assert tasks.data and {t["worker"] for t in tasks.data} <= workers
    for key in ("mean_test_score", "std_test_score", "rank_test_score"):
        np.testing.assert_array_equal(serial.cv_results_[key], distributed_.cv_results_[key])
    assert serial.best_params_ == distributed_.best_params_
    assert same(serial.best_estimator_.coefs_, distributed_.best_estimator_.coefs_)


def test_incremental_over_partial_fit_equals_partial_fit_block_by_block(client):
    from dask_ml.wrappers import Incremental

    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=120)
    Xd, yd = da.from_array(X, chunks=30), da.from_array(y, chunks=30)

    def regressor():
        return MLPRegressor(hidden_layer_sizes=(5,), learning_rate_init=0.01, random_state=0)

    inc = Incremental(regressor(), shuffle_blocks=False)
    with warnings.catch_warnings(), get_task_stream(client) as tasks:
        warnings.simplefilter("ignore", ConvergenceWarning)
        inc.fit(Xd, yd)
        inc.partial_fit(Xd, yd)  # a second pass over the blocks
    # a partial_fit task per block and pass (4 × 2), and one that closes each pass
    assert sum("fit-" in str(t["key"]) for t in tasks.data) >= 8
    serial = regressor()
    for _ in range(2):
        for start in range(0, 120, 30):
            serial.partial_fit(X[start : start + 30], y[start : start + 30])
    assert close(inc.estimator_.coefs_, serial.coefs_)
    assert close(inc.estimator_.intercepts_, serial.intercepts_)
    np.testing.assert_allclose(inc.predict(Xd).compute(), serial.predict(X), rtol=1e-12)


def test_incremental_classifier_needs_the_classes_up_front_as_partial_fit_does(client):
    from dask_ml.wrappers import Incremental

    X, y = classes_data(120)
    Xd, yd = da.from_array(X, chunks=40), da.from_array(y, chunks=40)
    inc = Incremental(MLPClassifier(hidden_layer_sizes=(4,), random_state=0), shuffle_blocks=False)
    inc.fit(Xd, yd, classes=[0, 1])
    serial = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    for start in range(0, 120, 40):
        serial.partial_fit(X[start : start + 40], y[start : start + 40], classes=[0, 1])
    assert close(inc.estimator_.coefs_, serial.coefs_)
    assert close(inc.estimator_.intercepts_, serial.intercepts_)
    assert inc.score(Xd, yd) == serial.score(X, y)
