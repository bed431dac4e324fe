"""Checks on user input that raise a ValueError naming what was wrong and what was expected.

Every check runs before any state changes, so a rejected call loses nothing.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np

Array = np.ndarray


def check_inputs(X: object, n_features: int, dtype: np.dtype, name: str = "X") -> Array:
    """Return X as a 2-D array of ``dtype`` with ``n_features`` columns, or raise ValueError.

    No copy is made when X already has the right dtype (a read-only or memory-mapped array
    stays as it is).
    """
    if isinstance(X, np.ndarray):
        arr = X
    else:
        try:
            arr = np.asarray(X)
        except (TypeError, ValueError) as exc:  # ragged lists and the like
            raise ValueError(f"{name} could not be read as a numeric array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must hold real numbers; received an array of dtype {arr.dtype}"
            + (" (complex numbers are not supported)" if arr.dtype.kind == "c" else "")
        )
    if arr.ndim != 2:
        hint = f" For a single example use {name}.reshape(1, -1)." if arr.ndim == 1 else ""
        raise ValueError(
            f"{name} must be 2-D, (n_examples, {n_features}). "
            f"Received: {arr.ndim}-D array of shape {arr.shape}.{hint}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 rows); expected at least one example")
    if arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} columns but the network has {n_features} inputs. "
            f"Expected shape (n_examples, {n_features}). Received: shape {arr.shape}"
        )
    with np.errstate(over="ignore"):  # an overflow is reported below, by value
        cast = np.asarray(arr, dtype=dtype)
    if not _all_finite(cast):
        r, c = np.argwhere(~np.isfinite(cast))[0]
        if np.isfinite(arr[r, c]):
            raise ValueError(
                f"{name} holds {arr[r, c].item()!r} at row {r}, column {c}: "
                f"{too_large(np.dtype(dtype))}; scale the inputs or use dtype='float64'"
            )
        raise ValueError(
            f"{name} contains NaN or inf (first at row {r}, column {c}: "
            f"{arr[r, c]}); expected finite numbers"
        )
    return cast


def too_large(dtype: np.dtype) -> str:
    """ "too large for float32 (at most ±3.4e+38)": why a finite number became inf."""
    return f"too large for {dtype.name} (at most ±{float(np.finfo(dtype).max):.3g})"


def check_in_dtype(original: object, cast: Array, name: str) -> None:
    """ValueError naming the value if finite numbers became inf in ``cast``'s dtype (the
    targets 1e39 of a float32 network); ``original`` is what was given before the cast."""
    if _all_finite(cast):
        return
    where = tuple(int(i) for i in np.argwhere(~np.isfinite(cast))[0])
    given = np.asarray(original)
    value = given.reshape(cast.shape)[where].item() if given.size == cast.size else "a value"
    raise ValueError(
        f"{name} holds {value!r} at index {where}: {too_large(cast.dtype)}; scale the "
        "targets or use dtype='float64'"
    )


def _all_finite(arr: Array, rows_per_chunk: int = 4096) -> bool:
    """np.isfinite(arr).all() in row chunks: a mask the size of a 60,000 × 784 data set would
    cost 47 MB just to say yes."""
    return all(
        np.isfinite(arr[start : start + rows_per_chunk]).all()
        for start in range(0, arr.shape[0], rows_per_chunk)
    )


def check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def check_fraction(value: object, name: str, *, open_low: bool = True) -> float:
    """A float in (0, 1) (or [0, 1) when ``open_low`` is False)."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (0 < value < 1 if open_low else 0 <= value < 1)
    if not ok:
        interval = "(0, 1)" if open_low else "[0, 1)"
        raise ValueError(f"{name} must be a number in {interval}. Received: {name}={value!r}")
    return float(value)


def check_real(
    owner: str,
    name: str,
    value: Any,
    low: float,
    high: float = math.inf,
    high_open: bool = False,
    *,
    low_open: bool = False,
) -> float:
    """float(value) if it is a finite real in the range, else a ValueError naming it."""
    ok = isinstance(value, (int, float, np.integer, np.floating))
    ok = ok and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)
    ok = ok and (low < value if low_open else low <= value)
    ok = ok and (value < high if high_open else value <= high)
    if not ok:
        if high == math.inf:
            expected = "" if low == -math.inf else f" {'>' if low_open else '>='} {low:g}"
        else:
            lo, hi = "(" if low_open else "[", ")" if high_open else "]"
            expected = f" in {lo}{low:g}, {high:g}{hi}"
        raise ValueError(
            f"{owner}: {name} must be a finite number{expected}. Received: {name}={value!r}"
        )
    return float(value)


def plain_scalar(value: Any) -> Any:
    """A 0-d array (what np.load returns for a saved scalar) as a Python scalar."""
    return value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value
