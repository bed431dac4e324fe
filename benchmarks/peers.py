"""One measurement of one implementation, run by compare.py in a process of its own.

    python benchmarks/peers.py REGIME PEER [--quick]

Prints one JSON line: examples per second, examples timed, and for the mini-batch regime
the peak memory the epoch added over the data. A peer that is not installed prints
{"skipped": "..."}. The two configurations (the issue's):

- online: 64-32-10 on digits (X / 16, one-hot targets), sigmoid, squared error ½Σ(t - o)²,
  SGD lr 0.5, one example per step, float64, shuffled every epoch.
- minibatch: 784-256-128-10 on 60,000 synthetic 28×28 "images" (uniform pixels, labels from a
  fixed random linear teacher), relu, softmax cross-entropy, Adam lr 1e-3, batch 128, float32.

Every peer trains that network on that data for whole epochs after a warm-up (compilation,
caches, thread pools), so what is timed is steady-state training; "rate" is the fastest of
several timings (see best_rate), "rate_median" their median.
"""

from __future__ import annotations

import gc
import json
import math
import os
import resource
import statistics
import sys
import time
import warnings

import numpy as np

ONLINE = {"sizes": [64, 32, 10], "lr": 0.5}
MINIBATCH = {"sizes": [784, 256, 128, 10], "lr": 1e-3, "batch": 128, "n": 60_000}


def online_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X = X / 16.0
    except ImportError:  # same shapes; speed does not depend on the pixel values
        rng = np.random.default_rng(0)
        X, y = rng.integers(0, 17, size=(1797, 64)) / 16.0, rng.integers(0, 10, 1797)
    return X, np.eye(10)[y], y


def minibatch_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, 784), dtype=np.float32)
    teacher = np.random.default_rng(99).normal(size=(784, 10)).astype(np.float32)
    # Labels in chunks, so that making them needs no second copy of the data.
    y = np.concatenate(
        [np.argmax((X[i : i + 512] - 0.5) @ teacher, axis=1) for i in range(0, n, 512)]
    )
    return X, y


# ------------------------------------------------------------------ memory
def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak() -> bool:
    """Reset the kernel's high-water mark of this process's RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_rate(unit, n: int, repeats: int, min_seconds: float = 0.2, first: float = 0.0) -> dict:
    """Examples per second of ``unit`` (which trains ``n`` examples): ``repeats`` timings of
    enough units to last ``min_seconds``, and the fastest of them, as timeit reports. On a
    shared machine other work only ever slows a timing down, so the fastest is the closest to
    what the code itself costs. ``first``: seconds the caller already timed for one unit."""
    if not first:
        start = time.perf_counter()
        unit()
        first = time.perf_counter() - start
    k = max(1, math.ceil(min_seconds / max(first, 1e-9)))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(k):
            unit()
        rates.append(k * n / (time.perf_counter() - start))
    return {"rate": max(rates), "rate_median": statistics.median(rates), "examples": k * n}


def minibatch_epochs(make_trainer, quick: bool) -> dict:
    """Train a freshly built model over freshly made data. Its first epoch measures the peak
    memory above the data that training needed (the model, optimizer state, buffers, any
    temporary copies); then the fastest of 3 timings of 3 epochs each, every timing one call
    of the library's fit where it has one, gives the speed. The warm-up on other, small data
    loads the library's run-time first. make_trainer(X, y) returns train(epochs)."""
    make_trainer(*minibatch_data(2048, seed=1))(1)
    gc.collect()
    baseline = rss_mb()
    reset_peak()
    X, y = minibatch_data(MINIBATCH["n"] // (6 if quick else 1))
    data_mb = (X.nbytes + y.nbytes) / 2**20
    train = make_trainer(X, y)
    start = time.perf_counter()
    train(1)
    first = time.perf_counter() - start
    extra = peak_mb() - baseline - data_mb
    out = best_rate(lambda: train(3), 3 * len(X), repeats=3)
    out["rate_first_epoch"] = len(X) / first
    return out | {"peak_extra_mb": extra, "data_mb": data_mb}


def online_epochs(epoch, n: int, quick: bool) -> dict:
    return best_rate(epoch, n, repeats=3 if quick else 5)


def blas_info() -> str:
    """The BLAS NumPy calls, as threadpoolctl reports it."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    ours = [p for p in pools if "numpy" in p.get("filepath", "")] or pools
    return "; ".join(
        f"{p.get('internal_api')} {p.get('version')}, kernel {p.get('architecture', '?')}, "
        f"{p.get('num_threads')} threads"
        for p in ours
    )


# ------------------------------------------------------------------ deltaprop
def deltaprop_run(regime: str, quick: bool, engine: str = "auto") -> dict:
    import deltaprop as dp

    if regime == "online":
        X, T, _ = online_data()
        net = dp.Network(ONLINE["sizes"], activation="sigmoid", loss="mse", seed=0)
        opt = dp.SGD(lr=ONLINE["lr"])
        net.fit(X, T, optimizer=opt, epochs=1, batch_size=1, engine=engine)  # warm-up

        def epoch():
            net.fit(X, T, optimizer=opt, epochs=1, batch_size=1, engine=engine)

        return online_epochs(epoch, len(X), quick) | {"blas": blas_info()}

    def make(X, y):
        net = dp.Network(
            MINIBATCH["sizes"],
            activation="relu",
            output_activation="softmax",
            loss="cross_entropy",
            init="he",
            seed=0,
            dtype=np.float32,
        )
        opt = dp.Adam(lr=MINIBATCH["lr"])
        return lambda epochs: net.fit(
            X, y, optimizer=opt, epochs=epochs, batch_size=MINIBATCH["batch"], engine=engine
        )

    return minibatch_epochs(make, quick) | {"blas": blas_info()}


def reference_run(regime: str, quick: bool) -> dict:
    return deltaprop_run(regime, quick, engine="reference")


# ------------------------------------------------------------------ PyTorch
def torch_run(regime: str, quick: bool) -> dict:
    import torch
    from torch import nn

    torch.manual_seed(0)
    if regime == "online":
        X, T, _ = online_data()
        Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)
        model = nn.Sequential(nn.Linear(64, 32), nn.Sigmoid(), nn.Linear(32, 10), nn.Sigmoid())
        model = model.double()
        opt = torch.optim.SGD(model.parameters(), lr=ONLINE["lr"])

        def epoch():
            for i in torch.randperm(len(X)).tolist():
                opt.zero_grad()
                loss = 0.5 * ((Tt[i] - model(Xt[i])) ** 2).sum()
                loss.backward()
                opt.step()

        epoch()  # warm-up
        out = online_epochs(epoch, len(X), quick)
    else:

        def make(X, y):
            Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
            model = nn.Sequential(
                nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
            )
            opt = torch.optim.Adam(model.parameters(), lr=MINIBATCH["lr"])
            loss_fn, batch = nn.CrossEntropyLoss(), MINIBATCH["batch"]

            def epoch():
                order = torch.randperm(len(X))
                for start in range(0, len(X), batch):
                    idx = order[start : start + batch]
                    opt.zero_grad()
                    loss = loss_fn(model(Xt[idx]), yt[idx])
                    loss.backward()
                    opt.step()

            return lambda epochs: [epoch() for _ in range(epochs)]

        out = minibatch_epochs(make, quick)
    return out | {"threads": torch.get_num_threads()}


# ------------------------------------------------------------------ scikit-learn
def sklearn_run(regime: str, quick: bool) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    warnings.simplefilter("ignore", ConvergenceWarning)
    if regime == "online":
        # scikit-learn has no sigmoid-output squared-error classifier: its output layer is
        # softmax with log-loss; the hidden layer, optimizer and step size are the same.
        X, _, y = online_data()
        clf = MLPClassifier(
            (32,),
            activation="logistic",
            solver="sgd",
            batch_size=1,
            learning_rate_init=ONLINE["lr"],
            momentum=0.0,
            alpha=0.0,
            max_iter=1,
            warm_start=True,
            random_state=0,
        )
        clf.fit(X, y)  # warm-up
        return online_epochs(lambda: clf.fit(X, y), len(X), quick)

    def make(X, y):
        clf = MLPClassifier(
            (256, 128),
            activation="relu",
            solver="adam",
            alpha=0.0,
            batch_size=MINIBATCH["batch"],
            learning_rate_init=MINIBATCH["lr"],
            max_iter=1,
            warm_start=True,
            random_state=0,
        )

        def train(epochs):
            clf.set_params(max_iter=epochs)
            clf.fit(X, y)

        return train

    return minibatch_epochs(make, quick)


# ------------------------------------------------------------------ plain NumPy loops
def numpy_run(regime: str, quick: bool) -> dict:
    rng = np.random.default_rng(0)
    if regime == "online":
        X, T, _ = online_data()
        lr = ONLINE["lr"]
        W1, b1 = rng.uniform(-0.3, 0.3, (32, 64)), np.zeros(32)
        W2, b2 = rng.uniform(-0.3, 0.3, (10, 32)), np.zeros(10)

        def epoch():
            for i in rng.permutation(len(X)):
                x, t = X[i], T[i]
                h = 1.0 / (1.0 + np.exp(-(W1 @ x + b1)))
                o = 1.0 / (1.0 + np.exp(-(W2 @ h + b2)))
                d2 = o * (1.0 - o) * (t - o)
                d1 = h * (1.0 - h) * (d2 @ W2)
                np.add(W2, np.outer(lr * d2, h), out=W2)
                np.add(b2, lr * d2, out=b2)
                np.add(W1, np.outer(lr * d1, x), out=W1)
                np.add(b1, lr * d1, out=b1)

        epoch()
        return online_epochs(epoch, len(X), quick)
    return numpy_minibatch(quick, rng)


def numpy_minibatch(quick: bool, rng: np.random.Generator) -> dict:
    """Buffers allocated once, GEMMs into them, relu and Adam in place: careful NumPy."""
    sizes, B, f32 = MINIBATCH["sizes"], MINIBATCH["batch"], np.float32
    lr, b1, b2, eps = MINIBATCH["lr"], 0.9, 0.999, 1e-8

    def make(X, y):
        Ws = [
            (rng.normal(size=(o, i)) * np.sqrt(2 / i)).astype(f32)
            for i, o in zip(sizes[:-1], sizes[1:])
        ]
        bs = [np.zeros(o, f32) for o in sizes[1:]]
        params = [p for pair in zip(Ws, bs) for p in pair]
        grads = [np.empty_like(p) for p in params]
        ms, vs, tmp = ([np.zeros_like(p) for p in params] for _ in range(3))
        Z = [np.empty((B, k), f32) for k in sizes]
        D = [np.empty((B, k), f32) for k in sizes]
        eye, Yb, state = np.eye(10, dtype=f32), np.empty((B, 10), f32), {"t": 0}

        def step(m):
            z, d = [a[:m] for a in Z], [a[:m] for a in D]
            for k, (W, b) in enumerate(zip(Ws, bs)):
                np.matmul(z[k], W.T, out=z[k + 1])
                z[k + 1] += b
                if k < 2:
                    np.maximum(z[k + 1], 0, out=z[k + 1])
            out = z[3]
            out -= out.max(axis=1, keepdims=True)
            np.exp(out, out=out)
            out /= out.sum(axis=1, keepdims=True)
            np.subtract(out, Yb[:m], out=d[3])
            d[3] /= m
            for k in (2, 1, 0):
                np.matmul(d[k + 1].T, z[k], out=grads[2 * k])
                np.sum(d[k + 1], axis=0, out=grads[2 * k + 1])
                if k:
                    np.matmul(d[k + 1], Ws[k], out=d[k])
                    d[k] *= z[k] > 0
            state["t"] += 1
            t = state["t"]
            for p, g, mm, vv, tt in zip(params, grads, ms, vs, tmp):
                mm *= b1
                mm += (1 - b1) * g
                vv *= b2
                np.multiply(g, g, out=tt)
                tt *= 1 - b2
                vv += tt
                np.sqrt(vv, out=tt)
                tt /= np.sqrt(1 - b2**t)
                tt += eps
                np.divide(mm, tt, out=tt)
                tt *= lr / (1 - b1**t)
                p -= tt

        def epoch():
            order = rng.permutation(len(X))
            for start in range(0, len(X), B):
                idx = order[start : start + B]
                m = len(idx)
                np.take(X, idx, axis=0, out=Z[0][:m])
                np.take(eye, y[idx], axis=0, out=Yb[:m])
                step(m)

        return lambda epochs: [epoch() for _ in range(epochs)]

    return minibatch_epochs(make, quick)


# ------------------------------------------------------------------ the GEMM ceiling
def gemm_run(regime: str, quick: bool) -> dict:
    """Only the matrix products of training — forward, deltas, weight gradients — on
    preallocated buffers, in batches of 128: what BLAS can do for these shapes."""
    rng = np.random.default_rng(0)
    cfg = ONLINE if regime == "online" else MINIBATCH
    dtype = np.float64 if regime == "online" else np.float32
    sizes, B = cfg["sizes"], 128
    n = (60_000 if regime == "minibatch" else 20_000) // (6 if quick else 1)
    X = rng.random((n, sizes[0])).astype(dtype)
    Ws = [rng.random((o, i)).astype(dtype) for i, o in zip(sizes[:-1], sizes[1:])]
    Z = [np.empty((B, k), dtype) for k in sizes]
    D = [rng.random((B, k)).astype(dtype) for k in sizes]
    G = [np.empty_like(W) for W in Ws]
    L = len(Ws)

    def epoch(rows: int = n):
        for start in range(0, rows - B + 1, B):
            np.matmul(X[start : start + B], Ws[0].T, out=Z[1])
            for k in range(1, L):
                np.matmul(Z[k], Ws[k].T, out=Z[k + 1])
            for k in range(L - 1, 0, -1):
                np.matmul(D[k + 1], Ws[k], out=D[k])
            np.matmul(D[1].T, X[start : start + B], out=G[0])
            for k in range(1, L):
                np.matmul(D[k + 1].T, Z[k], out=G[k])

    epoch(2048)
    return best_rate(epoch, n - n % B, repeats=3)


PEERS = {
    "deltaprop": deltaprop_run,
    "reference": reference_run,
    "pytorch": torch_run,
    "sklearn": sklearn_run,
    "numpy": numpy_run,
    "gemm": gemm_run,
}
NEEDS = {"pytorch": "torch", "sklearn": "sklearn"}


def main(argv: list[str]) -> None:
    regime, peer = argv[0], argv[1]
    quick = "--quick" in argv
    module = NEEDS.get(peer)
    if module is not None:
        try:
            __import__(module)
        except ImportError:
            print(json.dumps({"skipped": f"{module} is not installed"}))
            return
    print(json.dumps(PEERS[peer](regime, quick)))


if __name__ == "__main__":
    main(sys.argv[1:])
