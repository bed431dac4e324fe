"""The lean mini-batch engine (``fit(engine="batch")``; see :mod:`deltaprop.train.engines.choose`).

Per step it runs the reference's computation — forward, loss, deltas by the delta rule,
∂E/∂W = -Δᵀ Z / m, the optimizer's update — with everything written into buffers allocated
once per ``fit``:

- the GEMMs write into them with ``out=`` (hidden layers keep a and then z in one buffer);
- a batch is gathered with ``np.take(..., out=)``, or is a view when the order is as stored;
- each layer's bias, activation, derivative and bias-gradient sum is one fused Numba
  pass (NumPy's ufuncs instead for the activations whose rules Numba would not vectorise,
  kernels.BLOCK_RULES), the output layer (activation, loss, delta, accuracy) another, and
  SGD, Adam and AdamW
  update each parameter in one pass right after its gradient is made. The gradient buffer
  then holds the old weights, which is all the divergence guard needs to undo the step.
- per-example weights scale the output deltas (by m v_i / Σ v, as Network.backward does);
  dropout keeps each hidden layer's outputs before the mask (for h') beside those after it;
  an L2 penalty joins the fused updates (the kernels' ``l2`` term on the weights).
- other optimizers, an L1 penalty and gradient clipping (which needs the whole gradient
  before any update) run the optimizer's own ``step`` on the preallocated gradients.

It needs Numba: without it, :mod:`.choose` runs the reference engine, which is what the
NumPy alternative to these kernels would be.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from deltaprop.core.regularization import (
    add_penalty_gradient,
    example_scale,
    penalty_factor,
    weighted_mean,
)
from deltaprop.optim.optimizers import SGD, Adam, AdamW, Optimizer
from deltaprop.optim.sklearn_adam import SklearnAdam
from deltaprop.train.engines import compile_record
from deltaprop.train.engines.base import (
    ArraySource,
    Batch,
    BatchHook,
    BatchNumbers,
    BatchSource,
    DivergenceGuard,
    EpochResult,
    Workload,
    loss_diverged,
    restore,
    weight_diverged,
)
from deltaprop.train.engines.loading import batch_kernels, require_kernels, update_kernels

Array = np.ndarray


def _kernel_ready(source: BatchSource) -> BatchSource:
    """``source`` with its targets C-contiguous, as the kernels read T's rows (X goes only to
    GEMMs). Other sources (an iterable's) yield contiguous batches themselves."""
    if isinstance(source, ArraySource):
        return ArraySource(source.X, np.ascontiguousarray(source.T), source.W)
    return source


def fusable(opt: Optimizer) -> bool:
    """Whether the fused SGD/Adam/AdamW/SklearnAdam kernels compute ``opt.step`` (exact
    classes only: a subclass may change the update rule)."""
    return type(opt) in (SGD, Adam, AdamW, SklearnAdam)


def decays_biases(opt: Optimizer) -> bool:
    """Whether the optimizer's weight decay applies to the biases too (AdamW's
    ``decay_biases``; every other optimizer decays every parameter)."""
    return bool(getattr(opt, "decay_biases", True))


class BatchEngine:
    """Mini-batches of ``work.batch_size`` rows (the last one may be smaller), or the batches
    of another source (an iterable's, whatever their sizes)."""

    def __init__(self, work: Workload) -> None:
        self.work = work
        net, opt, size = work.net, work.optimizer, work.batch_size
        self.net, self.opt = net, opt
        self.source = _kernel_ready(work.source)
        K = self.K = require_kernels()
        self.loops = batch_kernels()
        self.updates = update_kernels()
        dt = net.dtype
        self._allocate_batch_buffers(size)
        self.gW = [np.empty_like(layer.W) for layer in net.layers]
        self.gb = [np.empty_like(layer.b) for layer in net.layers]
        self.grads = [g for pair in zip(self.gW, self.gb) for g in pair]
        # The fused updates need each layer's gradient alone; L1 and clipping need more.
        self.fused = fusable(opt) and not any(net.l1) and work.clip is None
        self.core = opt
        self.guard = None if self.fused else DivergenceGuard(net.parameters())
        self.masks: list[Array | None] | None = None
        self.clipped, self.penalty_sum = 0, 0.0
        self.hp = np.empty(10, dtype=dt)
        self._views: list[tuple[Array, ...]] = []
        self._views_key: list | None = None
        self.c = K.constants(dt)
        self.codes = [K.ACTIVATIONS.index(ly.activation.name) for ly in net.layers]
        self.loss_code = K.LOSSES.index(net.loss_function.name)
        self.acc = K.ACCURACY_RULES.index(work.accuracy)
        self.configuration = compile_record.configuration("batch", net, opt)

    def _allocate_batch_buffers(self, size: int) -> None:
        """The buffers of one batch of up to ``size`` rows (made again for a bigger batch from
        a source of batches that differ in size, such as an iterable's)."""
        dt, sizes = self.net.dtype, self.net.sizes
        self.size = size
        self.into = Batch(np.empty((size, sizes[0]), dtype=dt), np.empty((size, sizes[-1]), dt))
        # z[l]: layer l's outputs (hidden layers compute a there and apply h in place).
        self.z = [np.empty((size, k), dtype=dt) for k in sizes[1:]]
        self.a_out = np.empty((size, sizes[-1]), dtype=dt)
        self.delta = [np.empty((size, k), dtype=dt) for k in sizes[1:]]
        # Under dropout: each hidden layer's outputs after the mask, the next layer's input.
        self.dropped = [np.empty((size, k), dtype=dt) for k in sizes[1:-1]]

    def run_epoch(
        self,
        order: Array | None,
        on_batch: BatchHook | None = None,
        first_batch: int = 0,
        loss_sum: float = 0.0,
        correct: float = 0.0,
        controls: tuple[float, int] = (0.0, 0),
    ) -> EpochResult:
        """Train one epoch, or its rest from ``first_batch`` on with the sums so far;
        ``on_batch(batch, loss, loss_sum, correct, numbers)`` is called after every step."""
        batches = self.source.batches(self.work.batch_size, order, first_batch, into=self.into)
        net = self.net
        self.penalty_sum, self.clipped = controls  # the epoch's so far, as loss_sum
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            for index, batch in enumerate(batches, first_batch):
                m, w = batch.X.shape[0], batch.weights
                if m > self.size:
                    self._allocate_batch_buffers(m)
                self.masks = net.dropout_masks(m)
                penalty = net.penalty_term(w, m)
                total, right = self._forward(batch, m)
                loss = (total / m if w is None else self._weighted_loss(batch, m)) + penalty
                if not math.isfinite(loss):
                    return loss_diverged(index, loss, loss_sum, correct)
                if not self._backward_and_update(batch, m):
                    return weight_diverged(index, loss_sum, correct)
                weight = m if w is None else float(w.sum())
                loss_sum += loss * weight
                self.penalty_sum += penalty * weight
                correct += right / m * m  # as the reference adds fraction_right(...) * m
                if on_batch is not None:
                    on_batch(index, loss, loss_sum, correct, BatchNumbers(m, weight, penalty))
        compile_record.mark_compiled(self.configuration)  # every loop of the fit has run
        return EpochResult(loss_sum, correct, clipped=self.clipped, penalty_sum=self.penalty_sum)

    def _weighted_loss(self, batch: Batch, m: int) -> float:
        """Σ v_i E_i / Σ v, as Network.data_loss_of takes it, from the output layer's
        buffers; and the output deltas scaled by m v_i / Σ v (as Network.backward)."""
        w, loss = batch.weights, self.net.loss_function
        o, a, top = self.z[-1][:m], self.a_out[:m], self.delta[-1][:m]
        value = weighted_mean(loss.per_example(o, batch.T, a), w)
        top *= example_scale(w, m).astype(self.net.dtype)[:, None]
        top.sum(axis=0, out=self.gb[-1])
        return value

    # ---------------------------------------------------------------- forward and loss
    def _forward(self, batch: Batch, m: int) -> tuple[float, int]:
        """Every layer's outputs, the output deltas and bias gradient; returns (Σ of the
        examples' losses, number classified right)."""
        loops, layers, zin, masks = self.loops, self.net.layers, batch.X, self.masks
        for i, layer in enumerate(layers[:-1]):
            z = self.z[i][:m]
            np.matmul(zin, layer.W.T, out=z)
            if self.codes[i] in self.K.BLOCK_RULES:  # NumPy's vectorised rule (kernels.py)
                np.add(z, layer.b, out=z)
                z[...] = layer.activation.forward(z)
            else:
                loops.bias_activate(self.codes[i], z, layer.b, self.c)
            if masks is not None and masks[i] is not None:
                z = np.multiply(z, masks[i], out=self.dropped[i][:m])  # z̃ = z m / (1 − p)
            zin = z
        a = self.a_out[:m]
        np.matmul(zin, layers[-1].W.T, out=a)
        return loops.output_batch(
            self.loss_code,
            self.codes[-1],
            self.acc,
            a,
            layers[-1].b,
            self.z[-1][:m],
            batch.T,
            self.delta[-1][:m],
            self.gb[-1],
            self.c,
        )

    # ---------------------------------------------------------------- backward and update
    def _backward_and_update(self, batch: Batch, m: int) -> bool:
        """Deltas, gradients and the optimizer's update. Returns False, with the weights from
        before the step put back, if a weight became non-finite."""
        net, params = self.net, self.net.parameters()
        factor = 0.0
        if net.has_penalty:
            total = m if batch.weights is None else float(batch.weights.sum())
            factor = penalty_factor(net.penalty_scale, total)
        if self.fused:
            self.core.steps += 1
            views = self._flat_views()
            constants = self.core.step_constants()
            self.hp[: len(constants)] = constants
            if self._backward(batch.X, m, views, self._fused_update(m, factor)):
                restore(params, self.grads)  # the consumed gradients hold the old weights
                return False
            return True
        self._backward(batch.X, m)
        for g in self.grads:
            g *= -1.0 / m
        if factor:
            for layer, gW, l1, l2 in zip(net.layers, self.gW, net.l1, net.l2):
                add_penalty_gradient(gW, layer.W, l1, l2, factor)
        if self.work.clip is not None and self.work.clip.apply(self.grads):
            self.clipped += 1
        self.guard.keep(params)
        self.opt.step(params, self.grads)
        return not self.guard.undo_if_diverged(params)

    def _backward(
        self,
        Xb: Array,
        m: int,
        views: list[tuple[Array, ...]] | None = None,
        updates: list[tuple[Callable[..., bool], ...]] | None = None,
    ) -> bool:
        """Deltas and gradients Δᵀ Z, Σ δ from the top layer down; with ``updates`` (the fused
        kernels for a weight matrix and a bias), each layer's update as soon as its gradient
        is made (its weights have then served the layer below). True if an update made a
        weight non-finite."""
        layers, bad, masks = self.net.layers, False, self.masks
        for i in range(len(layers) - 1, -1, -1):
            layer, delta = layers[i], self.delta[i][:m]
            dropped = masks is not None and i > 0 and masks[i - 1] is not None
            if i > 0:
                below = self.delta[i - 1][:m]
                np.matmul(delta, layer.W, out=below)  # Σ_k δ_k w_kj
                if dropped:
                    below *= masks[i - 1]  # type: ignore[index]
                self._hidden_deltas(i - 1, below, m)
            zin = Xb if i == 0 else (self.dropped if dropped else self.z)[i - 1][:m]
            np.matmul(delta.T, zin, out=self.gW[i])
            if updates is not None and views is not None:
                bad |= updates[i][0](*views[2 * i])
                bad |= updates[i][1](*views[2 * i + 1])
        return bad

    def _hidden_deltas(self, i: int, delta: Array, m: int) -> None:
        """δ ← h'(z) · δ for hidden layer ``i`` (δ arrives as Δ_next W_next), and its bias
        gradient Σ_rows δ: in one fused loop, or through NumPy for the slopes the kernels
        would compute element by element (kernels.BLOCK_SLOPES), in the same order of
        operations (the loop sums the rows as ``sum(axis=0)`` does)."""
        z, gb = self.z[i][:m], self.gb[i]
        if self.codes[i] in self.K.BLOCK_SLOPES:
            delta *= self.net.layers[i].activation.derivative(z)
            delta.sum(axis=0, out=gb)
        else:
            self.loops.backward_hidden(self.codes[i], delta, z, gb, self.c)

    def _flat_views(self) -> list[tuple[Array, ...]]:
        """Per parameter, 1-D views of the arrays its fused update reads and writes: the
        parameter, its gradient buffer, then the optimizer's buffers (the gradient stands in
        for those the settings leave unused). Made again only when the layers' arrays or the
        optimizer's state have been replaced (a callback may do either)."""
        params, opt = self.net.parameters(), self.core
        state = opt.ensure_state(params)
        key = [state, *params]
        if self._views_key is None or any(a is not b for a, b in zip(key, self._views_key)):
            names = ("momentum_buffer",) if isinstance(opt, SGD) else ("exp_avg", "exp_avg_sq")
            names += ("max_exp_avg_sq",) if isinstance(opt, Adam) else ()
            self._views = [
                (p.reshape(-1), g.reshape(-1))
                + tuple(st[k].reshape(-1) if k in st else g.reshape(-1) for k in names)
                for p, g, st in zip(params, self.grads, state)
            ]
            self._views_key = key
        return self._views

    def _fused_update(self, m: int, factor: float) -> list[tuple[Callable[..., bool], ...]]:
        """Per layer, the kernel calls for this step for its weight matrix and its bias, each
        taking one parameter's views; they return True if a weight became non-finite.
        ``factor`` is what the network's L2 coefficients are multiplied by this batch
        (penalty_factor; 0 without a penalty): the kernels add factor · l2 · W to W's
        gradient."""
        K, U, opt, hp, net = self.K, self.updates, self.core, self.hp, self.net
        dt = hp.dtype.type
        scale = dt(-1.0 / m)
        l2 = [dt(factor * c) for c in net.l2]
        if isinstance(opt, SklearnAdam):

            def sklearn_adam(coef: object) -> Callable[..., bool]:
                penalized = bool(coef)
                return lambda p, g, m1, m2: U.sklearn_adam_step(
                    p, g, scale, m1, m2, hp, penalized, coef
                )

            return [(sklearn_adam(c), sklearn_adam(dt(0.0))) for c in l2]
        wd = opt.weight_decay != 0
        wd_b = wd and decays_biases(opt)
        if isinstance(opt, SGD):
            mode, first = K.SGD_VARIANTS.index(opt.variant), opt.steps == 1

            def sgd(decay: bool, coef: object) -> Callable[..., bool]:
                penalized = bool(coef)
                return lambda p, g, buf: U.sgd_step(
                    p, g, scale, buf, hp, decay, mode, first, penalized, coef
                )

            return [(sgd(wd, c), sgd(wd_b, dt(0.0))) for c in l2]
        rest = (opt.decoupled, opt.amsgrad, abs(1.0 - opt.betas[0]) < 0.5)

        def adam(decay: bool, coef: object) -> Callable[..., bool]:
            penalized = bool(coef)
            return lambda p, g, m1, m2, top: U.adam_step(
                p, g, scale, m1, m2, top, hp, decay, *rest, penalized, coef
            )

        return [(adam(wd, c), adam(wd_b, dt(0.0))) for c in l2]
