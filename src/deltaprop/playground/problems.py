"""What a playground run learns: a 2-D data set drawn with noise, an uploaded CSV, or the
seed's worked example, split into train and test parts and turned into the network's targets.

The five 2-D sets are TensorFlow Playground's (circle, xor, gauss, spiral, plus moons), drawn
in the square [-1, 1]² so that the input plane the page shows is the same for all of them;
``noise`` (0 to 0.5) moves each point by a Gaussian of that many tenths of the square's half
width... scaled per set so that 0.5 makes the classes overlap visibly, as TF Playground's 50 %.
A CSV is read by the library's own reader (``load_dataset``), so its rules and messages are
those of ``deltaprop train --data``; its inputs are standardised on the training part.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from deltaprop.data.datasets import Dataset, load_dataset, two_class_points
from deltaprop.data.preprocessing import Scaler, one_hot, train_test_split
from deltaprop.explain.example import CLASSIC
from deltaprop.playground.settings import Settings

Array = np.ndarray
MAX_CSV_BYTES = 20 * 2**20


@dataclass(frozen=True)
class Plane:
    """The plane the page draws, in the network's input space: ``origin + (u, v) @ basis``.
    For 2-D data, the input plane itself; for more features, the plane through the mean
    spanned by the first two principal components (``variance``: the share they explain)."""

    origin: Array
    basis: Array  # (2, n_inputs), orthonormal rows
    projected: bool
    variance: float = 1.0

    def inputs(self, uv: Array) -> Array:
        """Network inputs at plane coordinates (m, 2)."""
        return self.origin + uv @ self.basis

    def coordinates(self, X: Array) -> Array:
        """Plane coordinates (m, 2) of inputs X: their orthogonal projection."""
        return (X - self.origin) @ self.basis.T


def principal_plane(X: Array) -> Plane:
    """The plane through the mean of X spanned by its first two principal components."""
    origin = X.mean(axis=0)
    _, singular, vt = np.linalg.svd(X - origin, full_matrices=False)
    power = singular**2
    share = float(power[:2].sum() / power.sum()) if power.sum() > 0 else 1.0
    return Plane(origin, vt[:2].copy(), projected=True, variance=share)


@dataclass
class Problem:
    """Inputs and targets of both parts, as the network sees them; ``labels_*`` are class
    labels 0..k-1 for colouring points (None for regression and for the worked example);
    ``plane``: the plane the page draws (None for a single input) and ``extent`` its square
    (u_min, u_max, v_min, v_max) around the data."""

    name: str
    task: str
    X_train: Array
    T_train: Array
    X_test: Array
    T_test: Array
    labels_train: Array | None
    labels_test: Array | None
    class_names: list[str] | None
    feature_names: list[str]
    scaler: Scaler | None = None

    @property
    def n_inputs(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int | None:
        return None if self.class_names is None else len(self.class_names)

    @cached_property
    def plane(self) -> Plane | None:
        if self.n_inputs < 2:
            return None
        if self.n_inputs == 2:
            return Plane(np.zeros(2), np.eye(2), projected=False)
        return principal_plane(np.vstack([self.X_train, self.X_test]))

    @cached_property
    def extent(self) -> tuple[float, float, float, float] | None:
        plane = self.plane
        if plane is None:
            return None
        X = plane.coordinates(np.vstack([self.X_train, self.X_test]))
        lo, hi = X.min(axis=0), X.max(axis=0)
        pad = np.maximum(0.1 * (hi - lo), 0.1)
        # A square plane around the data, at least [-1, 1]²: the sets the page draws live there.
        low = float(min(-1.0, (lo - pad).min()))
        high = float(max(1.0, (hi + pad).max()))
        return (low, high, low, high)


# ------------------------------------------------------------------------ the 2-D sets
def _circles(n: int, noise: float, rng: np.random.Generator) -> tuple[Array, Array]:
    y = rng.permutation(np.arange(n) % 2)
    radius = np.where(y == 0, rng.uniform(0.0, 0.45, n), rng.uniform(0.65, 0.95, n))
    angle = rng.uniform(0.0, 2 * np.pi, n)
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    return X + rng.normal(0.0, 0.25 * noise, X.shape), y


def _xor(n: int, noise: float, rng: np.random.Generator) -> tuple[Array, Array]:
    X = rng.uniform(-0.95, 0.95, (n, 2))
    X += np.sign(X) * 0.05  # a small gap along the axes, as TF Playground's padding
    y = (X[:, 0] * X[:, 1] < 0).astype(np.int64)
    return X + rng.normal(0.0, 0.3 * noise, X.shape), y


def _gauss(n: int, noise: float, rng: np.random.Generator) -> tuple[Array, Array]:
    y = rng.permutation(np.arange(n) % 2)
    centre = np.where(y[:, None] == 0, 0.45, -0.45)
    return centre + rng.normal(0.0, 0.15 + 0.6 * noise, (n, 2)), y


def _spiral(n: int, noise: float, rng: np.random.Generator) -> tuple[Array, Array]:
    y = rng.permutation(np.arange(n) % 2)
    r = rng.uniform(0.03, 0.95, n)
    angle = 1.75 * 2 * np.pi * r + np.pi * y
    X = np.column_stack([r * np.sin(angle), r * np.cos(angle)])
    return X + rng.normal(0.0, 0.2 * noise, X.shape), y


def _moons(n: int, noise: float, rng: np.random.Generator) -> tuple[Array, Array]:
    y = rng.permutation(np.arange(n) % 2)
    t = rng.uniform(0.0, np.pi, n)
    upper = np.column_stack([np.cos(t), np.sin(t)])
    lower = np.column_stack([1.0 - np.cos(t), 0.5 - np.sin(t)])
    X = np.where(y[:, None] == 0, upper, lower)
    X = (X - [0.5, 0.25]) * [0.62, 0.9]  # into the square
    return X + rng.normal(0.0, 0.3 * noise, X.shape), y


GENERATORS = {
    "circles": _circles,
    "xor": _xor,
    "gauss": _gauss,
    "spiral": _spiral,
    "moons": _moons,
}


def generated(settings: Settings) -> Dataset:
    """The 2-D set ``settings.dataset`` with its noise, ``settings.points`` points, drawn
    from ``settings.seed``."""
    rng = np.random.default_rng(settings.seed)
    X, y = GENERATORS[settings.dataset](settings.points, settings.noise, rng)
    return two_class_points(X, y, settings.dataset)


# ------------------------------------------------------------------------ uploads
def read_csv_upload(name: str, content: bytes) -> Dataset:
    """A CSV sent by the page, read as ``deltaprop train --data`` reads a file (the library's
    reader, its rules and its messages, which name the file as the user called it)."""
    base = os.path.basename(str(name)) or "upload.csv"
    if not base.lower().endswith(".csv"):
        raise ValueError(f"{base}: expected a .csv file (a header row, then one example a row)")
    if len(content) > MAX_CSV_BYTES:
        raise ValueError(
            f"{base}: {len(content) / 2**20:.1f} MiB is more than the playground's "
            f"{MAX_CSV_BYTES // 2**20} MiB"
        )
    with tempfile.TemporaryDirectory(prefix="deltaprop-playground-") as folder:
        path = Path(folder) / base
        path.write_bytes(content)
        try:
            dataset = load_dataset(str(path))
        except (ValueError, OSError) as exc:
            # The reader names the file by its path; the user knows it by its name.
            message = str(exc).replace(str(path), base).replace(folder + os.sep, "")
            raise ValueError(message) from None
    if dataset.y is None:
        raise ValueError(f"{base}: no target column to learn from")
    dataset.name = base
    if len(dataset) < 2:
        raise ValueError(f"{base}: needs at least 2 rows (a train and a test part)")
    return dataset


# ------------------------------------------------------------------------ problems
def targets_for(labels: Array, n_out: int, loss: str) -> Array:
    """Class labels as the loss takes them: one-hot rows, or 0/1 in one column when the
    network has one output for two classes."""
    if n_out == 1:
        return labels.astype(np.float64).reshape(-1, 1)
    return one_hot(labels, n_out, np.float64)


def problem_from(dataset: Dataset, settings: Settings, scale: bool) -> Problem:
    """The data set split by ``settings.train`` (seeded), inputs standardised on the training
    part when ``scale``; targets are left to :meth:`Problem.with_outputs`."""
    train, test = train_test_split(dataset, test_size=1.0 - settings.train, seed=settings.seed)
    scaler = Scaler("standard").fit(train.X) if scale else None
    X_train = train.X if scaler is None else scaler.transform(train.X)
    X_test = test.X if scaler is None else scaler.transform(test.X)
    classify = dataset.task == "classification"
    return Problem(
        name=str(dataset.name),
        task=dataset.task,
        X_train=np.ascontiguousarray(X_train),
        T_train=train.y if not classify else np.empty((len(train), 0)),
        X_test=np.ascontiguousarray(X_test),
        T_test=test.y if not classify else np.empty((len(test), 0)),
        labels_train=train.y if classify else None,
        labels_test=test.y if classify else None,
        class_names=list(dataset.class_names) if classify else None,
        feature_names=list(dataset.feature_names),
        scaler=scaler,
    )


def with_outputs(problem: Problem, n_out: int, loss: str) -> Problem:
    """``problem`` with classification targets made for a network of ``n_out`` outputs."""
    if problem.labels_train is None:
        return problem
    problem.T_train = targets_for(problem.labels_train, n_out, loss)
    problem.T_test = targets_for(problem.labels_test, n_out, loss)
    return problem


def classic_problem() -> Problem:
    """The seed's worked example: one example, x = (0.05, 0.10), t = (0.01, 0.99)."""
    x = np.asarray([CLASSIC["x"]], dtype=np.float64)
    t = np.asarray([CLASSIC["t"]], dtype=np.float64)
    return Problem(
        name="the classic 2-2-2 example",
        task="regression",
        X_train=x,
        T_train=t,
        X_test=x[:0],
        T_test=t[:0],
        labels_train=None,
        labels_test=None,
        class_names=None,
        feature_names=["x1", "x2"],
    )
