"""deltaprop.sklearn's estimators against scikit-learn's, defaults, over a run of fits.

    python benchmarks/sklearn_estimators.py [--data digits|mnist] [--estimator classifier|regressor]
                                            [--runs 3] [--fits 5] [--seed 0] [--seeds 1]
                                            [--threads N]

Data: ``digits`` is load_digits, X / 16 (1,257 training rows); ``mnist`` 11,429 MNIST-shaped
rows (uniform pixels in [0, 1), 784 columns, labels from a fixed random linear teacher, as
compare.py's cold-start case), so that 8,000 rows train. Both are split 70/30 (stratified
for the classifier, random_state=seed). The classifier learns the labels, the regressor the
teacher's first output. Both estimators are built with their defaults plus random_state=seed
(and max_iter=20 on mnist, as the cold-start case: scikit-learn's 200 would take minutes a
fit). Every measurement runs in a fresh Python process, the two sides alternating (ours
first on even runs, scikit-learn's on odd ones), so neither inherits the other's caches or
warm-up. In each process the data are made first; then ``--fits`` identical fits run one
after another, as in a search or a cross-validation: "first" times the first ``fit`` (what a
script pays), "second" the next (for the digits classifier deltaprop loads its compiled
kernels there: a lone small fit runs on NumPy, and once a process's small fits have forgone
about the loading cost the next one does not, see ``engine_for_size``), "steady" the median of
the rest, and "total" all of them.

Prints each run, then the medians, the ratio scikit-learn / deltaprop (above 1: deltaprop is
faster) and the held-out scores (accuracy, or R²). "epoch" is "steady" over the fit's
epochs (n_iter_): where the fits stop on their own (the digits regressor converges in 26-43
epochs), how many epochs a fit takes depends on its initial weights, which differ between
the two libraries for one random_state, so one seed's per-fit ratio is partly luck.
``--seeds K`` repeats everything for random_state (and split) seed, seed + 1, ...,
seed + K - 1 and adds up each seed's medians, so that the per-fit ratio is over K
initialisations (over 10 seeds the digits regressor's fits average 32.5 epochs here and
scikit-learn's 31.2). Wall-clock time is the measure; process
CPU time is printed beside it because on a shared machine it is less disturbed by other load
(it counts every thread, so it exceeds wall time when BLAS runs in parallel).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

SIDES = ("deltaprop", "sklearn")
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def make_data(data: str, estimator: str, seed: int) -> tuple:
    """The training and held-out parts (X, y) of ``data`` for ``estimator``."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if data == "digits":
        X, labels = load_digits(return_X_y=True)
        X = X / 16.0
    else:
        X = np.random.default_rng(0).random((11_429, 784))
    scores = (X - 0.5) @ np.random.default_rng(99).normal(size=(X.shape[1], 10))
    if data == "mnist":
        labels = np.argmax(scores, axis=1)
    y = labels if estimator == "classifier" else scores[:, 0] / 10
    stratify = labels if estimator == "classifier" else None
    return train_test_split(X, y, test_size=0.3, stratify=stratify, random_state=seed)


def worker(side: str, data: str, estimator: str, seed: int, fits: int) -> None:
    """Fit ``fits`` times in this process and print one JSON line."""
    import importlib
    import time
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    module = "deltaprop.sklearn" if side == "deltaprop" else "sklearn.neural_network"
    name = "MLPClassifier" if estimator == "classifier" else "MLPRegressor"
    Estimator = getattr(importlib.import_module(module), name)
    options = {"random_state": seed} | ({"max_iter": 20} if data == "mnist" else {})
    X_tr, X_te, y_tr, y_te = make_data(data, estimator, seed)
    wall, cpu = [], []
    with warnings.catch_warnings():
        # Both stop at max_iter; the warning is not what is measured.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(fits):
            clf = Estimator(**options)
            started, started_cpu = time.perf_counter(), time.process_time()
            clf.fit(X_tr, y_tr)
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
    record = {"side": side, "score": clf.score(X_te, y_te), "n_iter": clf.n_iter_}
    for suffix, times in (("", wall), ("_cpu", cpu)):
        record["first" + suffix], record["second" + suffix] = times[0], times[1]
        record["steady" + suffix] = statistics.median(times[2:])
        record["total" + suffix] = sum(times)
        record["epoch" + suffix] = record["steady" + suffix] / clf.n_iter_
    print(json.dumps(record))


def run(side: str, args: argparse.Namespace, seed: int) -> dict:
    env = dict(os.environ)
    if args.threads is not None:
        for name in THREAD_VARIABLES:
            env[name] = str(args.threads)
    out = subprocess.run(
        [sys.executable, __file__, "--worker", side, "--data", args.data]
        + ["--estimator", args.estimator, "--seed", str(seed), "--fits", str(args.fits)],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the {side} worker failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("digits", "mnist"), default="digits")
    parser.add_argument("--estimator", choices=("classifier", "regressor"), default="classifier")
    parser.add_argument("--runs", type=int, default=3, help="processes per side (>= 3)")
    parser.add_argument("--fits", type=int, default=5, help="fits per process (>= 3)")
    parser.add_argument("--seed", type=int, default=0, help="split and random_state")
    parser.add_argument("--seeds", type=int, default=1, help="seeds from --seed on (>= 1)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="set the BLAS/OpenMP/Numba thread counts of both sides (default: inherited)",
    )
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.estimator, args.seed, args.fits)
        return
    if args.runs < 3:
        parser.error(f"--runs must be at least 3. Received: --runs={args.runs}")
    if args.fits < 3:
        parser.error(f"--fits must be at least 3. Received: --fits={args.fits}")
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1. Received: --seeds={args.seeds}")

    seeds = range(args.seed, args.seed + args.seeds)
    results: dict[tuple[str, int], list[dict]] = {(sd, k): [] for sd in SIDES for k in seeds}
    for i in range(args.runs):
        for seed in seeds:
            for side in SIDES if i % 2 == 0 else SIDES[::-1]:
                r = run(side, args, seed)
                results[side, seed].append(r)
                print(
                    f"run {i + 1} seed {seed} {side:9s}  first {r['first']:.3f} s  "
                    f"second {r['second']:.3f} s  steady {r['steady']:.3f} s  "
                    f"total {r['total']:.3f} s (cpu {r['total_cpu']:.3f})  "
                    f"n_iter {r['n_iter']}  score {r['score']:.4f}",
                    flush=True,
                )
    summarise(results, args, seeds)


def summarise(results: dict, args: argparse.Namespace, seeds: range) -> None:
    """Each seed's medians over the runs, added up over the seeds, and their ratios."""
    kinds = tuple(
        k + s for s in ("", "_cpu") for k in ("first", "second", "steady", "total", "epoch")
    )
    med = {
        side: {k: sum(statistics.median(r[k] for r in results[side, sd]) for sd in seeds)
               for k in kinds}
        for side in SIDES
    }  # fmt: skip
    over = f", {len(seeds)} seeds from {seeds[0]} added up" if len(seeds) > 1 else ""
    print(
        f"\n{args.data} {args.estimator}, threads {args.threads or 'inherited'}: "
        f"medians of {args.runs} runs per side{over}"
    )
    for kind in kinds:
        ours, theirs = med["deltaprop"][kind], med["sklearn"][kind]
        print(
            f"{kind:10s}  deltaprop {ours:.4f} s  sklearn {theirs:.4f} s  "
            f"sklearn/deltaprop {theirs / ours:.2f}"
        )
    for side in SIDES:
        runs = [r for sd in seeds for r in results[side, sd]]
        scores = sorted({round(r["score"], 4) for r in runs})
        epochs = statistics.mean(r["n_iter"] for r in runs)
        print(f"held-out score {side:9s} {', '.join(map(str, scores))}; mean epochs {epochs:.1f}")


if __name__ == "__main__":
    main()
