"""deltaprop.sklearn.MLPClassifier() against scikit-learn's MLPClassifier(), defaults, on digits.

    python benchmarks/sklearn_digits.py [--runs 3] [--seed 0]

Data: load_digits, X / 16, a stratified 70/30 split (random_state=seed). Both estimators are
built with their defaults plus random_state=seed. Every measurement runs in a fresh Python
process, the two sides alternating (ours first on even runs, scikit-learn's on odd ones), so
neither inherits the other's caches or warm-up. In each process the data are loaded first;
then "cold" times the first ``fit`` (what a script pays, including any one-off set-up such as
loading compiled kernels) and "warm" a second, identical ``fit`` in the same process.

Prints each run, then the medians, the ratio scikit-learn / deltaprop (above 1: deltaprop is
faster) and the held-out accuracies. Wall-clock time is the measure; process CPU time is
printed beside it because on a shared machine it is less disturbed by other load (it counts
every thread, so it exceeds wall time when BLAS runs in parallel).
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


def worker(side: str, seed: int) -> None:
    """Fit twice in this process and print one JSON line."""
    import time
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split

    if side == "deltaprop":
        from deltaprop.sklearn import MLPClassifier
    else:
        from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X / 16.0, y, test_size=0.3, stratify=y, random_state=seed
    )
    wall, cpu = [], []
    with warnings.catch_warnings():
        # Both stop at max_iter=200 on digits; the warning is not what is measured.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(2):
            clf = MLPClassifier(random_state=seed)
            started, started_cpu = time.perf_counter(), time.process_time()
            clf.fit(X_tr, y_tr)
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
    print(
        json.dumps(
            {
                "side": side,
                "cold": wall[0],
                "warm": wall[1],
                "cold_cpu": cpu[0],
                "warm_cpu": cpu[1],
                "accuracy": clf.score(X_te, y_te),
                "n_iter": clf.n_iter_,
            }
        )
    )


def run(side: str, seed: int, threads: int | None) -> dict:
    env = dict(os.environ)
    if threads is not None:
        for name in THREAD_VARIABLES:
            env[name] = str(threads)
    out = subprocess.run(
        [sys.executable, __file__, "--worker", side, "--seed", str(seed)],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the {side} worker failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="processes per side (>= 3)")
    parser.add_argument("--seed", type=int, default=0, help="split and random_state")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="set the BLAS/OpenMP/Numba thread counts of both sides (default: inherited)",
    )
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.seed)
        return
    if args.runs < 3:
        parser.error(f"--runs must be at least 3. Received: --runs={args.runs}")

    results: dict[str, list[dict]] = {side: [] for side in SIDES}
    for i in range(args.runs):
        for side in SIDES if i % 2 == 0 else SIDES[::-1]:
            r = run(side, args.seed, args.threads)
            results[side].append(r)
            print(
                f"run {i + 1} {side:9s}  cold {r['cold']:.3f} s (cpu {r['cold_cpu']:.3f})  "
                f"warm {r['warm']:.3f} s (cpu {r['warm_cpu']:.3f})  n_iter {r['n_iter']}  "
                f"accuracy {r['accuracy']:.4f}",
                flush=True,
            )

    kinds = ("cold", "warm", "cold_cpu", "warm_cpu")
    med = {
        side: {k: statistics.median(r[k] for r in rs) for k in kinds}
        for side, rs in results.items()
    }
    print(f"\nthreads: {args.threads or 'inherited'}; medians of {args.runs} runs per side")
    for kind in kinds:
        ours, theirs = med["deltaprop"][kind], med["sklearn"][kind]
        print(
            f"{kind:8s}  deltaprop {ours:.3f} s  sklearn {theirs:.3f} s  "
            f"sklearn/deltaprop {theirs / ours:.2f}"
        )
    for side in SIDES:
        accs = sorted({round(r["accuracy"], 4) for r in results[side]})
        print(f"held-out accuracy {side:9s} {', '.join(map(str, accs))}")


if __name__ == "__main__":
    main()
