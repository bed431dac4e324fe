"""A fit's arguments, checked: the :class:`FitPlan` that fit runs.

Every argument is checked here, in the order fit has always checked them (so a call with
several bad arguments names the same one), before anything changes: no weight, no random draw.

Length: every fit argument is checked here, in one order; issue 15 added two groups (the
training controls' weights and clipping; batches from an iterable and validation_freq).
The iterable's checks are the natural piece to move to a module of their own next.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from deltaprop.core.losses import accuracy_rule
from deltaprop.core.network import FeedForward, is_sparse
from deltaprop.core.regularization import check_sample_weight
from deltaprop.core.validation import check_fraction, check_in_dtype, check_positive_int
from deltaprop.optim.optimizers import SGD, Optimizer, get_optimizer
from deltaprop.train.callbacks import (
    LOG_NAMES,
    Callback,
    EarlyStopping,
    early_stopping_from,
    overrides_expect_logs,
)
from deltaprop.train.callbacks import expect_logs as tell_callbacks
from deltaprop.train.checkpointing import Checkpointer, fingerprint
from deltaprop.train.controls import class_sample_weight, clipping_from
from deltaprop.train.engines.base import ArraySource, BatchSource, Clipping
from deltaprop.train.engines.choose import choose_engine
from deltaprop.train.engines.sources import IterableSource, one_shot

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
    """The examples an epoch trains on and those it is measured on after (arrays, or
    ``val_batches`` from an iterable), and the accuracy rule (None: accuracy is not
    measured)."""

    train: BatchSource
    X_val: Array | None
    T_val: Array | None
    accuracy: str | None
    W_val: Array | None = None
    val_batches: IterableSource | None = None


@dataclass(frozen=True)
class FitPlan:
    """Everything fit was asked to do, checked. X and T are all the examples, validation_split
    included; ``size`` is the rows per batch (``batch_size`` as given, for checkpoints). With
    batches from an iterable, X and T are None, ``stream`` is their source and ``size`` 0
    (the iterable's batches are the steps); ``val_stream`` likewise for validation data."""

    net: FeedForward
    X: Array | None
    T: Array | None
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

    accuracy_rule: str | None = None
    stream: IterableSource | None = None
    val_stream: IterableSource | None = None
    validation_freq: int | frozenset = 1

    @property
    def validated(self) -> bool:
        """Whether the fit has validation data (arrays, a split or an iterable)."""
        return self.X_val is not None or self.n_val > 0 or self.val_stream is not None

    def validates(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (1-based) is measured on the validation data."""
        return self.validated and _validated(self.validation_freq, epoch)

    def logged_names(self) -> list[str]:
        """The names this fit's epoch logs hold (the val_* ones on validated epochs only)."""
        measured = self.accuracy_rule is not None
        skip = {"accuracy", "val_accuracy"} if not measured else set()
        if not self.net.has_penalty:
            skip.add("penalty")
        if self.clip is None:
            skip.add("clipped")
        if not self.validated:
            skip |= {"val_loss", "val_accuracy"}
        return [name for name in LOG_NAMES if name not in skip]

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
            iterable=self.stream is not None,
            sparse_inputs=self.stream is None and is_sparse(self.X),
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
        settings = {
            "data": fingerprint(self.X, self.T) if self.stream is None else ITERABLE,
            "validation": fingerprint(self.X_val, self.T_val)
            if self.X_val is not None
            else ITERABLE
            if self.val_stream is not None
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
        if self.validation_freq != 1:  # only then: checkpoints from before it still resume
            freq = self.validation_freq
            settings["validation_freq"] = freq if isinstance(freq, int) else sorted(freq)
        return settings

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
        rule = self.accuracy_rule
        if self.stream is not None:
            return Examples(self.stream, X_val, T_val, rule, W_val, self.val_stream)
        if self.n_val:
            X_val, T_val = X[split[: self.n_val]], T[split[: self.n_val]]
            X, T = X[split[self.n_val :]], T[split[self.n_val :]]
            if W is not None:
                W_val, W = W[split[: self.n_val]], W[split[self.n_val :]]
                W = _counting(W, "the training examples (after validation_split)")
                W_val = _counting(W_val, "the validation_split examples")
        # C-contiguous targets: the fused kernels read T's rows (no copy when they are).
        T = np.ascontiguousarray(T)
        return Examples(ArraySource(X, T, W), X_val, T_val, rule, W_val, self.val_stream)


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
    validation_freq: int | Collection[int] = 1,
) -> FitPlan:
    """Check fit's arguments (see :func:`deltaprop.train.loop.fit`) into a plan; raises
    ValueError naming the first bad one. The engine is checked by the chooser."""
    X, T, stream = _training_data(net, X, T)
    epochs = check_positive_int(epochs, "epochs")
    _check_readable(stream, epochs, f"epochs={epochs}")
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    opt = SGD(lr=0.1) if optimizer is None else get_optimizer(optimizer)
    _check_scheduler(scheduler, opt)
    stopper = early_stopping_from(early_stopping)
    hooks = _checked_callbacks(callbacks)
    if accuracy not in (True, False, "auto"):
        raise ValueError(f"accuracy must be True, False or 'auto'. Received: accuracy={accuracy!r}")
    val_stream = _validation_batches(net, validation_data)
    if val_stream is not None:
        validation_data = None
    X_val, T_val, n_val = _validation_part(net, X, validation_data, validation_split)
    W, W_val = _example_weights(net, X, T, sample_weight, class_weight, validation_data, X_val)
    clip = clipping_from(clip_norm, clip_value)
    freq = _checked_validation_freq(validation_freq)
    if val_stream is not None:
        passes = sum(_validated(freq, e) for e in range(1, epochs + 1))
        _check_readable(val_stream, passes, f"validated on {passes} epochs")
    saving = _checkpoint_plan(checkpoint, checkpoint_every, checkpoint_every_batches, resume)
    validating = X_val is not None or n_val > 0 or val_stream is not None
    zero_one = _all_zero_or_one(T)
    _check_before_any_change(net, T, zero_one, stopper, hooks, validating, saving)
    plan = FitPlan(
        net=net,
        X=X,
        T=T,
        epochs=epochs,
        batch_size=batch_size,
        size=_rows_per_batch(X, n_val, batch_size),
        shuffle=shuffle and stream is None,
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
        accuracy_rule=_accuracy_rule(net, T, zero_one, accuracy),
        stream=stream,
        val_stream=val_stream,
        validation_freq=freq,
    )
    tell_callbacks(plan.hooks, plan.logged_names())
    return plan


def _rows_per_batch(X: Array | None, n_val: int, batch_size: int | None) -> int:
    """Rows per step: ``batch_size``, at most the training examples (None: all of them); 0
    for batches from an iterable, which are the steps as they come."""
    if X is None:
        return 0
    n = X.shape[0] - n_val
    return n if batch_size is None else min(batch_size, n)


# ------------------------------------------------------------------ batches from an iterable
ITERABLE = "batches from an iterable"  # what a checkpoint records of such data


def _training_data(
    net: FeedForward, X: object, T: object
) -> tuple[Array | None, Array | None, IterableSource | None]:
    """Checked arrays (X, T, None); or, with T omitted, (None, None, the source of the batches
    that X, an iterable, yields)."""
    if T is not None:
        X = net.check_inputs(X)
        return X, _targets(net, T, X.shape[0], "T"), None
    if isinstance(X, (np.ndarray, str, bytes, dict)) or not hasattr(X, "__iter__"):
        raise ValueError(
            "fit needs targets: fit(X, T) with arrays, or fit(data) with an iterable of "
            f"(X, T) or (X, T, w) batches. Received: fit({type(X).__name__}) without T"
        )
    return None, None, IterableSource(X, net, "data")


def _check_readable(stream: IterableSource | None, passes: int, why: str) -> None:
    """Refuse an iterator (readable once) that would have to be read ``passes`` > 1 times."""
    if stream is not None and passes > 1 and one_shot(stream.data):
        raise ValueError(
            f"{stream.name} is an iterator ({type(stream.data).__name__}), which can be read "
            f"only once, but this fit reads it {passes} times ({why}): pass a re-iterable "
            "(a list of batches, a DataLoader, an object whose __iter__ starts a new pass, "
            "e.g. a class whose __iter__ is a generator function)"
        )


def _validation_batches(net: FeedForward, validation_data: object) -> IterableSource | None:
    """The source of validation batches when ``validation_data`` is an iterable of them:
    anything but a tuple or list of 2 or 3 arrays (X_val, T_val[, w_val]) whose first item is
    not itself a batch (a tuple)."""
    if validation_data is None or isinstance(validation_data, (np.ndarray, str, bytes, dict)):
        return None
    if isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3):
        if not isinstance(validation_data[0], tuple):
            return None
    if not hasattr(validation_data, "__iter__"):
        return None  # _validation_part refuses it
    return IterableSource(validation_data, net, "validation_data")


def _checked_validation_freq(freq: object) -> int | frozenset:
    """Keras's validation_freq: an int N (every N-th epoch) or a collection of epochs."""
    if isinstance(freq, Integral) and not isinstance(freq, bool):
        return check_positive_int(freq, "validation_freq")
    if isinstance(freq, Collection) and not isinstance(freq, (str, bytes)) and freq:
        epochs = list(freq)
        if all(isinstance(e, Integral) and not isinstance(e, bool) and e >= 1 for e in epochs):
            return frozenset(int(e) for e in epochs)
    raise ValueError(
        "validation_freq must be an integer >= 1 (validate every N-th epoch) or a non-empty "
        f"collection of epochs (1-based, e.g. [1, 5, 10]). Received: validation_freq={freq!r}"
    )


def _validated(freq: int | frozenset, epoch: int) -> bool:
    return epoch % freq == 0 if isinstance(freq, int) else epoch in freq


def _targets(net: FeedForward, T: object, n_examples: int, name: str) -> Array:
    """The checked targets in the network's dtype; ValueError naming a value that the cast
    made infinite (1e39 in float32), which training would only report as a divergence."""
    with np.errstate(over="ignore"):  # an overflow is reported below, by value
        checked = net.check_targets(T, n_examples, name)
    check_in_dtype(T, checked, name)
    return checked


def _check_before_any_change(
    net: FeedForward,
    T: Array | None,
    zero_one: bool,
    stopper: EarlyStopping | None,
    hooks: list,
    validating: bool,
    saving: CheckpointPlan | None,
) -> None:
    """What would otherwise fail only after the first epoch changed the weights and the
    generator: a monitor of validation numbers without validation data, a checkpoint path
    that cannot be written, a classification with one class."""
    for hook in [*hooks, stopper]:
        if overrides_expect_logs(hook):
            continue  # it checks the names it needs itself (see Callback.expect_logs)
        monitor = getattr(hook, "monitor", None)
        if isinstance(monitor, str) and monitor.startswith("val_") and not validating:
            raise ValueError(
                f"{type(hook).__name__}(monitor={monitor!r}) needs validation data; pass "
                "validation_data=(X_val, T_val) or validation_split"
            )
    if saving is not None:
        check_writable_file(saving.path, "checkpoint")
    if T is not None:  # batches from an iterable: their classes are not seen up front
        _check_classes(net, T, zero_one)


def _all_zero_or_one(T: Array | None) -> bool:
    """Whether every target is 0 or 1 (False for targets not seen yet, from an iterable):
    one scan of T, which the class check and the accuracy rule share (5 us on digits'
    one-hot targets, and it was made three times a fit)."""
    return T is not None and bool(np.all((T == 0) | (T == 1)))


def _check_classes(net: FeedForward, T: Array, zero_one: bool) -> None:
    """ValueError if the targets are classes (one-hot rows, or one 0/1 column) and every
    example has the same one: there is nothing to learn to tell apart. ``zero_one``: every
    target is 0 or 1."""
    if T.shape[0] < 2 or not zero_one or not _wants_accuracy(net, T, zero_one, "auto"):
        return
    labels = T.argmax(axis=1) if T.shape[1] > 1 else T[:, 0]
    if labels.min() == labels.max():  # one class (np.unique's hashing took 30 us a fit)
        raise ValueError(
            f"T: every one of the {T.shape[0]} examples has the class {int(labels[0])}; "
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


def _example_weights(
    net: FeedForward,
    X: Array | None,
    T: Array | None,
    sample_weight: object,
    class_weight: object,
    validation_data: object,
    X_val: Array | None,
) -> tuple[Array | None, Array | None]:
    """The training examples' weights (sample_weight times class_weight's) and the
    validation examples'; batches from an iterable carry their own, as (X, T, w)."""
    if X is None or T is None:
        if sample_weight is not None or class_weight is not None:
            raise ValueError(
                "sample_weight and class_weight weigh arrays' rows; batches from an iterable "
                "carry their weights themselves: yield (X, T, w)"
            )
        return None, _validation_weights(net, validation_data, X_val)
    W = check_sample_weight(sample_weight, X.shape[0])
    if class_weight is not None:
        by_class = class_sample_weight(class_weight, T, net.loss_function.name)
        W = by_class if W is None else W * by_class
    return W, _validation_weights(net, validation_data, X_val)


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
    if X is None and validation_split:
        raise ValueError(
            "validation_split sets examples of arrays aside; with batches from an iterable "
            "pass validation_data (arrays or an iterable of batches)"
        )
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


def _accuracy_rule(
    net: FeedForward, T: Array | None, zero_one: bool, accuracy: object
) -> str | None:
    """The accuracy rule fit measures by, or None: not measured."""
    if not _wants_accuracy(net, T, zero_one, accuracy):
        return None
    return accuracy_rule(net.loss_function.name, net.n_outputs)


def _wants_accuracy(net: FeedForward, T: Array | None, zero_one: bool, accuracy: object) -> bool:
    if accuracy in (True, False):
        return bool(accuracy)
    if net.loss_function.name != "mse":
        return True
    if T is None:  # batches from an iterable: targets unseen yet; accuracy=True asks for it
        return False
    # Squared error on 0/1 targets (the seed's classifiers): one-hot rows or a single 0/1 column.
    if not zero_one or T.shape[1] == 1:
        return zero_one
    # Rows of 0s and 1s sum exactly in any order; a product with ones takes 2 us where
    # T.sum(axis=1), a reduction over each short row, took 28 us (on digits' targets).
    return bool(np.all(T @ np.ones(T.shape[1], T.dtype) == 1))
