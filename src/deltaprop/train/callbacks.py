"""What a fit reports and what may hook into it: History, Callback, EarlyStopping,
ModelCheckpoint, CSVLogger (one module, as Keras keeps its callbacks)."""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import string
from collections.abc import Collection
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path

import numpy as np

from deltaprop.core.network import FeedForward
from deltaprop.core.validation import check_positive_int
from deltaprop.io.atomic import write_atomically
from deltaprop.io.model_file import save as save_model

Array = np.ndarray


@dataclass
class History:
    """Per-epoch records of a ``fit``: ``loss`` is the mean of the epoch's batch losses, each
    taken before its update (as Keras and scikit-learn report it); ``val_*`` are measured on
    the validation data after the epoch (``val_epoch`` lists those epochs: all of them unless
    ``validation_freq`` picks some); ``accuracy`` lists are empty when not measured.
    ``penalty`` is the network's weight penalty's part of ``loss`` (empty without one),
    ``clipped`` the number of steps whose gradients were clipped (empty without clipping)."""

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None
    penalty: list[float] = field(default_factory=list)
    clipped: list[int] = field(default_factory=list)
    val_epoch: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Histories from before validation_freq (checkpoints of 0.1) validated every epoch.
        if self.val_loss and not self.val_epoch:
            self.val_epoch = list(self.epoch[: len(self.val_loss)])

    def append(self, logs: dict) -> None:
        for key, value in logs.items():
            getattr(self, key).append(value)
        if "val_loss" in logs:
            self.val_epoch.append(logs["epoch"])

    def as_dict(self) -> dict:
        """Plain data, ready for ``json.dump``."""
        return {
            "epoch": self.epoch,
            "loss": self.loss,
            "val_loss": self.val_loss,
            "accuracy": self.accuracy,
            "val_accuracy": self.val_accuracy,
            "lr": self.lr,
            "seconds": self.seconds,
            "stopped_early": self.stopped_early,
            "best_epoch": self.best_epoch,
            # Only when recorded, so that a history without them reads as before.
            **({"penalty": self.penalty} if self.penalty else {}),
            **({"clipped": self.clipped} if self.clipped else {}),
            "val_epoch": self.val_epoch,
        }

    def __len__(self) -> int:
        return len(self.epoch)


# Every name an epoch's logs may hold, in History's order (CSVLogger's columns).
LOG_NAMES = (
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "penalty",
    "clipped",
    "lr",
    "seconds",
)


class Callback:
    """Hooks into ``fit``. Override any of them; ``on_epoch_end`` returning True stops training.

    ``logs`` holds the epoch's numbers under History's names (epoch, loss, val_loss, ...);
    the ``val_*`` ones only on the epochs that are validated (see ``validation_freq``).
    ``on_batch_begin`` and ``on_batch_end`` run around every step only when a callback
    overrides them (the fast engines then stop between batches to call them). An
    ``on_batch_end`` that takes a ``logs`` parameter is also given the batch's numbers, as
    Keras's batch logs: ``{"size": examples, "weight": their summed sample weight (the size
    without weights), "penalty": the penalty's part of loss}``.
    """

    def expect_logs(self, names: Collection[str]) -> None:
        """Called by fit before anything changes, with every name its logs will hold on some
        epoch; raise ValueError to refuse a fit whose logs lack what this callback needs."""

    def on_train_begin(self, net: FeedForward, history: History) -> None:
        pass

    def on_batch_begin(self, net: FeedForward, epoch: int, batch: int) -> None:
        pass

    def on_batch_end(self, net: FeedForward, epoch: int, batch: int, loss: float) -> None:
        pass

    def on_epoch_end(self, net: FeedForward, epoch: int, logs: dict) -> bool | None:
        return None

    def on_train_end(self, net: FeedForward, history: History) -> None:
        pass


def overrides_on_batch_end(hook: object) -> bool:
    """Whether ``hook`` has an ``on_batch_end`` of its own, which must then run after every
    batch (Callback's own does nothing)."""
    return _overrides(hook, "on_batch_end")


def takes_batch_logs(hook: object) -> bool:
    """Whether ``hook.on_batch_end`` takes a ``logs`` parameter (the batch's numbers)."""
    try:
        return "logs" in inspect.signature(hook.on_batch_end).parameters  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):  # no method, or one with no signature
        return False


def overrides_on_batch_begin(hook: object) -> bool:
    """Whether ``hook`` has an ``on_batch_begin`` of its own, which must then run before every
    batch (Callback's own does nothing)."""
    return _overrides(hook, "on_batch_begin")


def overrides_expect_logs(hook: object) -> bool:
    """Whether ``hook`` checks the log names it needs itself (an ``expect_logs`` of its own)."""
    return _overrides(hook, "expect_logs")


def _overrides(hook: object, name: str) -> bool:
    method = getattr(hook, name, None)
    return method is not None and getattr(method, "__func__", None) is not vars(Callback)[name]


def expect_logs(hooks: Collection[object], names: Collection[str]) -> None:
    """Tell every callback that has ``expect_logs`` the names fit will log (each may refuse)."""
    for hook in hooks:
        method = getattr(hook, "expect_logs", None)
        if method is not None:
            method(tuple(names))


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs, and (by default) put back the weights of the best epoch.

    ``monitor="auto"`` watches ``val_loss`` when the fit has validation data, else ``loss``.
    With ``validation_freq``, the epochs without validation are not judged: ``patience``
    counts validated epochs (as Keras skips an epoch whose logs lack the monitor).
    """

    def __init__(
        self,
        patience: int = 10,
        monitor: str = "auto",
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
    ) -> None:
        self.patience = check_positive_int(patience, "patience")
        if monitor not in ("auto", "loss", "val_loss"):
            raise ValueError(
                f"monitor must be 'auto', 'loss' or 'val_loss'. Received: monitor={monitor!r}"
            )
        if not isinstance(min_delta, Real) or not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(
                f"min_delta must be a finite number >= 0. Received: min_delta={min_delta!r}"
            )
        self.monitor = monitor
        self.min_delta = float(min_delta)
        self.restore_best_weights = restore_best_weights
        self.watched: str | None = None  # the name monitored, once a fit has said what it logs

    def expect_logs(self, names: Collection[str]) -> None:
        key = self.monitor
        if key == "auto":
            key = "val_loss" if "val_loss" in names else "loss"
        if key not in names:
            raise ValueError(
                f"EarlyStopping(monitor={key!r}) needs validation data: pass validation_data "
                "or validation_split, or monitor='loss'"
            )
        self.watched = key

    def on_train_begin(self, net: FeedForward, history: History) -> None:
        self.best = math.inf
        self.best_epoch: int | None = None
        self.best_weights: list[Array] | None = None
        self.wait = 0

    def on_epoch_end(self, net: FeedForward, epoch: int, logs: dict) -> bool:
        key = self.watched or self.monitor
        if key == "auto":  # used outside fit, which would have said what it logs
            key = "val_loss" if "val_loss" in logs else "loss"
        if key not in logs:
            if self.watched is not None:
                return False  # an epoch without validation (validation_freq): not judged
            raise ValueError("EarlyStopping(monitor='val_loss') needs validation data")
        value = logs[key]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = [p.copy() for p in net.parameters()]
            return False
        self.wait += 1
        return self.wait >= self.patience

    def on_train_end(self, net: FeedForward, history: History) -> None:
        history.best_epoch = self.best_epoch
        if self.restore_best_weights and self.best_weights is not None:
            for param, best in zip(net.parameters(), self.best_weights):
                param[...] = best

    def settings(self) -> dict:
        """The arguments, as plain data (a resumed fit must repeat them)."""
        return {
            "patience": self.patience,
            "monitor": self.monitor,
            "min_delta": self.min_delta,
            "restore": bool(self.restore_best_weights),
        }

    def counters(self) -> dict:
        """Where the watch stands, as plain data: the best value, its epoch, epochs since."""
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def resume(self, counters: dict, best_weights: list[Array] | None) -> None:
        """Continue from ``counters`` and ``best_weights`` saved by an interrupted fit (after
        ``on_train_begin`` has reset them)."""
        vars(self).update(counters, best_weights=best_weights)


def early_stopping_from(spec: object) -> EarlyStopping | None:
    if spec is None or spec is False:
        return None
    if spec is True:
        return EarlyStopping()
    if isinstance(spec, EarlyStopping):
        return spec
    if isinstance(spec, int) and not isinstance(spec, bool):
        return EarlyStopping(patience=spec)
    raise ValueError(
        "early_stopping must be True/False, a patience (int) or an EarlyStopping. "
        f"Received: early_stopping={spec!r}"
    )


# ------------------------------------------------------------------ callbacks that write files
def monitor_mode(monitor: str, mode: str, owner: str) -> str:
    """ "min" or "max": ``mode``, or for "auto" Keras's rule (max for accuracies)."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max'. Received: mode={mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


def _known_names(names: Collection[str], owner: str, what: str, wanted: Collection[str]) -> None:
    missing = [name for name in wanted if name not in names]
    if missing:
        raise ValueError(
            f"{owner}: {what} {missing[0]!r}, which this fit does not log; it logs "
            f"{', '.join(names)} (val_* need validation data, accuracy a classifier)"
        )


class ModelCheckpoint(Callback):
    """Save the network (a model file, written atomically: :func:`deltaprop.save`) after
    epochs, as Keras's ModelCheckpoint.

    ``filepath`` may name any logged value in ``str.format`` fields, e.g.
    ``"model-{epoch:03d}-{val_loss:.4f}.dpm"``. ``save_best_only``: save only when
    ``monitor`` improved on the best so far (``mode`` "min", "max", or "auto": max for
    accuracies), starting from ``initial_value_threshold`` if given; a fixed ``filepath``
    then always holds the best model. Epochs whose logs lack the monitor or a field of the
    filepath (no validation on that epoch, see ``validation_freq``) save nothing. The file's
    metadata records ``{"checkpoint": {"epoch": e, monitor: value}}``. A resumed fit takes
    the best so far from its history. ``saved`` lists the paths written, in order.
    """

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_loss",
        mode: str = "auto",
        save_best_only: bool = False,
        initial_value_threshold: float | None = None,
        verbose: bool = False,
    ) -> None:
        if not isinstance(filepath, (str, os.PathLike)):
            raise ValueError(f"ModelCheckpoint: filepath must be a path. Received: {filepath!r}")
        self.filepath = os.fspath(filepath)
        try:
            self.fields = [f for _, f, _, _ in string.Formatter().parse(self.filepath) if f]
        except ValueError as exc:
            raise ValueError(f"ModelCheckpoint: filepath {self.filepath!r}: {exc}") from None
        if not isinstance(monitor, str):
            raise ValueError(f"ModelCheckpoint: monitor must be a name. Received: {monitor!r}")
        self.monitor, self.mode = monitor, monitor_mode(monitor, mode, "ModelCheckpoint")
        if initial_value_threshold is not None and not isinstance(initial_value_threshold, Real):
            raise ValueError(
                "ModelCheckpoint: initial_value_threshold must be a number or None. "
                f"Received: initial_value_threshold={initial_value_threshold!r}"
            )
        self.initial_value_threshold = initial_value_threshold
        self.save_best_only, self.verbose = bool(save_best_only), bool(verbose)
        self.saved: list[str] = []

    def expect_logs(self, names: Collection[str]) -> None:
        owner = "ModelCheckpoint"
        _known_names(names, owner, "filepath names", self.fields)
        if self.save_best_only:
            _known_names(names, owner, "monitor is", [self.monitor])
        try:
            self.filepath.format(**{name: 1 for name in names})
        except (ValueError, IndexError, KeyError) as exc:
            raise ValueError(f"ModelCheckpoint: filepath {self.filepath!r}: {exc}") from None
        folder = Path(self.filepath.format(**{name: 1 for name in names})).parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise ValueError(f"ModelCheckpoint: cannot write under {str(folder)!r}")

    def on_train_begin(self, net: FeedForward, history: History) -> None:
        threshold = self.initial_value_threshold
        self.best = (
            (math.inf if self.mode == "min" else -math.inf) if threshold is None else threshold
        )
        self.best_epoch: int | None = None
        self.saved = []
        seen = getattr(history, self.monitor, None)  # a resumed fit's epochs so far
        for value in seen if isinstance(seen, list) else ():
            if self._improves(value):
                self.best = value

    def _improves(self, value: float) -> bool:
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, net: FeedForward, epoch: int, logs: dict) -> None:
        fields = {**logs, "epoch": epoch}
        if any(name not in fields for name in self.fields):
            return None
        value = logs.get(self.monitor)
        if self.save_best_only:
            if value is None or not self._improves(value):
                return None
            self.best, self.best_epoch = value, epoch
        path = self.filepath.format(**fields)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        record = {"epoch": epoch} if value is None else {"epoch": epoch, self.monitor: value}
        save_model(net, path, metadata={"checkpoint": record})
        self.saved.append(path)
        if self.verbose:
            print(f"Epoch {epoch}: saved the model to {path} ({self.monitor}={value})")
        return None


class CSVLogger(Callback):
    """Write every epoch's logs as a row of a CSV file, as Keras's CSVLogger: a header of
    ``epoch`` and the names this fit logs, then one row per epoch (an empty field where a
    value is missing: ``val_*`` on epochs without validation).

    Rows are appended as the epochs end, each whole line in one write, so the file is
    readable while training runs and a killed process leaves whole rows. ``append=False``
    starts the file anew; ``append=True`` continues it (its header must match this fit's),
    and a fit resumed from a checkpoint first drops the rows of epochs after the
    checkpoint's, written by the run that was interrupted.
    """

    def __init__(
        self, filename: str | os.PathLike, separator: str = ",", append: bool = False
    ) -> None:
        if not isinstance(filename, (str, os.PathLike)):
            raise ValueError(f"CSVLogger: filename must be a path. Received: {filename!r}")
        if not isinstance(separator, str) or len(separator) != 1 or separator in '"\n\r.-':
            raise ValueError(
                f"CSVLogger: separator must be one character. Received: separator={separator!r}"
            )
        self.filename, self.separator, self.append = Path(filename), separator, bool(append)
        self.columns: list[str] | None = None

    def expect_logs(self, names: Collection[str]) -> None:
        self.columns = [name for name in LOG_NAMES if name in names or name == "epoch"]
        if not self.filename.parent.is_dir():
            raise ValueError(f"CSVLogger: no folder {str(self.filename.parent)!r} to write in")
        header = self._header_in_file()
        if self.append and header is not None and header != self._line(self.columns):
            raise ValueError(
                f"CSVLogger: {self.filename} has the columns {header.strip()!r}, this fit "
                f"logs {self.separator.join(self.columns)!r}; append to another file or "
                "pass append=False"
            )

    def _header_in_file(self) -> str | None:
        with contextlib.suppress(OSError), open(self.filename, encoding="utf-8") as f:
            return f.readline() or None
        return None

    def _line(self, values: list) -> str:
        text = [
            "" if v is None else repr(float(v)) if isinstance(v, float) else str(v) for v in values
        ]
        return self.separator.join(text) + "\n"

    def on_train_begin(self, net: FeedForward, history: History) -> None:
        if not self.append:
            write_atomically(self.filename, b"")
        elif len(history) and self._header_in_file() is not None:
            self._keep_rows_up_to(history.epoch[-1])
        self.needs_header = self._header_in_file() is None

    def _keep_rows_up_to(self, last_epoch: int) -> None:
        with open(self.filename, encoding="utf-8") as f:
            header, *rows = f.readlines()
        kept = [row for row in rows if int(row.split(self.separator, 1)[0]) <= last_epoch]
        if len(kept) < len(rows):
            write_atomically(self.filename, "".join([header, *kept]).encode())

    def on_epoch_end(self, net: FeedForward, epoch: int, logs: dict) -> None:
        columns = self.columns = self.columns or [name for name in LOG_NAMES if name in logs]
        lines = [self._line(columns)] if self.needs_header else []
        self.needs_header = False
        lines.append(self._line([epoch if c == "epoch" else logs.get(c) for c in columns]))
        # One write per row: readers and a killed process only ever see whole lines.
        with open(self.filename, "a", encoding="utf-8") as f:
            f.write("".join(lines))
        return None
