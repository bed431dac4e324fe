"""What the batch engine's kernels save over the NumPy reference engine, fit by fit, against
the estimate that prices them (deltaprop.train.engines.choose.kernel_saving).

    python benchmarks/kernel_saving.py [--quick]

The chooser runs a small fit on NumPy, or loads (and compiles) the kernels for it, by that
estimate and the rent-or-buy rule (README, "Performance"). Each case here is fitted twice on
each engine, alternating, in one process with the kernels already loaded (so neither side
pays for loading); the minimum of each is kept, and "saved" is reference minus kernels. The
cases are scikit-learn's estimators with their defaults (the L2 penalty, scikit-learn's Adam,
the end-of-epoch rules: what a search or a cross-validation repeats) and plain
``Network.fit``, on digits and on 8,000 MNIST-shaped rows, over widths, depths, batch sizes,
optimizers, activations and both dtypes. The last column is the estimate's error; the
coefficients in kernel_saving were fitted to runs of these cases (least squares on the
relative error, 2026-12-04; the sigmoid term from four pairs of fits differing only in the
hidden activation).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np


def data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    rows = rng.random((8000, 784))
    labels = np.argmax((rows - 0.5) @ rng.normal(size=(784, 10)), axis=1)
    return {"digits": (X / 16.0, y), "mnist": (rows, labels)}


def timed_pair(fit: Callable[[str], object]) -> tuple[float, float, object]:
    """(reference s, kernels s, the last fitted object), each the minimum of two runs."""
    best = {"reference": np.inf, "auto": np.inf}
    fitted = None
    for engine in ("reference", "auto", "reference", "auto"):
        start = time.perf_counter()
        fitted = fit(engine)
        best[engine] = min(best[engine], time.perf_counter() - start)
    return best["reference"], best["auto"], fitted


def estimator_case(est: Callable[[], object], X: np.ndarray, y: np.ndarray):
    import deltaprop.sklearn._base as base

    chosen = base.engine_for

    def fit(engine: str) -> object:
        base.engine_for = lambda *args: engine  # the engine the chooser would have priced
        try:
            return est().fit(X, y)
        finally:
            base.engine_for = chosen

    ref, fast, model = timed_pair(fit)
    size = min(200, len(X)) if model.batch_size == "auto" else model.batch_size
    return ref, fast, model.network_, len(X), model.n_iter_, size


def network_case(sizes, X, y, epochs, batch, make_opt, dtype=np.float64, activation="relu"):
    import deltaprop as dp

    def fit(engine: str) -> object:
        net = dp.Network(
            sizes,
            activation,
            output_activation="softmax",
            loss="cross_entropy",
            seed=0,
            dtype=dtype,
        )
        net.fit(
            X,
            y,
            optimizer=make_opt(),
            epochs=epochs,
            batch_size=batch,
            engine=engine,
            verbose=False,
        )
        return net

    ref, fast, net = timed_pair(fit)
    return ref, fast, net, len(X), epochs, batch


def cases(quick: bool) -> list[tuple[str, Callable[[], tuple]]]:
    import deltaprop as dp
    from deltaprop.optim.sklearn_adam import SklearnAdam
    from deltaprop.sklearn import MLPClassifier as C
    from deltaprop.sklearn import MLPRegressor as R

    sets = data()
    (Xd, yd), (Xm, ym) = sets["digits"], sets["mnist"]
    f32 = np.float32
    every = [
        ("clf digits 64-100-10", lambda: estimator_case(lambda: C(random_state=0), Xd, yd)),
        (
            "clf digits, 1,257 rows",
            lambda: estimator_case(lambda: C(random_state=0), Xd[:1257], yd[:1257]),
        ),
        (
            "clf digits 64-50-10",
            lambda: estimator_case(lambda: C(hidden_layer_sizes=(50,), random_state=0), Xd, yd),
        ),
        (
            "clf digits 64-200-100-10",
            lambda: estimator_case(
                lambda: C(hidden_layer_sizes=(200, 100), max_iter=60, random_state=0), Xd, yd
            ),
        ),
        (
            "clf digits batch 32",
            lambda: estimator_case(lambda: C(batch_size=32, max_iter=50, random_state=0), Xd, yd),
        ),
        (
            "clf digits sgd",
            lambda: estimator_case(lambda: C(solver="sgd", max_iter=100, random_state=0), Xd, yd),
        ),
        (
            "clf digits tanh",
            lambda: estimator_case(
                lambda: C(activation="tanh", max_iter=100, random_state=0), Xd, yd
            ),
        ),
        (
            "clf digits float32",
            lambda: estimator_case(lambda: C(random_state=0), Xd.astype(f32), yd),
        ),
        (
            "reg digits 64-100-1",
            lambda: estimator_case(lambda: R(max_iter=100, random_state=0), Xd, yd.astype(float)),
        ),
        (
            "clf mnist 784-100-10",
            lambda: estimator_case(lambda: C(max_iter=20, random_state=0), Xm, ym),
        ),
        (
            "clf mnist float32",
            lambda: estimator_case(lambda: C(max_iter=20, random_state=0), Xm.astype(f32), ym),
        ),
        (
            "clf mnist 784-256-10 b64",
            lambda: estimator_case(
                lambda: C(hidden_layer_sizes=(256,), batch_size=64, max_iter=5, random_state=0),
                Xm,
                ym,
            ),
        ),
        (
            "clf mnist 784-256-10 b32",
            lambda: estimator_case(
                lambda: C(hidden_layer_sizes=(256,), batch_size=32, max_iter=3, random_state=0),
                Xm,
                ym,
            ),
        ),
        (
            "clf mnist 784-256-10 b32 f32",
            lambda: estimator_case(
                lambda: C(hidden_layer_sizes=(256,), batch_size=32, max_iter=3, random_state=0),
                Xm.astype(f32),
                ym,
            ),
        ),
        (
            "reg mnist 784-100-1",
            lambda: estimator_case(lambda: R(max_iter=20, random_state=0), Xm, Xm[:, 0] * 3),
        ),
        (
            "fit digits 64-100-10",
            lambda: network_case([64, 100, 10], Xd, yd, 200, 200, lambda: SklearnAdam(lr=1e-3)),
        ),
        (
            "fit digits 64-100-10 sigmoid",
            lambda: network_case(
                [64, 100, 10], Xd, yd, 200, 200, lambda: SklearnAdam(lr=1e-3), activation="sigmoid"
            ),
        ),
        (
            "fit digits 64-32-10 b32",
            lambda: network_case([64, 32, 10], Xd, yd, 20, 32, lambda: dp.Adam(lr=1e-3)),
        ),
        (
            "fit mnist 784-100-10",
            lambda: network_case([784, 100, 10], Xm, ym, 20, 200, lambda: SklearnAdam(lr=1e-3)),
        ),
        (
            "fit mnist 784-256-128-10 f32",
            lambda: network_case(
                [784, 256, 128, 10], Xm, ym, 5, 128, lambda: dp.Adam(lr=1e-3), dtype=f32
            ),
        ),
    ]
    return every[:3] if quick else every


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three cases only")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from deltaprop.train.engines import choose

    choose.load_kernels()
    print(
        "| case | steps | parameter bytes | batch x units | reference s | kernels s | saved s "
        "| estimate s | error |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    errors = []
    for name, run in cases(args.quick):
        ref, fast, net, n, epochs, batch = run()
        saved, estimate = ref - fast, choose.kernel_saving(net, n, epochs, batch)
        errors.append(estimate / saved - 1)
        steps = epochs * -(-n // batch)
        print(
            f"| {name} | {steps} | {net.n_parameters * net.dtype.itemsize} | "
            f"{batch * sum(net.sizes[1:])} | {ref:.3f} | {fast:.3f} | {saved:.3f} | "
            f"{estimate:.3f} | {errors[-1]:+.0%} |",
            flush=True,
        )
    print(f"\nlargest error {max(abs(e) for e in errors):.0%} over {len(errors)} fits")


if __name__ == "__main__":
    main()
