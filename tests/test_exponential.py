"""The kernels' exponential (train/engines/exponential.py) against NumPy's, ulp by ulp."""

from __future__ import annotations

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from deltaprop.train.engines.exponential import exp_nonpositive  # noqa: E402


@numba.njit
def _exp_each(x, out):
    for i in range(x.shape[0]):
        out[i] = exp_nonpositive(x[i])


def _arguments(dtype) -> np.ndarray:
    rng = np.random.default_rng(0)
    boundaries = -(np.arange(0, 1075) + 0.5) * np.log(2.0)
    spread = np.concatenate(
        [
            -rng.exponential(3.0, 200_000),  # where sigmoids live
            -rng.uniform(0.0, 800.0, 50_000),  # down to underflow, through the subnormals
            -np.ldexp(1.0, -np.arange(1, 60)),  # tiny arguments, e^x ≈ 1 + x
            # n = round(x / ln 2) changes at odd multiples of ln 2 / 2: both sides of each
            np.nextafter(boundaries, 0.0),
            np.nextafter(boundaries, -np.inf),
        ]
    )
    edges = [0.0, -0.0, -1e-300, -5e-324, -87.3, -88.8, -103.9, -708.3, -708.5, -744.4, -745.1]
    return np.concatenate([spread, edges]).astype(dtype)


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    tiny = np.finfo(want.dtype).smallest_subnormal
    return np.abs(got - want) / np.spacing(np.maximum(want, tiny))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_kernels_exponential_is_within_one_ulp_of_numpys(dtype):
    x = _arguments(dtype)
    got = np.empty_like(x)
    _exp_each(x, got)
    # float32 is computed in float64 and rounded once: against exp in float64, rounded.
    want = np.exp(x.astype(np.float64)).astype(dtype)
    assert got.dtype == dtype
    assert _ulps(got, want).max() <= 1.0
    assert (got[x == 0] == 1).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_kernels_exponential_of_nan_inf_and_the_underflow(dtype):
    x = np.array([np.nan, -np.inf, -746.0, -1e4, -7.45e2], dtype=dtype)
    got = np.empty_like(x)
    _exp_each(x, got)
    assert np.isnan(got[0])
    assert (got[1:4] == 0).all()
    assert got[4] == np.exp(x[4].astype(np.float64)).astype(dtype)  # 5e-324 or 0, as NumPy's


def test_outside_compiled_code_it_is_numpys_exp():
    x = np.array([-1.5, 0.0, -800.0])
    np.testing.assert_array_equal(exp_nonpositive(x), np.exp(x))
