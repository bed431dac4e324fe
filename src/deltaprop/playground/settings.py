"""A playground run's settings: what the page's controls and its URL hash hold, checked.

The hash follows TensorFlow Playground's convention, ``key=value`` pairs joined by ``&``::

    #dataset=spiral&noise=0.1&train=0.5&shape=2-8-8-2&activation=tanh&lr=0.03&seed=0

:func:`parse_settings` turns such pairs (strings, or the JSON values the page sends) into a
:class:`Settings`, raising ValueError that names the key, what it expects and what it received
before anything changes; :meth:`Settings.as_hash` writes them back, so a link reproduces a run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from deltaprop.core.activations import ACTIVATIONS
from deltaprop.core.init import INITIALIZERS

DATASETS = ("circles", "xor", "moons", "gauss", "spiral")
EXAMPLES = ("classic",)
LOSSES = ("mse", "cross_entropy", "binary_cross_entropy")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adagrad")
# The output activation each loss pairs with (mse may take any; the seed's is sigmoid).
OUTPUT_FOR_LOSS = {"mse": "sigmoid", "cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}
HIDDEN_ACTIVATIONS = tuple(name for name, act in ACTIVATIONS.items() if act.elementwise)
OUTPUT_ACTIVATIONS = tuple(ACTIVATIONS)

# A page that draws every unit and edge and trains live; larger networks belong to `train`.
MAX_UNITS = 64
MAX_HIDDEN_LAYERS = 8
MAX_POINTS = 2000
SPEEDS = (1, 10, 100, 0)  # epochs per frame at most; 0: as many as fit in a frame
# How the worked example trains unless told otherwise: the seed's online loop, η = 0.5.
CLASSIC_TRAINING = {"optimizer": "sgd", "lr": 0.5, "batch": 1, "l2": 0.0}


@dataclass(frozen=True)
class Settings:
    """Everything that defines a run. ``hidden``: units per hidden layer; ``activation``: one
    name per hidden layer; ``output``/``loss``: the output layer; ``batch``: batch size (1 =
    the seed's online loop); ``l2``: the optimizer's weight decay; ``speed``: epochs per frame
    at most (0: no limit); ``example``: "classic" for the seed's worked 2-2-2 example (the
    network settings are then the example's)."""

    dataset: str = "circles"
    noise: float = 0.1
    train: float = 0.5
    points: int = 400
    hidden: tuple[int, ...] = (4, 2)
    activation: tuple[str, ...] = ("tanh", "tanh")
    output: str = "sigmoid"
    loss: str = "mse"
    init: str = "xavier"
    optimizer: str = "sgd"
    lr: float = 0.03
    momentum: float = 0.9
    batch: int = 10
    l2: float = 0.0
    seed: int = 0
    speed: int = 1
    example: str | None = None
    # Set by the session for an uploaded CSV: the number of outputs its targets need.
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def as_hash(self, n_inputs: int, n_outputs: int) -> dict[str, str]:
        """The URL hash's pairs; ``shape`` writes inputs and outputs too (2-8-8-2)."""
        if self.example:
            out = {"example": self.example}
            for key, value in CLASSIC_TRAINING.items():
                if getattr(self, key) != value:
                    out[key] = _text(getattr(self, key))
            if self.optimizer in ("momentum", "nesterov"):
                out["momentum"] = _text(self.momentum)
            return out
        values = asdict(self)
        values.pop("extra")
        values.pop("example")
        values.pop("hidden")
        out = {k: _text(v) for k, v in values.items()}
        out["shape"] = "-".join(str(n) for n in (n_inputs, *self.hidden, n_outputs))
        acts = set(self.activation)
        out["activation"] = self.activation[0] if len(acts) == 1 else ",".join(self.activation)
        if not self.hidden:
            out["activation"] = ""
        return out

    def optimizer_config(self) -> dict[str, Any]:
        """The library optimizer these settings name, as a ``config()`` dict."""
        name = self.optimizer
        config: dict[str, Any] = {"name": "sgd" if name in ("momentum", "nesterov") else name}
        config["lr"] = self.lr
        config["weight_decay"] = self.l2
        if name in ("momentum", "nesterov"):
            config["momentum"] = self.momentum
            config["nesterov"] = name == "nesterov"
        return config


def _text(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


# ------------------------------------------------------------------------ parsing
def _fail(key: str, expected: str, value: object) -> ValueError:
    return ValueError(f"{key}: expected {expected}. Received: {key}={value!r}")


def _number(key: str, value: object, low: float, high: float, integer: bool = False) -> Any:
    kind = "an integer" if integer else "a number"
    expected = f"{kind} in [{low:g}, {high:g}]"
    if isinstance(value, bool):
        raise _fail(key, expected, value)
    try:
        number = float(value) if not isinstance(value, (int, float)) else value
    except (TypeError, ValueError):
        raise _fail(key, expected, value) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise _fail(key, expected, value)
    if integer:
        if float(number) != int(number):
            raise _fail(key, expected, value)
        return int(number)
    return float(number)


def _choice(key: str, value: object, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise _fail(key, f"one of {', '.join(choices)}", value)
    return text


def _shape(value: object) -> tuple[int | None, tuple[int, ...], int | None]:
    """ "2-8-8-2" (inputs, hidden..., outputs) or a list of hidden sizes "8,8" / [8, 8]."""
    if isinstance(value, (list, tuple)):
        parts, full = [str(v) for v in value], False
    else:
        text = str(value).strip()
        full = "-" in text
        parts = [p for p in text.replace("-", ",").split(",") if p.strip()] if text else []
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise _fail("shape", "unit counts such as 2-8-8-2", value) from None
    if full and len(sizes) < 2:
        raise _fail("shape", "inputs, hidden layers and outputs such as 2-8-8-2", value)
    first, hidden, last = (sizes[0], sizes[1:-1], sizes[-1]) if full else (None, sizes, None)
    if len(hidden) > MAX_HIDDEN_LAYERS:
        raise ValueError(
            f"shape: at most {MAX_HIDDEN_LAYERS} hidden layers in the playground. "
            f"Received: {len(hidden)} hidden layers (shape={value!r})"
        )
    for n, size in enumerate(hidden, 1):
        if not 1 <= size <= MAX_UNITS:
            raise ValueError(
                f"shape: hidden layer {n} must have 1 to {MAX_UNITS} units in the playground. "
                f"Received: {size} units (shape={value!r})"
            )
    return first, tuple(hidden), last


def _activations(value: object, n_hidden: int) -> tuple[str, ...]:
    names = value if isinstance(value, (list, tuple)) else str(value).split(",")
    names = [str(n).strip().lower() for n in names if str(n).strip()]
    for name in names:
        _choice("activation", name, HIDDEN_ACTIVATIONS)
    if not names:
        names = ["tanh"]
    if len(names) == 1:
        return tuple(names) * n_hidden
    if len(names) != n_hidden:
        raise ValueError(
            f"activation: one name for all hidden layers or one per hidden layer ({n_hidden}). "
            f"Received: {len(names)} names {names!r}"
        )
    return tuple(names)


_SIMPLE: dict[str, Callable[[object], Any]] = {
    "dataset": lambda v: _choice("dataset", v, (*DATASETS, "csv")),
    "noise": lambda v: _number("noise", v, 0.0, 0.5),
    "train": lambda v: _number("train", v, 0.1, 0.9),
    "points": lambda v: _number("points", v, 20, MAX_POINTS, integer=True),
    "loss": lambda v: _choice("loss", v, LOSSES),
    "output": lambda v: _choice("output", v, OUTPUT_ACTIVATIONS),
    "init": lambda v: _choice("init", v, tuple(INITIALIZERS)),
    "optimizer": lambda v: _choice("optimizer", v, OPTIMIZERS),
    "lr": lambda v: _number("lr", v, 0.0, 1e3),
    "momentum": lambda v: _number("momentum", v, 0.0, 0.999),
    "batch": lambda v: _number("batch", v, 1, 100_000, integer=True),
    "l2": lambda v: _number("l2", v, 0.0, 10.0),
    "seed": lambda v: _number("seed", v, 0, 2**32 - 1, integer=True),
    "speed": lambda v: _speed(v),
}
KEYS = (*_SIMPLE, "shape", "activation", "example")


def _speed(value: object) -> int:
    speed = _number("speed", value, 0, 1000, integer=True)
    if speed not in SPEEDS:
        raise _fail("speed", f"one of {', '.join(map(str, SPEEDS))} (0: as fast as it goes)", value)
    return speed


def parse_settings(values: Mapping[str, object], base: Settings | None = None) -> Settings:
    """``base`` (default: the defaults) with the given keys changed, all checked first.

    ``shape``'s inputs and outputs, when written, are checked against the data by the session.
    Unknown keys are refused, so a typo in a link is not silently ignored.
    """
    if not isinstance(values, Mapping):
        raise ValueError(f"settings must be an object of key: value. Received: {values!r}")
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise ValueError(f"unknown settings {unknown}; known: {', '.join(KEYS)}")
    base = base or Settings()
    changes: dict[str, Any] = {k: _SIMPLE[k](v) for k, v in values.items() if k in _SIMPLE}
    if "example" in values:
        example = values["example"]
        changes["example"] = (
            None if example in (None, "") else _choice("example", example, EXAMPLES)
        )
    if changes.get("example") == "classic" and base.example != "classic":
        changes.update({k: v for k, v in CLASSIC_TRAINING.items() if k not in values})
    extra = dict(base.extra)
    if "shape" in values:
        first, hidden, last = _shape(values["shape"])
        changes["hidden"] = hidden
        extra["shape_ends"] = (first, last)
    else:
        extra.pop("shape_ends", None)
    hidden = changes.get("hidden", base.hidden)
    if "activation" in values:
        changes["activation"] = _activations(values["activation"], len(hidden))
    elif len(base.activation) != len(hidden):
        changes["activation"] = _activations(base.activation[:1] or ("tanh",), len(hidden))
    if "loss" in values and "output" not in values:
        changes["output"] = OUTPUT_FOR_LOSS[changes["loss"]]
    return replace(base, **changes, extra=extra)


def settings_keys() -> list[str]:
    """Every field of :class:`Settings` a hash or message may set."""
    return [f.name for f in fields(Settings) if f.name != "extra"]


def asdict_settings(settings: Settings) -> dict[str, Any]:
    """The settings as JSON values (lists for the per-layer ones), for the page."""
    out = asdict(settings)
    out.pop("extra")
    out["hidden"] = list(settings.hidden)
    out["activation"] = list(settings.activation)
    return out
