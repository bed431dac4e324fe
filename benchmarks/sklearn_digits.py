"""deltaprop.sklearn.MLPClassifier() against scikit-learn's MLPClassifier(), defaults, on digits.

    python benchmarks/sklearn_digits.py [--runs 3] [--fits 5] [--seed 0]

Data: load_digits, X / 16, a stratified 70/30 split (random_state=seed). Both estimators are
built with their defaults plus random_state=seed. Every measurement runs in a fresh Python
process, the two sides alternating (ours first on even runs, scikit-learn's on odd ones), so
neither inherits the other's caches or warm-up. In each process the data are loaded first;
then ``--fits`` identical fits run one after another, as in a search or a cross-validation:
"first" times the first ``fit`` (what a script pays), "second" the next (deltaprop loads its
compiled kernels there: a lone small fit runs on NumPy, a second one no longer does, see
``engine_for_size``), "steady" the median of the rest, and "total" all of them.

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


def worker(side: str, seed: int, fits: int) -> None:
    """Fit ``fits`` times in this process and print one JSON line."""
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
        for _ in range(fits):
            clf = MLPClassifier(random_state=seed)
            started, started_cpu = time.perf_counter(), time.process_time()
            clf.fit(X_tr, y_tr)
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
    record = {"side": side, "accuracy": clf.score(X_te, y_te), "n_iter": clf.n_iter_}
    for suffix, times in (("", wall), ("_cpu", cpu)):
        record["first" + suffix], record["second" + suffix] = times[0], times[1]
        record["steady" + suffix] = statistics.median(times[2:])
        record["total" + suffix] = sum(times)
    print(json.dumps(record))


def run(side: str, seed: int, fits: int, threads: int | None) -> dict:
    env = dict(os.environ)
    if threads is not None:
        for name in THREAD_VARIABLES:
            env[name] = str(threads)
    out = subprocess.run(
        [sys.executable, __file__, "--worker", side, "--seed", str(seed), "--fits", str(fits)],
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
    parser.add_argument("--fits", type=int, default=5, help="fits per process (>= 3)")
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
        worker(args.worker, args.seed, args.fits)
        return
    if args.runs < 3:
        parser.error(f"--runs must be at least 3. Received: --runs={args.runs}")
    if args.fits < 3:
        parser.error(f"--fits must be at least 3. Received: --fits={args.fits}")

    results: dict[str, list[dict]] = {side: [] for side in SIDES}
    for i in range(args.runs):
        for side in SIDES if i % 2 == 0 else SIDES[::-1]:
            r = run(side, args.seed, args.fits, args.threads)
            results[side].append(r)
            print(
                f"run {i + 1} {side:9s}  first {r['first']:.3f} s  second {r['second']:.3f} s  "
                f"steady {r['steady']:.3f} s  total {r['total']:.3f} s "
                f"(cpu {r['total_cpu']:.3f})  n_iter {r['n_iter']}  accuracy {r['accuracy']:.4f}",
                flush=True,
            )

    kinds = tuple(k + s for s in ("", "_cpu") for k in ("first", "second", "steady", "total"))
    med = {
        side: {k: statistics.median(r[k] for r in rs) for k in kinds}
        for side, rs in results.items()
    }
    print(f"\nthreads: {args.threads or 'inherited'}; medians of {args.runs} runs per side")
    for kind in kinds:
        ours, theirs = med["deltaprop"][kind], med["sklearn"][kind]
        print(
            f"{kind:10s}  deltaprop {ours:.3f} s  sklearn {theirs:.3f} s  "
            f"sklearn/deltaprop {theirs / ours:.2f}"
        )
    for side in SIDES:
        accs = sorted({round(r["accuracy"], 4) for r in results[side]})
        print(f"held-out accuracy {side:9s} {', '.join(map(str, accs))}")


if __name__ == "__main__":
    main()
