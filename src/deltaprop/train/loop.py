"""The fit loop: batches, shuffling, epochs, validation, early stopping, callbacks, guards.

With ``batch_size=1`` and ``SGD(lr=η)`` this is the seed's loop: for each training example,
forward it, compute the deltas and update every weight, w_ji ← w_ji + η δ_j z_i.

``_train_step`` below is that loop written with the readable reference (Network.forward,
backward, Optimizer.step): ``fit(engine="reference")``. By default an epoch runs on a fast
engine instead (fastpath.py: the online Numba kernel; minibatch.py: preallocated buffers and
fused updates), which computes the same numbers; everything around the epoch — shuffling,
validation, schedules, callbacks, history, the divergence guard — is shared.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from deltaprop.core.network import FeedForward, accuracy_of
from deltaprop.core.validation import check_fraction, check_positive_int
from deltaprop.errors import TrainingDivergedError
from deltaprop.optim.optimizers import SGD, Optimizer, get_optimizer
from deltaprop.train.callbacks import Callback, EarlyStopping, History, early_stopping_from
from deltaprop.train.engines.choose import (
    LOSS_NOT_FINITE,
    WEIGHT_NOT_FINITE,
    EpochResult,
    choose_engine,
    network_problem,
)

Array = np.ndarray


def _check_accuracy(accuracy: object) -> None:
    if accuracy not in (True, False, "auto"):
        raise ValueError(f"accuracy must be True, False or 'auto'. Received: accuracy={accuracy!r}")


def _wants_accuracy(net: FeedForward, T: Array, accuracy: object) -> bool:
    if accuracy in (True, False):
        return bool(accuracy)
    if net.loss_function.name != "mse":
        return True
    # Squared error on 0/1 targets (the seed's classifiers): one-hot rows or a single 0/1 column.
    binary = bool(np.all((T == 0) | (T == 1)))
    return binary and (T.shape[1] == 1 or bool(np.all(T.sum(axis=1) == 1)))


def _validation_part(
    net: FeedForward, X: Array, validation_data: object, validation_split: float
) -> tuple[Array | None, Array | None, int]:
    """Checked (X_val, T_val) when given, else how many examples validation_split sets aside."""
    if validation_data is not None and validation_split:
        raise ValueError("give validation_data or validation_split, not both")
    X_val = T_val = None
    n_val = 0
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (X_val, T_val)")
        X_val = net.check_inputs(validation_data[0], "X_val")
        T_val = net.check_targets(validation_data[1], X_val.shape[0], "T_val")
    elif validation_split:
        validation_split = check_fraction(validation_split, "validation_split")
        n_val = int(round(X.shape[0] * validation_split))
        if n_val < 1 or n_val >= X.shape[0]:
            raise ValueError(
                f"validation_split={validation_split} of {X.shape[0]} examples leaves "
                f"{n_val} for validation and {X.shape[0] - n_val} for training; both need >= 1"
            )
    return X_val, T_val, n_val


def fit(
    net: FeedForward,
    X: object,
    T: object,
    *,
    optimizer: Optimizer | str | dict | None = None,
    epochs: int = 10,
    batch_size: int | None = 32,
    shuffle: bool = True,
    validation_data: tuple[object, object] | None = None,
    validation_split: float = 0.0,
    early_stopping: bool | int | EarlyStopping | None = False,
    scheduler: object = None,
    callbacks: Sequence[Callback] = (),
    accuracy: bool | str = "auto",
    verbose: bool = False,
    engine: str = "auto",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    checkpoint_every_batches: int | None = None,
    resume: str | os.PathLike | None = None,
) -> History:
    """Train ``net`` on inputs X (n, n_in) and targets T by backpropagation.

    optimizer: an Optimizer, a name or a config dict; default ``SGD(lr=0.1)``.
    batch_size: 1 is online learning (update after every example, the seed's loop); None is
        the full batch; larger than the data is the full batch too.
    shuffle: draw a new order of the examples every epoch from the network's generator.
    validation_data: (X_val, T_val) measured after every epoch; or ``validation_split``, a
        fraction of the examples set aside at random (from the network's generator) instead.
    early_stopping: True (patience 10), a patience, or an :class:`EarlyStopping`.
    scheduler: a learning-rate schedule (:mod:`deltaprop.optim.schedules`) built on ``optimizer``;
        stepped after every epoch with the validation loss (or the training loss).
    accuracy: measure classification accuracy; "auto" does for cross-entropies and for
        squared error on 0/1 targets.
    verbose: show a progress bar with the loss and accuracy.
    engine: "auto" (default) trains on the fastest engine that can run this configuration;
        "reference" on the readable NumPy path (Network.forward/backward, Optimizer.step);
        "online" or "batch" demand that fast engine and raise ValueError if it cannot run.
        All give the same weights to rounding; see :mod:`deltaprop.train.engines.choose`.
    checkpoint: a file to write every ``checkpoint_every`` epochs (and, if given, every
        ``checkpoint_every_batches`` batches within an epoch), atomically: weights, optimizer
        and schedule state, the random generator, the position and the history.
    resume: a checkpoint written by this same training (same network, optimizer settings,
        data and arguments; anything else is refused, naming the difference) to continue
        from, up to ``epochs`` epochs in all. The result is bit for bit the result of an
        uninterrupted run (the wall-clock ``seconds`` aside). ``checkpoint`` defaults to it.

    Every argument is checked before any weight changes. If a step makes the loss or a
    weight non-finite, :class:`TrainingDivergedError` names the epoch and batch and the network
    keeps the weights it had before that step.
    """
    # ---- check everything first: a rejected call must leave the network untouched
    X = net.check_inputs(X)
    T = net.check_targets(T, X.shape[0])
    epochs = check_positive_int(epochs, "epochs")
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    opt = SGD(lr=0.1) if optimizer is None else get_optimizer(optimizer)
    if scheduler is not None:
        if not hasattr(scheduler, "step") or getattr(scheduler, "optimizer", opt) is not opt:
            raise ValueError(
                "scheduler must be a schedule built on the optimizer passed to fit, e.g. "
                "opt = dp.SGD(lr=0.1); fit(..., optimizer=opt, scheduler=dp.StepLR(opt, 10))"
            )
    stopper = early_stopping_from(early_stopping)
    hooks = list(callbacks)
    for hook in hooks:
        if not any(hasattr(hook, name) for name in vars(Callback) if name.startswith("on_")):
            raise ValueError(f"callbacks must be Callback objects. Received: {hook!r}")
    _check_accuracy(accuracy)
    X_val, T_val, n_val = _validation_part(net, X, validation_data, validation_split)
    n = X.shape[0] - n_val
    size = n if batch_size is None else min(batch_size, n)
    checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    if checkpoint_every_batches is not None:
        checkpoint_every_batches = check_positive_int(
            checkpoint_every_batches, "checkpoint_every_batches"
        )
    if checkpoint is None:
        checkpoint = resume
    if checkpoint_every_batches and checkpoint is None:
        raise ValueError("checkpoint_every_batches needs checkpoint=PATH")
    # Checkpoints within an epoch are written from the batch hook, which the online engine
    # (one call per epoch) does not have; a resumed run must choose as the first one did.
    chooser_hooks = hooks + ([_BatchWatcher()] if checkpoint_every_batches else [])
    chosen = choose_engine(net, opt, size, chooser_hooks, engine)
    saver = resumed = None
    if checkpoint is not None:
        from deltaprop.train.checkpointing import Checkpointer

        saver = Checkpointer(
            checkpoint,
            checkpoint_every,
            checkpoint_every_batches,
            _settings(
                X,
                T,
                X_val,
                T_val,
                n_val,
                batch_size,
                shuffle,
                accuracy,
                stopper,
                scheduler,
                chosen,
                checkpoint_every_batches,
            ),
        )
        if resume is not None:
            resumed = saver.resume(resume, net, opt, scheduler)
    if n_val:
        split = resumed.split if resumed is not None else net.rng.permutation(X.shape[0])
        X_val, T_val = X[split[:n_val]], T[split[:n_val]]
        X, T = X[split[n_val:]], T[split[n_val:]]
    measure_accuracy = _wants_accuracy(net, T, accuracy)
    if stopper is not None:
        hooks.append(stopper)

    run_epoch = _engine(chosen, net, X, T, opt, size, measure_accuracy)
    watchers = [hook for hook in hooks if hasattr(hook, "on_batch_end")]
    n_batches = -(-n // size)

    def on_batch(batch: int, loss: float, loss_sum: float, correct: float) -> None:
        for hook in watchers:
            hook.on_batch_end(net, epoch, batch, loss)
        if saver is not None and batch + 1 < n_batches:
            saver.after_batch(
                net,
                opt,
                scheduler,
                stopper,
                history,
                epoch,
                batch,
                loss_sum,
                correct,
                order,
                split if n_val else None,
            )

    history = History()
    for hook in hooks:
        _call(hook, "on_train_begin", net, history)
    first_epoch, first_batch, carry = 1, 0, (0.0, 0.0)
    if resumed is not None:
        history = History(**resumed.history)
        first_epoch, first_batch = resumed.epoch + 1, resumed.batch
        carry = (resumed.loss_sum, resumed.correct)
        if stopper is not None and resumed.early_stopping is not None:
            vars(stopper).update(resumed.early_stopping, best_weights=resumed.best_weights)
        if history.stopped_early:
            first_epoch = epochs + 1  # it had finished: nothing left to train
    watch = on_batch if watchers or checkpoint_every_batches else None

    bar = _progress_bar(epochs, first_epoch - 1) if verbose else _NoBar()
    try:
        for epoch in range(first_epoch, epochs + 1):
            started = time.perf_counter()
            lr_used = opt.lr
            if chosen != "reference" and network_problem(net) is not None:
                # A callback swapped in parameters the fast engines cannot update in place.
                chosen = "reference"
                run_epoch = _engine(chosen, net, X, T, opt, size, measure_accuracy)
            if first_batch:  # the rest of the epoch a checkpoint stopped in
                order = resumed.order
                result = run_epoch(order, watch, first_batch, *carry)
                first_batch = 0
            else:
                order = net.rng.permutation(n) if shuffle else None
                result = run_epoch(order, watch)
            loss_sum, correct, failed, what = result
            if failed is not None:
                _diverged(net, epoch, failed, what, opt)

            logs: dict = {"epoch": epoch, "loss": loss_sum / n, "lr": lr_used}
            if measure_accuracy:
                logs["accuracy"] = correct / n
            if X_val is not None:
                fp = net.forward(X_val)
                logs["val_loss"] = net.loss_of(fp, T_val)
                if measure_accuracy:
                    logs["val_accuracy"] = accuracy_of(fp.output, T_val, net.loss_function.name)
            if scheduler is not None:
                scheduler.step(logs.get("val_loss", logs["loss"]))
            logs["seconds"] = time.perf_counter() - started
            history.append(logs)
            bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k in _SHOWN}, refresh=False)
            bar.update(1)  # redraws at most every 0.1 s, with the postfix just set
            stop = False
            for hook in hooks:
                stop = bool(_call(hook, "on_epoch_end", net, epoch, dict(logs))) or stop
            if stop:
                history.stopped_early = epoch < epochs
            if saver is not None:
                saver.after_epoch(
                    net,
                    opt,
                    scheduler,
                    stopper,
                    history,
                    epoch,
                    stop or epoch == epochs,
                    split if n_val else None,
                )
            if stop:
                break
    finally:
        bar.close()
    for hook in hooks:
        _call(hook, "on_train_end", net, history)
    return history


_SHOWN = ("loss", "val_loss", "accuracy", "val_accuracy")


def _progress_bar(total: int, initial: int):
    # Imported here: tqdm.auto pulls in asyncio, a third of `import deltaprop` otherwise.
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="epoch", leave=True, dynamic_ncols=True)


class _NoBar:
    """Stands in for the progress bar when fit is quiet."""

    def set_postfix(self, *args: object, **kwargs: object) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class _BatchWatcher(Callback):
    """Tells the engine chooser that something runs after every batch (checkpoints)."""

    def on_batch_end(self, net: FeedForward, epoch: int, batch: int, loss: float) -> None:
        pass


def _settings(
    X,
    T,
    X_val,
    T_val,
    n_val,
    batch_size,
    shuffle,
    accuracy,
    stopper,
    scheduler,
    engine,
    every_batches,
) -> dict:
    """The fit arguments a resumed run must repeat to continue the same training."""
    from deltaprop.train.checkpointing import fingerprint

    return {
        "data": fingerprint(X, T),
        "validation": fingerprint(X_val, T_val) if X_val is not None else n_val,
        "batch_size": batch_size,
        "shuffle": bool(shuffle),
        "accuracy": accuracy if isinstance(accuracy, str) else bool(accuracy),
        "early_stopping": None
        if stopper is None
        else {
            "patience": stopper.patience,
            "monitor": stopper.monitor,
            "min_delta": stopper.min_delta,
            "restore": bool(stopper.restore_best_weights),
        },
        "scheduler": None if scheduler is None else scheduler.config(),
        "engine": engine,
        "checkpoint_every_batches": every_batches,
    }


def _call(hook: object, name: str, *args: object) -> object:
    method = getattr(hook, name, None)
    return method(*args) if method is not None else None


def _engine(
    name: str, net: FeedForward, X: Array, T: Array, opt: Optimizer, size: int, measure: bool
) -> Callable[..., EpochResult]:
    """The chosen engine's ``run_epoch(order, on_batch) -> EpochResult``."""
    if name == "online":
        from deltaprop.train.engines.choose import OnlineEngine

        return OnlineEngine(net, X, T, opt, measure).run_epoch
    if name == "batch":
        from deltaprop.train.engines.batch import BatchEngine

        return BatchEngine(net, X, T, opt, size, measure).run_epoch
    backup = [np.empty_like(p) for p in net.parameters()]

    def reference_epoch(
        order: Array | None,
        on_batch: Callable | None,
        first_batch: int = 0,
        loss_sum: float = 0.0,
        correct: float = 0.0,
    ) -> EpochResult:
        """The readable loop: Network.forward/backward and Optimizer.step, batch by batch."""
        n, params = X.shape[0], net.parameters()  # the arrays the layers hold now
        for batch, start in enumerate(range(first_batch * size, n, size), first_batch):
            rows = slice(start, start + size) if order is None else order[start : start + size]
            Xb, Tb = X[rows], T[rows]
            m = Xb.shape[0]
            batch_loss, outputs, what = _train_step(net, Xb, Tb, opt, params, backup)
            if what:
                return EpochResult(loss_sum, correct, batch, what)
            loss_sum += batch_loss * m
            if measure:
                correct += accuracy_of(outputs, Tb, net.loss_function.name) * m
            if on_batch is not None:
                on_batch(batch, batch_loss, loss_sum, correct)
        return EpochResult(loss_sum, correct)

    return reference_epoch


def _train_step(
    net: FeedForward, Xb: Array, Tb: Array, opt: Optimizer, params: list[Array], backup: list[Array]
) -> tuple[float, Array, str]:
    """One forward, backward and update on a batch; returns the batch loss before the update,
    the outputs, and "" or what went wrong (the weights are then those from before the step)."""
    with np.errstate(over="ignore", invalid="ignore"):
        fp = net.forward(Xb)
        loss = net.loss_of(fp, Tb)
        if not math.isfinite(loss):
            return loss, fp.output, LOSS_NOT_FINITE.format(loss)
        grads = [g for pair in net.gradients_from(fp, net.backward(fp, Tb)) for g in pair]
        for saved, param in zip(backup, params):
            np.copyto(saved, param)
        opt.step(params, grads)
        # A sum is non-finite whenever any term is, and costs one pass over the weights.
        if not all(math.isfinite(np.sum(p)) for p in params):
            for saved, param in zip(backup, params):
                np.copyto(param, saved)
            return loss, fp.output, WEIGHT_NOT_FINITE
    return loss, fp.output, ""


def _diverged(net: FeedForward, epoch: int, batch: int, what: str, opt: Optimizer) -> None:
    raise TrainingDivergedError(
        f"training diverged at epoch {epoch}, batch {batch}: {what}. The network keeps its "
        f"weights from before this step. Try a smaller learning rate (lr={opt.lr:g}) or "
        "scaling the inputs."
    )
