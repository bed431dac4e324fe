"""Learning-rate schedules mirroring torch.optim.lr_scheduler.

A schedule wraps an optimizer and rewrites its ``lr`` once per epoch::

    opt = SGD(lr=0.1)
    sched = StepLR(opt, step_size=30)
    for epoch in range(100):
        train_one_epoch(opt)
        sched.step(val_loss)  # after the epoch; only ReduceLROnPlateau reads the metric

As in torch, constructing a schedule leaves ``optimizer.lr`` as it is (that value is
``base_lr``, the rate of epoch 0), and the k-th ``step`` sets the rate for epoch k. The
sequences equal torch's (tests/test_schedules.py compares them with recorded ones).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral
from typing import Any, ClassVar

import numpy as np

from deltaprop.core.validation import check_real, plain_scalar
from deltaprop.optim.optimizers import Optimizer

__all__ = ["Schedule", "StepLR", "ExponentialLR", "CosineAnnealingLR", "ReduceLROnPlateau"]


def _integer(owner: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(
            f"{owner}: {name} must be an integer >= {minimum}. Received: {name}={value!r}"
        )
    return int(value)


def _choice(owner: str, name: str, value: Any, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(
            f"{owner}: {name} must be one of {', '.join(map(repr, options))}. "
            f"Received: {name}={value!r}"
        )
    return value


class Schedule:
    """Base class. ``last_epoch`` counts the ``step`` calls; ``base_lr`` is the optimizer's
    lr when the schedule was built. Subclasses implement ``_next_lr`` (called after
    ``last_epoch`` is incremented) and list their constructor arguments in ``_HPARAMS``."""

    name: ClassVar[str] = "Schedule"
    _HPARAMS: ClassVar[tuple[str, ...]] = ()
    _STATE: ClassVar[tuple[str, ...]] = ("last_epoch", "base_lr", "_last_lr")

    def __init__(self, optimizer: Optimizer) -> None:
        if not hasattr(optimizer, "lr"):
            raise TypeError(
                f"{self.name}: optimizer must be an Optimizer (something with an lr attribute). "
                f"Received: {optimizer!r}"
            )
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0
        self._last_lr = self.base_lr

    def _next_lr(self) -> float:
        raise NotImplementedError

    def step(self, metric: float | None = None) -> None:
        """Advance one epoch and set ``optimizer.lr``; call after the epoch. ``metric`` is
        ignored except by ReduceLROnPlateau."""
        self.last_epoch += 1
        self.optimizer.lr = self._next_lr()
        self._last_lr = float(self.optimizer.lr)

    def get_last_lr(self) -> float:
        """The lr this schedule last set (``base_lr`` before the first ``step``)."""
        return self._last_lr

    def config(self) -> dict[str, Any]:
        """JSON-serialisable hyperparameters: ``{"name": ..., **hyperparameters}``."""
        return {"name": self.name, **{k: getattr(self, k) for k in self._HPARAMS}}

    def state_dict(self) -> dict[str, Any]:
        """``config()`` plus the counters; the optimizer (and its lr) is not included."""
        return {**self.config(), **{k.lstrip("_"): getattr(self, k) for k in self._STATE}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict``. Like torch, leaves ``optimizer.lr`` alone: restore the
        optimizer's own state for that."""
        owner = f"{self.name}.load_state_dict"
        state = {k: plain_scalar(v) for k, v in state.items()}
        if state.get("name") != self.name:
            raise ValueError(f"{owner}: state is for schedule {state.get('name')!r}")
        keys = [k.lstrip("_") for k in self._HPARAMS + self._STATE]
        missing = [k for k in keys if k not in state]
        if missing:
            raise ValueError(f"{owner}: state lacks {missing}")
        # A fresh instance validates the hyperparameters (building one leaves lr alone).
        fresh = type(self)(self.optimizer, **{k: state[k] for k in self._HPARAMS})
        for k in self._STATE:
            setattr(fresh, k, state[k.lstrip("_")])
        vars(self).update(vars(fresh))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._HPARAMS)
        return f"{self.name}({args})"


class StepLR(Schedule):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs (torch.optim.lr_scheduler.StepLR).

    lr_epoch = base_lr · gamma^(epoch // step_size), applied as torch does: the current
    lr is multiplied by gamma when epoch is a multiple of step_size.

    Args:
        optimizer: the optimizer whose ``lr`` is set.
        step_size: period of the decay, in epochs (integer >= 1).
        gamma: multiplicative factor (> 0).
    """

    name = "StepLR"
    _HPARAMS = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _integer(self.name, "step_size", step_size, 1)
        self.gamma = check_real(self.name, "gamma", gamma, 0.0, low_open=True)
        super().__init__(optimizer)

    def _next_lr(self) -> float:
        lr = self.optimizer.lr
        return lr * self.gamma if self.last_epoch % self.step_size == 0 else lr


class ExponentialLR(Schedule):
    """Multiply the lr by ``gamma`` every epoch (torch.optim.lr_scheduler.ExponentialLR).

    lr_epoch = base_lr · gamma^epoch, applied recursively as torch does.

    Args:
        optimizer: the optimizer whose ``lr`` is set.
        gamma: multiplicative factor (> 0).
    """

    name = "ExponentialLR"
    _HPARAMS = ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = check_real(self.name, "gamma", gamma, 0.0, low_open=True)
        super().__init__(optimizer)

    def _next_lr(self) -> float:
        return self.optimizer.lr * self.gamma


class CosineAnnealingLR(Schedule):
    """Cosine annealing from base_lr to eta_min over T_max epochs
    (torch.optim.lr_scheduler.CosineAnnealingLR)::

        lr_epoch = eta_min + (base_lr - eta_min) · (1 + cos(π · epoch / T_max)) / 2

    Past T_max the cosine carries on (the lr climbs back to base_lr at 2·T_max), as in
    torch. Torch updates the lr recursively, a form that equals this closed form when
    nothing else changes the lr. The closed form is used here: it does not accumulate
    rounding, and agrees with torch's sequence to 1e-15 absolute (checked by the tests).

    Args:
        optimizer: the optimizer whose ``lr`` is set.
        T_max: half-period of the cosine, in epochs (integer >= 1).
        eta_min: the lowest lr (>= 0).
    """

    name = "CosineAnnealingLR"
    _HPARAMS = ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max = _integer(self.name, "T_max", T_max, 1)
        self.eta_min = check_real(self.name, "eta_min", eta_min, 0.0)
        super().__init__(optimizer)

    def _next_lr(self) -> float:
        # Same expression, same operation order, as torch's _get_closed_form_lr.
        cos = math.cos(math.pi * self.last_epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + cos) / 2


class ReduceLROnPlateau(Schedule):
    """Multiply the lr by ``factor`` when a metric stops improving
    (torch.optim.lr_scheduler.ReduceLROnPlateau).

    Each ``step(metric)``: the metric is an improvement if it beats ``best`` by the
    threshold (mode "min", threshold_mode "rel": metric < best · (1 - threshold); "abs":
    metric < best - threshold; mode "max" mirrors this). An improvement sets ``best`` and
    zeroes the count of bad epochs, anything else (NaN included) adds one; epochs in
    cooldown do not count. When the count exceeds ``patience``:
    lr ← max(lr · factor, min_lr), skipped if that changes lr by no more than ``eps``;
    then the cooldown starts and the count restarts.

    Args:
        optimizer: the optimizer whose ``lr`` is set.
        mode: "min" (the metric should fall, e.g. a loss) or "max" (e.g. an accuracy).
        factor: multiplicative factor of the reduction, in [0, 1).
        patience: bad epochs tolerated before reducing (integer >= 0).
        threshold: least change counted as an improvement (>= 0).
        threshold_mode: "rel" (threshold relative to best) or "abs".
        cooldown: epochs to wait after a reduction before counting again (integer >= 0).
        min_lr: lower bound on the lr (>= 0).
        eps: reductions smaller than this are ignored (>= 0).
    """

    name = "ReduceLROnPlateau"
    _HPARAMS = (
        "mode",
        "factor",
        "patience",
        "threshold",
        "threshold_mode",
        "cooldown",
        "min_lr",
        "eps",
    )
    _STATE = Schedule._STATE + ("best", "num_bad_epochs", "cooldown_counter")

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        owner = self.name
        self.mode = _choice(owner, "mode", mode, ("min", "max"))
        self.factor = check_real(owner, "factor", factor, 0.0, 1.0, high_open=True)
        self.patience = _integer(owner, "patience", patience, 0)
        self.threshold = check_real(owner, "threshold", threshold, 0.0)
        self.threshold_mode = _choice(owner, "threshold_mode", threshold_mode, ("rel", "abs"))
        self.cooldown = _integer(owner, "cooldown", cooldown, 0)
        self.min_lr = check_real(owner, "min_lr", min_lr, 0.0)
        self.eps = check_real(owner, "eps", eps, 0.0)
        super().__init__(optimizer)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _is_better(self, a: float) -> bool:
        best, th = self.best, self.threshold
        if self.mode == "min":
            return a < best * (1.0 - th) if self.threshold_mode == "rel" else a < best - th
        return a > best * (th + 1.0) if self.threshold_mode == "rel" else a > best + th

    def step(self, metric: float | None = None) -> None:
        """Record the epoch's metric (required) and reduce the lr if it has plateaued."""
        if metric is None:
            raise ValueError(
                "ReduceLROnPlateau.step needs the monitored metric, e.g. "
                "scheduler.step(val_loss). Received: metric=None"
            )
        current = float(metric)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old_lr = float(self.optimizer.lr)
            new_lr = max(old_lr * self.factor, self.min_lr)
            if old_lr - new_lr > self.eps:
                self.optimizer.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = float(self.optimizer.lr)
