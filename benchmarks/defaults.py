"""The command line's defaults against scikit-learn's MLPClassifier() defaults, same splits.

    python benchmarks/defaults.py [--data digits mnist] [--seeds 0] [--rows 10000]

For each data set and seed, in separate processes: ``deltaprop train --data D [--target
label] --seed S`` exactly as a user types it (its own 80/20 stratified split, defaults for
everything else), and scikit-learn's ``MLPClassifier(random_state=S)`` fitted on the training
part of that same split (``deltaprop.data.train_test_split``), once on the raw features, as
its defaults are used, and once standardised (``StandardScaler``), as its user guide advises.
Prints test accuracy, test loss (deltaprop: its loss on the test part; scikit-learn: log loss)
and wall time.

"digits" is scikit-learn's bundled 8x8 digits (real). "mnist" is the MNIST-shaped CSV of
benchmarks/mnist_like.py (``--rows`` images, pixels in [0, 1]): no real MNIST is available
offline, so its accuracies are no estimate of MNIST's; it reproduces what broke the old
default scaling (near-empty pixel columns).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent


def sklearn_worker(data: str, target: str | None, seed: int, scaled: bool) -> None:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import log_loss
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    from deltaprop.data import load_dataset, train_test_split

    train, test = train_test_split(load_dataset(data, target=target), 0.2, seed)
    X_train, X_test = train.X, test.X
    if scaled:
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(random_state=seed).fit(X_train, train.y)
    seconds = time.perf_counter() - started
    loss = log_loss(test.y, clf.predict_proba(X_test), labels=clf.classes_)
    print(json.dumps({"accuracy": clf.score(X_test, test.y), "loss": loss, "seconds": seconds}))


def run_sklearn(data: str, target: str | None, seed: int, scaled: bool) -> dict:
    args = [sys.executable, __file__, "--sklearn-worker", data, target or "", str(seed)]
    out = subprocess.run([*args, "scaled" if scaled else "raw"], capture_output=True, text=True)
    out.check_returncode()
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_deltaprop(data: str, target: str | None, seed: int, folder: Path) -> dict:
    command = [sys.executable, "-m", "deltaprop", "train", "--data", data, "--seed", str(seed)]
    if target:
        command += ["--target", target]
    command += ["--quiet", "--no-plots", "--out", str(folder / f"run-{Path(data).stem}-{seed}")]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout

    def number(pattern: str) -> float:
        return float(re.search(pattern, out, flags=re.M).group(1))

    return {
        "accuracy": number(r"^test accuracy: ([0-9.]+)"),
        "loss": number(r"^test loss: ([0-9.]+)"),
        "seconds": number(r"^epochs: .*, ([0-9.]+) s$"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["digits", "mnist"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--sklearn-worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sklearn_worker:
        data, target, seed, scaled = args.sklearn_worker
        sklearn_worker(data, target or None, int(seed), scaled == "scaled")
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in args.data:
            data, target = name, None
            if name == "mnist":
                data, target = str(folder / "mnist_like.csv"), "label"
                subprocess.run(
                    [sys.executable, str(HERE / "mnist_like.py"), data, "--rows", str(args.rows)],
                    check=True,
                )
            for seed in args.seeds:
                results = {
                    "deltaprop train (defaults)": run_deltaprop(data, target, seed, folder),
                    "sklearn MLPClassifier(), raw": run_sklearn(data, target, seed, False),
                    "sklearn MLPClassifier(), standardised": run_sklearn(data, target, seed, True),
                }
                print(f"{name}, seed {seed}:")
                for side, r in results.items():
                    print(
                        f"  {side:40s} accuracy {r['accuracy']:.4f}  test loss "
                        f"{r['loss']:.4f}  {r['seconds']:.1f} s"
                    )


if __name__ == "__main__":
    main()
