"""The estimator file: a fitted estimator saved without pickle.

``est.save(path)`` writes a deltaprop model file (safetensors tensors and one JSON document,
see README "Model files") of ``network_``, whose metadata carries what the estimator adds:

- the entries the command line reads, so that ``deltaprop info``, ``predict`` and
  ``evaluate`` take the file as any model: ``task`` ("classification" or "regression"),
  ``class_names`` (the classes as text; none for multilabel targets) and ``feature_names``;
- ``"sklearn"``: the estimator's class and constructor parameters, ``classes_`` with their
  dtype, ``n_features_in_``, ``feature_names_in_`` and the fitted attributes
  (``n_iter_``, ``t_``, ``loss_``, ``loss_curve_``, ...).

:func:`deltaprop.sklearn.load` (in ``_load``) rebuilds the estimator from it. Loading runs no
code from the file, as for every model file. The optimizer's state is not saved: a loaded
estimator predicts and scores as the saved one, and further training (``warm_start``,
``partial_fit``) starts a fresh optimizer.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

FORMAT = "deltaprop.sklearn"
FORMAT_VERSION = 1
# The fitted attributes a file stores, when the estimator has them ("lbfgs" has no curve).
FITTED = (
    "n_iter_",
    "t_",
    "loss_",
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "best_validation_score_",
    "n_layers_",
    "n_outputs_",
    "out_activation_",
)


def to_json(value: Any) -> Any:
    """``value`` as plain JSON that loads back equal: tuples as lists, NumPy scalars and
    arrays as Python values, non-finite floats as {"float": "nan" | "inf" | "-inf"}."""
    if isinstance(value, np.ndarray):
        return [to_json(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    return value


def from_json(value: Any) -> Any:
    """The inverse of :func:`to_json` (lists stay lists)."""
    if isinstance(value, dict):
        if set(value) == {"float"} and value["float"] in ("nan", "inf", "-inf"):
            return float(value["float"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


class EstimatorFile:
    """``save``, for the estimators (see the module docstring)."""

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted estimator to ``path`` (atomically; no pickle): a deltaprop model
        file that :func:`deltaprop.sklearn.load` reads back as this estimator, and
        ``deltaprop info``, ``predict`` and ``evaluate`` read as a model."""
        check_is_fitted(self)
        self.network_.save(path, metadata=self._file_metadata())  # type: ignore[attr-defined]

    def _file_metadata(self) -> dict:
        est: Any = self
        params = est.get_params(deep=False)
        if not isinstance(params.get("random_state"), (int, type(None))):
            params["random_state"] = None  # a RandomState instance has no JSON form
        entry: dict = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "estimator": type(est).__name__,
            "params": to_json(params),
            "n_features_in": int(est.n_features_in_),
            "feature_names_in": to_json(getattr(est, "feature_names_in_", None)),
            "fitted": {k: to_json(getattr(est, k)) for k in FITTED if hasattr(est, k)},
        }
        meta: dict = {"sklearn": entry}
        if hasattr(est, "classes_"):
            classes = np.asarray(est.classes_)
            entry["classes"] = to_json(classes)
            entry["classes_dtype"] = classes.dtype.str
            meta["task"] = "classification"
            if not (est.out_activation_ == "logistic" and est.n_outputs_ > 1):
                # Multilabel outputs are one probability per label, not one class: without
                # class names deltaprop predict writes them as they are.
                meta["class_names"] = [str(c) for c in classes.tolist()]
        else:
            meta["task"] = "regression"
        if entry["feature_names_in"] is not None:
            meta["feature_names"] = entry["feature_names_in"]
        return meta

    @classmethod
    def from_saved(cls, net: Any, entry: dict) -> Any:
        """The estimator that wrote ``entry`` (a file's "sklearn" metadata) with ``net`` (the
        file's network) as its ``network_``; what :func:`deltaprop.sklearn.load` returns.
        KeyError, TypeError or ValueError for an entry that does not describe one."""
        params = from_json(entry["params"])
        if isinstance(params.get("hidden_layer_sizes"), list):
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        est: Any = cls(**params)
        est._validate_params()
        if entry["n_features_in"] != net.n_inputs:
            raise ValueError(
                f"n_features_in is {entry['n_features_in']} but the network has {net.n_inputs} "
                "inputs"
            )
        est.network_ = net
        est.n_features_in_ = net.n_inputs
        if entry.get("feature_names_in") is not None:
            est.feature_names_in_ = np.asarray(entry["feature_names_in"], dtype=object)
        for name, value in from_json(entry["fitted"]).items():
            if name not in FITTED:
                raise ValueError(f"unknown fitted attribute {name!r}")
            setattr(est, name, value)
        if "classes" in entry:
            est.classes_ = np.asarray(entry["classes"], dtype=np.dtype(entry["classes_dtype"]))
        return est
