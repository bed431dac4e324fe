"""Datasets: built-in sets and data files, with the splitting, scaling and encoding they need.

    load_dataset("digits")                         sklearn's 8x8 digits, pixels 0..16 as they are
    load_dataset("data.csv", target="species")     header row; the target column by name
    load_dataset("train.npz")                      arrays "X" and "y"
    load_dataset("train-images-idx3-ubyte.gz", labels="train-labels-idx1-ubyte.gz")

Every problem with a file's content raises :class:`DataError`, a ValueError whose message names
the file, and the line and column where they apply; the readers themselves, hardened against
malformed and hostile files, are in :mod:`deltaprop.data.readers`. A file that cannot be opened at
all raises the usual OSError (FileNotFoundError, PermissionError, IsADirectoryError).

Length: just over 500 lines, because every format's loader here shares the one target encoding
(``_encode_target``) and the Dataset checks; the readers and the CSV encoding are elsewhere.
"""

from __future__ import annotations

import errno
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deltaprop.data import categories, csvfile, readers
from deltaprop.data.preprocessing import Scaler, one_hot, train_test_split
from deltaprop.data.readers import DataError, error

__all__ = [
    "BUILTINS",
    "DataError",
    "Dataset",
    "Scaler",
    "load_dataset",
    "load_features",
    "one_hot",
    "train_test_split",
]

BUILTINS: tuple[str, ...] = ("digits", "iris", "xor", "moons", "circles", "spirals")
SYNTHETIC = ("xor", "moons", "circles", "spirals")
DEFAULT_SYNTHETIC_SAMPLES = 400
TASKS = ("auto", "classification", "regression")
# A target inferred as classification has integer values only, and at most this many of them.
MAX_INFERRED_CLASSES = 20


@dataclass
class Dataset:
    """Examples ``X`` (n, n_features) float64 and targets ``y``.

    Classification: ``y`` holds labels 0..k-1 (int64) and ``class_names[label]`` is the
    original class value as a string. Regression: ``y`` is (n, n_targets) float64. ``y`` is
    None for unlabelled data (and then ``class_names`` too).

    ``categorical``: for a CSV with categorical feature columns, their one-hot encoding as
    plain JSON, ``{"columns": [the file's feature columns, in order], "categories": {column:
    [its categories, sorted]}}``; ``X`` then holds one 0/1 column per category, named
    ``"column=category"``, where the file has the column. None otherwise.
    """

    X: np.ndarray
    y: np.ndarray | None
    task: str
    class_names: list[str] | None
    feature_names: list[str]
    name: str
    image_shape: tuple[int, int] | None = None
    categorical: dict | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.X, np.ndarray) or self.X.ndim != 2:
            raise ValueError(f"Dataset X must be a 2-D array. Received: {_describe(self.X)}")
        if self.task not in ("classification", "regression"):
            raise ValueError(
                f"task must be 'classification' or 'regression'. Received: {self.task!r}"
            )
        if len(self.feature_names) != self.X.shape[1]:
            raise ValueError(
                f"feature_names must name the {self.X.shape[1]} columns of X. "
                f"Received: {len(self.feature_names)} names"
            )
        if self.y is None:
            return
        if len(self.y) != len(self.X):
            raise ValueError(f"X has {len(self.X)} rows but y has {len(self.y)}")
        if self.task == "regression":
            if self.y.ndim != 2:
                raise ValueError(
                    f"regression y must be 2-D (n, n_targets). Received: {_describe(self.y)}"
                )
            return
        k = len(self.class_names or [])
        if self.y.ndim != 1 or self.y.dtype.kind not in "iu":
            raise ValueError(
                f"classification y must be 1-D integer labels. Received: {_describe(self.y)}"
            )
        if len(self.y) and (self.y.min() < 0 or self.y.max() >= k):
            raise ValueError(
                f"labels must lie in [0, {k - 1}] for {k} class_names. "
                f"Received: labels {self.y.min()}..{self.y.max()}"
            )

    @property
    def n_classes(self) -> int | None:
        """Number of classes (classification), None for regression."""
        return len(self.class_names or []) if self.task == "classification" else None

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    def __len__(self) -> int:
        return self.X.shape[0]

    def __repr__(self) -> str:
        what = f"{self.n_classes} classes" if self.task == "classification" else "regression"
        labels = "" if self.y is not None else ", unlabelled"
        return f"Dataset({self.name!r}: {len(self)} x {self.n_features}, {what}{labels})"

    def subset(self, rows: object) -> Dataset:
        """The examples selected by ``rows`` (indices or a boolean mask); class names stay."""
        rows = np.asarray(rows)
        return Dataset(
            self.X[rows],
            None if self.y is None else self.y[rows],
            self.task,
            self.class_names,
            self.feature_names,
            self.name,
            self.image_shape,
            self.categorical,
        )


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return type(value).__name__


def _is_count(value: object, minimum: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= minimum


# ------------------------------------------------------------------------------ loading
def load_dataset(
    source: str | os.PathLike,
    *,
    target: str | None = None,
    task: str = "auto",
    labels: str | os.PathLike | None = None,
    seed: int = 0,
    n_samples: int | None = None,
    require_target: bool = True,
    delimiter: str | None = None,
    missing: str = "error",
    categorical: Sequence[str] | None = None,
) -> Dataset:
    """A built-in dataset (:data:`BUILTINS`) by name, or a .csv, .npy, .npz or IDX file.

    target: CSV: the target column's name (default: the last column); .npy: a column index
        (default: the last column); .npz: the target array's name (default "y").
    task: "auto" infers it: non-numeric targets, or integers with few distinct values (at
        most 20, and at most half the rows), are classification; other numbers regression.
    labels: the labels IDX file, for an IDX images file.
    n_samples: for xor, moons, circles and spirals, how many examples to generate (default
        400); for any other source, a random subset of at most this many (drawn with ``seed``).
    require_target: False allows unlabelled data, y=None: a CSV without the target column, an
        .npz without its target array, an IDX file without labels.
    delimiter: CSV: the field separator; None sniffs it from the first lines (tab for .tsv).
    missing: CSV: "error" (default) refuses a missing cell (empty, NA, N/A, NaN, null, None,
        ?), naming its line and column; "keep" reads it as NaN, for an imputer to fill.
    categorical: CSV: feature columns to one-hot encode even if their values look like
        numbers; a column whose first value is text is categorical anyway.

    Binary formats are recognised by their content, CSV by a .csv or .tsv name (gzipped or
    not) or by the text inside a gzip file. A built-in name wins over a file of that name;
    write "./digits" for the file.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}. Received: task={task!r}")
    if not _is_count(seed, 0):
        raise ValueError(f"seed must be a non-negative integer. Received: seed={seed!r}")
    if n_samples is not None and not _is_count(n_samples, 1):
        raise ValueError(
            f"n_samples must be a positive integer or None. Received: n_samples={n_samples!r}"
        )
    if isinstance(source, str) and source.lower() in BUILTINS:
        ds = _builtin(source.lower(), seed, n_samples)
        if task not in ("auto", ds.task):
            raise ValueError(f"{source} is a {ds.task} dataset. Received: task={task!r}")
        if source.lower() in SYNTHETIC:
            return ds
    else:
        path = _existing(source)
        kind = readers.sniff(path)
        if kind == "csv":
            options = {"delimiter": delimiter, "missing": missing, "categorical": categorical}
            ds = readers.guarded(
                path, lambda: _csv_dataset(path, target, task, require_target, options)
            )
        elif kind == "idx":
            ds = readers.guarded(path, lambda: _idx_dataset(path, labels, task, require_target))
        else:
            ds = readers.guarded(
                path, lambda: _numpy_dataset(path, kind, target, task, require_target)
            )
    if n_samples is not None and n_samples < len(ds):
        rows = np.sort(np.random.default_rng(seed).permutation(len(ds))[:n_samples])
        ds = ds.subset(rows)
    return ds


def load_features(
    source: str | os.PathLike,
    feature_names: Sequence[str],
    *,
    categorical: dict | None = None,
    delimiter: str | None = None,
    missing: str = "error",
) -> np.ndarray:
    """Inputs for prediction, (n, len(feature_names)) float64.

    CSV columns are picked by header name, in ``feature_names`` order; other columns (the
    target, say) are ignored. With ``categorical`` (a :attr:`Dataset.categorical` recorded
    at training) the file's columns are ``categorical["columns"]``, and each categorical one
    is one-hot encoded with the recorded categories (a category not among them is refused,
    naming its line). A .npy array, an .npz's "X", IDX images or a built-in's X must have
    exactly ``len(feature_names)`` columns. ``delimiter`` and ``missing`` as for
    :func:`load_dataset`.
    """
    names = list(feature_names)
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"feature_names must be a non-empty list of str. Received: {names!r}")
    if isinstance(source, str) and source.lower() in BUILTINS:
        X = _builtin(source.lower(), 0, None).X
    else:
        path = _existing(source)
        kind = readers.sniff(path)
        if kind == "csv":
            return readers.guarded(
                path, lambda: categories.read_features(path, names, categorical, delimiter, missing)
            )
        if categorical:
            raise error(path, "the model one-hot encodes CSV columns; give its inputs as a CSV")
        X = readers.guarded(path, lambda: _raw_features(path, kind))
    if X.shape[1] != len(names):
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise error(
            source, f"has {X.shape[1]} columns but {len(names)} features are expected ({shown})"
        )
    return X


def _existing(source: str | os.PathLike, builtins_too: bool = True) -> Path:
    path = Path(os.fspath(source))
    if not path.exists():
        what = f"file or built-in dataset ({', '.join(BUILTINS)})" if builtins_too else "file"
        raise FileNotFoundError(errno.ENOENT, f"No such {what}", str(path))
    return path


def _raw_features(path: Path, kind: str) -> np.ndarray:
    if kind == "idx":
        return _images(path, readers.read_idx(path))[0]
    arr = readers.load_npy(path) if kind == "npy" else readers.load_npz(path, ["X"])["X"]
    return readers.numeric(path, readers.two_d(path, arr, "X"), "X")


def _unlabelled(X: np.ndarray, names: list[str], path: Path, shape=None) -> Dataset:
    # No targets, so no task can be seen; "classification" is only a placeholder.
    return Dataset(X, None, "classification", None, names, str(path), shape)


def _csv_dataset(
    path: Path, target: str | None, task: str, require_target: bool, options: dict
) -> Dataset:
    def choose(header: list[str]) -> tuple[None, str | None]:
        if target is None:
            return None, header[-1] if (require_target or len(header) > 1) else None
        return None, target if (require_target or target in header) else None

    named = options.get("categorical") or ()
    table = csvfile.read_csv(
        path,
        choose,
        delimiter=options.get("delimiter"),
        missing=options.get("missing", "error"),
        categorical=list(named),
    )
    if table.target is not None and table.target_name in named:
        raise error(path, f"{table.target_name!r} is the target; categorical names feature columns")
    X, names, encoding = categories.one_hot_columns(table.X, table.features, table.categories)
    if table.target is None:
        ds = _unlabelled(X, names, path)
        ds.categorical = encoding
        return ds
    y, task, class_names = _encode_target(
        path, table.target, task, lines=table.lines, column=table.target_name
    )
    return Dataset(X, y, task, class_names, names, str(path), categorical=encoding)


def _numpy_dataset(
    path: Path, kind: str, target: str | None, task: str, require_target: bool
) -> Dataset:
    if kind == "npy":
        arr = readers.two_d(path, readers.load_npy(path), "the array")
        try:
            t = int(target) if target is not None else -1
        except (TypeError, ValueError):
            raise ValueError(
                f"for a .npy file, target is a column index. Received: target={target!r}"
            ) from None
        width = arr.shape[1]
        if width < 2 or not -width <= t < width:
            raise error(path, f"target column {t} must leave a feature column of {width}")
        t %= width
        # Dropping the last column is a view, which keeps a memory map unread.
        X = arr[:, :t] if t == width - 1 else np.delete(arr, t, axis=1)
        y_raw = arr[:, t]
        names = [f"x{j}" for j in range(width) if j != t]
    else:
        y_name = "y" if target is None else target
        optional = frozenset() if require_target else frozenset([y_name])
        arrays = readers.load_npz(path, ["X", y_name], optional)
        X = readers.two_d(path, arrays["X"], "X")
        y_raw = arrays.get(y_name)
        names = [f"x{j}" for j in range(X.shape[1])]
    X = readers.numeric(path, X, "X")
    if y_raw is None:
        return _unlabelled(X, names, path)
    if len(y_raw) != len(X):
        raise error(path, f"X has {len(X)} rows but y has {len(y_raw)}")
    if y_raw.ndim == 2 and y_raw.shape[1] == 1:
        y_raw = y_raw[:, 0]
    if y_raw.ndim == 2 and task != "classification":
        return Dataset(X, readers.numeric(path, y_raw, "y"), "regression", None, names, str(path))
    if y_raw.ndim != 1:
        raise error(path, f"y must be 1-D, or 2-D for regression. Received: shape {y_raw.shape}")
    if y_raw.dtype.kind in "OcVMm":
        kind_name = readers.REFUSED_KINDS[y_raw.dtype.kind]
        raise error(path, f"y holds {kind_name}; expected numbers or class names")
    if y_raw.dtype.kind == "S":
        y_raw = np.char.decode(y_raw, "utf-8")
    y, task, class_names = _encode_target(path, y_raw, task, column="y")
    return Dataset(X, y, task, class_names, names, str(path))


def _encode_target(
    path: Path,
    values: Sequence | np.ndarray,
    task: str,
    lines: list[int] | None = None,
    column: str | None = None,
) -> tuple[np.ndarray, str, list[str] | None]:
    """(y, task, class names) from target values: CSV cells or a NumPy column."""
    numbers = None
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        numbers = values.astype(np.float64)
    else:
        try:
            numbers = np.array([float(v) for v in values], dtype=np.float64)
        except ValueError:
            pass
    if numbers is not None and not np.isfinite(numbers).all():
        if task == "auto":  # numbers, one of them inf or nan: a bad number, not a class name
            i = int(np.argmax(~np.isfinite(numbers)))
            line = lines[i] if lines is not None else None
            raise error(
                path,
                f"{str(values[i])[:40]!r} is not a finite number; the target's other values "
                "are numbers (pass task='classification' to read them as class names)",
                line,
                column,
            )
        numbers = None
    if task == "auto":
        task = "classification" if numbers is None or _categorical(numbers) else "regression"

    def fail(i: int, message: str) -> DataError:
        line = lines[i] if lines is not None else None
        return error(path, message if lines is not None else f"row {i}: {message}", line, column)

    if task == "regression":
        if numbers is None:
            i = next(i for i, v in enumerate(values) if not _finite_number(v))
            raise fail(
                i,
                f"{str(values[i])[:40]!r} is not a finite number; a regression target must be "
                "numeric (or pass task='classification')",
            )
        return numbers.reshape(-1, 1), task, None
    if numbers is not None:
        classes, y = np.unique(numbers, return_inverse=True)
        names = [
            str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(float(v)) for v in classes
        ]
    else:
        text = [str(v) for v in values]
        if "" in text:
            raise fail(text.index(""), "empty class label")
        names = sorted(set(text))
        index = {name: k for k, name in enumerate(names)}
        y = np.array([index[v] for v in text], dtype=np.int64)
    return y.astype(np.int64, copy=False).reshape(-1), task, names


def _finite_number(value: object) -> bool:
    try:
        return math.isfinite(float(value))
    except (ValueError, TypeError):
        return False


def _categorical(numbers: np.ndarray) -> bool:
    if not np.all(numbers == np.round(numbers)):
        return False
    k = len(np.unique(numbers))
    return k <= MAX_INFERRED_CLASSES and k <= max(2, len(numbers) // 2)


def _images(path: Path, images: np.ndarray) -> tuple[np.ndarray, tuple[int, int] | None]:
    if images.ndim == 1:
        raise error(
            path,
            "holds 1-D data: a labels file? Give the images file as the data and this one as "
            "labels",
        )
    if images.ndim > 3 or images.shape[0] == 0:
        raise error(
            path, f"expected images (n, rows, cols) or rows (n, d). Received: {images.shape}"
        )
    shape = (int(images.shape[1]), int(images.shape[2])) if images.ndim == 3 else None
    return readers.numeric(path, images.reshape(images.shape[0], -1), "the images"), shape


def _idx_dataset(path: Path, labels: object, task: str, require_target: bool) -> Dataset:
    X, shape = _images(path, readers.read_idx(path))
    if shape:
        names = [f"pixel_{r}_{c}" for r in range(shape[0]) for c in range(shape[1])]
    else:
        names = [f"x{j}" for j in range(X.shape[1])]
    if labels is None:
        if require_target:
            raise error(path, "IDX images need their labels file (labels=...)")
        return _unlabelled(X, names, path, shape)
    if task == "regression":
        raise ValueError("IDX labels are class labels. Received: task='regression'")
    label_path = _existing(labels, builtins_too=False)
    y = readers.guarded(label_path, lambda: readers.read_idx(label_path))
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise error(
            label_path, f"expected 1-D integer labels. Received: shape {y.shape}, {y.dtype}"
        )
    if len(y) != len(X):
        raise error(label_path, f"holds {len(y)} labels but {path} holds {len(X)} images")
    if y.min() < 0:
        raise error(label_path, f"labels must be >= 0. Received: {y.min()}")
    class_names = [str(k) for k in range(int(y.max()) + 1)]
    return Dataset(X, y.astype(np.int64), "classification", class_names, names, str(path), shape)


# ------------------------------------------------------------------------------ built-ins
def _builtin(name: str, seed: int, n_samples: int | None) -> Dataset:
    if name in ("digits", "iris"):
        from sklearn import datasets as skd

        bunch = skd.load_digits() if name == "digits" else skd.load_iris()
        class_names = [str(c) for c in bunch.target_names]
        shape = (8, 8) if name == "digits" else None
        X = bunch.data.astype(np.float64, copy=False)
        y = bunch.target.astype(np.int64)
        return Dataset(X, y, "classification", class_names, list(bunch.feature_names), name, shape)
    n = DEFAULT_SYNTHETIC_SAMPLES if n_samples is None else int(n_samples)
    if n < 4:
        raise ValueError(f"{name} needs n_samples >= 4. Received: n_samples={n}")
    rng = np.random.default_rng(seed)
    if name == "xor":
        # Four noisy clusters at the corners of the unit square, labelled x1 XOR x2.
        corner = rng.permutation(np.arange(n) % 4)
        centers = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
        X = centers[corner] + rng.normal(0.0, 0.15, size=(n, 2))
        y = np.array([0, 1, 1, 0])[corner]
    elif name == "spirals":
        # Two interleaved arms, 1.5 turns each; arm k is arm 0 rotated by k·π.
        y = rng.permutation(np.arange(n) % 2)
        t = rng.uniform(0.05, 1.0, size=n)
        angle = 3 * np.pi * t + np.pi * y
        X = np.column_stack([t * np.cos(angle), t * np.sin(angle)])
        X += rng.normal(0.0, 0.02, size=(n, 2))
    else:
        from sklearn import datasets as skd

        seed32 = int(seed) % 2**32  # sklearn takes 32-bit seeds
        if name == "moons":
            X, y = skd.make_moons(n, noise=0.1, random_state=seed32)
        else:
            X, y = skd.make_circles(n, noise=0.05, factor=0.5, random_state=seed32)
    return two_class_points(X, y, name)


def two_class_points(X: np.ndarray, y: np.ndarray, name: str) -> Dataset:
    """A classification set of 2-D points ``X`` (columns x1, x2) with labels 0 and 1."""
    return Dataset(
        np.ascontiguousarray(X, dtype=np.float64),
        y.astype(np.int64),
        "classification",
        ["0", "1"],
        ["x1", "x2"],
        name,
    )
