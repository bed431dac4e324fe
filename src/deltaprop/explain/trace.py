"""One training step, recorded: every a, z, δ, gradient, optimizer state and Δw.

:func:`explain` runs the step the way ``fit(batch_size=1)`` runs it (the library's own forward,
backward and optimizer code) and keeps every intermediate number in a
:class:`~deltaprop.explain.record.Trace`, plain data that renderers turn into text, Markdown or
LaTeX and :meth:`~deltaprop.explain.record.Trace.to_json` writes in the documented schema.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from deltaprop.core.network import FeedForward, ForwardPass
from deltaprop.core.validation import check_positive_int
from deltaprop.errors import TrainingDivergedError
from deltaprop.explain.deltas import HIDDEN, output_rule
from deltaprop.explain.record import SCHEMA_VERSION, LayerTrace, Trace
from deltaprop.optim.optimizers import SGD, Optimizer, get_optimizer

Array = np.ndarray

__all__ = ["SCHEMA_VERSION", "LayerTrace", "Trace", "explain"]

Buffers = list[dict[str, Array]]


# ---------------------------------------------------------------------------- the example
def _one_row(value: object, name: str) -> Array:
    arr = np.asarray(value)
    if arr.ndim == 2 and arr.shape[0] == 1:
        return arr
    if arr.ndim > 1:
        raise ValueError(
            f"explain takes one example: {name} must be a single row. Received: shape {arr.shape}"
        )
    return arr.reshape(1, -1)


def _targets(net: FeedForward, t: object) -> Array:
    arr = np.asarray(t)
    # A scalar is a class label (cross-entropy) or the one output's target; both are the
    # 1-D form prepare_targets understands.
    if arr.ndim == 0:
        arr = arr.reshape(1)
    elif arr.ndim == 1:
        arr = arr.reshape(1, -1)
    elif arr.ndim > 2 or arr.shape[0] != 1:
        raise ValueError(
            f"explain takes one example: t must be a single target row. Received: shape {arr.shape}"
        )
    return net.check_targets(arr, 1, "t")


def _check_names(names: object, n: int, what: str) -> list[str] | None:
    if names is None:
        return None
    out = [str(v) for v in names]  # type: ignore[attr-defined]
    if len(out) != n:
        raise ValueError(f"{what} must list {n} names, one per unit. Received {len(out)}: {out}")
    return out


# ---------------------------------------------------------------------------- the step
def _buffers(opt: Optimizer, params: list[Array]) -> Buffers:
    """Copies of the optimizer's per-parameter buffers, as the next step will read them."""
    names = opt.buffer_names()
    if opt.state is None:
        # Before the first step the state does not exist yet; its initial values are what
        # ensure_state will create (zeros, or Adagrad's initial_accumulator_value).
        return [opt.fresh_buffers(p) for p in params]
    return [{k: st[k].copy() for k in names} for st in opt.state]


def _step(work: FeedForward, opt: Optimizer, X: Array, T: Array) -> ForwardPass:
    """One step of ``opt`` on the example, exactly as fit's reference engine takes it (with
    a dropout mask drawn from the network's generator when it has dropout)."""
    with np.errstate(under="ignore", over="ignore", invalid="ignore"):
        fp = work.forward(X, work.dropout_masks(1))
        grads = work.gradients_from(fp, work.backward(fp, T))
        opt.step(work.parameters(), [g for pair in grads for g in pair])
    return fp


def _layers(
    work: FeedForward,
    fp: ForwardPass,
    deltas: list[Array],
    grads: list[tuple[Array, Array]],
    before: list[Array],
    state: tuple[Buffers, Buffers],
) -> list[LayerTrace]:
    """Each layer's record of the step: ``before`` the parameters and ``state`` the optimizer's
    buffers (before, after) it started from."""
    params, n_layers, layers = work.parameters(), len(work.layers), []
    for li, layer in enumerate(work.layers):
        act, output = layer.activation, li == n_layers - 1
        rule = output_rule(work.loss_function, act) if output else HIDDEN
        # Under dropout a hidden layer's z is h(a) before the mask; the mask is kept beside.
        z = fp.z[li + 1] if fp.undropped is None or output else fp.undropped[li]
        mask = None
        if fp.masks is not None and not output and fp.masks[li] is not None:
            mask = (fp.masks[li][0] != 0).astype(z.dtype)
        layers.append(
            LayerTrace(
                index=li + 1,
                role="output" if output else "hidden",
                activation=act.name,
                delta_rule=rule.name,
                a=fp.a[li][0].copy(),
                z=z[0].copy(),
                # The factors of backward's δ_j = h'(a_j) Σ_k δ_k w_kj, formed as it forms them.
                h_prime=act.derivative(z)[0] if act.elementwise else None,
                backprop=None if output else (deltas[li + 1] @ before[2 * li + 2])[0],
                delta=deltas[li][0].copy(),
                W=before[2 * li],
                b=before[2 * li + 1],
                W_grad=grads[li][0],
                b_grad=grads[li][1],
                W_new=params[2 * li].copy(),
                b_new=params[2 * li + 1].copy(),
                optimizer_state={
                    pname: {
                        buf: {"before": state[0][slot][buf], "after": state[1][slot][buf]}
                        for buf in state[0][slot]
                    }
                    for slot, pname in ((2 * li, "W"), (2 * li + 1, "b"))
                },
                mask=mask,
            )
        )
    return layers


def _record_first_step(
    work: FeedForward, opt: Optimizer, X: Array, T: Array
) -> tuple[list[LayerTrace], dict, int]:
    """Take the first step, keeping every number: (layers, history entry of step 0, t)."""
    params = work.parameters()
    before = [p.copy() for p in params]
    state_before = _buffers(opt, params)
    with np.errstate(under="ignore", over="ignore", invalid="ignore"):
        fp = work.forward(X, work.dropout_masks(1))
        error = work.loss_of(fp, T)
        if not math.isfinite(error):
            raise TrainingDivergedError(f"E is {error} before the step; nothing to explain")
        deltas = work.backward(fp, T)
        grads = work.gradients_from(fp, deltas)
        # The same call fit's _train_step makes: one step on this one example.
        opt.step(params, [g for pair in grads for g in pair])
    layers = _layers(work, fp, deltas, grads, before, (state_before, _buffers(opt, params)))
    return layers, {"step": 0, "error": error, "output": fp.output[0].tolist()}, opt.steps


def _history(
    work: FeedForward, opt: Optimizer, X: Array, T: Array, steps: int, first: dict
) -> list[dict]:
    """E and o before the steps and after each (the first already taken); TrainingDivergedError
    when one makes E or a weight non-finite."""
    history, params = [first], work.parameters()
    for step in range(1, steps + 1):
        if step > 1:
            _step(work, opt, X, T)
        with np.errstate(under="ignore", over="ignore", invalid="ignore"):
            fp = work.forward(X)
            error = work.loss_of(fp, T)
        if not math.isfinite(error) or not all(np.isfinite(p).all() for p in params):
            raise TrainingDivergedError(
                f"step {step} of {steps} made {'E' if not math.isfinite(error) else 'a weight'} "
                f"non-finite; the network is unchanged. Try a smaller learning rate "
                f"(lr={opt.lr:g})"
            )
        history.append({"step": step, "error": error, "output": fp.output[0].tolist()})
    return history


def _network_record(net: FeedForward) -> dict:
    loss = net.loss_function
    record = {
        "sizes": net.sizes,
        "activations": [ly.activation.name for ly in net.layers],
        "loss": loss.name,
        "loss_formula": loss.formula,
        "dtype": net.dtype.name,
    }
    # The training controls a network carries, only when it has them.
    if net.has_dropout:
        record["dropout"] = list(net.dropout)
    if net.has_penalty:
        record.update(l2=list(net.l2), l1=list(net.l1), penalty_scale=net.penalty_scale)
    return record


def explain(
    net: FeedForward,
    x: object,
    t: object,
    optimizer: Optimizer | str | dict | None = None,
    *,
    steps: int = 1,
    apply: bool = False,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
) -> Trace:
    """Run one training step of ``net`` on the example (x, t) and record every number.

    The step is exactly one step of ``net.fit(x, t, batch_size=1, optimizer=optimizer)`` on
    fit's reference engine (the library's forward pass, delta rule and ``optimizer.step``; the
    fast engines fit may choose agree to rounding); Δw is reported as new − old. A network
    with dropout draws the step's mask from its generator (a copy's, unless ``apply``), and
    the trace records it; a network's weight penalty is part of E and of the gradient.
    (One example's weight would cancel in Σ v E / Σ v, so explain takes none.)
    ``optimizer`` is an Optimizer, a name or a config dict, default ``SGD(lr=0.1)`` (fit's
    default); a stateful optimizer (momentum, Adam, ...) is used with the state it has.

    ``steps``: take this many steps on the same example and record E (and o) after each in
    ``trace.history``; the detailed record is of the first step.
    ``apply``: False (default) leaves ``net`` and ``optimizer`` untouched; True puts the
    updated weights (and optimizer state) into them afterwards, as training would. Either
    way the steps run on copies, so a step that diverges changes nothing.
    ``input_names``, ``output_names``: optional labels (feature and class names) for display.

    Raises ValueError for inputs or targets that do not fit the network, and
    :class:`~deltaprop.TrainingDivergedError` if a step makes E or a weight non-finite.
    """
    if not isinstance(net, FeedForward):
        raise ValueError(f"explain needs a deltaprop Network. Received: {type(net).__name__}")
    X = net.check_inputs(_one_row(x, "x"), "x")
    T = _targets(net, t)
    steps = check_positive_int(steps, "steps")
    if not isinstance(apply, bool):
        raise ValueError(f"apply must be True or False. Received: apply={apply!r}")
    input_names = _check_names(input_names, net.n_inputs, "input_names")
    output_names = _check_names(output_names, net.n_outputs, "output_names")
    given = SGD(lr=0.1) if optimizer is None else get_optimizer(optimizer)
    # Always step copies: a step that diverges, or bad input found late, then leaves the
    # caller's network and optimizer as they were; with apply=True the result is copied back.
    work, opt = net.copy(), copy.deepcopy(given)
    penalty = work.penalty() if work.has_penalty else None
    layers, first, t_used = _record_first_step(work, opt, X, T)
    history = _history(work, opt, X, T, steps, first)
    if apply:
        for mine, theirs in zip(net.parameters(), work.parameters()):
            mine[...] = theirs
        net.rng.bit_generator.state = work.rng.bit_generator.state  # dropout's draws
        if isinstance(optimizer, Optimizer):
            vars(optimizer).update(vars(opt))
    return Trace(
        network=_network_record(work),
        optimizer={**opt.config(), "step": t_used},
        x=X[0].copy(),
        t=T[0].copy(),
        layers=layers,
        error_before=history[0]["error"],
        error_after=history[1]["error"],
        history=history,
        applied=apply,
        input_names=input_names,
        output_names=output_names,
        penalty=penalty,
    )
