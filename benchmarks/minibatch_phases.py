"""Where a mini-batch step's time goes: the batch engine's epoch with each part timed.

    python benchmarks/minibatch_phases.py [--optimizer adam|sgd] [--order shuffled|stored]
                                          [--rounds 3]

The mini-batch regime of compare.py (784-256-128-10 on 60,000 synthetic inputs, relu,
softmax cross-entropy, batch 128, float32; Adam lr 1e-3 or SGD lr 0.01), one epoch of
``fit`` per round after a warm-up, in this process. Each call of the engine's matrix
products (``np.matmul`` as batch.py calls it), of the fused update and of the fused loops,
and each batch the source gathers, is timed with ``perf_counter``; "rest" is the epoch's
time outside them: the engine's and the loop's Python, and the timing itself (about 1 µs a
call, a dozen calls a step). Prints the fastest round, per step. The matrix products are
what compare.py's ceiling runs alone, so their share of the step is the engine's fraction
of that ceiling, less what the timing adds.

It replaces module attributes of the engine (batch.np, the update and loop functions, the
array source's ``batches``) for the measurement; it is a benchmark, outside the package.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import peers

import deltaprop as dp
from deltaprop.train.engines import base, batch, batch_kernels, updates

TIMED = {
    updates: ("adam_step", "sgd_step", "sklearn_adam_step"),
    batch_kernels: ("bias_activate", "output_batch", "backward_hidden"),
}


def _timed(seconds: dict[str, float], name: str, function):
    def call(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started

    return call


def _instrument(seconds: dict[str, float]) -> None:
    class TimedNumPy:
        matmul = staticmethod(_timed(seconds, "matrix products", np.matmul))

        def __getattr__(self, name):
            return getattr(np, name)

    batch.np = TimedNumPy()
    for module, names in TIMED.items():
        for name in names:
            setattr(module, name, _timed(seconds, name, getattr(module, name)))
    batches = base.ArraySource.batches

    def timed_batches(self, *args, **kwargs):
        source = batches(self, *args, **kwargs)
        while True:
            started = time.perf_counter()
            try:
                one = next(source)
            except StopIteration:
                return
            finally:
                seconds["gather"] = seconds.get("gather", 0.0) + time.perf_counter() - started
            yield one

    base.ArraySource.batches = timed_batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--order", choices=("shuffled", "stored"), default="shuffled")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    X, y = peers.minibatch_data(peers.MINIBATCH["n"])
    net = dp.Network(peers.MINIBATCH["sizes"], activation="relu", output_activation="softmax",
                     loss="cross_entropy", init="he", seed=0, dtype=np.float32)  # fmt: skip
    opt = dp.Adam(lr=1e-3) if args.optimizer == "adam" else dp.SGD(lr=1e-2)
    size = peers.MINIBATCH["batch"]
    net.fit(X[:2048], y[:2048], optimizer=opt, epochs=1, batch_size=size)  # compile, load
    seconds: dict[str, float] = {}
    _instrument(seconds)
    best: tuple[float, dict[str, float]] | None = None
    for _ in range(args.rounds):
        seconds.clear()
        started = time.perf_counter()
        net.fit(X, y, optimizer=opt, epochs=1, batch_size=size, shuffle=args.order == "shuffled")
        total = time.perf_counter() - started
        if best is None or total < best[0]:
            best = (total, dict(seconds))
    total, parts = best  # type: ignore[misc]
    steps = -(-len(X) // size)
    parts["rest"] = total - sum(parts.values())
    print(f"{args.optimizer}, examples {args.order}: {total / steps * 1e6:.0f} µs a step")
    for name, value in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"    {value / steps * 1e6:6.0f} µs  {value / total:4.0%}  {name}")


if __name__ == "__main__":
    main()
