"""One training step, recorded: every a, z, δ, gradient, optimizer state and Δw.

:func:`explain` runs the step the way ``fit(batch_size=1)`` runs it (the library's own forward,
backward and optimizer code) and keeps every intermediate number in a :class:`Trace`. The
trace is plain data: renderers (:mod:`deltaprop.explain.render`) turn it into text, Markdown or
LaTeX, and :meth:`Trace.to_json` writes the documented schema (see :mod:`deltaprop.explain`).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deltaprop.core.network import FeedForward
from deltaprop.core.validation import check_positive_int
from deltaprop.optim.optimizers import SGD, Optimizer, get_optimizer
from deltaprop.train.loop import TrainingDivergedError

Array = np.ndarray

SCHEMA_VERSION = 1
KIND = "deltaprop.trace"
SIGN_CONVENTION = "delta_j = -dE/da_j"

# How the output deltas were obtained, keyed by (loss, output activation). Renderers pick the
# formula from this name; JSON consumers can too.
DELTA_RULES = {
    ("mse", "sigmoid"): "sigmoid_mse",
    ("mse", "softmax"): "softmax_mse",
    ("cross_entropy", "softmax"): "softmax_cross_entropy",
    ("binary_cross_entropy", "sigmoid"): "sigmoid_binary_cross_entropy",
}
RULE_FORMULAS = {
    "sigmoid_mse": "δ_k = o_k (1 − o_k)(t_k − o_k)",
    "mse": "δ_k = −∂E/∂o_k · h'(a_k) = (t_k − o_k) h'(a_k)",
    "softmax_mse": "δ_k = o_k ((t_k − o_k) − Σ_m o_m (t_m − o_m))",
    "softmax_cross_entropy": "δ_k = t_k − o_k",
    "sigmoid_binary_cross_entropy": "δ_k = t_k − o_k",
    "general": "δ_k = −∂E/∂o_k · h'(a_k)",
    "hidden": "δ_j = h'(a_j) Σ_k δ_k w_kj",
}


def output_rule(loss: str, activation: str, elementwise: bool) -> str:
    rule = DELTA_RULES.get((loss, activation))
    if rule is None:
        rule = "mse" if loss == "mse" and elementwise else "general"
    return rule


def _arrays_equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_arrays_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_arrays_equal(x, y) for x, y in zip(a, b))
    return a == b


@dataclass(eq=False)
class LayerTrace:
    """One layer of units (``index`` 1..L; layer 0 is the inputs) during the step.

    Arrays are indexed by unit j (and i, the unit of the layer before, for weights):
    ``a``, ``z`` forwarding; ``h_prime`` h'(a_j) (None for softmax, which has a Jacobian);
    ``backprop`` Σ_k δ_k w_kj for hidden layers (None for the output layer); ``delta`` δ_j;
    ``W``/``b`` before the step, ``W_grad``/``b_grad`` ∂E/∂w (= −δ_j z_i), ``W_new``/``b_new``
    after it; ``optimizer_state[param][buffer] = {"before": array, "after": array}``.
    """

    index: int
    role: str
    activation: str
    delta_rule: str
    a: Array
    z: Array
    h_prime: Array | None
    backprop: Array | None
    delta: Array
    W: Array
    b: Array
    W_grad: Array
    b_grad: Array
    W_new: Array
    b_new: Array
    optimizer_state: dict[str, dict[str, dict[str, Array]]] = field(default_factory=dict)

    @property
    def W_change(self) -> Array:
        """Δw_ji = new − old, as the optimizer made it."""
        return self.W_new - self.W

    @property
    def b_change(self) -> Array:
        return self.b_new - self.b

    @property
    def size(self) -> int:
        return self.a.shape[0]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LayerTrace):
            return NotImplemented
        return all(_arrays_equal(getattr(self, k), getattr(other, k)) for k in _LAYER_FIELDS)


_LAYER_ARRAYS = ("a", "z", "h_prime", "backprop", "delta", "W", "b", "W_grad", "b_grad")
_LAYER_FIELDS = (
    "index",
    "role",
    "activation",
    "delta_rule",
    *_LAYER_ARRAYS,
    "W_new",
    "b_new",
    "optimizer_state",
)


@dataclass(eq=False)
class Trace:
    """A recorded training step on one example; see :func:`explain`.

    ``network``: {"sizes", "activations", "loss", "loss_formula", "dtype"}.
    ``optimizer``: the optimizer's ``config()`` plus "step", the t of this step.
    ``x``, ``t``: the example (t as the target row the loss saw, e.g. one-hot).
    ``layers``: one :class:`LayerTrace` per layer of units, inputs excluded.
    ``error_before``, ``error_after``: E on the example before and after the step.
    ``history``: [{"step": s, "error": E, "output": [...]}] for s = 0 (before) .. steps.
    ``applied``: whether the caller's network (and optimizer) were updated.
    """

    network: dict[str, Any]
    optimizer: dict[str, Any]
    x: Array
    t: Array
    layers: list[LayerTrace]
    error_before: float
    error_after: float
    history: list[dict[str, Any]]
    applied: bool = False
    input_names: list[str] | None = None
    output_names: list[str] | None = None
    schema_version: int = SCHEMA_VERSION

    # ------------------------------------------------------------ convenience
    @property
    def sizes(self) -> list[int]:
        return list(self.network["sizes"])

    @property
    def output(self) -> Array:
        """The outputs o before the step."""
        return self.layers[-1].z

    @property
    def output_after(self) -> Array:
        return np.asarray(self.history[1]["output"], dtype=self.x.dtype)

    @property
    def steps(self) -> int:
        return len(self.history) - 1

    @property
    def errors(self) -> list[float]:
        """E before the first step and after each step."""
        return [h["error"] for h in self.history]

    def render(self, format: str = "text", **options: Any) -> str:
        """The explanation as ``format`` "text", "markdown", "latex" or "json".

        Options (text, Markdown, LaTeX): see :class:`deltaprop.explain.render.Options`.
        """
        from deltaprop.explain.render import render

        return render(self, format, **options)

    def __str__(self) -> str:
        return self.render("text")

    def _repr_markdown_(self) -> str:
        return self.render("markdown")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        names = (
            "schema_version",
            "network",
            "optimizer",
            "x",
            "t",
            "layers",
            "error_before",
            "error_after",
            "history",
            "applied",
            "input_names",
            "output_names",
        )
        return all(_arrays_equal(getattr(self, k), getattr(other, k)) for k in names)

    # ------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data in the documented schema (nested lists for arrays)."""

        def arr(v: Array | None) -> Any:
            return None if v is None else v.tolist()

        layers = []
        for ly in self.layers:
            d: dict[str, Any] = {
                "index": ly.index,
                "role": ly.role,
                "activation": ly.activation,
                "delta_rule": ly.delta_rule,
                "delta_formula": RULE_FORMULAS.get(ly.delta_rule, ""),
            }
            for name in _LAYER_ARRAYS:
                d[name] = arr(getattr(ly, name))
            d["W_new"], d["b_new"] = arr(ly.W_new), arr(ly.b_new)
            # Derived, written for readers of the JSON; from_dict recomputes them.
            d["W_change"], d["b_change"] = arr(ly.W_change), arr(ly.b_change)
            d["optimizer_state"] = {
                param: {
                    buf: {when: arr(v) for when, v in pair.items()} for buf, pair in bufs.items()
                }
                for param, bufs in ly.optimizer_state.items()
            }
            layers.append(d)
        return {
            "schema_version": self.schema_version,
            "kind": KIND,
            "sign_convention": SIGN_CONVENTION,
            "network": dict(self.network),
            "optimizer": dict(self.optimizer),
            "input": arr(self.x),
            "target": arr(self.t),
            "input_names": self.input_names,
            "output_names": self.output_names,
            "error_before": self.error_before,
            "error_after": self.error_after,
            "applied": self.applied,
            "layers": layers,
            "history": [
                {"step": h["step"], "error": h["error"], "output": list(h["output"])}
                for h in self.history
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        # allow_nan=False: a trace never holds NaN or inf (explain refuses diverging steps),
        # and the output must be strict JSON for other tools.
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        if not isinstance(data, dict) or data.get("kind") != KIND:
            kind = data.get("kind") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a deltaprop trace: expected kind {KIND!r}. Received: {kind!r}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"trace schema_version {version!r} is not supported; this deltaprop reads "
                f"schema_version {SCHEMA_VERSION}"
            )
        try:
            dtype = np.dtype(data["network"]["dtype"])

            def arr(v: Any) -> Array | None:
                return None if v is None else np.asarray(v, dtype=dtype)

            layers = []
            for d in data["layers"]:
                layers.append(
                    LayerTrace(
                        index=int(d["index"]),
                        role=d["role"],
                        activation=d["activation"],
                        delta_rule=d["delta_rule"],
                        **{name: arr(d[name]) for name in _LAYER_ARRAYS},
                        W_new=arr(d["W_new"]),
                        b_new=arr(d["b_new"]),
                        optimizer_state={
                            param: {
                                buf: {when: arr(v) for when, v in pair.items()}
                                for buf, pair in bufs.items()
                            }
                            for param, bufs in d["optimizer_state"].items()
                        },
                    )
                )
            return cls(
                network=dict(data["network"]),
                optimizer=dict(data["optimizer"]),
                x=arr(data["input"]),
                t=arr(data["target"]),
                layers=layers,
                error_before=float(data["error_before"]),
                error_after=float(data["error_after"]),
                history=[
                    {"step": int(h["step"]), "error": float(h["error"]), "output": h["output"]}
                    for h in data["history"]
                ],
                applied=bool(data["applied"]),
                input_names=data.get("input_names"),
                output_names=data.get("output_names"),
                schema_version=int(version),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed deltaprop trace: missing or bad field {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> Trace:
        return cls.from_dict(json.loads(text))


# ---------------------------------------------------------------------------- recording
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


def _buffers(opt: Optimizer, params: list[Array]) -> list[dict[str, Array]]:
    """Copies of the optimizer's per-parameter buffers, as the next step will read them."""
    names = opt.buffer_names()
    if opt.state is None:
        # Before the first step the state does not exist yet; its initial values are what
        # ensure_state will create (zeros, or Adagrad's initial_accumulator_value).
        return [opt.fresh_buffers(p) for p in params]
    return [{k: st[k].copy() for k in names} for st in opt.state]


def _check_names(names: object, n: int, what: str) -> list[str] | None:
    if names is None:
        return None
    out = [str(v) for v in names]  # type: ignore[attr-defined]
    if len(out) != n:
        raise ValueError(f"{what} must list {n} names, one per unit. Received {len(out)}: {out}")
    return out


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
    fast engines fit may choose agree to rounding); Δw is reported as new − old.
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

    params = work.parameters()
    before = [p.copy() for p in params]
    state_before = _buffers(opt, params)
    with np.errstate(under="ignore", over="ignore", invalid="ignore"):
        fp = work.forward(X)
        error = work.loss_of(fp, T)
        if not math.isfinite(error):
            raise TrainingDivergedError(f"E is {error} before the step; nothing to explain")
        deltas = work.backward(fp, T)
        grads = work.gradients_from(fp, deltas)
        # The same call fit's _train_step makes: one step on this one example.
        opt.step(params, [g for pair in grads for g in pair])
    state_after = _buffers(opt, params)
    t_used = opt.steps

    layers = []
    n_layers = len(work.layers)
    for li, layer in enumerate(work.layers):
        z = fp.z[li + 1][0]
        act = layer.activation
        h_prime = act.derivative(fp.z[li + 1])[0] if act.elementwise else None
        backprop = None if li == n_layers - 1 else (deltas[li + 1] @ before[2 * li + 2])[0]
        rule = (
            output_rule(work.loss_function.name, act.name, act.elementwise)
            if li == n_layers - 1
            else "hidden"
        )
        state = {}
        for slot, pname in ((2 * li, "W"), (2 * li + 1, "b")):
            state[pname] = {
                buf: {"before": state_before[slot][buf], "after": state_after[slot][buf]}
                for buf in state_before[slot]
            }
        layers.append(
            LayerTrace(
                index=li + 1,
                role="output" if li == n_layers - 1 else "hidden",
                activation=layer.activation.name,
                delta_rule=rule,
                a=fp.a[li][0].copy(),
                z=z.copy(),
                h_prime=h_prime,
                backprop=backprop,
                delta=deltas[li][0].copy(),
                W=before[2 * li],
                b=before[2 * li + 1],
                W_grad=grads[li][0],
                b_grad=grads[li][1],
                W_new=params[2 * li].copy(),
                b_new=params[2 * li + 1].copy(),
                optimizer_state=state,
            )
        )

    history = [{"step": 0, "error": error, "output": fp.output[0].tolist()}]
    for step in range(1, steps + 1):
        if step > 1:
            with np.errstate(under="ignore", over="ignore", invalid="ignore"):
                fp = work.forward(X)
                g = work.gradients_from(fp, work.backward(fp, T))
                opt.step(params, [p for pair in g for p in pair])
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

    if apply:
        for mine, theirs in zip(net.parameters(), params):
            mine[...] = theirs
        if isinstance(optimizer, Optimizer):
            vars(optimizer).update(vars(opt))

    loss = work.loss_function
    return Trace(
        network={
            "sizes": work.sizes,
            "activations": [ly.activation.name for ly in work.layers],
            "loss": loss.name,
            "loss_formula": loss.formula,
            "dtype": work.dtype.name,
        },
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
    )
