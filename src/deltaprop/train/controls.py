"""fit's training controls, checked: class weights as sample weights, gradient clipping.

Per-example weights v make each batch's loss and gradient the weighted mean Σ v_i E_i / Σ v_i
(scikit-learn's meaning; Keras divides Σ v_i E_i by the batch size instead). ``class_weight``
is exactly the sample weights that give every example its class's weight.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np

from deltaprop.train.engines.base import Clipping

Array = np.ndarray


def class_labels(T: Array, loss_name: str) -> Array:
    """Each example's class: the 0/1 target of a single output, the index of the 1 in a
    one-hot row; ValueError for targets that are not classes (regression values,
    distributions, several labels per example)."""
    if T.shape[1] == 1:
        if not np.all((T == 0) | (T == 1)):
            raise ValueError(
                "class_weight needs class targets: 0/1 for a single output, one-hot rows or "
                "labels for several. These targets are not 0/1"
            )
        return T[:, 0].astype(np.int64)
    if loss_name == "binary_cross_entropy":
        raise ValueError(
            "class_weight needs one class per example; binary cross-entropy over several "
            "outputs gives each example several labels. Pass sample_weight instead"
        )
    if not (np.all((T == 0) | (T == 1)) and np.all(T.sum(axis=1) == 1)):
        raise ValueError(
            "class_weight needs class targets (labels or one-hot rows); these rows are not one-hot"
        )
    return T.argmax(axis=1)


def class_sample_weight(class_weight: object, T: Array, loss_name: str) -> Array:
    """The per-example weights of ``class_weight``: a dict {class: weight} (a class missing
    from it weighs 1, as in Keras and scikit-learn) or "balanced", n / (k · count_c) with k
    the classes present (scikit-learn's compute_class_weight)."""
    labels = class_labels(T, loss_name)
    present, counts = np.unique(labels, return_counts=True)
    if isinstance(class_weight, str) and class_weight == "balanced":
        table = dict(zip(present.tolist(), (len(labels) / (len(present) * counts)).tolist()))
    elif isinstance(class_weight, Mapping):
        table = {}
        for key, value in class_weight.items():
            if isinstance(key, bool) or not isinstance(key, Integral):
                raise ValueError(
                    f"class_weight keys are class indices (0, 1, ...). Received: key {key!r}"
                )
            if int(key) not in present:
                raise ValueError(
                    f"class_weight has class {key!r}, which the targets lack; they have "
                    f"classes {present.tolist()}"
                )
            ok = isinstance(value, Real) and not isinstance(value, bool)
            if not (ok and np.isfinite(value) and value >= 0):
                raise ValueError(
                    f"class_weight values must be finite numbers >= 0. "
                    f"Received: class {key!r} weighs {value!r}"
                )
            table[int(key)] = float(value)
    else:
        raise ValueError(
            "class_weight must be a dict {class: weight} or 'balanced'. "
            f"Received: class_weight={class_weight!r}"
        )
    weights = np.array([table.get(c, 1.0) for c in range(int(labels.max()) + 1)])[labels]
    if not np.any(weights > 0):
        raise ValueError("class_weight gives every example weight 0; some must count")
    return weights


def _clip_bound(value: object, name: str) -> float | None:
    if value is None:
        return None
    ok = isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value)
    if not (ok and value > 0):
        raise ValueError(f"{name} must be a finite number > 0 or None. Received: {name}={value!r}")
    return float(value)


def clipping_from(clip_norm: object, clip_value: object) -> Clipping | None:
    """fit's clip_norm and clip_value checked, as a Clipping (None for neither)."""
    norm, value = _clip_bound(clip_norm, "clip_norm"), _clip_bound(clip_value, "clip_value")
    return None if norm is None and value is None else Clipping(norm, value)
