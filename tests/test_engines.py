"""How the fast engines meet their environment: a cheap ``import deltaprop``, training without
Numba, and Numba without a writable cache. (Their numbers: tests/test_kernels.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.train.engines import choose as fastpath


def test_import_deltaprop_loads_none_of_the_heavy_modules():
    # Which modules an import pulls in is a deterministic proxy for its cost.
    code = "import sys, json, deltaprop; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    top = {name.split(".")[0] for name in loaded}
    assert "deltaprop" in top and "numpy" in top
    assert not top & {"numba", "llvmlite", "matplotlib", "sklearn", "torch", "scipy"}, top
    assert not loaded & {"deltaprop.train.engines.kernels", "deltaprop.train.engines.online_kernel"}


@pytest.fixture
def without_numba(monkeypatch):
    """Make ``import numba`` fail as it does where Numba is not installed."""
    monkeypatch.setitem(sys.modules, "numba", None)
    monkeypatch.delitem(sys.modules, "deltaprop.train.engines.kernels", raising=False)
    monkeypatch.setattr(fastpath, "_kernels", None)


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

    @kernels._jit()
    def twice(x):
        return 2 * x

    assert twice(21) == 42


def test_small_fits_skip_loading_the_kernels(monkeypatch):
    from deltaprop.train.engines import choose as fastpath

    monkeypatch.setattr(fastpath, "_kernels", None)  # as in a fresh process
    net = dp.Network([64, 64, 10], output_activation="softmax", loss="cross_entropy", seed=0)
    # The CLI's digits default (1,294 examples, 30 epochs, batch 32): cheaper on NumPy alone.
    assert fastpath.engine_for_size(net, 1294, 30, 32) == "reference"
    # Online learning saves ~60 µs a step: worth loading the kernels for 40,000 steps.
    assert fastpath.engine_for_size(net, 1294, 30, 1) == "auto"
    big = dp.Network([784, 256, 128, 10], output_activation="softmax", loss="cross_entropy")
    assert fastpath.engine_for_size(big, 60_000, 3, 128) == "auto"
    monkeypatch.setattr(fastpath, "_kernels", object())  # already loaded: always use them
    assert fastpath.engine_for_size(net, 10, 1, 32) == "auto"


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
