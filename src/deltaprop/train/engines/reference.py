"""The reference engine (``fit(engine="reference")``): the readable maths, batch by batch.

Each step is Network.forward, the loss, Network.backward (the deltas by the delta rule),
Network.gradients_from and Optimizer.step; with ``batch_size=1`` and ``SGD(lr=η)`` that is the
seed's loop, w_ji ← w_ji + η δ_j z_i for every example. The fast engines compute the same
numbers; this one is what they are tested against, what runs without Numba, and the one that
step observers can watch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from deltaprop.core.losses import fraction_right
from deltaprop.train.engines.base import (
    LOSS_NOT_FINITE,
    WEIGHT_NOT_FINITE,
    Array,
    Batch,
    BatchHook,
    BatchNumbers,
    DivergenceGuard,
    EpochResult,
    Step,
    StepObserver,
    Workload,
)


class ReferenceEngine:
    """Trains ``work`` with the network's and the optimizer's own methods. Each observer in
    ``step_observers`` is called with the :class:`~.base.Step` after every step taken."""

    def __init__(self, work: Workload, step_observers: Sequence[StepObserver] = ()) -> None:
        self.work = work
        self.step_observers = tuple(step_observers)
        self.guard = DivergenceGuard(work.net.parameters())
        self.clipped, self.penalty_sum = 0, 0.0  # the epoch's so far

    def run_epoch(
        self,
        order: Array | None,
        on_batch: BatchHook | None = None,
        first_batch: int = 0,
        loss_sum: float = 0.0,
        correct: float = 0.0,
        controls: tuple[float, int] = (0.0, 0),
    ) -> EpochResult:
        """Train one epoch in ``order`` (None: as stored), or its rest from ``first_batch``
        on with the sums so far; ``on_batch(batch, loss, loss_sum, correct, numbers)`` after
        every step. ``controls``: the epoch's penalty sum and clipped steps so far."""
        work = self.work
        params, rule = work.net.parameters(), work.accuracy  # the arrays the layers hold now
        batches = work.source.batches(work.batch_size, order, first_batch)
        self.penalty_sum, self.clipped = controls  # the epoch's so far, as loss_sum
        for index, batch in enumerate(batches, first_batch):
            m = batch.X.shape[0]
            weight = m if batch.weights is None else float(batch.weights.sum())
            loss, penalty, outputs, what = self.step(index, batch, params)
            if what:
                return EpochResult(loss_sum, correct, index, what)
            loss_sum += loss * weight
            self.penalty_sum += penalty * weight
            if rule is not None:
                correct += fraction_right(rule, outputs, batch.T) * m
            if on_batch is not None:
                on_batch(index, loss, loss_sum, correct, BatchNumbers(m, weight, penalty))
        return EpochResult(loss_sum, correct, clipped=self.clipped, penalty_sum=self.penalty_sum)

    def step(
        self, index: int, batch: Batch, params: list[Array]
    ) -> tuple[float, float, Array, str]:
        """One forward, backward and update on ``batch``: the loss before the update, the
        penalty's part of it, the outputs, and "" or what went wrong (a loss that was not
        finite: nothing changed; a weight that became non-finite: the weights from before the
        step are back)."""
        net, opt, w, clip = self.work.net, self.work.optimizer, batch.weights, self.work.clip
        with np.errstate(over="ignore", invalid="ignore"):
            fp = net.forward(batch.X, net.dropout_masks(batch.X.shape[0]))
            penalty = net.penalty_term(w, batch.X.shape[0])
            loss = net.data_loss_of(fp, batch.T, w) + penalty
            if not math.isfinite(loss):
                return loss, penalty, fp.output, LOSS_NOT_FINITE.format(loss)
            deltas = net.backward(fp, batch.T, w)
            gradients = net.gradients_from(fp, deltas, w)
            flat = [g for pair in gradients for g in pair]
            if clip is not None and clip.apply(flat):
                self.clipped += 1
            self.guard.keep(params)
            opt.step(params, flat)
            if self.guard.undo_if_diverged(params):
                return loss, penalty, fp.output, WEIGHT_NOT_FINITE
        for observe in self.step_observers:
            observe(Step(index, batch, fp, loss, deltas, gradients))
        return loss, penalty, fp.output, ""
