"""Where a fit stands while it runs: :class:`FitState`.

A checkpoint stores it as :class:`deltaprop.io.checkpoint_file.TrainingState`, the file's
record (plain data and arrays); FitState holds the live objects (the network, optimizer,
schedule, early stopping, history) and converts to and from that record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deltaprop.core.network import FeedForward
from deltaprop.io.checkpoint_file import TrainingState
from deltaprop.optim.optimizers import Optimizer
from deltaprop.train.callbacks import EarlyStopping, History

Array = np.ndarray


@dataclass
class FitState:
    """A fit's live state. ``epoch`` is the epoch under way (before the first, the number
    completed: 0, or a resumed checkpoint's); ``order`` that epoch's order of the examples
    (None: as stored); ``split`` the permutation that set validation_split's examples aside.
    ``first_batch``, ``loss_sum`` and ``correct`` say where the first epoch picks up when a
    checkpoint was written within it (0, 0.0, 0.0: at its start)."""

    net: FeedForward
    optimizer: Optimizer
    scheduler: object
    stopper: EarlyStopping | None
    history: History = field(default_factory=History)
    epoch: int = 0
    order: Array | None = None
    split: Array | None = None
    first_batch: int = 0
    loss_sum: float = 0.0
    correct: float = 0.0
    resumed_from: TrainingState | None = None
    penalty_sum: float = 0.0  # the first epoch's penalty and clipped steps so far, likewise
    clipped: int = 0

    @classmethod
    def resumed(
        cls,
        record: TrainingState,
        net: FeedForward,
        optimizer: Optimizer,
        scheduler: object,
        stopper: EarlyStopping | None,
        with_split: bool,
    ) -> FitState:
        """The state a checkpoint's ``record`` describes, for the ``net``, ``optimizer`` and
        ``scheduler`` it has been put back into (Checkpointer.resume). ``with_split``: the
        fit sets validation_split's examples aside (with the checkpoint's permutation)."""
        return cls(
            net=net,
            optimizer=optimizer,
            scheduler=scheduler,
            stopper=stopper,
            history=History(**record.history),
            epoch=record.epoch,
            order=record.order,
            split=record.split if with_split else None,
            first_batch=record.batch,
            loss_sum=record.loss_sum,
            correct=record.correct,
            resumed_from=record,
            penalty_sum=record.penalty_sum,
            clipped=record.clipped,
        )

    def resume_early_stopping(self) -> None:
        """Give early stopping the counters the checkpoint saved (once on_train_begin has
        reset them)."""
        record = self.resumed_from
        if self.stopper is not None and record is not None and record.early_stopping is not None:
            self.stopper.resume(record.early_stopping, record.best_weights)

    def record(
        self,
        settings: dict,
        epochs_done: int,
        batch: int = 0,
        loss_sum: float = 0.0,
        correct: float = 0.0,
        penalty_sum: float = 0.0,
        clipped: int = 0,
    ) -> TrainingState:
        """The checkpoint record of this state after ``epochs_done`` epochs and ``batch``
        batches of the next (with that epoch's sums so far and order)."""
        stopper, scheduler = self.stopper, self.scheduler
        return TrainingState(
            optimizer=self.optimizer,
            scheduler_state=None if scheduler is None else scheduler.state_dict(),  # type: ignore[attr-defined]
            epoch=epochs_done,
            batch=batch,
            loss_sum=loss_sum,
            correct=correct,
            penalty_sum=penalty_sum,
            clipped=clipped,
            order=self.order if batch else None,
            split=self.split,
            history=self.history.as_dict(),
            settings=settings,
            early_stopping=None if stopper is None else stopper.counters(),
            best_weights=None if stopper is None else stopper.best_weights,
        )
