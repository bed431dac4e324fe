"""The lean mini-batch engine (``fit(engine="batch")``; see :mod:`deltaprop.train.engines.choose`).

Per step it runs the reference's computation — forward, loss, deltas by the delta rule,
∂E/∂W = -Δᵀ Z / m, the optimizer's update — with everything written into buffers allocated
once per ``fit``:

- the GEMMs write into them with ``out=`` (hidden layers keep a and then z in one buffer);
- a batch is gathered with ``np.take(..., out=)``, or is a view when the order is as stored;
- with Numba, each layer's bias, activation, derivative and bias-gradient sum is one fused
  pass, the output layer (activation, loss, delta, accuracy) another, and SGD, Adam and AdamW
  update each parameter in one pass right after its gradient is made. The gradient buffer
  then holds the old weights, which is all the divergence guard needs to undo the step.
- an optimizer that wraps one of those three to add a term on the weights only (as
  deltaprop.sklearn's PenalizedOptimizer adds scikit-learn's L2 penalty) is fused too if it
  offers the hook below: the term goes into the same pass.
- other optimizers run their own ``step`` on the preallocated gradients, and without Numba
  the reference's NumPy functions fill the same buffers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from deltaprop.core.network import FeedForward, accuracy_of
from deltaprop.optim.optimizers import SGD, Adam, AdamW, Optimizer
from deltaprop.train.engines.choose import (
    LOSS_NOT_FINITE,
    WEIGHT_NOT_FINITE,
    EpochResult,
    accuracy_mode,
    fill_hyperparameters,
    finite,
    load_kernels,
    optimizer_buffers,
    restore,
    sgd_mode,
)

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
    """Mini-batches of ``size`` rows (the last one may be smaller)."""

    def __init__(
        self, net: FeedForward, X: Array, T: Array, opt: Optimizer, size: int, measure: bool
    ) -> None:
        self.net, self.X, self.opt, self.size = net, X, opt, size
        self.T = np.ascontiguousarray(T)  # its rows go to the kernels (X only to GEMMs)
        self.K = load_kernels()
        self.measure = measure
        dt, sizes = net.dtype, net.sizes
        self.xb = np.empty((size, sizes[0]), dtype=dt)
        self.tb = np.empty((size, sizes[-1]), dtype=dt)
        # z[l]: layer l's outputs (hidden layers compute a there and apply h in place).
        self.z = [np.empty((size, k), dtype=dt) for k in sizes[1:]]
        self.a_out = np.empty((size, sizes[-1]), dtype=dt)
        self.delta = [np.empty((size, k), dtype=dt) for k in sizes[1:]]
        self.gW = [np.empty_like(layer.W) for layer in net.layers]
        self.gb = [np.empty_like(layer.b) for layer in net.layers]
        self.fused = self.K is not None and fusable(opt)
        # The optimizer whose kernel runs, and the wrapper's weight-term hook (or None).
        wrapped = weight_term_hook(opt) if self.fused else None
        self.core, self.weight_term = wrapped or (opt, None)
        self.backup = None if self.fused else [np.empty_like(p) for p in net.parameters()]
        self.hp = np.empty(10, dtype=dt)
        self._views: list[tuple[Array, ...]] = []
        self._views_key: list | None = None
        if self.K is not None:
            K = self.K
            self.c = K.constants(dt)
            self.codes = [K.ACTIVATIONS.index(ly.activation.name) for ly in net.layers]
            self.loss_code = K.LOSSES.index(net.loss_function.name)
            self.acc = accuracy_mode(net, measure)

    def run_epoch(
        self,
        order: Array | None,
        on_batch: Callable[[int, float, float, float], None] | None = None,
        first_batch: int = 0,
        loss_sum: float = 0.0,
        correct: float = 0.0,
    ) -> EpochResult:
        """Train one epoch, or its rest from ``first_batch`` on with the sums so far;
        ``on_batch(batch, loss, loss_sum, correct)`` is called after every step."""
        n, size = self.X.shape[0], self.size
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            for batch, start in enumerate(range(first_batch * size, n, size), first_batch):
                m = min(size, n - start)
                if order is None:
                    Xb, Tb = self.X[start : start + m], self.T[start : start + m]
                else:
                    rows = order[start : start + m]
                    Xb = np.take(self.X, rows, axis=0, out=self.xb[:m], mode="clip")
                    Tb = np.take(self.T, rows, axis=0, out=self.tb[:m], mode="clip")
                if self.K is not None:
                    total, right = self._forward_fused(Xb, Tb, m)
                    loss = total / m
                else:
                    loss, right = self._forward_numpy(Xb, Tb, m)
                if not math.isfinite(loss):
                    return EpochResult(loss_sum, correct, batch, LOSS_NOT_FINITE.format(loss))
                if not self._backward_and_update(Xb, m):
                    return EpochResult(loss_sum, correct, batch, WEIGHT_NOT_FINITE)
                loss_sum += loss * m
                correct += right / m * m  # as the reference adds accuracy_of(...) * m
                if on_batch is not None:
                    on_batch(batch, loss, loss_sum, correct)
        return EpochResult(loss_sum, correct)

    # ---------------------------------------------------------------- forward and loss
    def _forward_fused(self, Xb: Array, Tb: Array, m: int) -> tuple[float, int]:
        K, layers, zin = self.K, self.net.layers, Xb
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
            Tb,
            self.delta[-1][:m],
            self.gb[-1],
            self.c,
        )

    def _forward_numpy(self, Xb: Array, Tb: Array, m: int) -> tuple[float, float]:
        net, zin = self.net, Xb
        for i, layer in enumerate(net.layers[:-1]):
            z = self.z[i][:m]
            np.matmul(zin, layer.W.T, out=z)
            z += layer.b
            np.copyto(z, layer.activation.forward(z))
            zin = z
        out, a, o = net.layers[-1], self.a_out[:m], self.z[-1][:m]
        np.matmul(zin, out.W.T, out=a)
        a += out.b
        np.copyto(o, out.activation.forward(a))
        loss = net.loss_function.value(o, Tb, a)
        delta = self.delta[-1][:m]
        np.copyto(delta, net.loss_function.output_delta(o, Tb, out.activation))
        np.sum(delta, axis=0, out=self.gb[-1])
        right = accuracy_of(o, Tb, net.loss_function.name) * m if self.measure else 0.0
        return loss, right

    # ---------------------------------------------------------------- backward and update
    def _backward_and_update(self, Xb: Array, m: int) -> bool:
        """Deltas and gradients from the top layer down, each layer's update as soon as its
        gradient is made (its weights have then served the layer below). Returns False, with
        the weights from before the step put back, if a weight became non-finite."""
        layers, opt = self.net.layers, self.opt
        if self.fused:
            # Before any weight changes: the wrapper's term is taken on the old weights.
            weights = self.net.parameters()[0::2]
            term = None if self.weight_term is None else self.weight_term(weights)
            self.core.steps += 1
            views = self._flat_views()
            fill_hyperparameters(self.core, self.hp)
            update_W, update_b = self._fused_update(m, term)
        bad = False
        for i in range(len(layers) - 1, -1, -1):
            layer, delta = layers[i], self.delta[i][:m]
            if i > 0:
                below = self.delta[i - 1][:m]
                np.matmul(delta, layer.W, out=below)  # Σ_k δ_k w_kj
                if self.K is not None:
                    self.K.backward_hidden(
                        self.codes[i - 1], below, self.z[i - 1][:m], self.gb[i - 1], self.c
                    )
                else:
                    below *= layers[i - 1].activation.derivative(self.z[i - 1][:m])
                    np.sum(below, axis=0, out=self.gb[i - 1])
            np.matmul(delta.T, Xb if i == 0 else self.z[i - 1][:m], out=self.gW[i])
            if self.fused:
                bad |= update_W(*views[2 * i])
                bad |= update_b(*views[2 * i + 1])
        params = self.net.parameters()
        grads = [g for pair in zip(self.gW, self.gb) for g in pair]
        if self.fused:
            if bad:
                restore(params, grads)  # the consumed gradients hold the old weights
            return not bad
        for g in grads:
            g *= -1.0 / m
        restore(self.backup, params)
        opt.step(params, grads)
        if not finite(params):
            restore(params, self.backup)
            return False
        return True

    def _flat_views(self) -> list[tuple[Array, ...]]:
        """Per parameter, 1-D views of the arrays its fused update reads and writes: the
        parameter, its gradient buffer, then the optimizer's buffers (the gradient stands in
        for those the settings leave unused). Made again only when the layers' arrays or the
        optimizer's state have been replaced (a callback may do either)."""
        params, opt = self.net.parameters(), self.core
        state = optimizer_buffers(opt, params)
        key = [state, *params]
        if self._views_key is None or any(a is not b for a, b in zip(key, self._views_key)):
            grads = [g for pair in zip(self.gW, self.gb) for g in pair]
            names = ("momentum_buffer",) if isinstance(opt, SGD) else ("exp_avg", "exp_avg_sq")
            names += ("max_exp_avg_sq",) if isinstance(opt, Adam) else ()
            self._views = [
                (p.reshape(-1), g.reshape(-1))
                + tuple(st[k].reshape(-1) if k in st else g.reshape(-1) for k in names)
                for p, g, st in zip(params, grads, state)
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
            mode, first = sgd_mode(opt), opt.steps == 1

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
