"""What fit and predict accept as inputs, and what they refuse, without needless copies."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.core.validation import check_inputs


@pytest.fixture
def net():
    return dp.Network([3, 4, 2], output_activation="softmax", loss="cross_entropy", seed=0)


def test_lists_and_integer_arrays_are_converted(net):
    X = [[1, 2, 3], [4, 5, 6]]
    np.testing.assert_array_equal(net.predict(X), net.predict(np.array(X, dtype=float)))
    np.testing.assert_array_equal(net.predict(np.array(X, dtype=np.int32)), net.predict(X))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_right_dtype_read_only_arrays_are_used_as_they_are(dtype):
    X = np.arange(12, dtype=dtype).reshape(4, 3)
    X.setflags(write=False)
    assert check_inputs(X, 3, np.dtype(dtype)) is X


def test_memory_mapped_npy_is_used_without_a_copy(tmp_path, net):
    path = tmp_path / "X.npy"
    rng = np.random.default_rng(0)
    np.save(path, rng.normal(size=(50, 3)))
    X = np.load(path, mmap_mode="r")
    checked = check_inputs(X, 3, np.dtype(np.float64))
    assert np.shares_memory(checked, X)  # a plain-array view of the mapped file, no copy
    y = rng.integers(0, 2, size=50)
    history = net.fit(X, y, epochs=2, batch_size=10)
    assert len(history) == 2 and not X.flags.writeable


def test_float32_network_converts_float64_input_once(net):
    net32 = dp.Network(
        [3, 4, 2], output_activation="softmax", loss="cross_entropy", seed=0, dtype=np.float32
    )
    X = np.ones((2, 3))
    converted = check_inputs(X, 3, np.dtype(np.float32))
    assert converted.dtype == np.float32
    assert net32.predict(X).dtype == np.float32


@pytest.mark.parametrize(
    "X, message",
    [
        (np.array([[1, None, 3]], dtype=object), "dtype object"),
        (np.array([[1 + 2j, 0, 0]]), "complex numbers are not supported"),
        (np.array([["1", "2", "3"]]), "real numbers"),
        (np.array([[True, False, True]]), None),  # booleans are numbers 0 and 1
        ([[1, 2], [3]], "could not be read as a numeric array"),
    ],
)
def test_non_numeric_inputs_are_refused_clearly(net, X, message):
    if message is None:
        assert net.predict(X).shape == (1, 2)
        return
    with pytest.raises(ValueError, match=message):
        net.predict(X)


def test_nan_is_located(net):
    X = np.zeros((3, 3))
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match="first at row 2, column 1"):
        net.predict(X)
    big = np.zeros((10_000, 3))
    big[9_999, 2] = np.inf  # past the first chunk of rows the check walks through
    with pytest.raises(ValueError, match="row 9999, column 2"):
        net.predict(big)
