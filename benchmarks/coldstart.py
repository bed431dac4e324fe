"""The cold-start regime of compare.py: a fresh process, from the interpreter's start to a
fitted model, imports and kernel compilation included.

    python benchmarks/compare.py --regime cold [--runs 3] [--quick]
    python benchmarks/coldstart.py CASE PEER DATA_DIR      # one process, as compare.py runs it

Cases (the issue's; scikit-learn's defaults unless said):

- mnist: ``MLPClassifier(max_iter=20, random_state=0)`` on 8,000 MNIST-shaped rows (uniform
  pixels in [0, 1), labels from a fixed random linear teacher);
- digits: ``MLPClassifier(random_state=0)`` on scikit-learn's 1,797 digits (X / 16);
- regressor: ``MLPRegressor(max_iter=20, random_state=0)`` on the 8,000 rows, the teacher's
  first output as the target;
- cli: ``deltaprop train --data rows.csv --no-plots --quiet`` on a 10,000-row MNIST-shaped CSV
  (785 columns, label last), against a scikit-learn script doing the same job: read the CSV
  (np.loadtxt), hold out 20%, standardise, fit MLPClassifier with the CLI's network and
  defaults (256 relu units, Adam lr 0.001, batch 32, 30 epochs, every epoch run, a tenth of
  the training part held out as the CLI's validation split), score.

Peers: ``cold`` is deltaprop with an empty Numba cache (a first run on a machine);
``second`` is deltaprop again on the cache (and compile record) that run left, and ``warm``
a third run after it (every later run); ``sklearn`` is scikit-learn. A first fit too small to
repay compiling the kernels runs on NumPy and leaves its forgone saving in the record
(deltaprop.train.engines.compile_record), so the second run may be the one that compiles: the
three deltaprop columns show what the rent-or-buy rule charges, run by run. compare.py times
each process from outside (wall clock, and CPU seconds of the process and its threads from
getrusage) and makes the data files beforehand, so loading them (an .npy, or the CSV the job
itself reads) is the only data work timed.

Both packages are timed as installed: ``pip install`` writes every module's bytecode, so
scikit-learn's imports read .pyc files. A source tree (``pip install -e .``) has none until
Python writes them, and never where PYTHONDONTWRITEBYTECODE is set (as on the machines these
tables come from), where every process would compile deltaprop's ~80 modules from source,
about 60 ms. ``run`` therefore byte-compiles deltaprop's package first, as pip would have.
"""

from __future__ import annotations

import compileall
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

CASES = ("mnist", "digits", "regressor", "cli")
PEERS = ("cold", "second", "warm", "sklearn")
# deltaprop train's defaults (commands/_train_options.py), mirrored on the scikit-learn side.
CLI = {"hidden": 256, "activation": "relu", "lr": 0.001, "batch": 32, "epochs": 30, "val": 0.1}


def make_data(folder: Path, quick: bool) -> None:
    """The cases' data files: rows.npy/labels.npy/targets.npy, digits, and rows.csv."""
    rng = np.random.default_rng(0)
    n = 2000 if quick else 8000
    X = rng.random((n, 784))
    teacher = np.random.default_rng(99).normal(size=(784, 10))
    scores = (X - 0.5) @ teacher
    np.save(folder / "rows.npy", X)
    np.save(folder / "labels.npy", np.argmax(scores, axis=1))
    np.save(folder / "targets.npy", scores[:, 0] / 10)
    try:
        from sklearn.datasets import load_digits

        dX, dy = load_digits(return_X_y=True)
    except ImportError:
        dX, dy = rng.integers(0, 17, size=(1797, 64)), rng.integers(0, 10, 1797)
    np.save(folder / "digits_X.npy", dX / 16.0)
    np.save(folder / "digits_y.npy", dy)
    m = 2500 if quick else 10_000
    Xc = np.round(rng.random((m, 784)), 3)
    yc = np.argmax((Xc - 0.5) @ teacher, axis=1)
    header = ",".join([f"p{i}" for i in range(784)] + ["label"])
    np.savetxt(
        folder / "rows.csv", np.column_stack([Xc, yc]), "%g", ",", header=header, comments=""
    )


# ------------------------------------------------------------------ one process (the child)
def child(case: str, peer: str, folder: Path) -> dict:
    warnings.simplefilter("ignore")
    if case == "cli":
        return _cli_child(peer, folder)
    start = time.perf_counter()
    if peer == "sklearn":
        from sklearn import neural_network as nn
    else:
        from deltaprop import sklearn as nn
    imported = time.perf_counter()
    if case == "digits":
        X, y = np.load(folder / "digits_X.npy"), np.load(folder / "digits_y.npy")
        model = nn.MLPClassifier(random_state=0)
    elif case == "mnist":
        X, y = np.load(folder / "rows.npy"), np.load(folder / "labels.npy")
        model = nn.MLPClassifier(max_iter=20, random_state=0)
    else:
        X, y = np.load(folder / "rows.npy"), np.load(folder / "targets.npy")
        model = nn.MLPRegressor(max_iter=20, random_state=0)
    loaded = time.perf_counter()
    model.fit(X, y)
    done = time.perf_counter()
    return {
        "import_s": imported - start,
        "fit_s": done - loaded,
        "score": float(model.score(X, y)),
        "epochs": int(model.n_iter_),
    }


def _cli_child(peer: str, folder: Path) -> dict:
    if peer != "sklearn":
        from deltaprop.cli import main

        with tempfile.TemporaryDirectory() as out:
            args = ["train", "--data", str(folder / "rows.csv"), "--no-plots", "--quiet"]
            code = main([*args, "--out", out])
        return {"exit": code}
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    data = np.loadtxt(folder / "rows.csv", delimiter=",", skiprows=1)
    X, y = data[:, :-1], data[:, -1].astype(int)
    Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.2, random_state=0)
    # The CLI trains on the rest of the training part after its validation split.
    Xa, _, ya, _ = train_test_split(Xa, ya, test_size=CLI["val"], random_state=0)
    scaler = StandardScaler().fit(Xa)
    model = MLPClassifier(
        (CLI["hidden"],),
        activation=CLI["activation"],
        solver="adam",
        alpha=0.0,
        batch_size=CLI["batch"],
        learning_rate_init=CLI["lr"],
        max_iter=CLI["epochs"],
        n_iter_no_change=CLI["epochs"],
        random_state=0,
    ).fit(scaler.transform(Xa), ya)
    return {"score": float(model.score(scaler.transform(Xb), yb)), "epochs": int(model.n_iter_)}


# ------------------------------------------------------------------ timing it (the parent)
def timed(case: str, peer: str, folder: Path, cache: Path, env: dict[str, str]) -> dict:
    """Run one child; its wall-clock and CPU seconds as the parent saw them."""
    env = dict(env, NUMBA_CACHE_DIR=str(cache))
    cmd = [sys.executable, str(Path(__file__).resolve()), case, peer, str(folder)]
    before = os.times()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = os.times()
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"failed: {tail}"}
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return json.loads(lines[-1]) | {"wall_s": wall, "cpu_s": cpu}


def compile_bytecode() -> None:
    """Write deltaprop's .pyc files beside its modules, as ``pip install`` does; found by spec,
    so the parent does not import the package it is about to time."""
    spec = importlib.util.find_spec("deltaprop")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("deltaprop is not installed; run pip install -e . first")
    for folder in spec.submodule_search_locations:
        if not compileall.compile_dir(folder, quiet=1):
            raise SystemExit(f"could not byte-compile {folder}")


def run(runs: int, quick: bool, env: dict[str, str]) -> dict[str, dict[str, list[dict]]]:
    """results[case][peer]: one entry per run. Each run's cold process gets a new empty
    cache, and the second and warm ones reuse, in that order, the cache it left; scikit-learn
    runs before them or after them, in turns, as in compare.py."""
    results = {case: {p: [] for p in PEERS} for case in CASES}
    compile_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_data(folder, quick)
        for r in range(runs):
            for case in CASES:
                cache = Path(tempfile.mkdtemp(dir=tmp))
                deltaprop = ["cold", "second", "warm"]
                order = ["sklearn", *deltaprop] if r % 2 else [*deltaprop, "sklearn"]
                for peer in order:
                    if results[case][peer] and "skipped" in results[case][peer][0]:
                        continue
                    res = timed(case, peer, folder, cache, env)
                    results[case][peer].append(res)
                    shown = (
                        res.get("skipped") or f"{res['wall_s']:6.2f} s  ({res['cpu_s']:.2f} CPU s)"
                    )
                    print(f"  run {r + 1} cold-start {case:9} {peer:8} {shown}", flush=True)
    return results


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], sys.argv[2], Path(sys.argv[3]))))
