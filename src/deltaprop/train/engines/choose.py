"""Which engine trains a fit: the one place where engines are named by strings.

Engines (all compute the reference's formulas; see README "Performance"):

- ``"reference"`` (:mod:`.reference`): Network.forward/backward and Optimizer.step, batch by
  batch, the readable maths.
- ``"online"`` (:mod:`.online`): batch size 1 with plain, momentum or Nesterov SGD (any weight
  decay and dampening): one Numba call trains a whole epoch.
- ``"batch"`` (:mod:`.batch`): any batch size and optimizer, in buffers allocated once, with
  fused Numba loops for activations, the output layer and the SGD/Adam/AdamW updates.

``"auto"`` picks online when it can run, else batch when it can, else reference. Both fast
engines need Numba, the built-in activations and losses and C-contiguous parameters of the
network's dtype; online also needs the exact class SGD, the examples as arrays (not batches
from an iterable) and nothing that must run around every batch (a callback overriding
``on_batch_begin`` or ``on_batch_end``, checkpoints within an epoch): it cannot stop between
examples, the batch engine serves those. The online kernel has none of the training
controls either (per-example weights, dropout, weight penalties, gradient clipping): "auto"
trains those on the batch engine (one example per batch), and
``engine="online"`` refuses them. Step observers watch the reference engine's steps, so
trainings with them run there, and so do trainings on sparse inputs (SciPy sparse matrices,
which only Network.forward/backward multiply). Without Numba the reference engine runs, for
``engine="batch"`` too (what the batch engine would compute on NumPy alone); ``"online"``
raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from deltaprop.core.activations import ACTIVATIONS
from deltaprop.core.losses import LOSSES
from deltaprop.core.network import FeedForward
from deltaprop.optim.optimizers import SGD, Optimizer
from deltaprop.train.callbacks import overrides_on_batch_begin, overrides_on_batch_end
from deltaprop.train.engines import compile_record
from deltaprop.train.engines.base import Engine, StepObserver, Workload
from deltaprop.train.engines.batch import BatchEngine
from deltaprop.train.engines.loading import kernels_loaded, load_kernels
from deltaprop.train.engines.online import OnlineEngine
from deltaprop.train.engines.reference import ReferenceEngine

__all__ = [
    "ENGINES",
    "choose_engine",
    "engine_for_epoch",
    "engine_for_size",
    "forgo_kernels",
    "kernel_saving",
    "load_kernels",
    "make_engine",
    "network_problem",
    "small_fit_savings",
]

ENGINES = ("auto", "reference", "online", "batch")
FAST_ENGINES = {"online": OnlineEngine, "batch": BatchEngine}  # in the order "auto" tries them


# ------------------------------------------------------------------ what each engine needs
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


def _batch_problem(
    net: FeedForward, opt: Optimizer, step_observers: Sequence[StepObserver]
) -> str | None:
    problem = network_problem(net)
    # A mismatch between the optimizer's state and the parameters is left to Optimizer.step
    # (the reference engine) to report in its own words.
    if problem is None and opt.state_problem(net.parameters()) is not None:
        problem = "the optimizer's state was created for other parameters"
    if problem is None and step_observers:
        problem = "step observers watch the reference engine's steps"
    return problem


def controls_problem(net: FeedForward, controls: Sequence[str]) -> str | None:
    """Why the online kernel cannot train with these controls (None if it can): it has no
    dropout, penalties, per-example weights or clipping. ``controls`` names the fit's own
    (those that are not the network's), as plan.FitPlan.controls does."""
    named = [*controls]
    if net.has_dropout:
        named.insert(0, "dropout")
    if net.has_penalty:
        named.insert(0, "weight penalties (l1, l2)")
    return f"its kernel has no {named[0]}" if named else None


def _online_problem(
    net: FeedForward,
    opt: Optimizer,
    size: int,
    hooks: Sequence[object],
    batch_checkpoints: bool,
    controls: Sequence[str],
    iterable: bool,
) -> str | None:
    if iterable:
        return "it trains on arrays, one kernel call per epoch, not on batches from an iterable"
    if size != 1:
        return f"it trains one example per step (batch size 1), not {size}"
    if type(opt) is not SGD:
        return f"it implements SGD only, not {type(opt).__name__}"
    problem = controls_problem(net, controls)
    if problem is not None:
        return problem
    if any(overrides_on_batch_end(h) for h in hooks):
        return "a callback overrides on_batch_end, which must run after every example"
    if any(overrides_on_batch_begin(h) for h in hooks):
        return "a callback overrides on_batch_begin, which must run before every example"
    if batch_checkpoints:
        return "checkpoints within an epoch are written after every few examples"
    return None


def _kernels_problem(net: FeedForward, kernels: ModuleType | None) -> str | None:
    if kernels is None:
        return "Numba is not available"
    names = [layer.activation.name for layer in net.layers]
    unknown = [a for a in names if a not in kernels.ACTIVATIONS]
    if net.loss_function.name not in kernels.LOSSES:
        unknown.append(net.loss_function.name)
    return f"the kernels have no code for {unknown[0]!r}" if unknown else None


# ------------------------------------------------------------------ choosing
def choose_engine(
    net: FeedForward,
    opt: Optimizer,
    size: int,
    hooks: Sequence[object],
    requested: str,
    *,
    batch_checkpoints: bool = False,
    step_observers: Sequence[StepObserver] = (),
    controls: Sequence[str] = (),
    iterable: bool = False,
    sparse_inputs: bool = False,
) -> str:
    """The engine a fit runs, "online", "batch" or "reference" (see the module docstring),
    for ``net`` trained with ``opt`` in batches of ``size``, with callbacks ``hooks``.

    ``batch_checkpoints``: checkpoints are written within epochs. ``controls``: the fit's
    training controls in words ("per-example weights", "gradient clipping"). ``iterable``:
    the batches come from an iterable (an IterableSource), not arrays. ``sparse_inputs``:
    the inputs are a SciPy sparse matrix. Raises ValueError when ``requested`` names an
    engine that cannot run this training.
    """
    if requested not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}. Received: engine={requested!r}")
    if requested == "reference":
        return "reference"
    problems = {"batch": _batch_problem(net, opt, step_observers)}
    if sparse_inputs and problems["batch"] is None:
        problems["batch"] = "the inputs are sparse; only the reference engine multiplies them"
    problems["online"] = problems["batch"] or _online_problem(
        net, opt, size, hooks, batch_checkpoints, controls, iterable
    )
    if requested != "auto" and problems[requested] is not None:
        raise ValueError(f"engine={requested!r} cannot run this training: {problems[requested]}")
    fits = [name for name in FAST_ENGINES if requested in ("auto", name) and not problems[name]]
    if not fits:
        return "reference"
    kernels_problem = _kernels_problem(net, load_kernels())
    if kernels_problem is None:
        return fits[0]
    if requested == "online":
        raise ValueError(f"engine='online' cannot run this training: {kernels_problem}")
    return "reference"


def make_engine(name: str, work: Workload, step_observers: Sequence[StepObserver] = ()) -> Engine:
    """The engine ``name`` (as choose_engine gives it) for ``work``."""
    if name == "reference":
        return ReferenceEngine(work, step_observers)
    return FAST_ENGINES[name](work)


def engine_for_epoch(engine: Engine) -> Engine:
    """The engine for the next epoch: ``engine``, or the reference engine on the same work once
    a callback has swapped in parameters the fast engines cannot update in place. The check is
    one look at every layer's arrays, cheap beside an epoch."""
    if isinstance(engine, ReferenceEngine) or network_problem(engine.work.net) is None:
        return engine
    return ReferenceEngine(engine.work)


# ------------------------------------------------------------------ small fits
KERNEL_LOAD_SECONDS = 0.4  # importing Numba and loading the cached kernels, measured here
# A configuration's first compilation (benchmarks/compile_cost.py, empty cache, measured here):
# the batch engine's loops and update 1.3-1.9 s, the online kernel 2.3-2.6 s, on 2026-12-03
# 1.65 and 2.57 s; on 2026-12-04, a faster day, once the helpers compiled no wrappers and
# the online kernel no inlined copy of its epoch (compiling.jit, online_kernel._epoch_for),
# 0.74-0.96 s and 1.14 s (1.20 s once it found a divergence from the next forward pass).
# Priced at a slow day's: the machine's speed drifts by up to 1.6x between days, and a price
# too high only delays the buying.
COMPILE_SECONDS = {"batch": 1.5, "online": 2.0}


@dataclass
class SmallFitSavings:
    """The seconds the kernels would have saved, by :func:`kernel_saving`'s estimate, on the
    fits this process ran on NumPy because each alone was too small to repay loading (or
    compiling) them (:func:`forgo_kernels` adds each, for the epochs it ran), in all and by
    configuration (compile_record.configuration). Once that and the next fit's saving
    together exceed the cost, the kernels load: a search, a cross-validation or a loop of
    ``partial_fit`` calls stops paying NumPy's price after about that cost (the rent-or-buy
    rule, which by the estimate never pays more than twice what the best choice made knowing
    the future would), while a lone small fit never loads them."""

    seconds: float = 0.0
    by_configuration: dict[str, float] = field(default_factory=dict)


small_fit_savings = SmallFitSavings()


def kernel_saving(net: FeedForward, n_examples: int, epochs: int, batch_size: int | None) -> float:
    """The seconds the kernels would save on a fit, by a deliberately rough estimate: not a
    timing, so that which engine a fit runs on (and so its last digits) does not depend on
    the machine's load. The online kernel saves nearly all of the reference path's time:
    ~60 µs per step of Python and NumPy calls plus the matrix products at ~20 GFLOP/s. The
    batch engine runs the same matrix products; per step it saves ~53 µs of calls, ~0.37 ns
    per byte of parameters (the reference's optimizer passes over every parameter several
    times, the fused update once: memory traffic, so float32 saves half), ~1.7 ns per element
    of the step's activations (batch rows x units: the reference's separate passes for each
    layer's activation, slope and delta) and ~4 ns more per element of a sigmoid layer (its
    exponential and division). ``python benchmarks/kernel_saving.py`` prints 20 fits timed on
    both engines beside the estimate (2026-12-04: scikit-learn's estimators with their
    defaults and plain ``fit``, digits and 8,000 MNIST-shaped rows, 64-50-10 to
    784-256-128-10, batches of 32 to 200, Adam and SGD, float64 and float32): within 27% of
    each in two runs on a quiet machine (22% in the last), up to 38% low in one while the
    machine ran slower."""
    size = n_examples if batch_size is None else min(batch_size, n_examples)
    steps = epochs * -(-n_examples // size)
    if size == 1:
        flops = 6.0 * epochs * n_examples * net.n_parameters  # forward and backward
        return 0.95 * (steps * 60e-6 + flops / 2e10)
    parameter_bytes = net.n_parameters * net.dtype.itemsize
    activations = size * sum(net.sizes[1:])
    sigmoid_units = sum(layer.n_out for layer in net.layers if layer.activation.name == "sigmoid")
    return steps * (
        53e-6 + 0.37e-9 * parameter_bytes + 1.7e-9 * activations + 4e-9 * size * sigmoid_units
    )


def _fast_engine(opt: Optimizer, batch_size: int | None) -> str:
    """The fast engine "auto" would pick by the size and the optimizer alone: online for one
    example per step with SGD, else batch (what else sends a fit elsewhere is not known here)."""
    return "online" if batch_size == 1 and type(opt) is SGD else "batch"


def _beyond_load(seconds: float) -> float:
    return max(0.0, seconds - KERNEL_LOAD_SECONDS)


def engine_for_size(
    net: FeedForward, opt: Optimizer, n_examples: int, epochs: int, batch_size: int | None
) -> str:
    """ "auto" unless the kernels are not loaded in this process yet and a fit of up to
    ``epochs`` would not repay what they cost it: loading them, and compiling them too
    unless this machine's compile_record says Numba's cache holds them; then "reference",
    and the caller reports the epochs it ran to :func:`forgo_kernels`. The kernels'
    estimated saving (:func:`kernel_saving`) counts the savings forgone on this process's
    earlier small fits (:class:`SmallFitSavings`), and, against compiling, those that
    earlier processes forwent on this configuration. Once loaded (a bigger fit, or
    :func:`load_kernels`), the kernels run every fit they can, compiling what they must."""
    if kernels_loaded():
        return "auto"
    engine = _fast_engine(opt, batch_size)
    config = compile_record.configuration(engine, net, opt)
    record = compile_record.read(config)
    saved = kernel_saving(net, n_examples, epochs, batch_size) + small_fit_savings.seconds
    gain = saved - KERNEL_LOAD_SECONDS
    if not record.compiled:
        # The record holds this process's part too (forgo_kernels writes it at once).
        own = _beyond_load(small_fit_savings.by_configuration.get(config, 0.0))
        gain += record.forgone_seconds - own - COMPILE_SECONDS[engine]
    return "auto" if gain > 0 else "reference"


def forgo_kernels(
    net: FeedForward, opt: Optimizer, n_examples: int, epochs_run: int, batch_size: int | None
) -> None:
    """Count what the kernels would have saved on a fit that :func:`engine_for_size` sent to
    the reference engine, over the epochs it ran (fewer than asked when it stopped early):
    in this process, and, beyond loading the kernels, in the record of the configuration."""
    config = compile_record.configuration(_fast_engine(opt, batch_size), net, opt)
    saved = kernel_saving(net, n_examples, epochs_run, batch_size)
    small_fit_savings.seconds += saved
    before = small_fit_savings.by_configuration.get(config, 0.0)
    small_fit_savings.by_configuration[config] = before + saved
    # This process's part of the record: its saving on the configuration beyond loading.
    compile_record.add_forgone(config, _beyond_load(before + saved) - _beyond_load(before))
