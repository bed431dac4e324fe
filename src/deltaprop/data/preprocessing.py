"""Preparing data for training: a seeded (stratified) split, per-column scaling, one-hot rows.

Also available from :mod:`deltaprop.data.datasets`. The fitted scaling is plain JSON
(:meth:`Scaler.to_dict`), so a model file can carry it and prediction reuses it exactly.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from deltaprop.core.validation import check_fraction
from deltaprop.resources import check_fits

if TYPE_CHECKING:
    from deltaprop.data.datasets import Dataset


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return type(value).__name__


def train_test_split(ds: Dataset, test_size: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """A seeded split into (train, test), rows kept in their original order.

    Classification is stratified: each class goes to the test set in proportion (by largest
    remainders, so the total is round(test_size · n)), but always keeps an example in train.
    """
    test_size = check_fraction(test_size, "test_size")
    n = len(ds)
    if n < 2:
        raise ValueError(f"splitting needs at least 2 examples. Received: {n} in {ds.name}")
    n_test = min(max(round(test_size * n), 1), n - 1)
    rng = np.random.default_rng(seed)
    if ds.task == "classification" and ds.y is not None:
        counts = np.bincount(ds.y, minlength=ds.n_classes or 0)
        quota = counts * n_test / n
        take = np.floor(quota).astype(np.int64)
        by_remainder = np.argsort(-(quota - take), kind="stable")
        take[by_remainder[: n_test - int(take.sum())]] += 1
        take = np.minimum(take, np.maximum(counts - 1, 0))
        test = np.concatenate(
            [rng.permutation(np.flatnonzero(ds.y == c))[:k] for c, k in enumerate(take)]
        )
        if len(test) == 0:
            raise ValueError(f"{ds.name}: every class has a single example; nothing to test on")
    else:
        test = rng.permutation(n)[:n_test]
    is_test = np.zeros(n, dtype=bool)
    is_test[test] = True
    return ds.subset(np.flatnonzero(~is_test)), ds.subset(np.flatnonzero(is_test))


class Scaler:
    """Per-column scaling fitted on training data: (X - offset) / scale.

    "auto" (the default): a column whose training values all lie in [0, 1] (pixels, shares,
    indicators, one-hot columns) is left as it is; any other column is standardised, with
    the divisor floored at a tenth of the column's training range, so that no training value
    lands more than 10 from the mean however concentrated the column is;
    "standard": offset the mean, scale the standard deviation (population, as scikit-learn);
    "minmax": offset the minimum, scale max - min, mapping the training range to [0, 1];
    "none": unchanged. A constant column gets scale 1, so it maps to 0 instead of dividing
    by zero.

    Why "auto": plain standardisation divides a column that is almost always one value by a
    tiny deviation. MNIST's border pixels are 0 in nearly every training image, so a test
    image with ink there reaches the network as inputs in the hundreds (a test loss of 8.7
    where unscaled pixels give 0.53; the README's "Command line" shows the runs).
    """

    KINDS = ("auto", "standard", "minmax", "none")
    # "auto": a column's divisor is at least its training range over this.
    RANGE_FLOOR = 10.0

    def __init__(self, kind: str = "auto") -> None:
        if kind not in self.KINDS:
            raise ValueError(f"Scaler kind must be one of {self.KINDS}. Received: kind={kind!r}")
        self.kind = kind
        self.n_features: int | None = None
        self.offset: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, X: object) -> Scaler:
        X = self._check(X, fitting=True)
        self.n_features = X.shape[1]
        if self.kind == "none":
            self.offset = self.scale = None
            return self
        if self.kind == "auto":
            self.offset, self.scale = _auto_scaling(X, self.RANGE_FLOOR)
            return self
        if self.kind == "standard":
            offset, spread = X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64)
        else:
            offset = X.min(axis=0).astype(np.float64)
            spread = X.max(axis=0).astype(np.float64) - offset
        self.offset, self.scale = offset, np.where(spread > 0, spread, 1.0)
        return self

    def transform(self, X: object) -> np.ndarray:
        """Scaled X; float32 input stays float32, anything else becomes float64."""
        X = self._check(X)
        if self.kind == "none":
            return X
        return ((X - self.offset) / self.scale).astype(X.dtype, copy=False)

    def fit_transform(self, X: object) -> np.ndarray:
        return self.fit(X).transform(X)

    def inverse_transform(self, X: object) -> np.ndarray:
        """Undo :meth:`transform` (for example on predicted regression targets)."""
        X = self._check(X)
        if self.kind == "none":
            return X
        return (X * self.scale + self.offset).astype(X.dtype, copy=False)

    def _check(self, X: object, fitting: bool = False) -> np.ndarray:
        if not fitting and self.n_features is None:
            raise ValueError("this Scaler is not fitted yet; call fit(X_train) first")
        X = np.asarray(X)
        if X.dtype.kind not in "biuf" or X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(
                f"Scaler expects a non-empty 2-D array of real numbers. Received: {_describe(X)}"
            )
        if not fitting and X.shape[1] != self.n_features:
            raise ValueError(
                f"Scaler was fitted on {self.n_features} columns. Received: shape {X.shape}"
            )
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        if not np.isfinite(X).all():
            raise ValueError("Scaler input contains NaN or inf; expected finite numbers")
        return X

    def to_dict(self) -> dict:
        """Plain JSON data; floats survive JSON exactly, so a saved scaling is the same."""
        d: dict = {"kind": self.kind, "n_features": self.n_features}
        if self.offset is not None:
            d["offset"] = [float(v) for v in self.offset]
            d["scale"] = [float(v) for v in self.scale]
        return d

    @classmethod
    def from_dict(cls, d: object) -> Scaler:
        """The scaler :meth:`to_dict` described; ValueError naming the problem otherwise."""
        if not isinstance(d, dict) or d.get("kind") not in cls.KINDS:
            raise ValueError(f"a scaler dict needs 'kind' in {cls.KINDS}. Received: {str(d)[:200]}")
        allowed = {"kind", "n_features", "offset", "scale"}
        if set(d) - allowed:
            raise ValueError(
                f"unknown scaler keys {sorted(set(d) - allowed)}; expected {sorted(allowed)}"
            )
        scaler = cls(d["kind"])
        n = d.get("n_features")
        if n is None:
            if "offset" in d or "scale" in d:
                raise ValueError("an unfitted scaler (n_features None) has no offset or scale")
            return scaler
        if type(n) is not int or n < 1:
            raise ValueError(f"scaler n_features must be a positive integer. Received: {n!r}")
        scaler.n_features = n
        if scaler.kind == "none":
            if "offset" in d or "scale" in d:
                raise ValueError("a 'none' scaler has no offset or scale")
            return scaler
        vectors = []
        for key in ("offset", "scale"):
            v = d.get(key)
            ok = (
                isinstance(v, list)
                and len(v) == n
                and all(type(x) in (int, float) and math.isfinite(x) for x in v)
            )
            if not ok:
                raise ValueError(
                    f"scaler {key} must list {n} finite numbers. Received: {str(v)[:200]}"
                )
            vectors.append(np.array(v, dtype=np.float64))
        if not (vectors[1] > 0).all():
            raise ValueError(f"scaler scale values must be > 0. Received: {d['scale'][:10]}")
        scaler.offset, scaler.scale = vectors
        return scaler

    def __repr__(self) -> str:
        return f"Scaler({self.kind!r}, fitted={self.n_features is not None})"


def _auto_scaling(X: np.ndarray, range_floor: float) -> tuple[np.ndarray, np.ndarray]:
    """ "auto" offsets and divisors: [0, 1] columns kept, others standardised with a floor."""
    low = X.min(axis=0).astype(np.float64)
    high = X.max(axis=0).astype(np.float64)
    mean = X.mean(axis=0, dtype=np.float64)
    spread = np.maximum(X.std(axis=0, dtype=np.float64), (high - low) / range_floor)
    keep = (low >= 0) & (high <= 1)
    offset = np.where(keep, 0.0, mean)
    scale = np.where(keep | (spread <= 0), 1.0, spread)
    return offset, scale


def one_hot(labels: object, n_classes: int, dtype: object = np.float64) -> np.ndarray:
    """(n, n_classes) rows with a 1 in each label's column."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer. Received: {n_classes!r}")
    y = np.asarray(labels)
    if y.ndim != 1 or y.dtype.kind not in "iuf":
        raise ValueError(f"labels must be a 1-D array of integers. Received: {_describe(y)}")
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise ValueError("labels must be whole numbers. Received fractional values")
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        raise ValueError(f"labels must lie in [0, {n_classes - 1}]. Received: {y[bad][0]}")
    size = len(y) * n_classes * np.dtype(dtype).itemsize
    check_fits(size, f"one-hot targets of {len(y)} examples × {n_classes} classes")
    out = np.zeros((len(y), n_classes), dtype=dtype)
    out[np.arange(len(y)), y.astype(np.int64)] = 1
    return out


class Imputer:
    """Missing values (NaN) filled per column with a value fitted on training data.

    "mean" or "median" of the column's present training values; for the 0/1 columns of a
    one-hot category, "mean" fills a missing category with the categories' training
    frequencies and "median" with the usual 0 or 1. A column with no value at all in training
    is filled with 0. Like :class:`Scaler`, it is plain JSON (:meth:`to_dict`), so a model
    file carries it and prediction fills exactly as training did.
    """

    STRATEGIES = ("mean", "median")

    def __init__(self, strategy: str = "mean") -> None:
        if strategy not in self.STRATEGIES:
            raise ValueError(
                f"Imputer strategy must be one of {self.STRATEGIES}. Received: {strategy!r}"
            )
        self.strategy = strategy
        self.fill: np.ndarray | None = None

    def fit(self, X: object) -> Imputer:
        X = self._check(X, fitting=True)
        present = ~np.isnan(X)
        fill = np.zeros(X.shape[1])
        for j in np.flatnonzero(present.any(axis=0)):
            column = X[present[:, j], j]
            fill[j] = column.mean() if self.strategy == "mean" else np.median(column)
        self.fill = fill
        return self

    def transform(self, X: object) -> np.ndarray:
        """X with every NaN replaced by its column's fill value (a copy; X is unchanged)."""
        X = self._check(X)
        missing = np.isnan(X)
        if not missing.any():
            return X
        out = X.copy()
        out[missing] = np.broadcast_to(self.fill, X.shape)[missing]
        return out

    def fit_transform(self, X: object) -> np.ndarray:
        return self.fit(X).transform(X)

    def _check(self, X: object, fitting: bool = False) -> np.ndarray:
        if not fitting and self.fill is None:
            raise ValueError("this Imputer is not fitted yet; call fit(X_train) first")
        X = np.asarray(X)
        if X.dtype.kind not in "biuf" or X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(
                f"Imputer expects a non-empty 2-D array of real numbers. Received: {_describe(X)}"
            )
        if not fitting and X.shape[1] != len(self.fill):
            raise ValueError(
                f"Imputer was fitted on {len(self.fill)} columns. Received: shape {X.shape}"
            )
        X = X.astype(np.float64, copy=False)
        if np.isinf(X).any():
            raise ValueError("Imputer input contains inf; missing values are NaN")
        return X

    def to_dict(self) -> dict:
        if self.fill is None:
            return {"strategy": self.strategy, "fill": None}
        return {"strategy": self.strategy, "fill": [float(v) for v in self.fill]}

    @classmethod
    def from_dict(cls, d: object) -> Imputer:
        """The imputer :meth:`to_dict` described; ValueError naming the problem otherwise."""
        if not isinstance(d, dict) or set(d) != {"strategy", "fill"}:
            raise ValueError(
                f"an imputer dict has exactly the keys 'strategy' and 'fill'. "
                f"Received: {str(d)[:200]}"
            )
        imputer = cls(d["strategy"])
        fill = d["fill"]
        if fill is None:
            return imputer
        ok = (
            isinstance(fill, list)
            and len(fill) > 0
            and all(type(x) in (int, float) and math.isfinite(x) for x in fill)
        )
        if not ok:
            raise ValueError(f"imputer fill must list finite numbers. Received: {str(fill)[:200]}")
        imputer.fill = np.array(fill, dtype=np.float64)
        return imputer

    def __repr__(self) -> str:
        return f"Imputer({self.strategy!r}, fitted={self.fill is not None})"
