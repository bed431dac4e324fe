"""Pieces shared by the subcommands: option parsing, model inputs, label alignment."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Sequence

import numpy as np

from deltaprop.cli import UsageError
from deltaprop.data.datasets import Dataset, load_dataset
from deltaprop.data.preprocessing import Imputer, Scaler
from deltaprop.errors import DataError, ModelFileError
from deltaprop.io.atomic import write_atomically
from deltaprop.model import Network, load


def sizes(text: str) -> list[int]:
    """argparse type for '64,32': hidden layer widths."""
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 64,32; got {text!r}"
        ) from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"layer widths must be >= 1; got {text!r}")
    return values


def _bounded(convert: type, accept, expected: str):
    """An argparse type: ``convert`` the text, then require finite and ``accept(value)``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}") from None
        if not (np.isfinite(value) and accept(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
        return value

    return parse


positive_int = _bounded(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _bounded(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _bounded(float, lambda v: v > 0, "a finite number > 0")
non_negative_float = _bounded(float, lambda v: v >= 0, "a finite number >= 0")
fraction = _bounded(float, lambda v: 0 < v < 1, "a number in (0, 1)")


def fill_missing(net: Network, X: np.ndarray) -> np.ndarray:
    """Missing cells (NaN) filled as in training, for a model that records an imputer."""
    if net.metadata.get("imputer") is None:
        return X
    return Imputer.from_dict(net.metadata["imputer"]).transform(X)


def model_inputs(net: Network, X: np.ndarray) -> np.ndarray:
    """Raw feature rows as the network saw them in training: the saved scaling applied."""
    scaler_state = net.metadata.get("scaler")
    if scaler_state is None:
        return X
    return Scaler.from_dict(scaler_state).transform(X)


def model_task(net: Network) -> str:
    """What a model was trained for: its metadata says, else its output layer suggests."""
    if net.metadata.get("task"):
        return net.metadata["task"]
    regression = net.loss_function.name == "mse" and net.layers[-1].activation.name == "identity"
    return "regression" if regression else "classification"


def load_for_model(
    net: Network,
    data: str,
    *,
    target: str | None,
    labels: str | None,
    seed: int,
    delimiter: str | None = None,
) -> Dataset:
    """A data set read the way the model's training data was (its target column and task,
    its categorical columns, missing cells only where the model fills them)."""
    categorical = net.metadata.get("categorical")
    return load_dataset(
        data,
        target=target or net.metadata.get("target"),
        task=model_task(net),
        labels=labels,
        seed=seed,
        delimiter=delimiter,
        missing=missing_policy(net),
        categorical=list(categorical["categories"]) if categorical else None,
    )


def missing_policy(net: Network) -> str:
    """CSV missing cells are read (as NaN) only for a model that records how to fill them."""
    return "keep" if net.metadata.get("imputer") is not None else "error"


def r2(y: np.ndarray, outputs: np.ndarray) -> float:
    """R² as sklearn.metrics.r2_score computes it, averaged uniformly over the targets (what
    scikit-learn's MLPRegressor.score reports), not pooled over them."""
    from sklearn.metrics import r2_score

    return float(r2_score(y, outputs))


def align_labels(
    dataset: Dataset, model_class_names: Sequence[str] | None, option: str
) -> np.ndarray:
    """The dataset's labels renumbered to the model's classes, matched by class name."""
    if dataset.y is None:
        raise UsageError(f"{dataset.name} has no target column; {option} needs labelled data")
    if model_class_names is None or dataset.class_names is None:
        return dataset.y
    index = {name: i for i, name in enumerate(model_class_names)}
    present = set(np.unique(dataset.y).tolist())
    mapping = np.full(len(dataset.class_names), -1)
    for label, name in enumerate(dataset.class_names):
        if name in index:
            mapping[label] = index[name]
        elif label in present:
            raise DataError(
                f"{dataset.name}: class {name!r} is not one the model knows "
                f"({', '.join(model_class_names)})"
            )
    return mapping[dataset.y]


def model_outputs(net: Network, X: np.ndarray, source: object) -> np.ndarray:
    """``net.predict(X)``, refused with a ValueError (not NaN with overflow warnings) when a
    finite model's numbers overflow: weights such as 1e308 are finite, yet unusable."""
    with np.errstate(all="ignore"):
        outputs = net.predict(X)
    if not np.isfinite(outputs).all():
        largest = max(float(np.abs(p).max()) for p in net.parameters())
        raise ValueError(
            f"the model's outputs on {printable(source)} overflow to NaN or inf (its largest "
            f"weight is {largest:.3g} in magnitude): the weights are too large to compute with"
        )
    return outputs


def predicted_labels(outputs: np.ndarray) -> np.ndarray:
    """Class labels of output rows: the winning unit, or a single sigmoid output over 0.5."""
    if outputs.shape[1] == 1:
        return (outputs[:, 0] > 0.5).astype(np.int64)
    return outputs.argmax(axis=1)


def write_csv(rows: list[list[object]], header: list[str], path: str | None) -> None:
    """CSV to ``path``, or to stdout for None or '-'."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if path in (None, "-"):
        sys.stdout.write(buffer.getvalue())
    elif os.path.exists(path) and not os.path.isfile(path):
        # A device or FIFO the user names (/dev/stdout, a pipe): written as a stream, since
        # renaming a file over it would replace the device itself.
        try:
            with open(path, "w", encoding="utf-8", newline="") as handle:
                handle.write(buffer.getvalue())
        except OSError as exc:
            if exc.errno is None:
                raise
            raise OSError(exc.errno, exc.strerror, path) from exc
    else:  # a file: whole or not at all, never half a CSV on a full disk
        write_atomically(path, buffer.getvalue().encode("utf-8"))


def load_model(path: str) -> Network:
    """The model saved at ``path``, its metadata checked against what the commands read
    (:func:`check_command_metadata`)."""
    net = load(path)
    check_command_metadata(net, path)
    return net


def check_command_metadata(net: Network, path: object) -> None:
    """ModelFileError naming the key if an entry the commands read (class names, feature
    names, scaling, task, ...) is not what ``deltaprop train`` writes there: a file's metadata
    is free-form JSON, and an odd value must not become a traceback later."""
    meta = net.metadata
    n_in, n_out = net.n_inputs, net.n_outputs

    def fail(key: str, expected: str) -> ModelFileError:
        return ModelFileError(
            f"{path}: metadata {key!r} must be {expected}. "
            f"Received: {printable(json_preview(meta[key]))}"
        )

    def strings(value: object, length: int | None = None) -> bool:
        return (
            isinstance(value, list)
            and all(isinstance(v, str) for v in value)
            and (length is None or len(value) == length)
        )

    checks = {
        "task": (
            lambda v: v in ("classification", "regression"),
            "'classification' or 'regression'",
        ),
        "dataset": (lambda v: isinstance(v, str), "a string"),
        "target": (lambda v: isinstance(v, str), "a string (a column name)"),
        "created": (lambda v: isinstance(v, str), "a string"),
        "training": (lambda v: isinstance(v, dict), "a JSON object"),
        "feature_names": (
            lambda v: strings(v, n_in),
            f"a list of {n_in} strings, one per input",
        ),
        "class_names": (
            lambda v: strings(v, max(n_out, 2)) and len(set(v)) == len(v),
            f"a list of {max(n_out, 2)} different strings, one per class",
        ),
        "image_shape": (
            lambda v: (
                isinstance(v, list)
                and all(type(d) is int and d >= 1 for d in v)
                and int(np.prod(v)) == n_in
            ),
            f"a list of positive integers whose product is the {n_in} inputs",
        ),
    }
    for key, (accept, expected) in checks.items():
        if meta.get(key) is not None and not accept(meta[key]):
            raise fail(key, expected)
    if meta.get("scaler") is not None:
        try:
            scaler = Scaler.from_dict(meta["scaler"])
        except ValueError as exc:
            raise ModelFileError(f"{path}: metadata 'scaler' is not valid: {exc}") from None
        if scaler.n_features not in (None, n_in):
            raise fail("scaler", f"a scaling of the network's {n_in} inputs")
    _check_csv_metadata(meta, path, n_in, fail)


def _check_csv_metadata(meta: dict, path: object, n_in: int, fail) -> None:
    """The entries a CSV's training adds: the imputer (one fill value per input) and the
    one-hot encoding (which must widen its columns into exactly the feature names)."""
    if meta.get("imputer") is not None:
        try:
            imputer = Imputer.from_dict(meta["imputer"])
        except ValueError as exc:
            raise ModelFileError(f"{path}: metadata 'imputer' is not valid: {exc}") from None
        if imputer.fill is None or len(imputer.fill) != n_in:
            raise fail("imputer", f"a fitted imputer of the network's {n_in} inputs")
    encoding = meta.get("categorical")
    if encoding is None:
        return
    expected = (
        'a JSON object {"columns": [column names], "categories": {column: [categories]}} '
        "whose one-hot columns are the feature names"
    )
    ok = (
        isinstance(encoding, dict)
        and set(encoding) == {"columns", "categories"}
        and isinstance(encoding["columns"], list)
        and all(isinstance(c, str) for c in encoding["columns"])
        and isinstance(encoding["categories"], dict)
        and all(
            name in encoding["columns"]
            and isinstance(values, list)
            and values
            and all(isinstance(v, str) for v in values)
            for name, values in encoding["categories"].items()
        )
    )
    if ok:
        widened = [
            f"{c}={v}" if c in encoding["categories"] else c
            for c in encoding["columns"]
            for v in encoding["categories"].get(c, [None])
        ]
        ok = widened == meta.get("feature_names")
    if not ok:
        raise fail("categorical", expected)


def json_preview(value: object, limit: int = 120) -> str:
    """A short JSON rendering of ``value`` for an error message."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def printable(text: object) -> str:
    """``text`` safe to print to a terminal: control characters (an ANSI escape sequence, a
    carriage return, a bell) shown as Python escapes instead of acting on the terminal."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text)
    )


def require_classes(dataset: Dataset) -> None:
    """DataError for a classification data set whose examples all have one class: there is
    nothing to tell apart, and the model written would predict that class whatever it is
    given (scikit-learn's classifiers refuse such targets too)."""
    if dataset.task == "classification" and dataset.y is not None:
        present = np.unique(dataset.y)
        if present.size < 2:
            name = dataset.class_names[int(present[0])] if dataset.class_names else present[0]
            raise DataError(
                f"{dataset.name}: every example has the class {printable(name)!r}; a "
                "classifier needs examples of at least 2 classes (for a numeric target to "
                "predict, use --task regression)"
            )
