"""The fast training engines behind ``fit(engine="auto")``, and the rules that choose them.

Engines (all compute the reference's formulas; see README "Performance"):

- ``"reference"``: training.py's per-batch loop over Network.forward/backward and
  Optimizer.step, the readable maths.
- ``"online"``: batch size 1 with plain, momentum or Nesterov SGD (any weight decay and
  dampening): one Numba call trains a whole epoch (online_kernel.online_epoch).
- ``"batch"``: any batch size and optimizer. Buffers for every layer are allocated once;
  GEMMs write into them (``out=``); activations, their derivatives, the output layer and
  the SGD/Adam/AdamW updates are fused Numba loops working in place. Other optimizers call
  their own ``step`` on the preallocated gradients. Without Numba the same engine runs the
  reference's NumPy functions on the preallocated buffers.

``"auto"`` picks online when it can run, else batch when it can, else reference. Both fast
engines need the built-in activations and losses and C-contiguous parameters of the
network's dtype; online also needs Numba, the exact class SGD and no callback overriding
``on_batch_end`` (it cannot stop after every example; the batch engine serves those).
"""

from __future__ import annotations

import importlib
import math
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from deltaprop.core.activations import ACTIVATIONS
from deltaprop.core.losses import LOSSES
from deltaprop.core.network import FeedForward
from deltaprop.optim.optimizers import SGD, Optimizer

Array = np.ndarray
ENGINES = ("auto", "reference", "online", "batch")

_kernels: Any = None  # the kernels module once loaded; False when Numba is unavailable


def load_kernels() -> Any:
    """The kernels module (importing and compiling Numba on first use), or None without Numba."""
    global _kernels
    if _kernels is None:
        try:
            _kernels = importlib.import_module("deltaprop.train.engines.kernels")
        except ImportError as exc:
            _kernels = False
            reason = (str(exc).splitlines() or ["import failed"])[0]
            warnings.warn(
                f"deltaprop: Numba is unavailable ({reason}); training runs on the slower "
                "NumPy path",
                RuntimeWarning,
                stacklevel=4,
            )
    return _kernels or None


class EpochResult(NamedTuple):
    """What an epoch produced: Σ over examples of the pre-update loss, how many were right,
    and, if a step diverged, its batch index and what went wrong (else None, "")."""

    loss_sum: float
    correct: float
    failed_batch: int | None = None
    what: str = ""


LOSS_NOT_FINITE = "the loss became {}"
WEIGHT_NOT_FINITE = "a weight became NaN or infinite"


# ------------------------------------------------------------------ choosing
def network_problem(net: FeedForward) -> str | None:
    """Why the fast engines cannot train ``net`` (None if they can): they need the built-in
    activations and losses, and C-contiguous parameters of the network's dtype."""
    for i, layer in enumerate(net.layers):
        if ACTIVATIONS.get(layer.activation.name) is not layer.activation:
            return f"layer {i} has a custom activation {layer.activation.name!r}"
        for name, p in (("W", layer.W), ("b", layer.b)):
            if not (isinstance(p, np.ndarray) and p.dtype == net.dtype and p.flags.c_contiguous):
                return f"layers[{i}].{name} is not a C-contiguous {net.dtype} array"
    if LOSSES.get(net.loss_function.name) is not net.loss_function:
        return f"the loss {net.loss_function.name!r} is a custom one"
    return None


def _state_problem(opt: Optimizer, net: FeedForward) -> str | None:
    """A mismatch between the optimizer's existing state and the parameters: left to
    Optimizer.step (the reference engine) to report in its own words."""
    if opt.state_problem(net.parameters()) is not None:
        return "the optimizer's state was created for other parameters"
    return None


def _watches_batches(hook: object) -> bool:
    method = getattr(hook, "on_batch_end", None)
    if method is None:
        return False
    from deltaprop.train.callbacks import Callback

    return getattr(method, "__func__", None) is not Callback.on_batch_end


def _online_problem(opt: Optimizer, size: int, hooks: Sequence[object]) -> str | None:
    if size != 1:
        return f"it trains one example per step (batch size 1), not {size}"
    if type(opt) is not SGD:
        return f"it implements SGD only, not {type(opt).__name__}"
    if any(_watches_batches(h) for h in hooks):
        return "a callback overrides on_batch_end, which must run after every example"
    return None


def choose_engine(
    net: FeedForward, opt: Optimizer, size: int, hooks: Sequence[object], requested: str
) -> str:
    """The engine ``fit`` runs: "online", "batch" or "reference" (see the module docstring).

    Raises ValueError when ``requested`` names an engine that cannot run this training.
    """
    if requested not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}. Received: engine={requested!r}")
    if requested == "reference":
        return "reference"
    batch_problem = network_problem(net) or _state_problem(opt, net)
    online_problem = batch_problem or _online_problem(opt, size, hooks)
    if requested == "online":
        if online_problem is None and load_kernels() is None:
            online_problem = "Numba is not available"
        if online_problem is not None:
            raise ValueError(f"engine='online' cannot run this training: {online_problem}")
        return "online"
    if requested == "batch":
        if batch_problem is not None:
            raise ValueError(f"engine='batch' cannot run this training: {batch_problem}")
        return "batch"
    if online_problem is None and load_kernels() is not None:
        return "online"
    return "batch" if batch_problem is None else "reference"


def accuracy_mode(net: FeedForward, measure: bool) -> int:
    """How kernels count right answers, mirroring network.accuracy_of."""
    if not measure:
        return 0
    if net.n_outputs == 1 or net.loss_function.name == "binary_cross_entropy":
        return 1
    return 2


# ------------------------------------------------------------------ optimizer state
def optimizer_buffers(opt: Optimizer, params: Sequence[Array]) -> list[dict[str, Array]]:
    """The optimizer's per-parameter state, which the fused kernels update in place.

    The state is created exactly as ``Optimizer.step`` creates it on its first call, so that
    continuing with ``opt.step`` (or saving ``opt.state_dict()``) sees what the reference
    path would have left.
    """
    return opt.ensure_state(params)


def fill_hyperparameters(opt: Optimizer, hp: Array) -> None:
    """Write the optimizer's step constants into ``hp`` (in the parameters' dtype).

    Each is computed as a Python float exactly where optimizers.py computes it, then cast,
    as NumPy casts a Python float operand (NEP 50).
    """
    if isinstance(opt, SGD):
        hp[:4] = (opt.lr, opt.weight_decay, opt.momentum, 1.0 - opt.dampening)
        return
    (beta1, beta2), t, lr = opt.betas, opt.steps, opt.lr
    w = 1.0 - beta1
    hp[:10] = (
        lr,
        opt.weight_decay,
        w,
        1.0 - w,
        beta2,
        1.0 - beta2,
        (1.0 - beta2**t) ** 0.5,
        opt.eps,
        lr / (1.0 - beta1**t),
        1.0 - lr * opt.weight_decay,
    )


def sgd_mode(opt: SGD) -> int:
    return 0 if opt.momentum == 0 else (2 if opt.nesterov else 1)


def restore(params: Sequence[Array], saved: Sequence[Array]) -> None:
    for p, s in zip(params, saved):
        np.copyto(p, s)


def finite(params: Sequence[Array]) -> bool:
    # A sum is non-finite whenever any term is, and costs one pass over the weights.
    return all(math.isfinite(np.sum(p)) for p in params)


# ------------------------------------------------------------------ online engine
class OnlineEngine:
    """Batch size 1, SGD: each epoch is one call of online_kernel.online_epoch."""

    def __init__(self, net: FeedForward, X: Array, T: Array, opt: SGD, measure_accuracy: bool):
        self.K = load_kernels()
        from deltaprop.train.engines import online_kernel

        self.kernel = online_kernel.online_epoch
        self.net, self.opt = net, opt
        self.X, self.T = np.ascontiguousarray(X), np.ascontiguousarray(T)
        dt = net.dtype
        sizes = net.sizes
        # Offsets are uint64 for the kernel's sake (see online_kernel's docstring).
        self.sizes = np.array(sizes, dtype=np.uint64)
        self.zoff = np.concatenate([[0], np.cumsum(sizes)]).astype(np.uint64)
        counts = [p.size for p in net.parameters()]
        self.poff = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.woff = self.poff[0:-1:2].astype(np.uint64)
        self.acts = np.array([self.K.ACTIVATIONS.index(ly.activation.name) for ly in net.layers])
        self.loss = self.K.LOSSES.index(net.loss_function.name)
        self.acc = accuracy_mode(net, measure_accuracy)
        self.params = np.empty((2, self.poff[-1]), dtype=dt)
        self.mom = np.zeros(self.poff[-1], dtype=dt)
        self.z = np.empty(self.zoff[-1], dtype=dt)
        self.dl = np.empty(self.zoff[-1], dtype=dt)
        self.a_out = np.empty(max(sizes[1:]), dtype=dt)  # every layer's a passes through
        self.hp = np.empty(4, dtype=dt)
        self.c = self.K.constants(dt)
        self.in_order = np.arange(self.X.shape[0], dtype=np.int64)

    def _views(self, flat: Array, params: Sequence[Array]) -> list[Array]:
        return [
            flat[a:b].reshape(p.shape) for a, b, p in zip(self.poff[:-1], self.poff[1:], params)
        ]

    def run_epoch(
        self, order: Array | None, on_batch: Any = None, first_batch: int = 0, *_: float
    ) -> EpochResult:
        """Train one epoch in ``order`` (None: as stored). ``on_batch`` is never needed:
        choose_engine sends callbacks that watch batches to the batch engine, and so
        checkpoints within an epoch, the only way to resume from the middle of one."""
        if first_batch:
            raise ValueError("the online engine trains whole epochs only")
        opt, params = self.opt, self.net.parameters()
        for view, p in zip(self._views(self.params[0], params), params):
            np.copyto(view, p)
        mode = sgd_mode(opt)
        state = optimizer_buffers(opt, params) if mode else None
        if state is not None:
            for view, st in zip(self._views(self.mom, params), state):
                np.copyto(view, st["momentum_buffer"])
        fill_hyperparameters(opt, self.hp)
        status, done, loss_sum, correct, src = self.kernel(
            self.X,
            self.T,
            self.in_order if order is None else order,
            self.params,
            self.sizes,
            self.woff,
            self.zoff,
            self.acts,
            self.loss,
            self.acc,
            self.hp,
            opt.weight_decay != 0,
            mode,
            opt.steps == 0,
            self.mom,
            self.z,
            self.dl,
            self.a_out,
            self.c,
        )
        # Leave weights and optimizer exactly as the reference loop would have.
        opt.steps += done + (status == 2)
        restore(params, self._views(self.params[src], params))
        if state is not None:
            restore([st["momentum_buffer"] for st in state], self._views(self.mom, params))
        if status == 1:
            bad = self._loss_of_example(order, done)
            return EpochResult(loss_sum, correct, done, LOSS_NOT_FINITE.format(bad))
        if status == 2:
            return EpochResult(loss_sum, correct, done, WEIGHT_NOT_FINITE)
        return EpochResult(loss_sum, float(correct))

    def _loss_of_example(self, order: Array | None, k: int) -> float:
        row = k if order is None else int(order[k])
        fp = self.net.forward(self.X[row : row + 1])
        with np.errstate(all="ignore"):
            return self.net.loss_of(fp, self.T[row : row + 1])


# ------------------------------------------------------------------ small fits
KERNEL_LOAD_SECONDS = 0.4  # importing Numba and loading the cached kernels, measured here


def engine_for_size(net: FeedForward, n_examples: int, epochs: int, batch_size: int | None) -> str:
    """ "auto" unless the kernels are not loaded in this process yet and the fit is too small
    to repay loading them; then "reference".

    The estimate of the reference path's time is deliberately rough: ~60 µs per step
    (Python and NumPy call overhead) plus the matrix products at ~20 GFLOP/s, which puts
    scikit-learn's digits defaults at the 0.6 s measured there. The online kernel saves
    nearly all of it, the batch engine about a third.
    """
    if _kernels:
        return "auto"
    size = n_examples if batch_size is None else min(batch_size, n_examples)
    steps = epochs * -(-n_examples // size)
    flops = 6.0 * epochs * n_examples * net.n_parameters  # forward and backward
    reference_seconds = steps * 60e-6 + flops / 2e10
    saved = reference_seconds * (0.95 if size == 1 else 0.35)
    return "auto" if saved > KERNEL_LOAD_SECONDS else "reference"
