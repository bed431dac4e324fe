"""L1 data-cache misses per example of the online kernel, counted by cachegrind.

    python benchmarks/online_l1_misses.py [--l1 32768,8,64] [--epochs 8] [--kernel]

Counts, unlike timings, do not depend on the machine's other tenants. valgrind simulates
the cache given (size, associativity, line bytes; the default is a Zen 4 core's 32 KiB
8-way L1) and knows no AVX-512, so the kernel is compiled for x86-64-v3 (AVX2), its
features named, in a cache folder of this script's own. Each count is a fresh process under
valgrind: one training epoch, then ``1 + epochs``; their difference over ``epochs`` digits
epochs is the epochs' alone (imports, start-up and the first epoch cancel out). The epochs
are one ``fit``'s, so that its loop's Python between epochs counts; with ``--kernel`` they
are ``OnlineEngine.run_epoch`` called directly (online_epoch.py), the kernel and its copies. A first
process without valgrind fills the compiled-kernel cache, so that neither counted process
compiles. It takes a few minutes: valgrind runs Python about 50× slower.

Result on 2026-12-06 (64-32-10 sigmoid/squared error/SGD, float64, a 9-epoch fit less a
1-epoch one): 663.0 misses an example with two copies of the weights (23361b5, this script
copied into its checkout), 30.6 with one updated in place; with ``--kernel``, 639.5 and 18.6.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# x86-64-v3's features, named: left to Numba, they are the host's as valgrind reports them,
# which differ from the host's outside it, and the cached kernels would not be found.
AVX2 = ",".join(
    f"+{name}"
    for name in "64bit cmov cx16 sse3 ssse3 sse4.1 sse4.2 popcnt avx avx2 bmi bmi2 f16c fma "
    "lzcnt movbe xsave".split()
)

KERNEL = """
import sys
sys.path.insert(0, {here!r})
from online_epoch import online_engine
engine, _ = online_engine()
for _ in range(int(sys.argv[1])):
    engine.run_epoch(None)
"""
TRAIN = """
import sys
sys.path.insert(0, {here!r})
import deltaprop as dp
from peers import ONLINE, online_data
X, T, _ = online_data()
net = dp.Network(ONLINE["sizes"], activation="sigmoid", loss="mse", seed=0)
net.fit(X, T, optimizer=dp.SGD(lr=ONLINE["lr"]), epochs=int(sys.argv[1]), batch_size=1,
        shuffle=False, engine="online")
"""


def _d1_misses(env: dict[str, str], epochs: int, l1: str, script: str) -> int:
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=yes", f"--D1={l1}",
           "--cachegrind-out-file=/dev/null", sys.executable, "-c", script,
           str(epochs)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    found = re.search(r"D1\s+misses:\s+([\d,]+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"valgrind failed: {proc.stderr.strip().splitlines()[-1:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--l1", default="32768,8,64", help="size,associativity,line bytes")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--kernel", action="store_true", help="run_epoch alone, not fit")
    args = parser.parse_args(argv)
    script = (KERNEL if args.kernel else TRAIN).format(here=str(HERE))
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CPU_NAME="x86-64-v3", NUMBA_CPU_FEATURES=AVX2,
                   NUMBA_CACHE_DIR=cache)  # fmt: skip
        env["PYTHONPATH"] = str(HERE.parent / "src") + os.pathsep + env.get("PYTHONPATH", "")
        subprocess.run([sys.executable, "-c", script, "1"], check=True, env=env)
        one = _d1_misses(env, 1, args.l1, script)
        more = _d1_misses(env, 1 + args.epochs, args.l1, script)
    examples = 1797 * args.epochs
    print(f"L1 {args.l1}: {(more - one) / examples:.1f} D1 misses an example "
          f"({more - one:,} over {args.epochs} epochs of the digits)")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
