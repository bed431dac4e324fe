"""Training as a film: the decision boundary and the loss curve, epoch by epoch, as a GIF.

    anim = TrainingAnimation(X, y)              # X: (n, 2) as the network sees it
    net.fit(X, T, epochs=200, callbacks=[anim])
    anim.save("training.gif", fps=10)           # -> number of frames written

During training the callback only records numbers (the network's outputs over a grid covering
the data, and the losses); the pictures are drawn when saving, so recording costs one forward
pass of ``resolution``² points per recorded epoch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D

from deltaprop.core.network import FeedForward
from deltaprop.train.callbacks import Callback, History

Array = np.ndarray

TASKS = ("auto", "classification", "regression")
MAX_INFERRED_CLASSES = 20  # as deltaprop.data.datasets infers a task


@dataclass
class Frame:
    """One recorded epoch (0: before training): the outputs over the grid."""

    epoch: int
    grid: Array  # (resolution, resolution): P(class 1), the class, or the regression output
    confidence: Array | None = None  # several classes: the winning probability


@dataclass
class _Film:
    """The figure of the animation and its artists; a frame changes only the dynamic ones."""

    fig: Figure
    canvas: FigureCanvasAgg
    ax: Axes  # the data and the network's outputs over the grid
    curve: Axes  # the loss
    image: AxesImage | None = None
    points: Any = None
    legend: Any = None
    colors: Array | None = None  # per class
    train_line: Line2D | None = None
    val_line: Line2D | None = None
    marker: Line2D | None = None
    title: Any = None
    contour: Any = None
    background: Any = None  # the static part of the picture, for blitting

    def dynamic(self) -> list[Any]:
        """The artists a frame changes, in drawing order (the points stay above the image)."""
        artists = (
            self.image,
            self.contour,
            self.points,
            self.legend,
            self.train_line,
            self.val_line,
            self.marker,
            self.title,
        )
        return [artist for artist in artists if artist is not None]


def _positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


class TrainingAnimation(Callback):
    """Record the decision boundary (or regression surface) and the loss while ``fit`` runs.

    X: (n, 2) inputs, already scaled as the network sees them; the grid covers them with a
        10 % margin. Data of any other width is refused (a ValueError naming the width).
    y: class labels 0..k-1 (or one-hot rows), or regression targets, drawn on the grid.
    every: record every ``every``-th epoch; epoch 0 (before training) and the last epoch are
        always recorded.
    max_frames: at most this many frames: past it, each new frame drops the inner frame
        whose neighbours are closest, so the frames stay spread evenly over the whole
        training (epoch 0 and the last epoch are always kept).
    resolution: grid points per side.
    task: "auto" (integer labels with at most 20 values are classes), "classification" or
        "regression".
    class_names: names for the legend.
    """

    def __init__(
        self,
        X: object,
        y: object,
        every: int = 1,
        max_frames: int = 100,
        resolution: int = 100,
        *,
        task: str = "auto",
        class_names: list[str] | None = None,
    ) -> None:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != 2:
            width = X.shape[1] if X.ndim == 2 else f"{X.ndim}-D"
            raise ValueError(
                "TrainingAnimation draws 2-D data: X must have shape (n, 2). "
                f"Received: width {width} (X of shape {X.shape})"
            )
        if X.shape[0] == 0 or X.dtype.kind not in "biuf" or not np.isfinite(X).all():
            raise ValueError("X must hold at least one row of finite numbers")
        self.every = _positive_int(every, "every")
        self.max_frames = _positive_int(max_frames, "max_frames", 2)
        self.resolution = _positive_int(resolution, "resolution", 2)
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}. Received: task={task!r}")
        self.X = X.astype(np.float64)
        self.y, self.task = self._targets(y, task)
        self.class_names = None if class_names is None else [str(c) for c in class_names]

        margin = 0.1 * (self.X.max(axis=0) - self.X.min(axis=0)) + 1e-9
        self.low, self.high = self.X.min(axis=0) - margin, self.X.max(axis=0) + margin
        gx, gy = np.meshgrid(
            np.linspace(self.low[0], self.high[0], self.resolution),
            np.linspace(self.low[1], self.high[1], self.resolution),
        )
        self._grid = np.column_stack([gx.ravel(), gy.ravel()])
        self.frames: list[Frame] = []
        self.logs: list[dict[str, float]] = []

    def _targets(self, y: object, task: str) -> tuple[Array, str]:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        elif y.ndim == 2 and task != "regression":
            y = y.argmax(axis=1)  # one-hot rows
        if y.ndim != 1 or len(y) != len(self.X):
            raise ValueError(
                f"y must hold one label or target per row of X ({len(self.X)}). "
                f"Received: shape {y.shape}"
            )
        if y.dtype.kind not in "biuf" or not np.isfinite(y).all():
            raise ValueError("y must hold finite numbers (class labels or regression targets)")
        whole = bool(np.all(y == np.round(y)))
        if task == "auto":
            task = (
                "classification"
                if whole and len(np.unique(y)) <= MAX_INFERRED_CLASSES and y.min() >= 0
                else "regression"
            )
        if task == "classification":
            if not whole or y.min() < 0:
                raise ValueError("class labels must be whole numbers >= 0")
            return y.astype(np.int64), task
        return y.astype(np.float64), task

    # ------------------------------------------------------------ recording
    def _record(self, net: FeedForward, epoch: int) -> None:
        if net.n_inputs != 2:
            raise ValueError(
                f"TrainingAnimation needs a network with 2 inputs. Received: {net.n_inputs}"
            )
        out = net.predict(self._grid.astype(net.dtype)).astype(np.float64)
        shape = (self.resolution, self.resolution)
        if self.task == "classification" and out.shape[1] > 1:
            frame = Frame(
                epoch,
                out.argmax(axis=1).reshape(shape).astype(np.int16),
                out.max(axis=1).reshape(shape).astype(np.float32),
            )
        else:
            frame = Frame(epoch, out[:, 0].reshape(shape).astype(np.float32))
        self.frames.append(frame)
        if len(self.frames) > self.max_frames:
            # Drop the inner frame whose neighbours are closest together: the frames stay
            # spread evenly from the first epoch to the newest one.
            epochs = [f.epoch for f in self.frames]
            gaps = [epochs[k + 1] - epochs[k - 1] for k in range(1, len(epochs) - 1)]
            del self.frames[1 + int(np.argmin(gaps))]

    def on_train_begin(self, net: FeedForward, history: History) -> None:
        self.frames, self.logs = [], []
        self._record(net, 0)

    def on_epoch_end(self, net: FeedForward, epoch: int, logs: dict) -> None:
        self.logs.append({k: float(v) for k, v in logs.items() if isinstance(v, (int, float))})
        if epoch % self.every == 0:
            self._record(net, epoch)

    def on_train_end(self, net: FeedForward, history: History) -> None:
        if self.logs and self.frames[-1].epoch != int(self.logs[-1]["epoch"]):
            self._record(net, int(self.logs[-1]["epoch"]))

    # ------------------------------------------------------------ drawing
    @property
    def n_frames(self) -> int:
        return len(self.frames)

    def _colors(self, n_classes: int) -> Array:
        cmap = colormaps["tab10" if n_classes <= 10 else "tab20"]
        return np.array([to_rgb(cmap(k)) for k in range(n_classes)])

    def _setup(self) -> _Film:
        fig = Figure(figsize=(9.0, 4.2), dpi=80)
        film = _Film(fig, FigureCanvasAgg(fig), fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2))
        extent = (self.low[0], self.high[0], self.low[1], self.high[1])
        if self.task == "classification":
            self._setup_classes(film, extent)
        else:
            self._setup_surface(film, extent)
        film.ax.set(xlim=extent[:2], ylim=extent[2:], xlabel="x1", ylabel="x2")
        self._setup_loss_curve(film)
        fig.tight_layout(rect=(0, 0, 1, 0.93))
        film.title = fig.suptitle("")
        # Blitting: the axes, ticks and labels are drawn once; each frame redraws only what
        # changes (drawing every frame in full takes several times longer).
        for artist in film.dynamic():
            artist.set_animated(True)
        film.canvas.draw()
        film.background = film.canvas.copy_from_bbox(fig.bbox)
        return film

    def _setup_classes(self, film: _Film, extent: tuple[float, ...]) -> None:
        """The first frame's class regions, the data coloured by class, and the legend."""
        first, ax = self.frames[0], film.ax
        n_classes = int(max(self.y.max() + 1, 2, first.grid.max() + 1))
        colors = film.colors = self._colors(n_classes)
        film.image = ax.imshow(
            self._rgb(first, colors),
            origin="lower",
            extent=extent,
            aspect="auto",
            interpolation="bilinear",
        )
        film.points = ax.scatter(
            self.X[:, 0], self.X[:, 1], c=colors[self.y], s=12, edgecolors="k", linewidths=0.3
        )
        if self.class_names:
            for k, name in enumerate(self.class_names[:n_classes]):
                ax.scatter(
                    [], [], color=colors[k], label=name, s=12, edgecolors="k", linewidths=0.3
                )
            film.legend = ax.legend(loc="upper right", fontsize=7)

    def _setup_surface(self, film: _Film, extent: tuple[float, ...]) -> None:
        """The first frame's regression surface and the data, on one colour scale."""
        low, high = float(self.y.min()), float(self.y.max())
        norm = Normalize(low, high if high > low else low + 1.0)
        film.image = film.ax.imshow(
            self.frames[0].grid,
            origin="lower",
            extent=extent,
            aspect="auto",
            cmap="viridis",
            norm=norm,
            interpolation="bilinear",
        )
        film.points = film.ax.scatter(
            self.X[:, 0],
            self.X[:, 1],
            c=self.y,
            cmap="viridis",
            norm=norm,
            s=12,
            edgecolors="k",
            linewidths=0.3,
        )
        film.fig.colorbar(film.image, ax=film.ax, label="network output")

    def _setup_loss_curve(self, film: _Film) -> None:
        """The loss axes, scaled to every recorded loss, with empty lines for the frames."""
        curve = film.curve
        epochs = [log["epoch"] for log in self.logs] or [0]
        losses = [log["loss"] for log in self.logs if "loss" in log]
        vals = [log["val_loss"] for log in self.logs if "val_loss" in log]
        curve.set(xlabel="epoch", ylabel="loss", title="Loss")
        curve.set_xlim(0, max(epochs[-1], 1))
        every_loss = [v for v in losses + vals if v > 0]
        if every_loss:
            lo, hi = min(every_loss), max(every_loss)
            if hi / lo > 50:
                curve.set_yscale("log")
                curve.set_ylim(lo / 1.3, hi * 1.3)
            else:
                pad = 0.05 * (hi - lo) + 1e-12
                curve.set_ylim(min(0.0, lo - pad) if lo - pad < 0 else lo - pad, hi + pad)
        film.train_line = curve.plot([], [], label="train", color="C0")[0]
        film.val_line = curve.plot([], [], label="validation", color="C1")[0] if vals else None
        film.marker = curve.plot([], [], "o", color="C0", markersize=4)[0]
        curve.grid(alpha=0.3)
        if vals:
            curve.legend(loc="upper right", fontsize=8)

    def _rgb(self, frame: Frame, colors: Array) -> Array:
        """Class colours over the grid, paler where the network is less sure."""
        if frame.confidence is None:
            p = frame.grid.astype(np.float64)[..., None]
            rgb = p * colors[1] + (1 - p) * colors[0]
            strength = np.abs(p - 0.5) * 2
        else:
            rgb = colors[frame.grid]
            k = len(colors)
            # Confidence runs from 1/k (a guess) to 1 (certain).
            strength = ((frame.confidence - 1 / k) / (1 - 1 / k))[..., None]
        alpha = 0.25 + 0.45 * np.clip(strength, 0, 1)
        return 1 - alpha * (1 - rgb)

    def _draw(self, film: _Film, frame: Frame) -> None:
        if self.task == "classification":
            film.image.set_data(self._rgb(frame, film.colors))
        else:
            film.image.set_data(frame.grid)
        if film.contour is not None:
            film.contour.remove()
            film.contour = None
        if self.task == "classification" and frame.confidence is None:
            gx = np.linspace(self.low[0], self.high[0], self.resolution)
            gy = np.linspace(self.low[1], self.high[1], self.resolution)
            if frame.grid.min() < 0.5 < frame.grid.max():
                film.contour = film.ax.contour(
                    gx, gy, frame.grid, levels=[0.5], colors="k", linewidths=1.2
                )
        seen = [log for log in self.logs if log["epoch"] <= frame.epoch]
        xs = [log["epoch"] for log in seen]
        film.train_line.set_data(xs, [log.get("loss", math.nan) for log in seen])
        if film.val_line is not None:
            film.val_line.set_data(xs, [log.get("val_loss", math.nan) for log in seen])
        film.marker.set_data(xs[-1:], [log.get("loss", math.nan) for log in seen[-1:]])
        title = f"epoch {frame.epoch}"
        if seen:
            title += f"   loss {seen[-1].get('loss', math.nan):.4g}"
            if "accuracy" in seen[-1]:
                title += f"   accuracy {seen[-1]['accuracy']:.1%}"
        else:
            title += " (before training)"
        film.title.set_text(title)
        film.canvas.restore_region(film.background)
        for artist in film.dynamic():
            film.fig.draw_artist(artist)

    def figure(self, frame: int = -1) -> Figure:
        """One frame as a still Figure (default: the last)."""
        if not self.frames:
            raise ValueError("no frames recorded: pass the animation to fit(callbacks=[...])")
        film = self._setup()
        self._draw(film, self.frames[frame])
        for artist in film.dynamic():
            artist.set_animated(False)  # a still is drawn in full, by savefig
        return film.fig

    def save(self, path: str | os.PathLike, fps: float = 10) -> int:
        """Write the recorded frames as an animated GIF; returns the number of frames."""
        from PIL import Image

        if os.path.splitext(os.fspath(path))[1].lower() != ".gif":
            raise ValueError(f"animations are saved as .gif. Received: path={path!r}")
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 100:
            raise ValueError(f"fps must be a number in (0, 100]. Received: fps={fps!r}")
        if not self.frames:
            raise ValueError("no frames recorded: pass the animation to fit(callbacks=[...])")
        film = self._setup()
        images = []
        for frame in self.frames:
            self._draw(film, frame)
            rgba = np.asarray(film.canvas.buffer_rgba())
            # One adaptive palette per frame: the pale blends of the regions need their own
            # colours; without dithering the frames stay small and the boundary crisp.
            images.append(
                Image.fromarray(rgba[..., :3]).quantize(
                    colors=96, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
                )
            )
        duration = [round(1000 / fps)] * len(images)
        duration[-1] = max(duration[-1], 1500)  # linger on the trained network
        images[0].save(
            path, save_all=True, append_images=images[1:], duration=duration, loop=0, disposal=1
        )
        return len(images)
