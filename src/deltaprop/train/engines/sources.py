"""Batch sources beside :class:`~.base.ArraySource`: batches an iterable yields, and a source
watched before every batch.

:class:`IterableSource` is ``fit(data)``'s source when ``data`` is a re-iterable of
``(X, T)`` or ``(X, T, w)`` batches (a list, a generator function's object with ``__iter__``,
a torch ``DataLoader``): one pass per epoch, each batch checked as it comes, so memory is one
batch and a bad batch stops the fit before its step, with the weights of the batches before.
Tensors are read duck-typed (``detach()``, ``cpu()``, ``numpy()``), without importing torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from deltaprop.core.losses import fraction_right
from deltaprop.core.network import FeedForward
from deltaprop.train.engines.base import Array, Batch, BatchSource


def as_array(value: object) -> object:
    """``value`` as NumPy sees it: a tensor's ``numpy()`` (detached, on the CPU), else itself."""
    if isinstance(value, np.ndarray):
        return value
    to_numpy = getattr(value, "numpy", None)
    if not callable(to_numpy):
        return value
    for move in ("detach", "cpu"):  # torch: a tensor that needs grad, or is on a GPU
        method = getattr(value, move, None)
        if callable(method):
            value = method()
    return value.numpy()  # type: ignore[attr-defined]


def one_shot(data: object) -> bool:
    """Whether ``data`` is an iterator (a generator object, ``iter(x)``), readable once; asked
    without iterating, so a DataLoader starts no workers."""
    return isinstance(data, Iterator)


def check_weights(w: object, n_examples: int, name: str) -> Array:
    """Per-example weights: ``n_examples`` finite numbers >= 0, not all 0, as float64."""
    arr = np.asarray(w)
    if arr.dtype.kind not in "biuf" or arr.ndim != 1 or arr.shape[0] != n_examples:
        raise ValueError(
            f"{name} must be {n_examples} numbers, one per example. "
            f"Received: shape {arr.shape}, dtype {arr.dtype}"
        )
    arr = arr.astype(np.float64, copy=False)
    bad = ~(np.isfinite(arr) & (arr >= 0))
    if np.any(bad):
        first = int(np.argmax(bad))
        raise ValueError(
            f"{name} must be finite numbers >= 0. Received: {float(arr[first])} at {first}"
        )
    if not np.any(arr > 0):
        raise ValueError(f"{name} are all 0: the weighted mean loss is undefined")
    return arr


class IterableSource:
    """The batches ``data`` yields, one pass per epoch (see the module docstring).

    Before each epoch the loop calls :meth:`start_epoch`, which calls ``data.set_epoch(epoch)``
    when ``data`` has one (as torch's DistributedSampler does), so a shuffling iterable can
    draw each epoch's order from a seed and the epoch: then a resumed fit sees the same
    batches again. ``n_examples`` and ``total_weight`` are the examples (and their weights)
    read in the current pass so far; ``n_batches`` the batches of the last complete pass.
    """

    def __init__(self, data: Iterable, net: FeedForward, name: str = "data") -> None:
        self.data, self.net, self.name = data, net, name
        self.epoch = 0
        self.n_examples = 0
        self.total_weight = 0.0
        self.n_batches: int | None = None
        self.weighted: bool | None = None
        self.dtypes: tuple | None = None  # of the first batch's X and T: every batch's

    def start_epoch(self, epoch: int) -> None:
        """Begin the pass of epoch ``epoch`` (1-based, as History counts)."""
        self.epoch = epoch
        set_epoch = getattr(self.data, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)

    def batches(
        self, size: int, order: Array | None, first_batch: int = 0, into: Batch | None = None
    ) -> Iterator[Batch]:
        """Each batch of one pass, checked, from batch ``first_batch`` on (the ones before are
        read, checked and counted, as a resumed epoch needs). ``size`` and ``into`` are
        ArraySource's and not used: the iterable's batches are the steps."""
        if order is not None:
            raise TypeError("an IterableSource yields its batches in its own order")
        self.n_examples, self.total_weight, count = 0, 0.0, 0
        for index, item in enumerate(self.data):
            batch = self.checked(item, index)
            m = batch.X.shape[0]
            self.n_examples += m
            self.total_weight += m if batch.weights is None else float(batch.weights.sum())
            count = index + 1
            if index >= first_batch:
                yield batch
        self.after_pass(count, first_batch)

    def after_pass(self, count: int, first_batch: int) -> None:
        """Refuse a pass with no batches, or fewer than a resumed epoch had already trained."""
        if count == 0:
            again = " (an iterator is read once: pass a re-iterable)" if self.epoch > 1 else ""
            raise ValueError(f"{self.name} yielded no batches in epoch {self.epoch}{again}")
        if count < first_batch:
            raise ValueError(
                f"{self.name} yielded {count} batches in epoch {self.epoch}, but the checkpoint "
                f"resumed was written after {first_batch} batches of it: it is other data"
            )
        self.n_batches = count

    def checked(self, item: object, index: int) -> Batch:
        """Batch ``index`` as a checked :class:`Batch` (contiguous arrays of the network's
        dtype), or ValueError naming the batch, the epoch and what was wrong."""
        where = f"{self.name}: batch {index} of epoch {self.epoch}"
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            what = f"{len(item)} items" if isinstance(item, (tuple, list)) else type(item).__name__
            raise ValueError(f"{where} must be (X, T) or (X, T, w). Received: {what}")
        X_raw, T_raw = as_array(item[0]), as_array(item[1])
        self.check_dtypes(where, getattr(X_raw, "dtype", None), getattr(T_raw, "dtype", None))
        X = np.ascontiguousarray(self.net.check_inputs(X_raw, f"{where}: X"))
        T = np.ascontiguousarray(self.net.check_targets(T_raw, X.shape[0], f"{where}: T"))
        w = item[2] if len(item) == 3 else None
        weights = None if w is None else check_weights(as_array(w), X.shape[0], f"{where}: w")
        if self.weighted is None:
            self.weighted = weights is not None
        elif self.weighted != (weights is not None):
            raise ValueError(
                f"{where} {'has' if weights is not None else 'lacks'} weights w, unlike the "
                "batches before: yield (X, T, w) always or never"
            )
        return Batch(X, T, weights)

    def check_dtypes(self, where: str, X_dtype: object, T_dtype: object) -> None:
        """Every batch of X (and of T) has the first one's dtype: a stream that changes
        dtype midway is a mistake upstream, and would train on silently converted numbers."""
        if self.dtypes is None:
            self.dtypes = (X_dtype, T_dtype)
            return
        for name, had, has in (("X", self.dtypes[0], X_dtype), ("T", self.dtypes[1], T_dtype)):
            if had is not None and has is not None and had != has:
                raise ValueError(
                    f"{where}: {name} has dtype {has}, the batches before had {had}; an "
                    f"iterable must yield one dtype (convert it there, e.g. {name}.astype(...))"
                )


class ObservedSource:
    """``inner``'s batches, calling ``before_batch(index)`` just before each is handed on
    (that is, just before its step): on_batch_begin callbacks, a progress bar."""

    def __init__(self, inner: BatchSource, before_batch: Callable[[int], None]) -> None:
        self.inner, self.before_batch = inner, before_batch

    @property
    def n_examples(self) -> int:
        return self.inner.n_examples  # type: ignore[attr-defined]

    def batches(
        self, size: int, order: Array | None, first_batch: int = 0, into: Batch | None = None
    ) -> Iterator[Batch]:
        for index, batch in enumerate(
            self.inner.batches(size, order, first_batch, into), first_batch
        ):
            self.before_batch(index)
            yield batch


def evaluate_batches(net: FeedForward, source: IterableSource, rule: str | None) -> dict:
    """The loss (the weighted mean Σ wᵢ Eᵢ / Σ wᵢ with weights, else the mean over examples)
    and, with an accuracy ``rule``, the fraction right, of one pass over ``source``, under
    the names of the validation logs."""
    loss_sum = weight_sum = right = 0.0
    n = 0
    for batch in source.batches(0, None):
        fp = net.forward(batch.X)
        with np.errstate(under="ignore"):
            losses = net.loss_function.per_example(fp.output, batch.T, fp.a[-1])
        m = batch.X.shape[0]
        if batch.weights is None:
            loss_sum, weight_sum = loss_sum + float(np.sum(losses)), weight_sum + m
        else:
            loss_sum += float(np.dot(batch.weights, losses))
            weight_sum += float(batch.weights.sum())
        if rule is not None:
            right += fraction_right(rule, fp.output, batch.T) * m
        n += m
    # As Network.loss_of: the weighted mean of the examples' losses plus the penalty's part.
    logs = {"val_loss": loss_sum / weight_sum + net.penalty_term(None, weight_sum)}
    if rule is not None:
        logs["val_accuracy"] = right / n
    return logs
