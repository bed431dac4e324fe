"""A fit's arguments, checked: the :class:`FitPlan` that fit runs.

Every argument is checked here, in the order fit has always checked them (so a call with
several bad arguments names the same one), before anything changes: no weight, no random draw.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deltaprop.core.losses import accuracy_rule
from deltaprop.core.network import FeedForward
from deltaprop.core.regularization import check_sample_weight
from deltaprop.core.validation import check_fraction, check_in_dtype, check_positive_int
from deltaprop.optim.optimizers import SGD, Optimizer, get_optimizer
from deltaprop.train.callbacks import Callback, EarlyStopping, early_stopping_from
from deltaprop.train.checkpointing import Checkpointer, fingerprint
from deltaprop.train.controls import class_sample_weight, clipping_from
from deltaprop.train.engines.base import ArraySource, Clipping
from deltaprop.train.engines.choose import choose_engine

Array = np.ndarray


@dataclass(frozen=True)
class CheckpointPlan:
    """Where and how often a fit writes checkpoints, and the one it resumes from."""

    path: str | os.PathLike
    every: int
    every_batches: int | None
    resume: str | os.PathLike | None


@dataclass(frozen=True)
class Examples:
    """The examples an epoch trains on and those it is measured on after, and the accuracy
    rule (None: accuracy is not measured)."""

    train: ArraySource
    X_val: Array | None
    T_val: Array | None
    accuracy: str | None
    W_val: Array | None = None


@dataclass(frozen=True)
class FitPlan:
    """Everything fit was asked to do, checked. X and T are all the examples, validation_split
    included; ``size`` is the rows per batch (``batch_size`` as given, for checkpoints)."""

    net: FeedForward
    X: Array
    T: Array
    epochs: int
    batch_size: int | None
    size: int
    shuffle: bool
    optimizer: Optimizer
    scheduler: object
    stopper: EarlyStopping | None
    callbacks: list
    accuracy: bool | str
    X_val: Array | None
    T_val: Array | None
    n_val: int
    engine: str
    checkpoint: CheckpointPlan | None
    verbose: bool
    W: Array | None = None
    W_val: Array | None = None
    clip: Clipping | None = None

    def controls(self) -> list[str]:
        """The fit's own training controls in words (the network's dropout and penalties
        aside), for the engine chooser."""
        named = []
        if self.W is not None:
            named.append("per-example weights (sample_weight, class_weight)")
        if self.clip is not None:
            named.append("gradient clipping")
        return named

    @property
    def hooks(self) -> list:
        """The callbacks fit calls: the caller's, then early stopping's."""
        return self.callbacks + ([self.stopper] if self.stopper is not None else [])

    @property
    def batch_checkpoints(self) -> bool:
        """Whether checkpoints are written within epochs."""
        return self.checkpoint is not None and self.checkpoint.every_batches is not None

    def choose_engine(self) -> str:
        """The engine this fit runs (:func:`deltaprop.train.engines.choose.choose_engine`);
        ValueError if the one requested cannot run it."""
        return choose_engine(
            self.net,
            self.optimizer,
            self.size,
            self.callbacks,
            self.engine,
            batch_checkpoints=self.batch_checkpoints,
            controls=self.controls(),
        )

    def checkpointer(self, engine: str) -> Checkpointer | None:
        """The checkpoint writer for this fit on ``engine``, None without checkpoints."""
        if self.checkpoint is None:
            return None
        every, every_batches = self.checkpoint.every, self.checkpoint.every_batches
        return Checkpointer(self.checkpoint.path, every, every_batches, self.settings(engine))

    def settings(self, engine: str) -> dict:
        """The fit arguments a resumed run must repeat to continue the same training."""
        stopper, scheduler = self.stopper, self.scheduler
        return {
            "data": fingerprint(self.X, self.T),
            "validation": fingerprint(self.X_val, self.T_val)
            if self.X_val is not None
            else self.n_val,
            "batch_size": self.batch_size,
            "shuffle": bool(self.shuffle),
            "accuracy": self.accuracy if isinstance(self.accuracy, str) else bool(self.accuracy),
            "early_stopping": None if stopper is None else stopper.settings(),
            "scheduler": None if scheduler is None else scheduler.config(),  # type: ignore[attr-defined]
            "engine": engine,
            "checkpoint_every_batches": self.checkpoint.every_batches if self.checkpoint else None,
            **self.control_settings(),
        }

    def control_settings(self) -> dict:
        """The training controls a resumed run must repeat (none: nothing, so that
        checkpoints written before the controls existed still match)."""
        out: dict = {}
        if self.W is not None:
            out["sample_weight"] = fingerprint(self.W)
        if self.W_val is not None:
            out["validation_weight"] = fingerprint(self.W_val)
        if self.clip is not None:
            out["clip_norm"], out["clip_value"] = self.clip.norm, self.clip.value
        return out

    def examples(self, split: Array | None) -> Examples:
        """The training and validation examples, ``split`` (a permutation of the rows) setting
        validation_split's examples aside."""
        X, T, X_val, T_val = self.X, self.T, self.X_val, self.T_val
        W, W_val = self.W, self.W_val
        if self.n_val:
            X_val, T_val = X[split[: self.n_val]], T[split[: self.n_val]]
            X, T = X[split[self.n_val :]], T[split[self.n_val :]]
            if W is not None:
                W_val, W = W[split[: self.n_val]], W[split[self.n_val :]]
                W = _counting(W, "the training examples (after validation_split)")
                W_val = _counting(W_val, "the validation_split examples")
        rule = None
        if _wants_accuracy(self.net, T, self.accuracy):
            rule = accuracy_rule(self.net.loss_function.name, self.net.n_outputs)
        return Examples(ArraySource(X, T, W), X_val, T_val, rule, W_val)


def plan_fit(
    net: FeedForward,
    X: object,
    T: object,
    *,
    optimizer: Optimizer | str | dict | None,
    epochs: int,
    batch_size: int | None,
    shuffle: bool,
    validation_data: tuple[object, object] | None,
    validation_split: float,
    early_stopping: bool | int | EarlyStopping | None,
    scheduler: object,
    callbacks: Sequence[Callback],
    accuracy: bool | str,
    verbose: bool,
    engine: str,
    checkpoint: str | os.PathLike | None,
    checkpoint_every: int,
    checkpoint_every_batches: int | None,
    resume: str | os.PathLike | None,
    sample_weight: object = None,
    class_weight: object = None,
    clip_norm: float | None = None,
    clip_value: float | None = None,
) -> FitPlan:
    """Check fit's arguments (see :func:`deltaprop.train.loop.fit`) into a plan; raises
    ValueError naming the first bad one. The engine is checked by the chooser."""
    X = net.check_inputs(X)
    T = _targets(net, T, X.shape[0], "T")
    epochs = check_positive_int(epochs, "epochs")
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    opt = SGD(lr=0.1) if optimizer is None else get_optimizer(optimizer)
    _check_scheduler(scheduler, opt)
    stopper = early_stopping_from(early_stopping)
    hooks = _checked_callbacks(callbacks)
    if accuracy not in (True, False, "auto"):
        raise ValueError(f"accuracy must be True, False or 'auto'. Received: accuracy={accuracy!r}")
    X_val, T_val, n_val = _validation_part(net, X, validation_data, validation_split)
    W = check_sample_weight(sample_weight, X.shape[0])
    if class_weight is not None:
        by_class = class_sample_weight(class_weight, T, net.loss_function.name)
        W = by_class if W is None else W * by_class
    W_val = _validation_weights(net, validation_data, X_val)
    clip = clipping_from(clip_norm, clip_value)
    n = X.shape[0] - n_val
    saving = _checkpoint_plan(checkpoint, checkpoint_every, checkpoint_every_batches, resume)
    _check_before_any_change(net, T, stopper, hooks, X_val is not None or n_val > 0, saving)
    return FitPlan(
        net=net,
        X=X,
        T=T,
        epochs=epochs,
        batch_size=batch_size,
        size=n if batch_size is None else min(batch_size, n),
        shuffle=shuffle,
        optimizer=opt,
        scheduler=scheduler,
        stopper=stopper,
        callbacks=hooks,
        accuracy=accuracy,
        X_val=X_val,
        T_val=T_val,
        n_val=n_val,
        engine=engine,
        checkpoint=saving,
        verbose=verbose,
        W=W,
        W_val=W_val,
        clip=clip,
    )


def _targets(net: FeedForward, T: object, n_examples: int, name: str) -> Array:
    """The checked targets in the network's dtype; ValueError naming a value that the cast
    made infinite (1e39 in float32), which training would only report as a divergence."""
    with np.errstate(over="ignore"):  # an overflow is reported below, by value
        checked = net.check_targets(T, n_examples, name)
    check_in_dtype(T, checked, name)
    return checked


def _check_before_any_change(
    net: FeedForward,
    T: Array,
    stopper: EarlyStopping | None,
    hooks: list,
    validating: bool,
    saving: CheckpointPlan | None,
) -> None:
    """What would otherwise fail only after the first epoch changed the weights and the
    generator: a monitor of validation numbers without validation data, a checkpoint path
    that cannot be written, a classification with one class."""
    for hook in [*hooks, stopper]:
        monitor = getattr(hook, "monitor", None)
        if isinstance(monitor, str) and monitor.startswith("val_") and not validating:
            raise ValueError(
                f"{type(hook).__name__}(monitor={monitor!r}) needs validation data; pass "
                "validation_data=(X_val, T_val) or validation_split"
            )
    if saving is not None:
        check_writable_file(saving.path, "checkpoint")
    _check_classes(net, T)


def _check_classes(net: FeedForward, T: Array) -> None:
    """ValueError if the targets are classes (one-hot rows, or one 0/1 column) and every
    example has the same one: there is nothing to learn to tell apart."""
    if T.shape[0] < 2 or not _wants_accuracy(net, T, "auto"):
        return
    one_hot = T.shape[1] > 1 and bool(np.all((T == 0) | (T == 1)))
    binary = T.shape[1] == 1 and bool(np.all((T == 0) | (T == 1)))
    if not (one_hot or binary):
        return
    classes = np.unique(T.argmax(axis=1) if one_hot else T[:, 0])
    if classes.size == 1:
        raise ValueError(
            f"T: every one of the {T.shape[0]} examples has the class {int(classes[0])}; "
            "a classifier needs examples of at least 2 classes"
        )


def check_writable_file(path: str | os.PathLike, what: str) -> None:
    """ValueError unless ``path`` names a file that can be written: not a folder, in an
    existing folder this process may create files in."""
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        raise ValueError(f"{what}={target!r} is a folder; expected the path of a file")
    if not os.path.isdir(folder):
        raise ValueError(f"{what}={target!r}: its folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{what}={target!r}: its folder {folder!r} is not writable")


def _validation_weights(
    net: FeedForward, validation_data: object, X_val: Array | None
) -> Array | None:
    """The weights of validation_data's (X_val, T_val, w_val), None for a pair."""
    if X_val is None or len(validation_data) != 3:  # type: ignore[arg-type]
        return None
    w_val = validation_data[2]  # type: ignore[index]
    return check_sample_weight(w_val, X_val.shape[0], "validation sample weights")


def _counting(W: Array, what: str) -> Array:
    if not np.any(W > 0):
        raise ValueError(f"the sample weights of {what} are all zero; some must count")
    return W


def _check_scheduler(scheduler: object, opt: Optimizer) -> None:
    if scheduler is None:
        return
    if not hasattr(scheduler, "step") or getattr(scheduler, "optimizer", opt) is not opt:
        raise ValueError(
            "scheduler must be a schedule built on the optimizer passed to fit, e.g. "
            "opt = dp.SGD(lr=0.1); fit(..., optimizer=opt, scheduler=dp.StepLR(opt, 10))"
        )


def _checked_callbacks(callbacks: Sequence[Callback]) -> list:
    hooks = list(callbacks)
    for hook in hooks:
        if not any(hasattr(hook, name) for name in vars(Callback) if name.startswith("on_")):
            raise ValueError(f"callbacks must be Callback objects. Received: {hook!r}")
    return hooks


def _validation_part(
    net: FeedForward, X: Array, validation_data: object, validation_split: float
) -> tuple[Array | None, Array | None, int]:
    """Checked (X_val, T_val) when given, else how many examples validation_split sets aside."""
    if validation_data is not None and validation_split:
        raise ValueError("give validation_data or validation_split, not both")
    X_val = T_val = None
    n_val = 0
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(
                "validation_data must be a pair (X_val, T_val) or a triple (X_val, T_val, "
                f"w_val). Received: {type(validation_data).__name__}"
            )
        X_val = net.check_inputs(validation_data[0], "X_val")
        T_val = _targets(net, validation_data[1], X_val.shape[0], "T_val")
    elif validation_split:
        validation_split = check_fraction(validation_split, "validation_split")
        n_val = int(round(X.shape[0] * validation_split))
        if n_val < 1 or n_val >= X.shape[0]:
            raise ValueError(
                f"validation_split={validation_split} of {X.shape[0]} examples leaves "
                f"{n_val} for validation and {X.shape[0] - n_val} for training; both need >= 1"
            )
    return X_val, T_val, n_val


def _checkpoint_plan(
    checkpoint: str | os.PathLike | None,
    every: int,
    every_batches: int | None,
    resume: str | os.PathLike | None,
) -> CheckpointPlan | None:
    every = check_positive_int(every, "checkpoint_every")
    if every_batches is not None:
        every_batches = check_positive_int(every_batches, "checkpoint_every_batches")
    if checkpoint is None:
        checkpoint = resume
    if every_batches and checkpoint is None:
        raise ValueError("checkpoint_every_batches needs checkpoint=PATH")
    return None if checkpoint is None else CheckpointPlan(checkpoint, every, every_batches, resume)


def _wants_accuracy(net: FeedForward, T: Array, accuracy: object) -> bool:
    if accuracy in (True, False):
        return bool(accuracy)
    if net.loss_function.name != "mse":
        return True
    # Squared error on 0/1 targets (the seed's classifiers): one-hot rows or a single 0/1 column.
    binary = bool(np.all((T == 0) | (T == 1)))
    return binary and (T.shape[1] == 1 or bool(np.all(T.sum(axis=1) == 1)))
