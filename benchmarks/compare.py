"""deltaprop against PyTorch, scikit-learn and plain NumPy, online and in mini-batches.

    python benchmarks/compare.py [--runs 3] [--quick] [--regime online|minibatch|cold|both|all]

"both" (the default) runs the online and mini-batch regimes, "all" the cold-start one too
(benchmarks/coldstart.py: fresh processes, an empty Numba cache, import to fitted).

Each measurement is one fresh process (benchmarks/peers.py REGIME PEER), so no two
libraries share a process: NumPy's OpenBLAS and PyTorch's OpenMP thread pools in one process
slow each other down by up to 70×. The peers take turns within every run, and each run starts
with a different one, so slow spells of a shared machine fall on all of them. Within its
process a peer reports the fastest of several timings of whole epochs (peers.best_rate: other
tenants' work only ever slows a timing down); the table gives, per peer, the median of those
over the runs. "× PyTorch" is the ratio of medians; GFLOP/s counts the matrix products of
training (2·ΣW forward, 2·ΣW weight gradients, 2·ΣW of every layer but the first for the
deltas) and "of the GEMM limit" compares with the same products alone on preallocated
buffers, batches of 128, in the regime's dtype (peers.gemm_run), measured in the same run.
"extra MB" (mini-batch regime): the peak memory that the first epoch of a fresh model needed
above what the process held before the data were made, less the data themselves.

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed (together) from the workers' environment:
where they are set they make current NumPy pick slow kernels. The BLAS that ran is printed.
Missing peers (PyTorch, scikit-learn) are skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import coldstart

HERE = Path(__file__).resolve().parent
REGIMES = {
    "online": "64-32-10 digits, sigmoid, squared error, SGD, 1 example/step, float64",
    "minibatch": "784-256-128-10, relu, softmax cross-entropy, Adam, batch 128, float32",
}
SIZES = {"online": [64, 32, 10], "minibatch": [784, 256, 128, 10]}
PEERS = ("deltaprop", "pytorch", "sklearn", "numpy", "reference", "gemm")
LABELS = {
    "deltaprop": "deltaprop",
    "reference": "deltaprop engine='reference'",
    "pytorch": "PyTorch",
    "sklearn": "scikit-learn MLPClassifier",
    "numpy": "plain NumPy loop",
    "gemm": "GEMMs only (the limit)",
}
COLD_CASES = {
    "mnist": "MLPClassifier(max_iter=20), 8,000 MNIST-shaped rows",
    "digits": "MLPClassifier(), digits",
    "regressor": "MLPRegressor(max_iter=20), 8,000 MNIST-shaped rows",
    "cli": "deltaprop train, 10,000-row CSV (sklearn: the same job)",
}


def flops_per_example(sizes: list[int]) -> int:
    weights = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 4 * sum(weights) + 2 * sum(weights[1:])


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(key, None)
    src = str(HERE.parent / "src")  # so that a source checkout runs without installing
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def measure(regime: str, peer: str, quick: bool) -> dict:
    cmd = [sys.executable, str(HERE / "peers.py"), regime, peer] + (["--quick"] if quick else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=worker_env())
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"failed: {tail}"}
    return json.loads(lines[-1])


def run(regime: str, runs: int, quick: bool) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {p: [] for p in PEERS}
    for r in range(runs):
        turn = PEERS[r % len(PEERS) :] + PEERS[: r % len(PEERS)]
        for peer in turn:
            if results[peer] and "skipped" in results[peer][0]:
                continue
            res = measure(regime, peer, quick)
            results[peer].append(res)
            shown = res.get("skipped") or f"{res['rate']:>12,.0f} examples/s"
            print(f"  run {r + 1} {regime:9} {LABELS[peer]:30} {shown}", flush=True)
    return results


def table(regime: str, results: dict[str, list[dict]]) -> str:
    flops = flops_per_example(SIZES[regime])
    med = {
        p: statistics.median(r["rate"] for r in rs)
        for p, rs in results.items()
        if rs and "skipped" not in rs[0]
    }
    torch_rate, ceiling = med.get("pytorch"), med.get("gemm")
    rows = [
        f"{REGIMES[regime]}; median of {max(len(v) for v in results.values())} runs",
        "",
        "| implementation | examples/s | × PyTorch | GFLOP/s | of the GEMM limit | extra MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for peer in PEERS:
        if peer not in med:
            reason = results[peer][0]["skipped"] if results[peer] else "not run"
            rows.append(f"| {LABELS[peer]} | skipped: {reason} | | | | |")
            continue
        rate = med[peer]
        ratio = f"{rate / torch_rate:.2f}" if torch_rate else "–"
        frac = f"{rate / ceiling:.0%}" if ceiling else "–"
        mems = [r["peak_extra_mb"] for r in results[peer] if "peak_extra_mb" in r]
        mem = f"{statistics.median(mems):.0f}" if mems else ""
        rows.append(
            f"| {LABELS[peer]} | {rate:,.0f} | {ratio} | {rate * flops / 1e9:.2f} | {frac} "
            f"| {mem} |"
        )
    return "\n".join(rows)


def cold_table(results: dict[str, dict[str, list[dict]]]) -> str:
    """Per case, the median seconds from interpreter start to fitted (CPU seconds in
    brackets), and scikit-learn's time over deltaprop's: above 1, deltaprop is faster."""

    def med(rs: list[dict], key: str) -> float | None:
        ok = [r[key] for r in rs if "skipped" not in r]
        return statistics.median(ok) if ok else None

    runs = max(len(p) for case in results.values() for p in case.values())
    rows = [
        f"Cold start, fresh processes, import to fitted; median of {runs} runs",
        "",
        "| case | scikit-learn s | deltaprop, empty cache s | × sklearn | second run s "
        "| × sklearn | later runs s | × sklearn |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case, label in COLD_CASES.items():
        # By name: coldstart.PEERS is not the table's order.
        order = ("sklearn", "cold", "second", "warm")
        walls = [med(results[case][p], "wall_s") for p in order]
        cpu = [med(results[case][p], "cpu_s") for p in order]
        if None in walls:
            rows.append(f"| {label} | skipped | | | | | | |")
            continue
        sk = walls[0]
        cells = [f"{sk:.2f} ({cpu[0]:.2f})"]
        cells += [f"{w:.2f} ({c:.2f}) | {sk / w:.2f}" for w, c in zip(walls[1:], cpu[1:])]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller epochs, for a smoke test")
    choices = ["online", "minibatch", "cold", "both", "all"]
    parser.add_argument("--regime", choices=choices, default="both")
    args = parser.parse_args()
    regimes = {"both": list(REGIMES), "all": [*REGIMES, "cold"]}.get(args.regime, [args.regime])
    tables = []
    blas = ""
    for regime in regimes:
        if regime == "cold":
            tables.append(cold_table(coldstart.run(args.runs, args.quick, worker_env())))
            continue
        results = run(regime, args.runs, args.quick)
        blas = blas or next((r["blas"] for r in results["deltaprop"] if "blas" in r), "")
        tables.append(table(regime, results))
        if regime == "minibatch":
            data_mb = (60_000 // (6 if args.quick else 1)) * 784 * 4 / 2**20
            tables[-1] += f"\n\n(the data: {data_mb:.0f} MB of float32 inputs)"
    print()
    print(f"BLAS in the workers: {blas}")
    for text in tables:
        print()
        print(text)


if __name__ == "__main__":
    main()
