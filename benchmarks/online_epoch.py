"""The online epoch's cost, the kernel alone and through ``fit``, in ns an example.

    python benchmarks/online_epoch.py [--dtype float64|float32] [--momentum 0] [--rounds 7]

64-32-10 on the digits, sigmoid, squared error, SGD lr 0.5, one example a step (peers.py's
online regime). Three figures, each the fastest of ``--rounds`` timings of ``--epochs``
epochs (a shared machine only ever slows a timing down):
- kernel: ``OnlineEngine.run_epoch`` called directly, the kernel and the copies of the
  weights in and out, nothing of fit's;
- fit(epochs=1): one call an epoch, as peers.py and compare.py call it;
- fit(epochs=10): per epoch, so that fit's checks and set-up count a tenth.

To compare two versions, run this from each checkout in turn, several times, alternating:
the machine's speed drifts by more than most changes within minutes. A first call compiles
the kernel (or loads it from Numba's cache) before anything is timed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from peers import ONLINE, online_data

import deltaprop as dp
from deltaprop.core.losses import accuracy_rule
from deltaprop.train.engines.base import ArraySource, Workload
from deltaprop.train.engines.online import OnlineEngine


def online_engine(dtype: str = "float64", momentum: float = 0.0) -> tuple[OnlineEngine, dict]:
    """An online engine on the digits, and the arguments of the equivalent ``fit``."""
    X, T, _ = online_data()
    X, T = X.astype(dtype), T.astype(dtype)
    net = dp.Network(ONLINE["sizes"], activation="sigmoid", loss="mse", seed=0, dtype=dtype)
    opt = dp.SGD(lr=ONLINE["lr"], momentum=momentum)
    rule = accuracy_rule(net.loss_function.name, net.n_outputs)
    engine = OnlineEngine(Workload(net, ArraySource(X, T), opt, 1, rule))
    fit_args = {"X": X, "T": T, "optimizer": opt, "batch_size": 1, "engine": "online"}
    return engine, fit_args


def fastest(unit: Callable[[], object], calls: int, rounds: int) -> float:
    """Seconds a call of ``unit``: the fastest of ``rounds`` timings of ``calls`` calls."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            unit()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=200, help="epochs a timing")
    args = parser.parse_args(argv)
    engine, fit_args = online_engine(args.dtype, args.momentum)
    net, n = engine.work.net, len(fit_args["X"])
    engine.run_epoch(None)  # compiles, or loads the cached kernel
    kernel = fastest(lambda: engine.run_epoch(None), args.epochs, args.rounds)
    one = fastest(lambda: net.fit(**fit_args, epochs=1), args.epochs, args.rounds)
    ten = fastest(lambda: net.fit(**fit_args, epochs=10), args.epochs // 10, args.rounds) / 10
    print(f"{args.dtype}, momentum {args.momentum:g}: ns an example")
    for label, seconds in (("kernel", kernel), ("fit(epochs=1)", one), ("fit(epochs=10)", ten)):
        print(f"  {label:15} {seconds / n * 1e9:7.0f}  ({n / seconds / 1e6:.2f} M examples/s)")


if __name__ == "__main__":
    main(sys.argv[1:])
