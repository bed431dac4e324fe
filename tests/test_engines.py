"""How the fast engines meet their environment: a cheap ``import deltaprop``, training without
Numba, and Numba without a writable cache; and the interface every engine offers (a Workload
in, EpochResults out, step observers on the reference engine). (Their numbers:
tests/test_kernels.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.core.losses import accuracy_rule
from deltaprop.train.engines import choose as fastpath
from deltaprop.train.engines import loading
from deltaprop.train.engines.base import ArraySource, EpochResult, Step, Workload
from deltaprop.train.engines.reference import ReferenceEngine


def test_import_deltaprop_loads_none_of_the_heavy_modules():
    # Which modules an import pulls in is a deterministic proxy for its cost.
    code = "import sys, json, deltaprop; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    top = {name.split(".")[0] for name in loaded}
    assert "deltaprop" in top and "numpy" in top
    assert not top & {"numba", "llvmlite", "matplotlib", "sklearn", "torch", "scipy"}, top
    compiled = ("kernels", "batch_kernels", "updates", "online_kernel", "exponential")
    compiled += ("compiling",)
    kernels = {f"deltaprop.train.engines.{m}" for m in compiled}
    assert not loaded & kernels


@pytest.fixture
def without_numba(monkeypatch):
    """Make ``import numba`` fail as it does where Numba is not installed."""
    monkeypatch.setitem(sys.modules, "numba", None)
    for name in ("kernels", "batch_kernels", "updates", "exponential", "compiling"):
        monkeypatch.delitem(sys.modules, f"deltaprop.train.engines.{name}", raising=False)
    monkeypatch.setattr(loading, "_kernels", None)


def xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    return X, np.array([[0.0], [1.0], [1.0], [0.0]])


def test_without_numba_training_runs_on_numpy_after_a_one_line_warning(without_numba):
    X, T = xor()
    net = dp.Network([2, 4, 1], seed=0)
    ref = net.copy()
    with pytest.warns(RuntimeWarning, match="Numba is unavailable") as caught:
        net.fit(X, T, optimizer=dp.SGD(lr=2.0), epochs=50, batch_size=1)
    (warning,) = [w for w in caught if "Numba" in str(w.message)]
    assert "\n" not in str(warning.message) and "NumPy path" in str(warning.message)
    ref.fit(X, T, optimizer=dp.SGD(lr=2.0), epochs=50, batch_size=1, engine="reference")
    for p, q in zip(net.parameters(), ref.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-12)
    # Warned once: later fits stay quiet.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.fit(X, T, optimizer=dp.SGD(lr=2.0), epochs=1, batch_size=1)
    with pytest.raises(ValueError, match="Numba is not available"):
        net.fit(X, T, epochs=1, batch_size=1, engine="online")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "make_opt", [lambda: dp.Adam(lr=0.02, amsgrad=True), lambda: dp.SGD(lr=0.1, momentum=0.9)]
)
def test_batch_engine_on_numpy_alone_equals_reference(without_numba, make_opt, dtype):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), rng.integers(0, 3, size=30)
    net = dp.Network([3, 6, 3], "tanh", "softmax", "cross_entropy", seed=1, dtype=dtype)
    ref = net.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        h = net.fit(X, y, optimizer=make_opt(), epochs=3, batch_size=7, engine="batch")
    h_ref = ref.fit(X, y, optimizer=make_opt(), epochs=3, batch_size=7, engine="reference")
    for p, q in zip(net.parameters(), ref.parameters()):
        assert p.dtype == dtype
        np.testing.assert_array_equal(p, q)  # the same NumPy calls, the same numbers
    assert h.loss == h_ref.loss and h.accuracy == h_ref.accuracy


def test_kernels_compile_uncached_when_no_cache_can_be_written(monkeypatch):
    numba = pytest.importorskip("numba")
    from deltaprop.train.engines import kernels

    real_njit = numba.njit

    def njit_without_cache(*args, cache=False, **kwargs):
        if cache:  # what Numba says when neither the package nor the user cache is writable
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x'")
        return real_njit(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", njit_without_cache)

    @kernels.jit()
    def twice(x):
        return 2 * x

    assert twice(21) == 42


def test_lazy_names_and_submodules_resolve_from_a_fresh_import():
    code = (
        "import sys, deltaprop as dp\n"
        "assert 'deltaprop.data.datasets' not in sys.modules\n"
        "assert dp.datasets.Scaler and dp.load_dataset and dp.ModelFileError and dp.save\n"
        "try:\n    dp.no_such_name\nexcept AttributeError:\n    pass\n"
        "else:\n    raise SystemExit('no AttributeError')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ the engine interface
def workload(batch_size: int, seed: int = 0, dtype: type = np.float64) -> Workload:
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(13, 3)).astype(dtype), rng.integers(0, 3, size=13)
    net = dp.Network(
        [3, 5, 4, 3], ["tanh", "relu"], "softmax", "cross_entropy", seed=2, dtype=dtype
    )
    T = net.check_targets(y, 13)
    rule = accuracy_rule(net.loss_function.name, net.n_outputs)
    return Workload(net, ArraySource(X, T), dp.SGD(lr=0.1, momentum=0.9), batch_size, rule)


def test_step_observers_see_the_deltas_and_gradients_of_every_reference_step():
    work = workload(batch_size=4)
    twin = work.net.copy()  # follows the trained network, one step behind
    seen: list[Step] = []

    def observe(step: Step) -> None:
        fp = twin.forward(step.batch.X)
        deltas = twin.backward(fp, step.batch.T)
        assert step.loss == twin.loss_of(fp, step.batch.T)
        for mine, theirs in zip(step.deltas, deltas):
            np.testing.assert_array_equal(mine, theirs)
        for (dW, db), (tW, tb) in zip(step.gradients, twin.gradients_from(fp, deltas)):
            np.testing.assert_array_equal(dW, tW)
            np.testing.assert_array_equal(db, tb)
        for p, q in zip(twin.parameters(), work.net.parameters()):
            np.copyto(p, q)  # the observer runs after the update
        seen.append(step)

    engine = ReferenceEngine(work, step_observers=[observe])
    order = np.random.default_rng(1).permutation(13)
    result = engine.run_epoch(order)
    assert [s.index for s in seen] == [0, 1, 2, 3]  # 13 rows in batches of 4
    np.testing.assert_array_equal(seen[1].batch.X, work.source.X[order[4:8]])
    assert result.failed_batch is None and isinstance(result, EpochResult)
    # The rest of an epoch from its third batch on: observed as batches 2 and 3.
    seen.clear()
    engine.run_epoch(order, None, 2, result.loss_sum, result.correct)
    assert [s.index for s in seen] == [2, 3]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_online_engine_starts_every_layers_weights_and_activations_on_a_cache_line(dtype):
    # 3-5-4-3: no layer's 5·3+5, 4·5+4 or 3·4+3 weights, nor any layer's width, fills whole
    # 64-byte lines, so every layer after the first starts after padding.
    from deltaprop.train.engines.online import LINE, OnlineEngine

    work = workload(batch_size=1, dtype=dtype)
    engine = OnlineEngine(work)
    item = engine.params.itemsize
    for buffer in (engine.params, engine.mom, engine.z, engine.dl):
        assert buffer.ctypes.data % LINE == 0
    assert all(int(at) * item % LINE == 0 for at in (*engine.woff, *engine.zoff))
    assert list(engine.woff) == ([0, 24, 48] if item == 8 else [0, 32, 64])
    before = [p.copy() for p in work.net.parameters()]
    engine.run_epoch(None)
    # The weights went into the padded layout and came back to the network's arrays.
    assert all(not np.array_equal(p, q) for p, q in zip(work.net.parameters(), before))
    spans = [b - a for a, b in engine.spans]
    assert spans == [p.size for p in work.net.parameters()]
    padding = np.ones(engine.params.size, dtype=bool)
    for a, b in engine.spans:
        padding[a:b] = False
    assert padding.sum() > 0 and not engine.params[padding].any()


def test_the_chooser_sends_fits_with_step_observers_to_the_reference_engine():
    net, sgd = dp.Network([2, 3, 1], seed=0), dp.SGD(lr=0.1)
    observers = [lambda step: None]
    assert fastpath.choose_engine(net, sgd, 1, [], "auto", step_observers=observers) == "reference"
    for requested in ("online", "batch"):
        with pytest.raises(ValueError, match=f"engine='{requested}'.*step observers"):
            fastpath.choose_engine(net, sgd, 1, [], requested, step_observers=observers)
    engine = fastpath.make_engine("reference", workload(2), step_observers=observers)
    assert isinstance(engine, ReferenceEngine) and engine.step_observers == tuple(observers)


def test_checkpoints_within_epochs_keep_a_fit_off_the_online_engine():
    net, sgd = dp.Network([2, 3, 1], seed=0), dp.SGD(lr=0.1)
    assert fastpath.choose_engine(net, sgd, 1, [], "auto") == "online"
    assert fastpath.choose_engine(net, sgd, 1, [], "auto", batch_checkpoints=True) == "batch"
    with pytest.raises(ValueError, match="checkpoints within an epoch"):
        fastpath.choose_engine(net, sgd, 1, [], "online", batch_checkpoints=True)


@pytest.mark.parametrize("name, batch_size", [("online", 1), ("batch", 4), ("reference", 4)])
def test_every_engine_trains_a_workload_through_the_same_interface(name, batch_size):
    pytest.importorskip("numba")
    fast, ref = workload(batch_size), workload(batch_size)
    engine, reference = fastpath.make_engine(name, fast), ReferenceEngine(ref)
    assert engine.work is fast
    for epoch in range(2):
        order = np.random.default_rng(epoch).permutation(13)
        got, want = engine.run_epoch(order), reference.run_epoch(order)
        assert got.failed_batch is want.failed_batch is None
        assert got.loss_sum == pytest.approx(want.loss_sum, rel=1e-12)
        assert got.correct == want.correct
    for p, q in zip(fast.net.parameters(), ref.net.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)


def test_a_fast_engine_hands_over_to_the_reference_engine_when_its_arrays_are_swapped():
    pytest.importorskip("numba")
    work = workload(4)
    engine = fastpath.make_engine("batch", work)
    assert fastpath.engine_for_epoch(engine) is engine
    work.net.layers[1].W = np.asfortranarray(work.net.layers[1].W)
    fallback = fastpath.engine_for_epoch(engine)
    assert isinstance(fallback, ReferenceEngine) and fallback.work is work
    assert fastpath.engine_for_epoch(fallback) is fallback
