"""The fast engines (Numba online kernel, lean mini-batch engine) against the reference path.

Every comparison trains two copies of one network, one with ``engine="reference"`` (the
readable NumPy maths of network.py and optimizers.py) and one with the fast engine, and
compares weights, optimizer state, history and the random generator. float64 must agree to
1e-12 relative; float32 to RTOL32/ATOL32 (each engine rounds in float32 in its own order, and
two epochs of small networks stay well inside these).
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.optim.sklearn_adam import SklearnAdam
from deltaprop.train.engines import choose as fastpath

pytest.importorskip("numba")

RTOL64, ATOL64 = 1e-12, 1e-14
RTOL32, ATOL32 = 2e-4, 2e-5

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "identity"]
OUTPUTS = [  # (output activation, loss)
    ("sigmoid", "mse"),
    ("identity", "mse"),
    ("softmax", "mse"),
    ("softmax", "cross_entropy"),
    ("sigmoid", "binary_cross_entropy"),
    ("tanh", "mse"),
]
SGDS = [
    {"lr": 0.1},
    {"lr": 0.05, "momentum": 0.9},
    {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01},
    {"lr": 0.03, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05},
    {"lr": 0.1, "weight_decay": 0.1},
]


def problem(output: str, loss: str, n: int = 23, n_in: int = 4, n_out: int = 3, seed: int = 0):
    """Inputs and targets suited to the loss (labels, probabilities or real values)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    if loss == "cross_entropy":
        return X, rng.integers(0, n_out, size=n)
    if output == "softmax":
        return X, np.eye(n_out)[rng.integers(0, n_out, size=n)]
    if output in ("sigmoid", "tanh") or loss == "binary_cross_entropy":
        return X, rng.uniform(0.05, 0.95, size=(n, n_out))
    return X, rng.normal(size=(n, n_out))


def pair(sizes, hidden, output, loss, dtype=np.float64, seed=3):
    net = dp.Network(
        sizes, activation=hidden, output_activation=output, loss=loss, seed=seed, dtype=dtype
    )
    return net, net.copy()


def assert_same(a: dp.Network, b: dp.Network, rtol: float, atol: float) -> None:
    for p, q in zip(a.parameters(), b.parameters()):
        assert p.dtype == q.dtype == a.dtype
        np.testing.assert_allclose(p, q, rtol=rtol, atol=atol)
    assert a.rng.bit_generator.state == b.rng.bit_generator.state


def assert_same_state(a: dp.Optimizer, b: dp.Optimizer, rtol: float, atol: float) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and sa["step"] == sb["step"]
    for key, value in sa.items():
        if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            for x, y in zip(value, sb[key]):
                np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def train_both(fast, ref, X, T, make_opt, engine, tol, **kwargs):
    opt_fast, opt_ref = make_opt(), make_opt()
    h_fast = fast.fit(X, T, optimizer=opt_fast, engine=engine, **kwargs)
    h_ref = ref.fit(X, T, optimizer=opt_ref, engine="reference", **kwargs)
    assert_same(fast, ref, *tol)
    assert_same_state(opt_fast, opt_ref, *tol)
    np.testing.assert_allclose(h_fast.loss, h_ref.loss, rtol=tol[0])
    np.testing.assert_allclose(h_fast.accuracy, h_ref.accuracy, rtol=tol[0])
    return h_fast, h_ref


CASES = list(itertools.product(HIDDEN, OUTPUTS))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("hidden, out", CASES, ids=[f"{h}-{o}-{lo}" for h, (o, lo) in CASES])
def test_online_kernel_equals_reference(hidden, out, dtype):
    output, loss = out
    settings = SGDS[CASES.index((hidden, out)) % len(SGDS)]  # every setting, several times
    X, T = problem(output, loss)
    fast, ref = pair([4, 5, 3], hidden, output, loss, dtype)
    tol = (RTOL64, ATOL64) if dtype == np.float64 else (RTOL32, ATOL32)
    train_both(fast, ref, X, T, lambda: dp.SGD(**settings), "online", tol, epochs=2, batch_size=1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("settings", SGDS)
def test_online_kernel_deep_network_every_sgd_setting(settings, dtype):
    X, T = problem("softmax", "cross_entropy", n=30, n_in=6, n_out=4)
    fast, ref = pair([6, 7, 5, 4], ["tanh", "elu"], "softmax", "cross_entropy", dtype)
    tol = (RTOL64, ATOL64) if dtype == np.float64 else (RTOL32, ATOL32)
    train_both(fast, ref, X, T, lambda: dp.SGD(**settings), "online", tol, epochs=3, batch_size=1)


OPTIMIZERS = [
    lambda: dp.SGD(lr=0.2),
    lambda: dp.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda: dp.SGD(lr=0.1, momentum=0.5, dampening=0.5),
    lambda: dp.Adam(lr=0.01),
    lambda: dp.Adam(lr=0.01, betas=(0.3, 0.9), weight_decay=0.01, amsgrad=True),
    lambda: dp.AdamW(lr=0.02, weight_decay=0.1),
    lambda: dp.AdamW(lr=0.02, amsgrad=True),
    lambda: dp.RMSprop(lr=0.01, momentum=0.5, centered=True),
    lambda: dp.Adagrad(lr=0.05),
]
OPT_IDS = [
    "sgd",
    "nesterov",
    "dampening",
    "adam",
    "adam-l2-ams",
    "adamw",
    "adamw-ams",
    "rms",
    "ada",
]
# scikit-learn's Adam too, only here: the cases below rotate through OPTIMIZERS as they are.
EVERY_OPTIMIZER = [*OPTIMIZERS, lambda: SklearnAdam(lr=0.01, betas=(0.3, 0.9))]
EVERY_OPT_ID = [*OPT_IDS, "sklearn-adam"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make_opt", EVERY_OPTIMIZER, ids=EVERY_OPT_ID)
def test_batch_engine_equals_reference_for_every_optimizer(make_opt, dtype):
    X, T = problem("softmax", "cross_entropy", n=40, n_in=5, n_out=3)
    fast, ref = pair([5, 8, 6, 3], ["relu", "sigmoid"], "softmax", "cross_entropy", dtype)
    tol = (RTOL64, ATOL64) if dtype == np.float64 else (RTOL32, ATOL32)
    # 40 rows in batches of 16: the last batch is smaller.
    train_both(fast, ref, X, T, make_opt, "batch", tol, epochs=3, batch_size=16)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("hidden, out", CASES, ids=[f"{h}-{o}-{lo}" for h, (o, lo) in CASES])
def test_batch_engine_equals_reference_for_every_activation_and_loss(hidden, out, dtype):
    output, loss = out
    X, T = problem(output, loss, n=30)
    fast, ref = pair([4, 6, 3], hidden, output, loss, dtype)
    tol = (RTOL64, ATOL64) if dtype == np.float64 else (RTOL32, ATOL32)
    make = OPTIMIZERS[CASES.index((hidden, out)) % len(OPTIMIZERS)]
    train_both(fast, ref, X, T, make, "batch", tol, epochs=2, batch_size=8)


def test_batch_engine_without_shuffling_and_with_full_batches():
    X, T = problem("sigmoid", "binary_cross_entropy", n=25)
    for kwargs in ({"batch_size": 6, "shuffle": False}, {"batch_size": None}):
        fast, ref = pair([4, 5, 3], "tanh", "sigmoid", "binary_cross_entropy")
        train_both(
            fast, ref, X, T, lambda: dp.Adam(lr=0.05), "batch", (RTOL64, ATOL64), epochs=3, **kwargs
        )


@pytest.mark.parametrize(
    "engine, batch_size, make_opt",
    [
        ("online", 1, lambda: dp.SGD(lr=0.1, momentum=0.9)),
        ("batch", 5, lambda: dp.Adam(lr=0.01, amsgrad=True)),
    ],
)
def test_switching_engines_mid_training_continues_the_same_trajectory(engine, batch_size, make_opt):
    X, T = problem("softmax", "cross_entropy", n=20)
    fast, ref = pair([4, 5, 3], "sigmoid", "softmax", "cross_entropy")
    mixed = fast.copy()
    opt_fast, opt_ref, opt_mixed = make_opt(), make_opt(), make_opt()
    fast.fit(X, T, optimizer=opt_fast, epochs=2, batch_size=batch_size, engine=engine)
    ref.fit(X, T, optimizer=opt_ref, epochs=2, batch_size=batch_size, engine="reference")
    # One fast epoch, then the reference carries on with the optimizer state it left.
    mixed.fit(X, T, optimizer=opt_mixed, epochs=1, batch_size=batch_size, engine=engine)
    mixed.fit(X, T, optimizer=opt_mixed, epochs=1, batch_size=batch_size, engine="reference")
    for net, opt in ((fast, opt_fast), (mixed, opt_mixed)):
        assert_same(net, ref, RTOL64, ATOL64)
        assert_same_state(opt, opt_ref, RTOL64, ATOL64)


# ------------------------------------------------------------------ divergence guard
def diverging(lr: float):
    net = dp.Network([1, 1], activation="identity", loss="mse", init="normal", seed=0)
    X = np.array([[1e3], [2e3], [3e3]])
    T = np.array([[1.0], [2.0], [3.0]])
    return net, X, T


@pytest.mark.parametrize("engine, batch_size", [("online", 1), ("batch", 1), ("batch", 2)])
@pytest.mark.parametrize("lr, what", [(10.0, "loss became inf"), (1e308, "weight became NaN")])
def test_divergence_keeps_the_weights_from_before_the_failing_step(engine, batch_size, lr, what):
    results = {}
    for name in (engine, "reference"):
        net, X, T = diverging(lr)
        opt = dp.SGD(lr=lr, momentum=0.5)
        with pytest.raises(dp.TrainingDivergedError, match=what) as info:
            net.fit(
                X, T, optimizer=opt, epochs=50, batch_size=batch_size, shuffle=False, engine=name
            )
        results[name] = (str(info.value), net, opt)
    (msg_fast, fast, opt_fast), (msg_ref, ref, opt_ref) = results[engine], results["reference"]
    assert msg_fast == msg_ref
    assert all(np.isfinite(p).all() for p in fast.parameters())
    assert_same(fast, ref, 0, 0)
    assert_same_state(opt_fast, opt_ref, 0, 0)


def saturating_hidden_layer() -> tuple[dp.Network, np.ndarray]:
    """1-1-1, sigmoid hidden unit, identity output, w1 = 1e-300, b1 = 1, w2 = 1e10, b2 = 0.
    Example 0 (x = 1e300): a1 = 2, h'(a1) ≈ 0.105, o ≈ 8.8e9, δ_out ≈ -8.8e9,
    δ_h ≈ 0.105 · 1e10 · -8.8e9 ≈ -9.2e18, Δw1 = lr · δ_h · x = -inf (lr = 1e-3).
    Example 1 (x = 1e-300) then sees a1 = -inf, z = σ(-inf) = 0 and a finite loss: the
    sigmoid hides the broken weight from everything after it."""
    net = dp.Network([1, 1, 1], activation="sigmoid", output_activation="identity", seed=0)
    net.layers[0].W[...], net.layers[0].b[...] = 1e-300, 1.0
    net.layers[1].W[...], net.layers[1].b[...] = 1e10, 0.0
    return net, np.array([[1e300], [1e-300], [1e-300]])


def overflow_at_the_last_example() -> tuple[dp.Network, np.ndarray]:
    """1-1 identity, w = 1e-200, b = 0, lr = 1: examples 0 and 1 (x = 1e-300) move only b
    (to 0.5); example 2 (x = 1e300) has o ≈ 1e100, a finite loss ≈ 5e199, and
    Δw = δ · x ≈ -1e100 · 1e300 = -inf, in the epoch's last step."""
    net = dp.Network([1, 1], activation="identity", seed=0)
    net.layers[0].W[...], net.layers[0].b[...] = 1e-200, 0.0
    return net, np.array([[1e-300], [1e-300], [1e300]])


@pytest.mark.parametrize("engine", ["online", "batch"])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
@pytest.mark.parametrize(
    "case, lr, where",
    [(saturating_hidden_layer, 1e-3, "batch 0"), (overflow_at_the_last_example, 1.0, "batch 2")],
)
def test_a_weight_made_infinite_is_caught_behind_a_saturated_unit_and_at_an_epochs_end(
    engine, momentum, case, lr, where
):
    results = {}
    for name in (engine, "reference"):
        net, X = case()
        opt = dp.SGD(lr=lr, momentum=momentum)
        with pytest.raises(dp.TrainingDivergedError, match="a weight became") as info:
            net.fit(X, np.full((3, 1), 0.5), optimizer=opt, epochs=3, batch_size=1,
                    shuffle=False, engine=name)  # fmt: skip
        results[name] = (str(info.value), net, opt)
    (msg_fast, fast, opt_fast), (msg_ref, ref, opt_ref) = results[engine], results["reference"]
    assert where in msg_ref and msg_fast == msg_ref
    assert_same(fast, ref, 0, 0)
    assert_same_state(opt_fast, opt_ref, 0, 0)


@pytest.mark.parametrize("engine", ["online", "batch"])
def test_a_weight_made_infinite_mid_epoch_in_a_later_shuffled_fit_keeps_the_weights_before_it(
    engine,
):
    """1-2-1 identity, W0 = 1e-200, W1 = 1: the example x = 1e300 gives a_h = 1e100 and
    o ≈ 2e100, a finite loss, but δ_h ≈ -2e100 and Δw0 = lr·δ_h·x = -inf. A first fit on the
    small examples gives the optimizer steps and momentum; in the second, shuffled, the big
    example comes fifth. The online kernel updates in place and finds the weights from before
    the failing step by training the epoch's first four examples again: they must be the
    reference's to the bit, momentum included."""
    results = {}
    for name in (engine, "reference"):
        net = dp.Network([1, 2, 1], activation="identity", seed=0)
        net.layers[0].W[...], net.layers[0].b[...] = 1e-200, 0.0
        net.layers[1].W[...], net.layers[1].b[...] = 1.0, 0.0
        X = np.full((6, 1), 1e-300)
        X[4] = 1e300
        opt = dp.SGD(lr=0.1, momentum=0.5)
        net.fit(X[:4], np.full((4, 1), 0.5), optimizer=opt, epochs=2, batch_size=1, engine=name)
        with pytest.raises(dp.TrainingDivergedError, match="a weight became") as info:
            net.fit(X, np.full((6, 1), 0.5), optimizer=opt, epochs=3, batch_size=1, engine=name)
        results[name] = (str(info.value), net, opt)
    (msg_fast, fast, opt_fast), (msg_ref, ref, opt_ref) = results[engine], results["reference"]
    assert "epoch 1, batch 4" in msg_ref and msg_fast == msg_ref
    assert opt_ref.steps == 8 + 5
    assert_same(fast, ref, 0, 0)
    assert_same_state(opt_fast, opt_ref, 0, 0)


@pytest.mark.parametrize("engine", ["online", "batch", "reference"])
def test_finite_weights_whose_sum_overflows_are_not_a_divergence(engine):
    # a = 1.7e308 + 1.7e308 = inf, σ(a) = 1 and δ = 0: nothing diverges, though a sum of the
    # weights overflows (the reference engine's cheap check used to say it did).
    net = dp.Network([2, 1], activation="sigmoid", seed=0)
    net.layers[0].W[...] = 1.7e308
    before = [p.copy() for p in net.parameters()]
    opt = dp.SGD(lr=0.5)
    net.fit(np.ones((3, 2)), np.full((3, 1), 0.5), optimizer=opt, epochs=2, batch_size=1,
            shuffle=False, engine=engine)  # fmt: skip
    assert opt.steps == 6
    for p, q in zip(net.parameters(), before):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("engine", ["online", "batch"])
def test_weights_that_come_in_infinite_fail_at_the_first_step_as_in_the_reference(engine):
    results = {}
    for name in (engine, "reference"):
        net = dp.Network([2, 1], activation="sigmoid", seed=0)
        net.layers[0].W[0, 0] = np.inf
        opt = dp.SGD(lr=0.5, momentum=0.5)
        with pytest.raises(dp.TrainingDivergedError, match="batch 0: a weight became") as info:
            net.fit(np.ones((3, 2)), np.full((3, 1), 0.5), optimizer=opt, epochs=2,
                    batch_size=1, shuffle=False, engine=name)  # fmt: skip
        results[name] = (str(info.value), net, opt)
    (msg_fast, fast, opt_fast), (msg_ref, ref, opt_ref) = results[engine], results["reference"]
    assert msg_fast == msg_ref
    assert_same(fast, ref, 0, 0)
    assert_same_state(opt_fast, opt_ref, 0, 0)


# ------------------------------------------------------------------ choosing an engine
def test_auto_picks_online_for_single_examples_with_sgd_and_batch_otherwise():
    net = dp.Network([2, 3, 1], seed=0)
    sgd = dp.SGD(lr=0.1)

    class Watch(dp.Callback):
        def on_batch_end(self, net, epoch, batch, loss):
            pass

    class Epochs(dp.Callback):
        def on_epoch_end(self, net, epoch, logs):
            pass

    choose = fastpath.choose_engine
    assert choose(net, sgd, 1, [], "auto") == "online"
    assert choose(net, sgd, 1, [Epochs(), dp.EarlyStopping()], "auto") == "online"
    assert choose(net, sgd, 1, [Watch()], "auto") == "batch"
    assert choose(net, dp.Adam(), 1, [], "auto") == "batch"
    assert choose(net, sgd, 2, [], "auto") == "batch"
    assert choose(net, sgd, 1, [], "reference") == "reference"

    class MySGD(dp.SGD):
        pass

    assert choose(net, MySGD(lr=0.1), 1, [], "auto") == "batch"
    net.layers[0].W = np.asfortranarray(np.ones((3, 2)))
    assert choose(net, sgd, 1, [], "auto") == "reference"


@pytest.mark.parametrize(
    "engine, kwargs, message",
    [
        ("online", {"optimizer": "adam", "batch_size": 1}, "SGD only, not Adam"),
        ("online", {"batch_size": 2}, "batch size 1"),
        ("fastest", {}, "engine must be one of"),
    ],
)
def test_an_engine_that_cannot_run_is_refused_before_any_change(engine, kwargs, message):
    net = dp.Network([2, 2, 1], seed=0)
    before = [p.copy() for p in net.parameters()]
    state = net.rng.bit_generator.state
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    with pytest.raises(ValueError, match=message):
        net.fit(X, [0, 1, 1, 0], engine=engine, validation_split=0.25, **kwargs)
    for p, q in zip(before, net.parameters()):
        np.testing.assert_array_equal(p, q)
    assert net.rng.bit_generator.state == state


def test_callbacks_watching_batches_see_every_example_and_the_updated_weights():
    X, T = problem("sigmoid", "mse", n=12)
    seen = []

    class Watch(dp.Callback):
        def on_batch_end(self, net, epoch, batch, loss):
            seen.append((epoch, batch, loss, net.layers[0].W.copy()))

    fast, ref = pair([4, 3, 3], "sigmoid", "sigmoid", "mse")
    fast.fit(X, T, optimizer=dp.SGD(lr=0.5), epochs=2, batch_size=1, callbacks=[Watch()])
    watched, seen[:] = list(seen), []
    ref.fit(
        X,
        T,
        optimizer=dp.SGD(lr=0.5),
        epochs=2,
        batch_size=1,
        callbacks=[Watch()],
        engine="reference",
    )
    assert [s[:2] for s in watched] == [s[:2] for s in seen] and len(seen) == 24
    for (_, _, la, wa), (_, _, lb, wb) in zip(watched, seen):
        assert la == pytest.approx(lb, rel=1e-12)
        np.testing.assert_allclose(wa, wb, rtol=1e-12)


def test_parameters_swapped_for_non_contiguous_ones_mid_training_fall_back_to_reference():
    X, T = problem("softmax", "cross_entropy", n=20)

    class Swap(dp.Callback):
        def on_epoch_end(self, net, epoch, logs):
            if epoch == 1:  # a Fortran-ordered copy: the fast engines cannot update it in place
                net.layers[0].W = np.asfortranarray(net.layers[0].W)

    fast, ref = pair([4, 5, 3], "tanh", "softmax", "cross_entropy")
    for net, engine in ((fast, "auto"), (ref, "reference")):
        net.fit(
            X,
            T,
            optimizer=dp.SGD(lr=0.1),
            epochs=3,
            batch_size=1,
            callbacks=[Swap()],
            engine=engine,
        )
    assert_same(fast, ref, RTOL64, ATOL64)


PENALIZED = [  # (the optimizer, whether the fused kernels run the fit)
    (lambda: dp.SGD(lr=0.1), True),
    (lambda: dp.SGD(lr=0.05, momentum=0.9), True),
    (lambda: dp.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01), True),
    (lambda: dp.Adam(lr=0.01), True),
    (lambda: dp.Adam(lr=0.01, amsgrad=True, weight_decay=0.01), True),
    (lambda: dp.AdamW(lr=0.02, weight_decay=0.1), True),
    (lambda: dp.AdamW(lr=0.02, weight_decay=0.5, decay_biases=False), True),  # sklearn adamw
    (lambda: dp.AdamW(lr=0.02, weight_decay=0.0, amsgrad=True), True),
    (lambda: dp.RMSprop(lr=0.01), False),
]
PENALIZED_IDS = [
    "sgd",
    "momentum",
    "nesterov-wd",
    "adam",
    "adam-ams-l2",
    "adamw",
    "adamw-weights-only",
    "adamw0-ams",
    "rmsprop",
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", ["mean", "sum"])
@pytest.mark.parametrize("make_opt, fused", PENALIZED, ids=PENALIZED_IDS)
def test_batch_engine_folds_the_networks_l2_penalty_into_its_kernels(make_opt, fused, scale, dtype):
    from deltaprop.train.engines.batch import BatchEngine, fusable

    X, T = problem("softmax", "cross_entropy", n=40, n_in=5, n_out=3)
    fast, ref = pair([5, 8, 6, 3], ["relu", "tanh"], "softmax", "cross_entropy", dtype)
    for net in (fast, ref):
        net.l2, net.penalty_scale = (0.5, 0.0, 0.25), scale
    tol = (RTOL64, ATOL64) if dtype == np.float64 else (RTOL32, ATOL32)
    opts = [make_opt() for _ in "ab"]
    assert fusable(opts[0]) is fused
    # 40 rows in batches of 16: the last batch (m = 8) is smaller, which "sum" divides by.
    h_fast = fast.fit(X, T, optimizer=opts[0], epochs=3, batch_size=16, engine="batch")
    h_ref = ref.fit(X, T, optimizer=opts[1], epochs=3, batch_size=16, engine="reference")
    assert_same(fast, ref, *tol)
    assert_same_state(opts[0], opts[1], *tol)
    np.testing.assert_allclose(h_fast.loss, h_ref.loss, rtol=tol[0])
    np.testing.assert_allclose(h_fast.penalty, h_ref.penalty, rtol=tol[0])
    assert all(p > 0 for p in h_fast.penalty)
    assert opts[0].steps == opts[1].steps == 9
    if fastpath.load_kernels() is not None:
        from deltaprop.train.engines.base import ArraySource, Workload

        work = Workload(fast, ArraySource(X, np.eye(3)[T]), opts[0], 16)
        assert BatchEngine(work).fused is fused
    # A fit going on from there (the state exists) stays on the same trajectory.
    fast.fit(X, T, optimizer=opts[0], epochs=1, batch_size=16, engine="batch")
    ref.fit(X, T, optimizer=opts[1], epochs=1, batch_size=16, engine="reference")
    assert_same(fast, ref, *tol)


def test_adamw_decay_biases_false_decays_the_weights_only():
    net = dp.Network([3, 4, 2], seed=0)
    params = net.parameters()
    before = [p.copy() for p in params]
    zero = [np.zeros_like(p) for p in params]
    dp.AdamW(lr=0.1, weight_decay=0.5, decay_biases=False).step(params, zero)
    for i, (p, b) in enumerate(zip(params, before)):
        np.testing.assert_array_equal(p, b * (1 - 0.1 * 0.5) if i % 2 == 0 else b)
    # Left out of config() at its default, so files written before it still match.
    assert "decay_biases" not in dp.AdamW().config()
    assert dp.AdamW(decay_biases=False).config()["decay_biases"] is False


# ------------------------------------------------------------------ the kernels' codes
def test_every_activation_loss_accuracy_rule_and_sgd_variant_has_a_kernel_code():
    """Adding an activation or loss to core's tables needs a code (and its formulas) in
    kernels.py too; this fails until it has one."""
    from deltaprop.core.activations import ACTIVATIONS
    from deltaprop.core.losses import ACCURACY_RULES, LOSSES
    from deltaprop.train.engines import kernels

    assert set(kernels.ACTIVATIONS) == set(ACTIVATIONS)
    assert set(kernels.LOSSES) == set(LOSSES)
    assert kernels.ACCURACY_RULES == (None, *ACCURACY_RULES)
    variants = {
        dp.SGD(momentum=m, nesterov=n).variant for m, n in [(0, False), (0.9, False), (0.9, True)]
    }
    assert variants == set(kernels.SGD_VARIANTS)
    names = {
        kernels.SIGMOID: "sigmoid",
        kernels.TANH: "tanh",
        kernels.RELU: "relu",
        kernels.LEAKY_RELU: "leaky_relu",
        kernels.ELU: "elu",
        kernels.SOFTPLUS: "softplus",
        kernels.IDENTITY: "identity",
        kernels.SOFTMAX: "softmax",
        kernels.EXP: "exp",
    }
    assert all(kernels.ACTIVATIONS[code] == name for code, name in names.items())
    losses = {kernels.MSE: "mse", kernels.CROSS_ENTROPY: "cross_entropy"}
    losses[kernels.BINARY_CROSS_ENTROPY] = "binary_cross_entropy"
    losses[kernels.POISSON] = "poisson"
    assert all(kernels.LOSSES[code] == name for code, name in losses.items())
    rules = {kernels.THRESHOLD: "threshold", kernels.ARGMAX: "argmax", kernels.NO_ACCURACY: None}
    assert all(kernels.ACCURACY_RULES[code] == rule for code, rule in rules.items())


def test_the_fused_kernels_read_the_optimizers_own_step_constants():
    """SGD's and Adam's per-step floats have one home, step_constants, which their step
    uses; the kernels' index names follow its order."""
    from deltaprop.train.engines import updates as kernels

    adam = dp.AdamW(lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.1)
    adam.steps = 3
    k = adam.step_constants()
    assert k[kernels.A_LR] == 0.01 and k[kernels.A_WD] == 0.1 and k[kernels.A_EPS] == 1e-7
    assert k[kernels.A_W] == 1.0 - 0.8 and k[kernels.A_1MW] == 1.0 - (1.0 - 0.8)
    assert k[kernels.A_B2] == 0.99 and k[kernels.A_1MB2] == 1.0 - 0.99
    assert k[kernels.A_BC2] == (1.0 - 0.99**3) ** 0.5
    assert k[kernels.A_STEP] == 0.01 / (1.0 - 0.8**3)
    assert k[kernels.A_DECAY] == 1.0 - 0.01 * 0.1
    assert dp.SGD(lr=0.2, momentum=0.5, dampening=0.25).step_constants() == (0.2, 0, 0.5, 0.75)


# ------------------------------------------------------------------ compiled per configuration
def _kernel_cases(kernels, rng):
    """(kernel, its constants, a maker of fresh arguments) for scikit-learn's defaults (relu,
    softmax cross-entropy with argmax accuracy, Adam) and one other setting of each."""
    a, b = rng.normal(size=(5, 7)), rng.normal(size=7)
    z, t = rng.uniform(0.1, 0.9, size=(5, 7)), np.eye(7)[rng.integers(0, 7, size=5)]
    p, g = rng.normal(size=12), rng.normal(size=12)
    m, v = rng.normal(size=12), rng.uniform(0.1, 1.0, size=12)
    # Adam's step constants (updates.A_LR ... A_DECAY), plausible values.
    hp = np.array([0.01, 0.1, 0.1, 0.9, 0.999, 0.001, 0.03, 1e-8, 0.1, 0.999])
    c = kernels.constants(np.float64)

    def layer():
        return a.copy(), b, np.empty((5, 7)), t, np.empty((5, 7)), np.empty(7), c

    def adam():
        return p.copy(), g.copy(), -0.5, m.copy(), v.copy(), v.copy(), hp, True, 0.1

    K = importlib.import_module("deltaprop.train.engines.batch_kernels")
    U = importlib.import_module("deltaprop.train.engines.updates")
    return [
        (K.bias_activate, (kernels.RELU,), lambda: (a.copy(), b, c)),
        (K.backward_hidden, (kernels.RELU,), lambda: (a.copy(), z, np.empty(7), c)),
        (K.output_batch, (kernels.CROSS_ENTROPY, kernels.SOFTMAX, kernels.ARGMAX), layer),
        (K.output_batch, (kernels.MSE, kernels.SIGMOID, kernels.THRESHOLD), layer),
        (U.adam_update, (False, False, False, True), adam),
        (U.adam_update, (True, True, True, False), adam),
    ]


def test_kernels_compiled_for_one_configuration_equal_their_general_form():
    """A process's first configuration runs kernels compiled for it alone, later ones the
    general form (compiling.Specialised); both must give the same numbers, bit for bit."""
    from deltaprop.train.engines import compiling, kernels

    for kernel, constants, make_args in _kernel_cases(kernels, np.random.default_rng(0)):
        fresh = compiling.Specialised(kernel.general, kernel.bind, kernel.n_constants, limit=1)
        one = fresh.specialise(*constants)
        assert fresh.specialise(*constants) is one and fresh.specialisations == 1
        x, y = make_args(), make_args()
        got, want = one(*x), kernel.general(*constants, *y)
        assert got == want
        for p, q in zip(x, y):
            np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize(
    "hidden, output, loss, settings",
    [
        ("sigmoid", "sigmoid", "mse", SGDS[0]),  # the seed's: one hidden activation, a constant
        (["tanh", "elu"], "softmax", "cross_entropy", SGDS[3]),  # read per layer at run time
    ],
)
def test_the_online_kernel_compiled_for_one_configuration_equals_its_general_form(
    hidden, output, loss, settings, monkeypatch
):
    from deltaprop.train.engines import compiling, loading

    online = loading.online_kernel()
    kernel = online.online_epoch
    X, T = problem(output, loss, n=30, n_in=4, n_out=3)
    trained = []
    for limit in (1, 0):
        fresh = compiling.Specialised(kernel.general, kernel.bind, kernel.n_constants, limit)
        monkeypatch.setattr(online, "online_epoch", fresh)
        net = dp.Network([4, 6, 5, 3], hidden, output_activation=output, loss=loss, seed=2)
        sgd = dp.SGD(**settings)
        history = net.fit(X, T, optimizer=sgd, epochs=2, batch_size=1, engine="online")
        assert fresh.specialisations == limit
        trained.append((history.loss, net.parameters()))
    (loss_one, params_one), (loss_general, params_general) = trained
    assert loss_one == loss_general
    for p, q in zip(params_one, params_general):
        np.testing.assert_array_equal(p, q)


def test_past_the_limit_a_kernel_runs_its_general_form():
    from deltaprop.train.engines import batch_kernels, compiling, kernels

    kernel = batch_kernels.bias_activate
    fresh = compiling.Specialised(kernel.general, kernel.bind, 1, limit=0)
    general = fresh.specialise(np.int64(kernels.RELU))
    assert general.func is kernel.general and general.args == (kernels.RELU,)
    assert type(general.args[0]) is int and fresh.specialise(kernels.RELU) is general


_WHAT_COMPILES = """
import json, sys
import numpy as np
from numba.core import event
import deltaprop as dp
from deltaprop.train.engines import batch_kernels as B, kernels as K

a, b, c = np.ones((3, 4)), np.ones(4), K.constants(np.float64)
o, t, delta, db = np.empty((3, 4)), np.eye(4)[:3], np.empty((3, 4)), np.empty(4)
calls = {
    "bias_activate": lambda: B.bias_activate(K.RELU, a.copy(), b, c),
    "backward_hidden": lambda: B.backward_hidden(K.RELU, a.copy(), a, db, c),
    "output_batch": lambda: B.output_batch(
        K.CROSS_ENTROPY, K.SOFTMAX, K.ARGMAX, a.copy(), b, o, t, delta, db, c
    ),
    # The seed's network: sigmoid units, squared error, plain SGD, batch size 1.
    "online_epoch": lambda: dp.Network([4, 3, 4], seed=0).fit(
        a, t, optimizer=dp.SGD(lr=0.1), epochs=1, batch_size=1, engine="online", verbose=False
    ),
}
compiled, counting = {}, set()
for name, call in calls.items():
    with event.install_recorder("numba:compile") as record:
        call()
    dispatchers = {e.data["dispatcher"] for _, e in record.buffer}
    compiled[name] = sorted({d.py_func.__name__ for d in dispatchers})
    # Compiled just now (the cache is empty), so their final LLVM IR is there to read.
    for d in dispatchers:
        if any("@NRT_incref" in cr.library.get_llvm_str() for cr in d.overloads.values()):
            counting.add(d.py_func.__name__)
print(json.dumps({"compiled": compiled, "counting references": sorted(counting)}))
"""


@pytest.fixture(scope="module")
def first_compilation(tmp_path_factory):
    """What each kernel compiles in a fresh process with an empty cache, as on a first fit,
    so that nothing is compiled already: {"compiled": {kernel: names of the functions
    compiled}, "counting references": names of those whose code counts references}."""
    env = {**os.environ, "DELTAPROP_SPECIALISATIONS": "1"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path_factory.mktemp("numba_cache"))
    run = subprocess.run(
        [sys.executable, "-c", _WHAT_COMPILES], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def first_compilations(first_compilation):
    return first_compilation["compiled"]


@pytest.mark.parametrize(
    "kernel, compiled",
    [
        ("bias_activate", {"bias_activate_as", "_relu"}),
        ("backward_hidden", {"backward_hidden_as", "_relu_slope"}),
        # softmax's row takes e^x (one function) and max over a pair (Numba's own).
        ("output_batch", {"output_batch_as", "_cross_entropy_row", "_exp_nonpositive64",
                          "_argmax_correct", "impl"}),
        # No other activation, loss or SGD variant; _forward_layer is compiled on its own for
        # its fast-math flags (reassociated sums); its accuracy rule (argmax) and e^x were
        # compiled by output_batch above; _all_finite, rarely run, is called at its two
        # calls rather than inlined.
        ("online_epoch", {"online_epoch_as", "_forward_layer", "_sigmoid", "_sigmoid_slope",
                          "_mse_row", "_unit_outputs",
                          "sgd_coordinate", "_all_finite"}),
    ],
)  # fmt: skip
def test_a_kernel_for_one_configuration_compiles_that_configurations_rules_alone(
    kernel, compiled, first_compilations
):
    """What a first fit compiles is what it costs (about 0.05-0.1 s per function here): the
    kernel specialised for relu compiles relu's rule and no other activation's, cross-entropy's
    output layer no other loss's row (compiling.by_code)."""
    assert set(first_compilations[kernel]) == compiled


def test_no_compiled_kernel_counts_array_references(first_compilation):
    """Compiled without Numba's runtime (compiling._without_reference_counts), no kernel
    increments a reference count: in the online epoch the counts of its array arguments and
    views took a fifth of the time. This fails if a Numba drops the option."""
    from deltaprop.train.engines import compiling

    assert compiling.OPTIONS.get("_nrt") is False
    assert first_compilation["counting references"] == []
