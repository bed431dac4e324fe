"""Checkpointing a fit: when to write, what a resumed fit must repeat, putting the state back.

The file format is :mod:`deltaprop.io.checkpoint_file`.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from deltaprop.core.network import FeedForward
from deltaprop.io.atomic import sweep_leftovers
from deltaprop.io.checkpoint_file import TrainingState, load_checkpoint, save_checkpoint
from deltaprop.optim.optimizers import Optimizer
from deltaprop.train.state import FitState


def fingerprint(*arrays: np.ndarray | None) -> str:
    """A short hash of arrays' shapes, dtypes and bytes: resuming on other data is refused."""
    digest = hashlib.blake2b(digest_size=12)
    for array in arrays:
        if array is None:
            digest.update(b"none")
            continue
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(np.ascontiguousarray(array).view(np.uint8).reshape(-1))
    return digest.hexdigest()


def _differences(kind: str, stored: dict, current: dict) -> list[str]:
    return [
        f"{kind} {key}: checkpoint has {stored.get(key)!r}, this fit has {current.get(key)!r}"
        for key in sorted(set(stored) | set(current))
        if stored.get(key) != current.get(key)
    ]


def _read_for_resume(
    path: str | os.PathLike, net: FeedForward, opt: Optimizer, scheduler: object, settings: dict
) -> tuple[FeedForward, TrainingState]:
    """Load a checkpoint and check that it continues this very fit; changes nothing.

    Raises CheckpointError for a bad file and ValueError naming every difference between the
    checkpoint and this fit (architecture, loss, optimizer settings, data, fit arguments).
    """
    stored_net, state, _ = load_checkpoint(path)
    problems = []
    mine, theirs = net.config(), stored_net.config()
    for key in ("sizes", "activations", "loss", "dtype", "dropout", "l2", "l1", "penalty_scale"):
        if mine.get(key) != theirs.get(key):
            problems.append(
                f"network {key}: checkpoint has {theirs.get(key)!r}, this network has "
                f"{mine.get(key)!r}"
            )
    # The learning rate is state (schedules change it); the other hyperparameters are settings.
    stored_opt = {k: v for k, v in state.optimizer.config().items() if k != "lr"}
    problems += _differences(
        "optimizer", stored_opt, {k: v for k, v in opt.config().items() if k != "lr"}
    )
    problems += _differences("fit", state.settings, settings)
    stored_sched = (state.scheduler_state or {}).get("name")
    current_sched = scheduler.config()["name"] if scheduler is not None else None
    if stored_sched != current_sched:
        problems.append(
            f"scheduler: checkpoint has {stored_sched!r}, this fit has {current_sched!r}"
        )
    if state.settings.get("engine") != settings.get("engine"):
        problems.append(
            f"(to continue on the {state.settings.get('engine')!r} engine, pass "
            f"engine={state.settings.get('engine')!r})"
        )
    if problems:
        raise ValueError(
            f"cannot resume from {path}: it was written by a different training. "
            + "; ".join(problems)
        )
    return stored_net, state


class Checkpointer:
    """Writes a fit's checkpoints, and puts a checkpoint back in place to resume one."""

    def __init__(
        self, path: str | os.PathLike, every: int, every_batches: int | None, settings: dict
    ) -> None:
        self.path, self.every, self.every_batches = path, every, every_batches
        self.settings = settings
        sweep_leftovers(path)  # what a killed earlier run left goes now, not at its first write

    def resume(
        self, path: str | os.PathLike, net: FeedForward, opt: Optimizer, scheduler: object
    ) -> TrainingState:
        """Check that the checkpoint at ``path`` continues this fit (ValueError naming every
        difference otherwise, with nothing changed), then restore the network's weights and
        random generator and the optimizer's and schedule's state from it."""
        stored, state = _read_for_resume(path, net, opt, scheduler, self.settings)
        for layer, saved in zip(net.layers, stored.layers):
            layer.W[...] = saved.W
            layer.b[...] = saved.b
        net.rng.bit_generator.state = stored.rng.bit_generator.state
        net.metadata = stored.metadata
        opt.load_state_dict(state.optimizer.state_dict())
        if scheduler is not None and state.scheduler_state is not None:
            scheduler.load_state_dict(state.scheduler_state)
        return state

    def after_batch(
        self,
        state: FitState,
        batch: int,
        loss_sum: float,
        correct: float,
        controls: tuple[float, int] = (0.0, 0),
    ) -> None:
        """Within epoch ``state.epoch``, after ``batch`` (0-based), every ``every_batches``
        batches; ``loss_sum`` and ``correct`` are the epoch's sums so far, ``controls`` its
        penalty sum and clipped steps."""
        if self.every_batches and (batch + 1) % self.every_batches == 0:
            record = state.record(
                self.settings, state.epoch - 1, batch + 1, loss_sum, correct, *controls
            )
            save_checkpoint(self.path, state.net, record)

    def after_epoch(self, state: FitState, last: bool) -> None:
        """After epoch ``state.epoch``: every ``every`` epochs, and after the ``last`` one."""
        if last or state.epoch % self.every == 0:
            save_checkpoint(self.path, state.net, state.record(self.settings, state.epoch))
