"""Figures of a training run: curves, confusion matrix, decision boundary, misclassified images.

Built with matplotlib's object-oriented API (``Figure``), so nothing needs a display and the
global pyplot state is never touched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from deltaprop.core.network import FeedForward
from deltaprop.plot.display import NotebookFigure
from deltaprop.train.callbacks import History


def _save(fig: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        suffix = os.path.splitext(os.fspath(path))[1].lower()
        if suffix not in (".png", ".svg", ".pdf"):
            raise ValueError(f"figures are saved as .png, .svg or .pdf. Received: path={path!r}")
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def training_curves(history: History, path: str | os.PathLike | None = None) -> Figure:
    """Loss (and accuracy, when measured) per epoch, training and validation."""
    if len(history) == 0:
        raise ValueError("the history is empty: train for at least one epoch first")
    panels = 2 if history.accuracy else 1
    fig = NotebookFigure(figsize=(5.2 * panels, 3.6))
    ax = fig.add_subplot(1, panels, 1)
    ax.plot(history.epoch, history.loss, label="train")
    if history.val_loss:
        ax.plot(history.epoch, history.val_loss, label="validation")
    if history.best_epoch is not None:
        ax.axvline(history.best_epoch, color="grey", linestyle=":", label="best epoch")
    ax.set(xlabel="epoch", ylabel="loss", title="Loss")
    if min(history.loss) > 0 and max(history.loss) / min(history.loss) > 50:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    if history.accuracy:
        ax = fig.add_subplot(1, panels, 2)
        ax.plot(history.epoch, history.accuracy, label="train")
        if history.val_accuracy:
            ax.plot(history.epoch, history.val_accuracy, label="validation")
        ax.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1.02))
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[i, j] = examples of class i predicted as class j."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return counts


# Above this many classes a matrix is unreadable (and its figure would grow past gigabytes):
# the figure becomes a table of the most frequent confusions instead.
MAX_MATRIX_CLASSES = 50
TOP_CONFUSIONS = 25


def _short(name: str, width: int = 20) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _confusion_table(y_true: np.ndarray, y_pred: np.ndarray, names: list[str]) -> Figure:
    """A fixed-size figure: the accuracy and the :data:`TOP_CONFUSIONS` most frequent
    (true, predicted) pairs of different classes, counted without an n × n matrix."""
    n = len(names)
    wrong = y_true != y_pred
    pairs, counts = np.unique(
        y_true[wrong].astype(np.int64) * n + y_pred[wrong].astype(np.int64), return_counts=True
    )
    top = np.argsort(-counts, kind="stable")[:TOP_CONFUSIONS]
    rows = [[names[pairs[i] // n], names[pairs[i] % n], str(counts[i])] for i in top]
    fig = Figure(figsize=(7, 1.2 + 0.22 * max(len(rows), 1)))
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_title(
        f"{n} classes, too many for a matrix (accuracy {np.mean(~wrong):.4f}):\n"
        f"the {len(rows)} most frequent confusions of {int(wrong.sum())} errors",
        fontsize=10,
    )
    if rows:
        table = ax.table(
            cellText=rows, colLabels=["true", "predicted", "examples"], loc="upper center"
        )
        table.auto_set_font_size(False)
        table.set_fontsize(8)
    return fig


def confusion_matrix(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str] | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Counts of true class (rows) against predicted class (columns), with the counts written
    in; for more than :data:`MAX_MATRIX_CLASSES` classes, a table of the most frequent
    confusions instead (a figure of fixed size, whatever the number of classes)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            "y_true and y_pred must be 1-D label arrays of the same length. "
            f"Received: shapes {y_true.shape} and {y_pred.shape}"
        )
    n = int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1
    if class_names is not None:
        n = max(n, len(class_names))
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    names = [_short(str(name)) for name in names]
    if n > MAX_MATRIX_CLASSES:
        return _save(_confusion_table(y_true, y_pred, names), path)
    counts = confusion_counts(y_true, y_pred, n)
    size = max(4.0, 0.45 * n + 2)
    fig = NotebookFigure(figsize=(size + 1, size))
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), names, rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(range(n), names)
    ax.set(
        xlabel="predicted",
        ylabel="true",
        title=f"Confusion matrix (accuracy {np.mean(y_true == y_pred):.4f})",
    )
    if n <= 30:
        threshold = counts.max() / 2
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    colour = "white" if counts[i, j] > threshold else "black"
                    ax.text(
                        j, i, str(counts[i, j]), ha="center", va="center", color=colour, fontsize=8
                    )
    fig.tight_layout()
    return _save(fig, path)


def decision_boundary(
    net: FeedForward,
    X: np.ndarray,
    y: np.ndarray,
    path: str | os.PathLike | None = None,
    resolution: int = 200,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """The network's decision regions over the plane of 2-D inputs, with the data on top.

    X must be what the network sees (already scaled); y class labels 0..k-1.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2 or net.n_inputs != 2:
        raise ValueError(
            "decision boundaries are drawn for 2-D inputs only. "
            f"Received: X of shape {X.shape} for a network with {net.n_inputs} inputs"
        )
    margin = 0.1 * (X.max(axis=0) - X.min(axis=0)) + 1e-9
    lo, hi = X.min(axis=0) - margin, X.max(axis=0) + margin
    gx, gy = np.meshgrid(
        np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    )
    grid = np.column_stack([gx.ravel(), gy.ravel()]).astype(net.dtype)
    out = net.predict(grid)
    labels = out.argmax(axis=1) if out.shape[1] > 1 else (out[:, 0] > 0.5).astype(int)
    n_classes = max(out.shape[1], 2)
    fig = NotebookFigure(figsize=(5.5, 4.8))
    ax = fig.add_subplot()
    cmap = "tab10" if n_classes <= 10 else "tab20"
    ax.contourf(
        gx,
        gy,
        labels.reshape(gx.shape),
        levels=np.arange(n_classes + 1) - 0.5,
        cmap=cmap,
        alpha=0.3,
        vmin=-0.5,
        vmax=(10 if n_classes <= 10 else 20) - 0.5,
    )
    scatter = ax.scatter(
        X[:, 0],
        X[:, 1],
        c=np.asarray(y),
        cmap=cmap,
        s=14,
        edgecolors="k",
        linewidths=0.3,
        vmin=-0.5,
        vmax=(10 if n_classes <= 10 else 20) - 0.5,
    )
    if class_names is not None:
        handles, _ = scatter.legend_elements()
        ax.legend(handles[: len(class_names)], list(class_names), loc="best", fontsize=8)
    ax.set(xlabel="x1", ylabel="x2", title="Decision boundary")
    fig.tight_layout()
    return _save(fig, path)


def misclassified(
    images: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    image_shape: tuple[int, int],
    class_names: Sequence[str] | None = None,
    path: str | os.PathLike | None = None,
    max_images: int = 36,
) -> Figure:
    """A grid of the misclassified images, each titled 'true → predicted'."""
    images = np.asarray(images)
    rows_px, cols_px = image_shape
    if images.ndim != 2 or images.shape[1] != rows_px * cols_px:
        raise ValueError(
            f"images must be rows of {rows_px}×{cols_px} = {rows_px * cols_px} pixels. "
            f"Received: shape {images.shape}"
        )
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))[:max_images]
    names = list(class_names) if class_names is not None else None

    def name(label: int) -> str:
        return names[label] if names is not None else str(label)

    cols = max(1, min(6, len(wrong)))
    rows = max(1, -(-len(wrong) // cols))
    fig = NotebookFigure(figsize=(1.6 * cols, 1.8 * rows + 0.4))
    fig.suptitle(
        f"Misclassified: {np.sum(np.asarray(y_true) != np.asarray(y_pred))} "
        f"of {len(y_true)}" + (f" (first {len(wrong)})" if len(wrong) == max_images else "")
    )
    if len(wrong) == 0:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "none: every example is right", ha="center", va="center")
        ax.axis("off")
    for k, idx in enumerate(wrong):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(images[idx].reshape(image_shape), cmap="gray_r")
        ax.set_title(f"{name(int(y_true[idx]))} → {name(int(y_pred[idx]))}", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)
