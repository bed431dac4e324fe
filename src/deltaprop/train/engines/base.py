"""What every training engine shares: the interface, what it trains, what an epoch reports, and
the divergence guard.

An engine trains a :class:`Workload` (a network, a :class:`BatchSource` of examples, an
optimizer, a batch size, an accuracy rule) one epoch at a time::

    result = engine.run_epoch(order, on_batch)            # a whole epoch
    result = engine.run_epoch(order, on_batch, 3, s, c)   # its rest, from batch 3 on
    # (reference and batch also take controls=(penalty_sum, clipped), the rest's start)

and reports an :class:`EpochResult`. The engines (reference.py, batch.py, online.py) differ
only in how fast they compute the reference's numbers; :mod:`.choose` picks one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from deltaprop.core.network import FeedForward, ForwardPass
from deltaprop.errors import TrainingDivergedError
from deltaprop.optim.optimizers import Optimizer

Array = np.ndarray


# ------------------------------------------------------------------ the examples
class Batch(NamedTuple):
    """One batch: inputs X (m, n_in), targets T (m, n_out), and per-example weights (m,),
    None when every example counts once."""

    X: Array
    T: Array
    weights: Array | None = None


class BatchSource(Protocol):
    """Where an engine's examples come from. :class:`ArraySource` (arrays or memory-maps, rows
    by index) is today's; an iterable of batches can be another, for the reference engine,
    which only asks for ``batches``."""

    def batches(
        self, size: int, order: Array | None, first_batch: int = 0, into: Batch | None = None
    ) -> Iterator[Batch]: ...


@dataclass(frozen=True)
class ArraySource:
    """Examples held as arrays (or memory-maps), one row per example, and their weights
    ``W`` (float64, (n,); None: every example counts once)."""

    X: Array
    T: Array
    W: Array | None = None

    @property
    def n_examples(self) -> int:
        return self.X.shape[0]

    @property
    def total_weight(self) -> float:
        """Σ of the examples' weights: what an epoch's loss sum is divided by."""
        return float(self.X.shape[0]) if self.W is None else float(self.W.sum())

    def batches(
        self, size: int, order: Array | None, first_batch: int = 0, into: Batch | None = None
    ) -> Iterator[Batch]:
        """Consecutive batches of ``size`` rows (the last may be smaller) from batch
        ``first_batch`` on, rows taken in ``order`` (None: as stored). As stored, a batch is
        views of the arrays; in an order, new arrays, or with ``into`` (arrays of ``size``
        rows, allocated once), views of those with the rows gathered into them."""
        X, T, W = self.X, self.T, self.W
        for start in range(first_batch * size, X.shape[0], size):
            stop = start + size
            if order is None:
                yield Batch(X[start:stop], T[start:stop], None if W is None else W[start:stop])
            elif into is None:
                rows = order[start:stop]
                yield Batch(X[rows], T[rows], None if W is None else W[rows])
            else:
                rows = order[start:stop]
                m = rows.shape[0]
                yield Batch(
                    np.take(X, rows, axis=0, out=into.X[:m], mode="clip"),
                    np.take(T, rows, axis=0, out=into.T[:m], mode="clip"),
                    None if W is None else W[rows],
                )


def arrays_of(source: BatchSource, engine: object) -> ArraySource:
    """``source`` itself, for an engine that reads the examples' arrays directly."""
    if not isinstance(source, ArraySource):
        raise TypeError(f"{type(engine).__name__} trains on an ArraySource, not {source!r}")
    return source


@dataclass(frozen=True)
class Clipping:
    """Gradient clipping before every update, torch's rules: ``norm`` (clip_grad_norm_: the
    global 2-norm over every gradient, each multiplied by min(1, norm / (total + 1e-6))), then
    ``value`` (clip_grad_value_: each coordinate into [−value, value]); None: not clipped."""

    norm: float | None = None
    value: float | None = None

    def apply(self, grads: Sequence[Array]) -> bool:
        """Clip ``grads`` in place; True if a gradient changed (the step counts as clipped)."""
        clipped = False
        if self.norm is not None:
            total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
            coef = self.norm / (total + 1e-6)
            if coef < 1.0:
                clipped = True
                for g in grads:
                    g *= g.dtype.type(coef)
        if self.value is not None:
            v = self.value
            for g in grads:
                if not clipped and (g.max(initial=-v) > v or g.min(initial=v) < -v):
                    clipped = True
                np.clip(g, -v, v, out=g)
        return clipped


@dataclass(frozen=True)
class Workload:
    """What an engine trains: ``net`` on ``source`` with ``optimizer`` in batches of
    ``batch_size`` rows, counting right answers by ``accuracy`` (a rule of
    :func:`deltaprop.core.losses.accuracy_rule`, or None: not measured)."""

    net: FeedForward
    source: BatchSource
    optimizer: Optimizer
    batch_size: int
    accuracy: str | None = None
    clip: Clipping | None = None


# ------------------------------------------------------------------ the interface
class EpochResult(NamedTuple):
    """What an epoch produced: Σ over examples of the pre-update loss (each batch's loss
    times its weight: its size, or its examples' summed weights), how many were right, and,
    if a step diverged, its batch index and what went wrong (else None, ""); then how many
    steps clipped their gradients and the penalty's part of ``loss_sum``."""

    loss_sum: float
    correct: float
    failed_batch: int | None = None
    what: str = ""
    clipped: int = 0
    penalty_sum: float = 0.0


class BatchNumbers(NamedTuple):
    """One step's batch: its examples, their summed weight (``size`` without sample weights)
    and the penalty's part of the step's loss."""

    size: int
    weight: float
    penalty: float


# on_batch(batch, loss, loss_sum, correct, numbers), after every step of the engines that can
# stop then.
BatchHook = Callable[[int, float, float, float, BatchNumbers], None]


class Engine(Protocol):
    """Trains ``work`` one epoch per call; see the module docstring."""

    work: Workload

    def run_epoch(
        self,
        order: Array | None,
        on_batch: BatchHook | None = None,
        first_batch: int = 0,
        loss_sum: float = 0.0,
        correct: float = 0.0,
    ) -> EpochResult: ...


class Step(NamedTuple):
    """One step of the reference engine, as step observers see it after the update: the
    batch, its forward pass and loss (before the update), the deltas δ = -∂E/∂a of every
    layer and the gradients [(∂E/∂W, ∂E/∂b) per layer] the optimizer was given."""

    index: int  # the batch's index within its epoch
    batch: Batch
    forward: ForwardPass
    loss: float
    deltas: list[Array]
    gradients: list[tuple[Array, Array]]


StepObserver = Callable[[Step], None]


# ------------------------------------------------------------------ divergence
LOSS_NOT_FINITE = "the loss became {}"
WEIGHT_NOT_FINITE = "a weight became NaN or infinite"


def loss_diverged(batch: int, loss: float, loss_sum: float, correct: float) -> EpochResult:
    """The result of an epoch stopped at ``batch``, whose loss was not finite (no update)."""
    return EpochResult(loss_sum, correct, batch, LOSS_NOT_FINITE.format(loss))


def weight_diverged(batch: int, loss_sum: float, correct: float) -> EpochResult:
    """The result of an epoch stopped at ``batch``, whose update made a weight non-finite
    (the weights from before it have been put back)."""
    return EpochResult(loss_sum, correct, batch, WEIGHT_NOT_FINITE)


def raise_if_diverged(result: EpochResult, epoch: int, lr: float) -> None:
    """Raise TrainingDivergedError naming the epoch and batch if the epoch diverged."""
    if result.failed_batch is not None:
        raise TrainingDivergedError(
            f"training diverged at epoch {epoch}, batch {result.failed_batch}: {result.what}. "
            f"The network keeps its weights from before this step. Try a smaller learning "
            f"rate (lr={lr:g}) or scaling the inputs."
        )


def finite(params: Sequence[Array]) -> bool:
    # A sum is non-finite whenever any term is, and costs one pass over the weights; only
    # when it is not (a term non-finite, or finite terms that overflow it) are they read one
    # by one.
    return all(math.isfinite(np.sum(p)) or np.isfinite(p).all() for p in params)


def restore(params: Sequence[Array], saved: Sequence[Array]) -> None:
    """Copy ``saved`` into ``params``, array by array."""
    for p, s in zip(params, saved):
        np.copyto(p, s)


class DivergenceGuard:
    """Undoes a step that made a weight NaN or infinite: :meth:`keep` the parameters before
    it, :meth:`undo_if_diverged` after. (The fast engines have ways of their own: the
    batch kernels keep the old weights in buffers they no longer need, the online engine
    trains the epoch again up to the failing step; both put them back with ``restore``.)
    The optimizer's state keeps the failed step in every engine, as ``Optimizer.step`` left
    it."""

    def __init__(self, params: Sequence[Array]) -> None:
        self.saved = [np.empty_like(p) for p in params]

    def keep(self, params: Sequence[Array]) -> None:
        restore(self.saved, params)

    def undo_if_diverged(self, params: Sequence[Array]) -> bool:
        """True, with the kept weights put back, if a parameter is no longer finite."""
        if finite(params):
            return False
        restore(params, self.saved)
        return True
