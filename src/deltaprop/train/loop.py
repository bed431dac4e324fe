"""The fit loop: batches, shuffling, epochs, validation, early stopping, callbacks, guards.

With ``batch_size=1`` and ``SGD(lr=η)`` this is the seed's loop: for each training example,
forward it, compute the deltas and update every weight, w_ji ← w_ji + η δ_j z_i.

fit runs in named steps: check the arguments into a plan (plan.py), choose the engine
(engines/choose.py), start from a fresh or a resumed state (state.py), then train epoch after
epoch. An engine trains one epoch (engines/reference.py is the readable loop over
Network.forward/backward and Optimizer.step; the fast engines compute the same numbers);
everything around the epoch — shuffling, validation, schedules, callbacks, history,
checkpoints — is here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Sequence
from typing import Any

from deltaprop.core.losses import fraction_right
from deltaprop.core.network import FeedForward
from deltaprop.errors import TrainingDivergedError
from deltaprop.optim.optimizers import Optimizer
from deltaprop.optim.schedules import ReduceLROnPlateau
from deltaprop.train.callbacks import (
    Callback,
    EarlyStopping,
    History,
    overrides_on_batch_begin,
    overrides_on_batch_end,
    takes_batch_logs,
)
from deltaprop.train.checkpointing import Checkpointer
from deltaprop.train.engines.base import (
    BatchNumbers,
    BatchSource,
    Engine,
    EpochResult,
    Workload,
    raise_if_diverged,
)
from deltaprop.train.engines.choose import engine_for_epoch, make_engine
from deltaprop.train.engines.sources import IterableSource, ObservedSource, evaluate_batches
from deltaprop.train.plan import Examples, FitPlan, plan_fit
from deltaprop.train.state import FitState

# deltaprop.training (0.1's module, now this one) offered these too.
__all__ = ["Callback", "EarlyStopping", "History", "TrainingDivergedError", "fit"]


def fit(
    net: FeedForward,
    X: object,
    T: object = None,
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
    sample_weight: object = None,
    class_weight: dict | str | None = None,
    clip_norm: float | None = None,
    clip_value: float | None = None,
    validation_freq: int | Collection[int] = 1,
) -> History:
    """Train ``net`` on inputs X (n, n_in) and targets T by backpropagation; or, with T
    omitted, on the batches X yields: a re-iterable of (X, T) or (X, T, w) batches (see
    :class:`deltaprop.train.engines.sources.IterableSource`).

    optimizer: an Optimizer, a name or a config dict; default ``SGD(lr=0.1)``.
    batch_size: 1 is online learning (update after every example, the seed's loop); None is
        the full batch; larger than the data is the full batch too.
    shuffle: draw a new order of the examples every epoch from the network's generator.
    validation_data: (X_val, T_val) measured after every epoch, or an iterable of batches;
        or ``validation_split``, a fraction of the examples set aside at random (from the
        network's generator) instead.
    validation_freq: validate every N-th epoch (an int), or on the epochs in a collection
        (1-based); the other epochs' logs and history have no val_* values.
    early_stopping: True (patience 10), a patience, or an :class:`EarlyStopping`.
    scheduler: a learning-rate schedule (:mod:`deltaprop.optim.schedules`) built on ``optimizer``;
        stepped after every epoch with the validation loss (or the training loss).
    accuracy: measure classification accuracy; "auto" does for cross-entropies and for
        squared error on 0/1 targets.
    verbose: show a progress bar with the loss and accuracy.
    engine: "auto" (default) trains on the fastest engine that can run this configuration;
        "reference" on the readable NumPy path (Network.forward/backward, Optimizer.step);
        "online" or "batch" demand that fast engine and raise ValueError if it cannot run
        (without Numba, "batch" runs the reference engine, which computes what it would on
        NumPy). All give the same weights to rounding; see :mod:`deltaprop.train.engines.choose`.
        The online kernel has none of the training controls (sample or class weights, the
        network's dropout or penalties, clipping): "auto" trains those fits on the batch
        engine, and "online" refuses them with a ValueError.
    checkpoint: a file to write every ``checkpoint_every`` epochs (and, if given, every
        ``checkpoint_every_batches`` batches within an epoch), atomically: weights, optimizer
        and schedule state, the random generator, the position and the history.
    resume: a checkpoint written by this same training (same network, optimizer settings,
        data and arguments; anything else is refused, naming the difference) to continue
        from, up to ``epochs`` epochs in all. The result is bit for bit the result of an
        uninterrupted run (the wall-clock ``seconds`` aside). ``checkpoint`` defaults to it.

    sample_weight: one weight >= 0 per example (not all zero): each batch's loss and gradient
        are the weighted mean Σ v_i E_i / Σ v_i (scikit-learn's meaning), and so is the
        epoch's ``loss``. validation_data may be (X_val, T_val, w_val) to weight val_loss.
    class_weight: {class: weight} (a class left out weighs 1) or "balanced" (n / (k ·
        count_c)): the sample weights giving each example its class's weight, multiplied
        into ``sample_weight`` if both are given. Classes are label indices.
    clip_norm: clip the gradient before every update by its global 2-norm, as
        torch.nn.utils.clip_grad_norm_ (factor min(1, clip_norm / (‖g‖ + 1e-6)));
    clip_value: clip every gradient coordinate into [−clip_value, clip_value], as
        clip_grad_value_ (after clip_norm when both are given). The history's ``clipped``
        counts each epoch's clipped steps. The gradient clipped is the whole one, the
        network's penalty included; an optimizer's own weight decay comes after.

    The network's dropout and weight penalties (see :class:`deltaprop.Network`) apply while
    it trains; with a penalty, the history's ``penalty`` is its part of ``loss``.

    Every argument is checked before any weight changes. If a step makes the loss or a
    weight non-finite, :class:`TrainingDivergedError` names the epoch and batch and the network
    keeps the weights it had before that step.
    """
    plan = plan_fit(**locals())
    name = plan.choose_engine()
    saver = plan.checkpointer(name)
    state = _starting_state(plan, saver)
    examples = plan.examples(state.split)
    source, batch_bar = _observed(examples.train, plan, state)
    work = Workload(net, source, plan.optimizer, plan.size, examples.accuracy, plan.clip)
    training = _Training(plan, state, make_engine(name, work), examples, saver, batch_bar)
    training.begin()
    training.run()
    training.end()
    return state.history


def _observed(
    source: BatchSource, plan: FitPlan, state: FitState
) -> tuple[BatchSource, _BatchBar | None]:
    """``source``, watched before every batch when something must run then: callbacks'
    on_batch_begin, a progress bar over an iterable's batches (returned too). Otherwise
    ``source`` itself, and the fast engines run whole epochs undisturbed."""
    starters = [hook for hook in plan.hooks if overrides_on_batch_begin(hook)]
    bar = _BatchBar(source) if plan.verbose and isinstance(source, IterableSource) else None
    if not starters and bar is None:
        return source, None

    def before_batch(batch: int) -> None:
        if bar is not None:
            bar.tick(state.epoch)
        for hook in starters:
            hook.on_batch_begin(state.net, state.epoch, batch)

    return ObservedSource(source, before_batch), bar


class _BatchBar:
    """A progress bar over one epoch's batches from an iterable: of unknown length in the
    first epoch, of the first epoch's count after."""

    def __init__(self, source: IterableSource) -> None:
        self.source, self.bar = source, None

    def tick(self, epoch: int) -> None:
        if self.bar is None:
            self.bar = _progress_bar(self.source.n_batches, 0, "batch", f"epoch {epoch}")
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _starting_state(plan: FitPlan, saver: Checkpointer | None) -> FitState:
    """A fresh state, or the one the checkpoint to resume from saved (put back in place)."""
    net, opt, scheduler, stopper = plan.net, plan.optimizer, plan.scheduler, plan.stopper
    if saver is not None and plan.checkpoint is not None and plan.checkpoint.resume is not None:
        record = saver.resume(plan.checkpoint.resume, net, opt, scheduler)
        return FitState.resumed(record, net, opt, scheduler, stopper, with_split=plan.n_val > 0)
    split = net.rng.permutation(plan.X.shape[0]) if plan.n_val else None
    return FitState(net, opt, scheduler, stopper, split=split)


class _Training:
    """A fit under way: its plan, state, engine, examples and checkpoint writer."""

    def __init__(
        self,
        plan: FitPlan,
        state: FitState,
        engine: Engine,
        examples: Examples,
        saver: Checkpointer | None,
        batch_bar: _BatchBar | None = None,
    ) -> None:
        self.plan, self.state, self.engine = plan, state, engine
        self.examples, self.saver, self.batch_bar = examples, saver, batch_bar
        self.hooks = plan.hooks
        # What must run after every batch: callbacks watching batches, checkpoints within
        # epochs (but not after an epoch's last batch: the epoch's own checkpoint follows).
        self.batch_watchers = [
            (hook, takes_batch_logs(hook)) for hook in self.hooks if overrides_on_batch_end(hook)
        ]
        watched = self.batch_watchers or plan.batch_checkpoints
        self.on_batch = self.batch_ends if watched else None
        self.first_epoch = plan.epochs + 1 if state.history.stopped_early else state.epoch + 1

    def begin(self) -> None:
        for hook in self.hooks:
            _call(hook, "on_train_begin", self.state.net, self.state.history)
        self.state.resume_early_stopping()

    def run(self) -> None:
        bar = _progress_bar(self.plan.epochs, self.first_epoch - 1) if self.plan.verbose else None
        try:
            for epoch in range(self.first_epoch, self.plan.epochs + 1):
                if self.run_epoch(epoch, bar):
                    break
        finally:
            if bar is not None:
                bar.close()
            if self.batch_bar is not None:
                self.batch_bar.close()

    def end(self) -> None:
        for hook in self.hooks:
            _call(hook, "on_train_end", self.state.net, self.state.history)

    def run_epoch(self, epoch: int, bar: Any) -> bool:
        """Train, measure and record epoch ``epoch``; True if training stops after it."""
        started, lr_used = time.perf_counter(), self.plan.optimizer.lr
        self.state.epoch = epoch
        self.engine = engine_for_epoch(self.engine)
        result = self.train_epoch()
        if self.batch_bar is not None:
            self.batch_bar.close()
        logs = self.epoch_logs(result, lr_used)
        self.step_scheduler(logs)
        logs["seconds"] = time.perf_counter() - started
        self.state.history.append(logs)
        if bar is not None:
            shown = {k: f"{v:.4g}" for k, v in logs.items() if k in _SHOWN}
            bar.set_postfix(shown, refresh=False)
            bar.update(1)  # redraws at most every 0.1 s, with the postfix just set
        stop = self.trigger_stopping(logs)
        if self.saver is not None:
            self.saver.after_epoch(self.state, last=stop or epoch == self.plan.epochs)
        return stop

    def step_scheduler(self, logs: dict) -> None:
        """Step the schedule with the validation loss, or the training loss without validation
        data. On an epoch that validation_freq leaves unvalidated, ReduceLROnPlateau (the one
        schedule that reads the loss) is not stepped: its patience counts validated epochs."""
        scheduler = self.plan.scheduler
        if scheduler is None:
            return
        if self.plan.validated and "val_loss" not in logs:
            if not isinstance(scheduler, ReduceLROnPlateau):
                scheduler.step(None)  # type: ignore[attr-defined]
            return
        scheduler.step(logs.get("val_loss", logs["loss"]))  # type: ignore[attr-defined]

    @property
    def n_batches(self) -> int | None:
        """Batches per epoch; for an iterable, those of its last complete pass (None before)."""
        train = self.examples.train
        if isinstance(train, IterableSource):
            return train.n_batches
        return -(-train.n_examples // self.plan.size)

    def train_epoch(self) -> EpochResult:
        """The epoch's training (its rest, if a checkpoint stopped within it), in a new order
        when shuffling; raises TrainingDivergedError if a step diverged."""
        state = self.state
        if isinstance(self.examples.train, IterableSource):
            self.examples.train.start_epoch(state.epoch)
        if state.first_batch:
            first, state.first_batch = state.first_batch, 0
            carried = (state.penalty_sum, state.clipped)
            state.penalty_sum, state.clipped = 0.0, 0
            # The controls' sums go on from the checkpoint's, as loss_sum does (only the
            # engines that resume within an epoch, reference and batch, take them).
            extra = {"controls": carried} if carried != (0.0, 0) else {}
            result = self.engine.run_epoch(
                state.order, self.on_batch, first, state.loss_sum, state.correct, **extra
            )
        else:
            n = self.examples.train.n_examples
            state.order = state.net.rng.permutation(n) if self.plan.shuffle else None
            result = self.engine.run_epoch(state.order, self.on_batch)
        raise_if_diverged(result, state.epoch, self.plan.optimizer.lr)
        return result

    def running_controls(self) -> tuple[float, int]:
        """The epoch's penalty sum and clipped steps so far, for a checkpoint within it (the
        engines that write such checkpoints keep them as attributes)."""
        return getattr(self.engine, "penalty_sum", 0.0), getattr(self.engine, "clipped", 0)

    def epoch_logs(self, result: EpochResult, lr_used: float) -> dict:
        """The epoch's numbers under History's names: loss, accuracy, validation."""
        examples, net = self.examples, self.state.net
        n, rule = examples.train.n_examples, examples.accuracy
        total = examples.train.total_weight
        logs: dict = {"epoch": self.state.epoch, "loss": result.loss_sum / total, "lr": lr_used}
        if net.has_penalty:
            logs["penalty"] = result.penalty_sum / total
        if self.plan.clip is not None:
            logs["clipped"] = result.clipped
        if rule is not None:
            logs["accuracy"] = result.correct / n
        if not self.plan.validates(self.state.epoch):
            return logs
        if examples.val_batches is not None:
            examples.val_batches.start_epoch(self.state.epoch)
            logs.update(evaluate_batches(net, examples.val_batches, rule))
        elif examples.X_val is not None:
            fp = net.forward(examples.X_val)
            logs["val_loss"] = net.loss_of(fp, examples.T_val, examples.W_val)
            if rule is not None:
                logs["val_accuracy"] = fraction_right(rule, fp.output, examples.T_val)
        return logs

    def trigger_stopping(self, logs: dict) -> bool:
        """Every callback's on_epoch_end (all of them, even after one asks to stop); True if
        one did, which the history records as stopping early unless this was the last epoch."""
        state, stop = self.state, False
        for hook in self.hooks:
            stop = bool(_call(hook, "on_epoch_end", state.net, state.epoch, dict(logs))) or stop
        if stop:
            state.history.stopped_early = state.epoch < self.plan.epochs
        return stop

    def batch_ends(
        self, batch: int, loss: float, loss_sum: float, correct: float, numbers: BatchNumbers
    ) -> None:
        """After every batch (the engine calls it): callbacks watching batches, then a
        checkpoint when one is due."""
        state = self.state
        for hook, wants_logs in self.batch_watchers:
            if wants_logs:
                hook.on_batch_end(state.net, state.epoch, batch, loss, logs=numbers._asdict())
            else:
                hook.on_batch_end(state.net, state.epoch, batch, loss)
        n_batches = self.n_batches
        if self.saver is not None and (n_batches is None or batch + 1 < n_batches):
            self.saver.after_batch(state, batch, loss_sum, correct, self.running_controls())


_SHOWN = ("loss", "val_loss", "accuracy", "val_accuracy")


def _progress_bar(
    total: int | None, initial: int, unit: str = "epoch", desc: str | None = None
) -> Any:
    """A tqdm bar (total None: of unknown length); over batches, it goes when they are done."""
    # Imported here: tqdm.auto pulls in asyncio, a third of `import deltaprop` otherwise.
    from tqdm.auto import tqdm

    leave = unit == "epoch"
    return tqdm(total=total, initial=initial, unit=unit, desc=desc, leave=leave, dynamic_ncols=True)


def _call(hook: object, name: str, *args: object) -> object:
    method = getattr(hook, name, None)
    return method(*args) if method is not None else None
