"""What a fit reports and what may hook into it: History, Callback, EarlyStopping."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real

import numpy as np

from deltaprop.core.network import FeedForward
from deltaprop.core.validation import check_positive_int

Array = np.ndarray


@dataclass
class History:
    """Per-epoch records of a ``fit``: ``loss`` is the mean of the epoch's batch losses, each
    taken before its update (as Keras and scikit-learn report it); ``val_*`` are measured on
    the validation data after the epoch; ``accuracy`` lists are empty when not measured.
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

    def append(self, logs: dict) -> None:
        for key, value in logs.items():
            getattr(self, key).append(value)

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
        }

    def __len__(self) -> int:
        return len(self.epoch)


class Callback:
    """Hooks into ``fit``. Override any of them; ``on_epoch_end`` returning True stops training.

    ``logs`` holds the epoch's numbers under History's names (epoch, loss, val_loss, ...).
    """

    def on_train_begin(self, net: FeedForward, history: History) -> None:
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
    method = getattr(hook, "on_batch_end", None)
    return method is not None and getattr(method, "__func__", None) is not Callback.on_batch_end


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs, and (by default) put back the weights of the best epoch."""

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

    def on_train_begin(self, net: FeedForward, history: History) -> None:
        self.best = math.inf
        self.best_epoch: int | None = None
        self.best_weights: list[Array] | None = None
        self.wait = 0

    def on_epoch_end(self, net: FeedForward, epoch: int, logs: dict) -> bool:
        key = self.monitor
        if key == "auto":
            key = "val_loss" if "val_loss" in logs else "loss"
        if key not in logs:
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
