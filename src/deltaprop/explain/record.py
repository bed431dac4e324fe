"""A recorded training step: the :class:`Trace` and its :class:`LayerTrace` records, and their
JSON (the schema is documented in :mod:`deltaprop.explain`).

Plain data: :func:`deltaprop.explain.explain` fills it in, the renderers
(:mod:`deltaprop.explain.render`) write it out, and :meth:`Trace.to_json` /
:meth:`Trace.from_json` convert it losslessly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deltaprop.explain.deltas import formula_of
from deltaprop.explain.render import render

Array = np.ndarray

SCHEMA_VERSION = 1
KIND = "deltaprop.trace"
SIGN_CONVENTION = "delta_j = -dE/da_j"


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


def _as_list(v: Array | None) -> Any:
    return None if v is None else v.tolist()


def _map_state(state: dict[str, Any], convert: Callable[[Any], Any]) -> dict[str, Any]:
    """``optimizer_state`` ({param: {buffer: {"before"/"after": array}}}) with each array
    converted."""
    return {
        param: {buf: {when: convert(v) for when, v in pair.items()} for buf, pair in bufs.items()}
        for param, bufs in state.items()
    }


@dataclass(eq=False)
class LayerTrace:
    """One layer of units (``index`` 1..L; layer 0 is the inputs) during the step.

    Arrays are indexed by unit j (and i, the unit of the layer before, for weights):
    ``a``, ``z`` forwarding; ``h_prime`` h'(a_j) (None for softmax, which has a Jacobian);
    ``backprop`` Σ_k δ_k w_kj for hidden layers (None for the output layer); ``delta`` δ_j;
    ``W``/``b`` before the step, ``W_grad``/``b_grad`` ∂E/∂w (= −δ_j z_i, plus the penalty's
    term), ``W_new``/``b_new`` after it; ``optimizer_state[param][buffer] = {"before": array,
    "after": array}``; ``mask`` the step's dropout mask m_j ∈ {0, 1} of a hidden layer with
    dropout (None otherwise): the layer passes z_j m_j / (1 − p) on.
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
    mask: Array | None = None

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

    def to_dict(self) -> dict[str, Any]:
        """The layer's object in the JSON schema."""
        d: dict[str, Any] = {
            "index": self.index,
            "role": self.role,
            "activation": self.activation,
            "delta_rule": self.delta_rule,
            "delta_formula": formula_of(self.delta_rule),
        }
        for name in _LAYER_ARRAYS:
            d[name] = _as_list(getattr(self, name))
        d["W_new"], d["b_new"] = _as_list(self.W_new), _as_list(self.b_new)
        # Derived, written for readers of the JSON; from_dict recomputes them.
        d["W_change"], d["b_change"] = _as_list(self.W_change), _as_list(self.b_change)
        d["optimizer_state"] = _map_state(self.optimizer_state, _as_list)
        if self.mask is not None:
            d["mask"] = _as_list(self.mask)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], arr: Callable[[Any], Array | None]) -> LayerTrace:
        """The layer from its JSON object, its arrays made by ``arr``."""
        return cls(
            index=int(d["index"]),
            role=d["role"],
            activation=d["activation"],
            delta_rule=d["delta_rule"],
            **{name: arr(d[name]) for name in _LAYER_ARRAYS},
            W_new=arr(d["W_new"]),
            b_new=arr(d["b_new"]),
            optimizer_state=_map_state(d["optimizer_state"], arr),
            mask=arr(d.get("mask")),
        )


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
    "mask",
)
_TRACE_FIELDS = (
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
    "penalty",
)


@dataclass(eq=False)
class Trace:
    """A recorded training step on one example; see :func:`deltaprop.explain.explain`.

    ``network``: {"sizes", "activations", "loss", "loss_formula", "dtype"}.
    ``optimizer``: the optimizer's ``config()`` plus "step", the t of this step.
    ``x``, ``t``: the example (t as the target row the loss saw, e.g. one-hot).
    ``layers``: one :class:`LayerTrace` per layer of units, inputs excluded.
    ``error_before``, ``error_after``: E on the example before and after the step.
    ``history``: [{"step": s, "error": E, "output": [...]}] for s = 0 (before) .. steps.
    ``applied``: whether the caller's network (and optimizer) were updated.
    ``penalty``: P(W), the network's weight penalty before the step (part of E), or None.
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
    penalty: float | None = None

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

        Options (text, Markdown, LaTeX): see :class:`deltaprop.explain.Options`.
        """
        return render(self, format, **options)

    def __str__(self) -> str:
        return self.render("text")

    def _repr_markdown_(self) -> str:
        return self.render("markdown")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        return all(_arrays_equal(getattr(self, k), getattr(other, k)) for k in _TRACE_FIELDS)

    # ------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data in the documented schema (nested lists for arrays)."""
        return {
            "schema_version": self.schema_version,
            "kind": KIND,
            "sign_convention": SIGN_CONVENTION,
            "network": dict(self.network),
            "optimizer": dict(self.optimizer),
            "input": _as_list(self.x),
            "target": _as_list(self.t),
            "input_names": self.input_names,
            "output_names": self.output_names,
            "error_before": self.error_before,
            "error_after": self.error_after,
            "applied": self.applied,
            "layers": [ly.to_dict() for ly in self.layers],
            "history": [
                {"step": h["step"], "error": h["error"], "output": list(h["output"])}
                for h in self.history
            ],
            **({"penalty": self.penalty} if self.penalty is not None else {}),
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

            return cls(
                network=dict(data["network"]),
                optimizer=dict(data["optimizer"]),
                x=arr(data["input"]),
                t=arr(data["target"]),
                layers=[LayerTrace.from_dict(d, arr) for d in data["layers"]],
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
                penalty=None if data.get("penalty") is None else float(data["penalty"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed deltaprop trace: missing or bad field {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> Trace:
        return cls.from_dict(json.loads(text))
