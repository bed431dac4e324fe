"""Categorical feature columns as one-hot 0/1 columns, and the record that repeats it.

A table from :mod:`deltaprop.data.csvfile` holds a categorical column as category codes
(indices into its sorted categories, NaN where missing). :func:`one_hot_columns` widens each
such column into one column per category, named ``"column=category"``, and returns the
encoding as plain JSON, which a model file keeps (metadata ``"categorical"``) so that
:func:`encode_as_trained` gives new data exactly the training columns, in the same order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deltaprop.data.csvfile import CsvTable, read_csv
from deltaprop.data.readers import error

# How many of a column's categories an error message lists.
SHOWN = 10


def one_hot_columns(
    X: np.ndarray, columns: list[str], categories: dict[str, list[str]]
) -> tuple[np.ndarray, list[str], dict | None]:
    """(X widened, its column names, the encoding) for categorical columns given as codes;
    X as it is (and encoding None) when there are none. A missing category (NaN) is NaN in
    every one of its column's 0/1 columns, for an imputer to fill."""
    if not categories:
        return X, columns, None
    blocks, names = [], []
    for k, name in enumerate(columns):
        if name not in categories:
            blocks.append(X[:, k : k + 1])
            names.append(name)
            continue
        codes = X[:, k]
        block = (codes[:, None] == np.arange(len(categories[name]))).astype(np.float64)
        block[np.isnan(codes)] = np.nan
        blocks.append(block)
        names.extend(f"{name}={value}" for value in categories[name])
    encoding = {"columns": list(columns), "categories": {k: list(v) for k, v in categories.items()}}
    return np.hstack(blocks), names, encoding


def encode_as_trained(path: Path, table: CsvTable, encoding: dict) -> tuple[np.ndarray, list[str]]:
    """New data's table one-hot encoded with the training ``encoding``: its codes renumbered
    to the recorded categories; a category not among them is refused, naming its line."""
    known = encoding["categories"]
    X = table.X.copy()
    for k, name in enumerate(table.features):
        if name not in known:
            continue
        index = {value: i for i, value in enumerate(known[name])}
        found = table.categories[name]
        renumber = np.array([index.get(value, -1) for value in found] + [np.nan])
        codes = renumber[np.where(np.isnan(X[:, k]), len(found), X[:, k]).astype(np.int64)]
        unknown = np.flatnonzero(codes == -1)
        if len(unknown):
            shown = ", ".join(known[name][:SHOWN]) + (", ..." if len(known[name]) > SHOWN else "")
            raise error(
                path,
                f"{found[int(X[unknown[0], k])][:40]!r} is not a category the model was trained "
                f"on ({shown})",
                table.lines[int(unknown[0])],
                name,
            )
        X[:, k] = codes
    widened, names, _ = one_hot_columns(X, table.features, {k: list(v) for k, v in known.items()})
    return widened, names


def read_features(
    path: Path, names: list[str], encoding: dict | None, delimiter: str | None, missing: str
) -> np.ndarray:
    """Prediction inputs from a CSV: the columns ``names``, or, with a training ``encoding``,
    its columns one-hot encoded as in training (which must give ``names``)."""
    if not encoding:
        return read_csv(path, lambda header: (names, None), delimiter=delimiter, missing=missing).X
    columns = list(encoding["columns"])
    table = read_csv(
        path,
        lambda header: (columns, None),
        delimiter=delimiter,
        missing=missing,
        categorical=list(encoding["categories"]),
    )
    X, encoded = encode_as_trained(path, table, encoding)
    if encoded != names:
        raise error(path, "the model's recorded categories do not match its feature names")
    return X
