"""What the estimators check and convert before training: sample weights, X's dtype (dense
or sparse), the batch size, the engine; and, after a fit on NumPy, what it forwent."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils.validation import _check_sample_weight

from deltaprop.core.network import is_sparse
from deltaprop.model import Network
from deltaprop.optim.base import Optimizer
from deltaprop.train.engines.choose import engine_for_size, forgo_kernels


def batch_size_for(batch_size: int | str, n_samples: int) -> int:
    """scikit-learn's rows per batch: "auto" is min(200, n_samples); more than n_samples is
    clipped, with a warning."""
    if batch_size == "auto":
        return min(200, n_samples)
    if batch_size > n_samples:
        warnings.warn(
            "Got `batch_size` less than 1 or larger than sample size. It is going to be "
            f"clipped. Received: batch_size={batch_size!r} for {n_samples} samples",
            stacklevel=3,
        )
    return min(int(batch_size), n_samples)


def engine_for(net: Network, opt: Optimizer, X: object, epochs: int, batch_size: int) -> str:
    """The engine for a fit, by :func:`~deltaprop.train.engines.choose.engine_for_size`
    (sparse inputs go to the reference engine, which fit's chooser picks for them anyway)."""
    if is_sparse(X):
        return "reference"
    return engine_for_size(net, opt, X.shape[0], epochs, batch_size)  # type: ignore[attr-defined]


def report_numpy_fit(
    net: Network, opt: Optimizer, X: object, engine: str, epochs_run: int, batch_size: int
) -> None:
    """Tell the chooser the epochs a fit that :func:`engine_for` sent to NumPy because of its
    size ran, so that a process's small fits together load the kernels once they would have
    repaid it (:func:`~deltaprop.train.engines.choose.forgo_kernels`)."""
    if engine == "reference" and not is_sparse(X):
        forgo_kernels(net, opt, X.shape[0], epochs_run, batch_size)  # type: ignore[attr-defined]


def as_dtype(X: object, dtype: np.dtype) -> object:
    """X (checked by scikit-learn's validate_data) in ``dtype``: a dense array, or sparse X as
    CSR, whose rows batches slice. Never densifies."""
    if is_sparse(X):
        return X.tocsr().astype(dtype, copy=False)  # type: ignore[attr-defined]
    return np.asarray(X, dtype=dtype)


def checked_weights(sample_weight: object, X: object) -> np.ndarray | None:
    """scikit-learn's checks of ``sample_weight`` against X's length, before anything else
    is checked or changed: a ValueError names a wrong length, NaN, negative or all-zero
    weights (scikit-learn's MLP accepts negative weights; deltaprop refuses them)."""
    if sample_weight is None:
        return None
    return _check_sample_weight(sample_weight, X, ensure_non_negative=True)
