"""The lean mini-batch engine (``fit(engine="batch")``; see :mod:`deltaprop.train.engines.choose`).

Per step it runs the reference's computation — forward, loss, deltas by the delta rule,
∂E/∂W = -Δᵀ Z / m, the optimizer's update — with everything written into buffers allocated
once per ``fit``:

- the GEMMs write into them with ``out=`` (hidden layers keep a and then z in one buffer);
- a batch is gathered with ``np.take(..., out=)``, or is a view when the order is as stored;
- each layer's bias, activation, derivative and bias-gradient sum is one fused Numba
  pass, the output layer (activation, loss, delta, accuracy) another, and SGD, Adam and AdamW
  update each parameter in one pass right after its gradient is made. The gradient buffer
  then holds the old weights, which is all the divergence guard needs to undo the step.
- an optimizer that wraps one of those three to add a term on the weights only (as
  deltaprop.sklearn's PenalizedOptimizer adds scikit-learn's L2 penalty) is fused too if it
  offers the hook below: the term goes into the same pass.
- other optimizers run their own ``step`` on the preallocated gradients.

It needs Numba: without it, :mod:`.choose` runs the reference engine, which is what the
NumPy alternative to these kernels would be.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from deltaprop.optim.optimizers import SGD, Adam, AdamW, Optimizer
from deltaprop.train.engines.base import (
    ArraySource,
    Batch,
    BatchHook,
    DivergenceGuard,
    EpochResult,
    Workload,
    arrays_of,
    loss_diverged,
    restore,
    weight_diverged,
)
from deltaprop.train.engines.loading import require_kernels

Array = np.ndarray


def weight_term_hook(opt: Optimizer) -> tuple[Optimizer, Callable[..., float | None]] | None:
    """The wrapped optimizer and the hook of an optimizer that adds a term on the weights
    (never the biases) to another one's update, or None.

    Such a wrapper has ``inner`` (the optimizer whose rule runs), ``decoupled`` and
    ``weight_term(weights)``, which does one step's bookkeeping in place of ``step``, is
    given the weights before the step, and returns None (no term), or c: coupled, the
    gradient of each W becomes g + c W (c W computed first); decoupled, W ← c W before the
    inner step.
    """
    hook = getattr(opt, "weight_term", None)
    inner = getattr(opt, "inner", None)
    if callable(hook) and isinstance(inner, Optimizer) and hasattr(opt, "decoupled"):
        return inner, hook
    return None


def fusable(opt: Optimizer) -> bool:
    """Whether the fused SGD/Adam/AdamW kernels compute ``opt.step`` (exact classes only: a
    subclass may change the update rule), with a wrapper's weight term (above) folded in:
    coupled always, decoupled as the kernels' decoupled decay, so for Adam and AdamW without
    a decay of their own."""
    wrapped = weight_term_hook(opt)
    if wrapped is None:
        return type(opt) in (SGD, Adam, AdamW)
    inner = wrapped[0]
    if type(inner) not in (SGD, Adam, AdamW):
        return False
    return not opt.decoupled or (isinstance(inner, Adam) and inner.weight_decay == 0)


class BatchEngine:
    """Mini-batches of ``work.batch_size`` rows (the last one may be smaller)."""

    def __init__(self, work: Workload) -> None:
        self.work = work
        net, opt, size = work.net, work.optimizer, work.batch_size
        self.net, self.opt, self.size = net, opt, size
        source = arrays_of(work.source, self)
        # T's rows go to the kernels (X only to GEMMs).
        self.source = ArraySource(source.X, np.ascontiguousarray(source.T))
        K = self.K = require_kernels()
        dt, sizes = net.dtype, net.sizes
        self.into = Batch(np.empty((size, sizes[0]), dtype=dt), np.empty((size, sizes[-1]), dt))
        # z[l]: layer l's outputs (hidden layers compute a there and apply h in place).
        self.z = [np.empty((size, k), dtype=dt) for k in sizes[1:]]
        self.a_out = np.empty((size, sizes[-1]), dtype=dt)
        self.delta = [np.empty((size, k), dtype=dt) for k in sizes[1:]]
        self.gW = [np.empty_like(layer.W) for layer in net.layers]
        self.gb = [np.empty_like(layer.b) for layer in net.layers]
        self.grads = [g for pair in zip(self.gW, self.gb) for g in pair]
        self.fused = fusable(opt)
        # The optimizer whose kernel runs, and the wrapper's weight-term hook (or None).
        wrapped = weight_term_hook(opt) if self.fused else None
        self.core, self.weight_term = wrapped or (opt, None)
        self.guard = None if self.fused else DivergenceGuard(net.parameters())
        self.hp = np.empty(10, dtype=dt)
        self._views: list[tuple[Array, ...]] = []
        self._views_key: list | None = None
        self.c = K.constants(dt)
        self.codes = [K.ACTIVATIONS.index(ly.activation.name) for ly in net.layers]
        self.loss_code = K.LOSSES.index(net.loss_function.name)
        self.acc = K.ACCURACY_RULES.index(work.accuracy)

    def run_epoch(
        self,
        order: Array | None,
        on_batch: BatchHook | None = None,
        first_batch: int = 0,
        loss_sum: float = 0.0,
        correct: float = 0.0,
    ) -> EpochResult:
        """Train one epoch, or its rest from ``first_batch`` on with the sums so far;
        ``on_batch(batch, loss, loss_sum, correct)`` is called after every step."""
        batches = self.source.batches(self.size, order, first_batch, into=self.into)
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            for index, batch in enumerate(batches, first_batch):
                m = batch.X.shape[0]
                total, right = self._forward(batch, m)
                loss = total / m
                if not math.isfinite(loss):
                    return loss_diverged(index, loss, loss_sum, correct)
                if not self._backward_and_update(batch, m):
                    return weight_diverged(index, loss_sum, correct)
                loss_sum += loss * m
                correct += right / m * m  # as the reference adds fraction_right(...) * m
                if on_batch is not None:
                    on_batch(index, loss, loss_sum, correct)
        return EpochResult(loss_sum, correct)

    # ---------------------------------------------------------------- forward and loss
    def _forward(self, batch: Batch, m: int) -> tuple[float, int]:
        """Every layer's outputs, the output deltas and bias gradient; returns (Σ of the
        examples' losses, number classified right)."""
        K, layers, zin = self.K, self.net.layers, batch.X
        for i, layer in enumerate(layers[:-1]):
            z = self.z[i][:m]
            np.matmul(zin, layer.W.T, out=z)
            K.bias_activate(self.codes[i], z, layer.b, self.c)
            zin = z
        a = self.a_out[:m]
        np.matmul(zin, layers[-1].W.T, out=a)
        return K.output_batch(
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
        params = self.net.parameters()
        if self.fused:
            # Before any weight changes: the wrapper's term is taken on the old weights.
            term = None if self.weight_term is None else self.weight_term(params[0::2])
            self.core.steps += 1
            views = self._flat_views()
            constants = self.core.step_constants()
            self.hp[: len(constants)] = constants
            if self._backward(batch.X, m, views, self._fused_update(m, term)):
                restore(params, self.grads)  # the consumed gradients hold the old weights
                return False
            return True
        self._backward(batch.X, m)
        for g in self.grads:
            g *= -1.0 / m
        self.guard.keep(params)
        self.opt.step(params, self.grads)
        return not self.guard.undo_if_diverged(params)

    def _backward(
        self,
        Xb: Array,
        m: int,
        views: list[tuple[Array, ...]] | None = None,
        updates: tuple[Callable[..., bool], ...] | None = None,
    ) -> bool:
        """Deltas and gradients Δᵀ Z, Σ δ from the top layer down; with ``updates`` (the fused
        kernels for a weight matrix and a bias), each layer's update as soon as its gradient
        is made (its weights have then served the layer below). True if an update made a
        weight non-finite."""
        K, layers, bad = self.K, self.net.layers, False
        for i in range(len(layers) - 1, -1, -1):
            layer, delta = layers[i], self.delta[i][:m]
            if i > 0:
                below = self.delta[i - 1][:m]
                np.matmul(delta, layer.W, out=below)  # Σ_k δ_k w_kj
                K.backward_hidden(
                    self.codes[i - 1], below, self.z[i - 1][:m], self.gb[i - 1], self.c
                )
            np.matmul(delta.T, Xb if i == 0 else self.z[i - 1][:m], out=self.gW[i])
            if updates is not None and views is not None:
                bad |= updates[0](*views[2 * i])
                bad |= updates[1](*views[2 * i + 1])
        return bad

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

    def _fused_update(self, m: int, term: float | None) -> tuple[Callable[..., bool], ...]:
        """The kernel calls for this step, for a weight matrix and for a bias, each taking one
        parameter's views; they return True if a weight became non-finite. ``term`` is the
        wrapper's weight term (see weight_term_hook), None without one."""
        K, opt, hp = self.K, self.core, self.hp
        dt = hp.dtype.type
        scale, wd = dt(-1.0 / m), opt.weight_decay != 0
        # Coupled: l2 · W joins the weights' gradient. Decoupled (only for Adam without a
        # decay of its own, see fusable): the kernel's decoupled decay, by c, on W alone.
        coupled = term is not None and not self.opt.decoupled  # type: ignore[attr-defined]
        l2 = dt(term) if coupled else dt(0.0)
        if isinstance(opt, SGD):
            mode, first = K.SGD_VARIANTS.index(opt.variant), opt.steps == 1

            def sgd(penalized: bool) -> Callable[..., bool]:
                return lambda p, g, buf: K.sgd_step(
                    p, g, scale, buf, hp, wd, mode, first, penalized, l2
                )

            return sgd(coupled), sgd(False)
        rest = (opt.amsgrad, abs(1.0 - opt.betas[0]) < 0.5)
        flags_b = (wd, opt.decoupled, *rest)
        flags_W = flags_b
        if term is not None and not coupled:
            hp[K.A_DECAY] = term  # it was 1 - lr · 0: the inner Adam has no decay of its own
            flags_W = (True, True, *rest)

        def adam(flags: tuple[bool, ...], penalized: bool) -> Callable[..., bool]:
            return lambda p, g, m1, m2, top: K.adam_step(
                p, g, scale, m1, m2, top, hp, *flags, penalized, l2
            )

        return adam(flags_W, coupled), adam(flags_b, False)
