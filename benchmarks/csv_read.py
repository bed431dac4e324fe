"""Reading a 20 MB CSV: deltaprop.load_dataset against numpy.loadtxt, each in its own process.

    python benchmarks/csv_read.py [--runs 5] [--mb 20] [--keep FOLDER]

Two files of about ``--mb`` MB are written first (into a temporary folder, or ``--keep``):
"wide", MNIST-shaped (a label column and 784 pixel columns, see benchmarks/mnist_like.py), and
"tall", 20 columns of floats printed with 6 significant digits. Every measurement runs in a
fresh Python process, the sides alternating (numpy first on even runs, deltaprop first on odd
ones), so neither inherits the other's page cache advantage or warm-up. In each process "cold"
times the first read (what a script pays, imports excluded) and "warm" a second read of the
same file.

The numpy side is the plain call a user would write, ``np.loadtxt(path, delimiter=",",
skiprows=1)``, which yields the numbers and nothing else. The deltaprop side is
``load_dataset(path, target=...)``: the delimiter sniffed, the header checked, the target
encoded into class labels, every cell checked finite. Prints each run, the medians and the
ratio deltaprop / numpy (below 1.5 is the target of issue 14).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SIDES = ("numpy", "deltaprop")


def make_files(folder: Path, mb: float) -> dict[str, tuple[Path, str]]:
    import numpy as np

    sys.path.insert(0, str(Path(__file__).parent))
    from mnist_like import images, write_csv

    wide = folder / "wide.csv"
    # About 2.5 kB a row for MNIST-shaped rows (mostly "0" cells, 4-digit pixels elsewhere).
    X, y = images(int(mb * 1e6 / 2475), seed=0)
    write_csv(str(wide), X, y, max_value=1)
    tall = folder / "tall.csv"
    rng = np.random.default_rng(0)
    rows = int(mb * 1e6 / 161)  # 19 floats of 6 digits and a label: about 161 bytes a row
    table = rng.normal(size=(rows, 20)) * 100
    table[:, -1] = rng.integers(0, 5, rows)
    header = ",".join([*(f"x{j}" for j in range(19)), "label"])
    np.savetxt(tall, table, fmt=["%.6g"] * 19 + ["%d"], delimiter=",", header=header, comments="")
    return {"wide": (wide, "label"), "tall": (tall, "label")}


def worker(side: str, path: str, target: str) -> None:
    import time

    import numpy as np

    from deltaprop.data import load_dataset

    times = []
    for _ in range(2):
        started = time.perf_counter()
        if side == "numpy":
            shape = np.loadtxt(path, delimiter=",", skiprows=1).shape
        else:
            ds = load_dataset(path, target=target)
            shape = (len(ds), ds.n_features + 1)
            # Freed before the next read, as numpy's array is: a read while the last result
            # is still alive pays for fresh pages from the system.
            del ds
        times.append(time.perf_counter() - started)
    print(json.dumps({"side": side, "cold": times[0], "warm": times[1], "shape": shape}))


def measure(side: str, path: Path, target: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", side, str(path), target],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mb", type=float, default=20.0)
    parser.add_argument("--keep", help="write the CSV files here and leave them")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        files = make_files(folder, args.mb)
        for name, (path, target) in files.items():
            size = path.stat().st_size / 1e6
            print(f"{name}: {path.name}, {size:.1f} MB")
            results: dict[str, list[dict]] = {side: [] for side in SIDES}
            for run in range(args.runs):
                order = SIDES if run % 2 == 0 else SIDES[::-1]
                for side in order:
                    r = measure(side, path, target)
                    results[side].append(r)
                    print(f"  run {run} {side:9s} cold {r['cold']:.3f} s  warm {r['warm']:.3f} s")
            for kind in ("cold", "warm"):
                medians = {s: statistics.median(r[kind] for r in results[s]) for s in SIDES}
                print(
                    f"  {kind}: numpy.loadtxt {medians['numpy']:.3f} s, deltaprop "
                    f"{medians['deltaprop']:.3f} s, ratio deltaprop/numpy "
                    f"{medians['deltaprop'] / medians['numpy']:.2f}"
                )


if __name__ == "__main__":
    main()
