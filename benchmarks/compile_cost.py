"""What a first fit compiles, and how long Numba takes: fresh processes, an empty cache.

    python benchmarks/compile_cost.py [--runs 3] [--case sklearn|minibatch32|online]
    python benchmarks/compile_cost.py --one CASE      # one process, as the runs use it

Each run is a fresh process with ``NUMBA_CACHE_DIR`` a new, empty folder (a first run on a
machine). Numba's own ``numba:compile`` events time every function it compiles; a kernel's
event encloses those of the functions it calls, so the total is the union of the events'
intervals (wall seconds of compilation, nothing counted twice). The table gives the median
over the runs of the total and of each kernel's own event (its callees included).

Cases:
- sklearn: ``deltaprop.sklearn.MLPClassifier(max_iter=20)`` (scikit-learn's defaults: relu,
  softmax cross-entropy, scikit-learn's Adam, float64, batch 200) on 8,000 MNIST-shaped rows;
- minibatch32: a 64-32-10 relu/softmax/Adam float32 network on the digits, batch 32;
- online: the seed's regime, 64-32-10 sigmoid/squared error/SGD, batch 1, float64, digits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import warnings

CASES = ("sklearn", "minibatch32", "online")


def _fit(case: str) -> None:
    import numpy as np
    from sklearn.datasets import load_digits

    import deltaprop as dp

    if case == "sklearn":
        from deltaprop.sklearn import MLPClassifier
        from deltaprop.train.engines.choose import load_kernels

        # On a first run this fit is too small to repay compiling and runs on NumPy
        # (engine_for_size); loaded kernels run it, which times what the run that does
        # compile them pays.
        load_kernels()

        rng = np.random.default_rng(0)
        X = rng.random((8000, 784))
        y = np.argmax(X @ rng.normal(size=(784, 10)), axis=1)
        MLPClassifier(max_iter=20, random_state=0).fit(X, y)
        return
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    T = np.eye(10)[y]
    if case == "minibatch32":
        net = dp.Network([64, 32, 10], activation="relu", output_activation="softmax",
                         loss="cross_entropy", dtype="float32", seed=0)  # fmt: skip
        net.fit(X, T, optimizer=dp.Adam(lr=1e-3), epochs=2, batch_size=32, engine="batch")
    else:
        net = dp.Network([64, 32, 10], activation="sigmoid", output_activation="sigmoid",
                         loss="mse", seed=0)  # fmt: skip
        net.fit(X, T, optimizer=dp.SGD(lr=0.1), epochs=2, batch_size=1, engine="online")


def one(case: str) -> dict:
    """Fit ``case`` in this process, recording Numba's compile events."""
    from numba.core import event

    warnings.simplefilter("ignore")
    with event.install_recorder("numba:compile") as record:
        _fit(case)
    starts: dict[tuple[int, str], float] = {}
    spans = []
    for when, ev in record.buffer:
        key = id(ev.data["dispatcher"]), str(ev.data["args"])
        if ev.is_start:
            starts[key] = when
        else:
            name = ev.data["dispatcher"].py_func.__qualname__.split(".<locals>.")[-1]
            spans.append((starts.pop(key), when, name))
    total, end = 0.0, float("-inf")
    for begin, finish, _ in sorted(spans):
        total += max(0.0, finish - max(begin, end))
        end = max(end, finish)
    kernels: dict[str, float] = {}
    for begin, finish, name in spans:
        kernels[name] = kernels.get(name, 0.0) + finish - begin
    return {"total": total, "kernels": kernels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--case", choices=CASES, action="append")
    parser.add_argument("--one", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    for case in args.case or CASES:
        results = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as cache:
                env = {**os.environ, "NUMBA_CACHE_DIR": cache}
                out = subprocess.run([sys.executable, __file__, "--one", case], env=env,
                                     capture_output=True, text=True, check=True)  # fmt: skip
                results.append(json.loads(out.stdout.splitlines()[-1]))
        totals = [r["total"] for r in results]
        print(f"{case}: {statistics.median(totals):.2f} s of compilation "
              f"(runs: {', '.join(f'{t:.2f}' for t in totals)})")  # fmt: skip
        names = {name for r in results for name in r["kernels"]}
        rows = {n: statistics.median([r["kernels"].get(n, 0.0) for r in results]) for n in names}
        for name, seconds in sorted(rows.items(), key=lambda kv: -kv[1]):
            print(f"    {seconds:6.3f}  {name}")


if __name__ == "__main__":
    main()
