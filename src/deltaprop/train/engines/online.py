"""The online engine (``fit(engine="online")``): batch size 1 with plain, momentum or Nesterov
SGD (any weight decay and dampening), one Numba call per epoch (online_kernel.online_epoch).

It trains copies of the weights and the momentum buffer laid out flat for the kernel, and
copies them back after the epoch; it cannot stop between examples, so :mod:`.choose` sends
trainings that must run something after every batch to the batch engine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from deltaprop.optim.optimizers import SGD
from deltaprop.train.engines import compile_record
from deltaprop.train.engines.base import (
    Array,
    BatchHook,
    EpochResult,
    Workload,
    arrays_of,
    loss_diverged,
    restore,
    weight_diverged,
)
from deltaprop.train.engines.loading import online_kernel, require_kernels

# A cache line's bytes. NumPy aligns a buffer to 16 bytes only, and an AVX-512 store that
# straddles two lines costs about twice one that does not: the update of 64-32-10's first
# layer takes 129 ns with both copies of the weights on line boundaries, 149-171 ns off them.
LINE = 64


def line_aligned_zeros(shape: tuple[int, ...], dtype: np.dtype) -> Array:
    """Zeros of ``shape`` whose first element starts a cache line (a view of a larger
    buffer, which it keeps alive)."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.zeros(nbytes + LINE, dtype=np.uint8)
    # The address from the array interface: .ctypes builds an object, 2 of 4 us a call.
    start = -raw.__array_interface__["data"][0] % LINE
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def _line_starts(counts: Sequence[int], per_line: int) -> list[int]:
    """Where blocks of ``counts`` elements start when each starts on a line of ``per_line``
    elements, and (last) where the padded whole ends."""
    starts, at = [], 0
    for count in counts:
        starts.append(at)
        at += -(-count // per_line) * per_line
    return [*starts, at]


class OnlineEngine:
    """Batch size 1, SGD: each epoch is one call of online_kernel.online_epoch."""

    def __init__(self, work: Workload) -> None:
        K = require_kernels()
        online = online_kernel()
        self.kernel = online.online_epoch
        self.work = work
        net, source = work.net, arrays_of(work.source, self)
        self.X, self.T = np.ascontiguousarray(source.X), np.ascontiguousarray(source.T)
        dt, sizes = net.dtype, net.sizes
        # Offsets are uint64 for the kernel's sake (see online_kernel's docstring); each
        # layer's weights and activations start on a cache line (line_aligned_zeros).
        self.sizes = np.array(sizes, dtype=np.uint64)
        per_line = LINE // dt.itemsize
        self.zoff = np.array(_line_starts(sizes, per_line), dtype=np.uint64)
        starts = _line_starts([ly.W.size + ly.b.size for ly in net.layers], per_line)
        self.woff = np.array(starts[:-1], dtype=np.uint64)
        self.spans = [
            span
            for at, ly in zip(starts, net.layers)
            for span in ((at, at + ly.W.size), (at + ly.W.size, at + ly.W.size + ly.b.size))
        ]
        acts = [K.ACTIVATIONS.index(ly.activation.name) for ly in net.layers]
        loss, accuracy = (
            K.LOSSES.index(net.loss_function.name),
            K.ACCURACY_RULES.index(work.accuracy),
        )
        # The configuration the kernel is compiled for, but for the SGD variant (per epoch);
        # and the same codes as the general form reads them, the variant last.
        self.codes = (online.hidden_constant(acts), acts[-1], loss, accuracy)
        self.code_array = np.array([*acts, loss, accuracy, 0], dtype=np.int64)
        self.variants = K.SGD_VARIANTS
        # Zeros: the kernel reads the padding between layers as weights (finite, never
        # changed) when it checks them all.
        self.params = line_aligned_zeros((starts[-1],), dt)
        self.mom = line_aligned_zeros((starts[-1],), dt)
        self.z = line_aligned_zeros((int(self.zoff[-1]),), dt)
        self.dl = line_aligned_zeros((int(self.zoff[-1]),), dt)
        self.a_out = np.empty(max(sizes[1:]), dtype=dt)  # every layer's a passes through
        self.hp = np.empty(4, dtype=dt)
        self.c = K.constants(dt)
        self.in_order = np.arange(self.X.shape[0], dtype=np.int64)
        self.configuration = compile_record.configuration("online", net, work.optimizer)

    def _views(self, flat: Array, params: Sequence[Array]) -> list[Array]:
        return [flat[a:b].reshape(p.shape) for (a, b), p in zip(self.spans, params)]

    def run_epoch(
        self,
        order: Array | None,
        on_batch: BatchHook | None = None,
        first_batch: int = 0,
        loss_sum: float = 0.0,
        correct: float = 0.0,
    ) -> EpochResult:
        """Train one epoch in ``order`` (None: as stored). ``on_batch`` is never needed:
        the chooser sends callbacks that watch batches to the batch engine, and so
        checkpoints within an epoch, the only way to resume from the middle of one."""
        if first_batch:
            raise ValueError("the online engine trains whole epochs only")
        opt: SGD = self.work.optimizer  # type: ignore[assignment]
        params = self.work.net.parameters()
        mode = self.variants.index(opt.variant)
        state = opt.ensure_state(params) if mode else None
        buffers = [st["momentum_buffer"] for st in state] if state is not None else []
        self.hp[:] = opt.step_constants()
        self.code_array[-1] = mode
        order = self.in_order if order is None else order
        first = opt.steps == 0
        status, done, loss_sum, correct = self._train(order, mode, first, buffers, self.params,
                                                      self.mom)  # fmt: skip
        # Leave weights and optimizer exactly as the reference engine would have: the
        # network's and optimizer's own arrays still hold the epoch's start until now.
        opt.steps += done + (status == 2)
        if status != 2:
            restore(params, self._views(self.params, params))
        elif done:  # (at example 0 the weights before it are the epoch's, still in params)
            restore(params, self._weights_before(order, done, mode, first, buffers))
        restore(buffers, self._views(self.mom, params))
        if status == 1:
            return loss_diverged(done, self._loss_of_example(order, done), loss_sum, correct)
        if status == 2:
            return weight_diverged(done, loss_sum, correct)
        compile_record.mark_compiled(self.configuration)
        return EpochResult(loss_sum, float(correct))

    def _train(
        self,
        order: Array,
        mode: int,
        first: bool,
        buffers: Sequence[Array],
        flat: Array,
        mom: Array,
    ) -> tuple[int, int, float, int]:
        """The kernel's run over the rows ``order`` names, from the network's weights and
        the momentum ``buffers``, copied into ``flat`` and ``mom``, which it updates in place."""
        params = self.work.net.parameters()
        restore(self._views(flat, params), params)
        restore(self._views(mom, params), buffers)
        return self.kernel(*self.codes, mode, self.X, self.T, order, flat, self.sizes,
                           self.woff, self.zoff, self.code_array, self.hp,
                           self.work.optimizer.weight_decay != 0, first, mom, self.z, self.dl,
                           self.a_out, self.c)  # fmt: skip

    def _weights_before(
        self, order: Array, step: int, mode: int, first: bool, buffers: Sequence[Array]
    ) -> list[Array]:
        """The weights from before example ``step``'s update, which made one non-finite.
        The kernel updates in place, and learns of such a weight only at the next forward
        pass, so the epoch's first ``step`` examples are trained again from its start, on
        spare buffers: the same kernel in the same order gives the same weights to the bit.
        A step is rare, and this costs at most one more epoch."""
        flat, mom = np.zeros_like(self.params), np.zeros_like(self.mom)
        status, done, _, _ = self._train(order[:step], mode, first, buffers, flat, mom)
        if status != 0 or done != step:  # a kernel that is not deterministic: a bug
            raise RuntimeError(f"training the epoch again stopped at example {done} of {step}")
        return self._views(flat, self.work.net.parameters())

    def _loss_of_example(self, order: Array, k: int) -> float:
        row = int(order[k])
        net = self.work.net
        fp = net.forward(self.X[row : row + 1])
        with np.errstate(all="ignore"):
            return net.loss_of(fp, self.T[row : row + 1])
