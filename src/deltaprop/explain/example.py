"""The worked example `deltaprop explain` shows by default, and example files (``--weights``).

The default is the classic 2-2-2 all-sigmoid network with squared error, worked by hand in
tests/test_network.py: inputs x = (0.05, 0.10), targets t = (0.01, 0.99), η = 0.5, and

    hidden h1, h2 from x1, x2:  w1 = 0.15  w2 = 0.20  w3 = 0.25  w4 = 0.30,  biases 0.35
    outputs o1, o2 from h1, h2: w5 = 0.40  w6 = 0.45  w7 = 0.50  w8 = 0.55,  biases 0.60

deltaprop gives each unit its own bias (the classic text shares one per layer); they start
equal and the step updates each, b_j ← b_j + η δ_j · 1.

An example file is JSON with the same information, every key but "layers" optional::

    {
      "activation": "sigmoid",          hidden activation (or one name per hidden layer)
      "output_activation": "sigmoid",   default: as activation
      "loss": "mse",
      "layers": [                       W[j][i]: weight from unit i to unit j; b[j]: bias
        {"W": [[0.15, 0.20], [0.25, 0.30]], "b": [0.35, 0.35]},
        {"W": [[0.40, 0.45], [0.50, 0.55]], "b": [0.60, 0.60]}
      ],
      "x": [0.05, 0.10],
      "t": [0.01, 0.99],
      "lr": 0.5
    }
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from deltaprop.core.network import FeedForward
from deltaprop.model import Network
from deltaprop.resources import read_text

# An example file lists a network's weights as JSON numbers: 64 MiB is millions of them, far
# more than an explanation can show, and a bound on what `--weights /dev/zero` could cost.
MAX_EXAMPLE_BYTES = 64 << 20

Array = np.ndarray

CLASSIC: dict[str, Any] = {
    "activation": "sigmoid",
    "output_activation": "sigmoid",
    "loss": "mse",
    "layers": [
        {"W": [[0.15, 0.20], [0.25, 0.30]], "b": [0.35, 0.35]},
        {"W": [[0.40, 0.45], [0.50, 0.55]], "b": [0.60, 0.60]},
    ],
    "x": [0.05, 0.10],
    "t": [0.01, 0.99],
    "lr": 0.5,
}

_KEYS = {"activation", "output_activation", "loss", "layers", "x", "t", "lr"}


class Example(NamedTuple):
    """A network with its starting weights, one training example and a learning rate."""

    net: FeedForward
    x: Array | None
    t: Array | None
    lr: float | None


def example_from_dict(
    spec: dict[str, Any], where: str = "example", into: type[FeedForward] = Network
) -> Example:
    """Build the network of an example file's contents as an ``into`` (the maths is all an
    explanation needs; pass ``deltaprop.Network`` to train or save it); ValueError names what
    is wrong."""
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a JSON object. Received: {type(spec).__name__}")
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known keys: {sorted(_KEYS)}")
    layers = spec.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ValueError(
            f'{where}: \'layers\' must be a non-empty list of {{"W": [[...]], "b": [...]}}. '
            f"Received: {layers!r}"
        )
    Ws, bs = [], []
    for n, layer in enumerate(layers):
        if not isinstance(layer, dict) or set(layer) != {"W", "b"}:
            raise ValueError(f"{where}: layers[{n}] must have exactly the keys 'W' and 'b'")
        try:
            W = np.asarray(layer["W"], dtype=np.float64)
            b = np.asarray(layer["b"], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: layers[{n}] holds something other than numbers") from None
        if W.ndim != 2 or b.ndim != 1 or b.shape[0] != W.shape[0]:
            raise ValueError(
                f"{where}: layers[{n}] needs W of shape (n_out, n_in) and b of shape (n_out,). "
                f"Received: W {W.shape}, b {b.shape}"
            )
        if n and W.shape[1] != Ws[-1].shape[0]:
            raise ValueError(
                f"{where}: layers[{n}].W has {W.shape[1]} columns but layer {n - 1} has "
                f"{Ws[-1].shape[0]} units"
            )
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError(f"{where}: layers[{n}] contains NaN or inf")
        Ws.append(W)
        bs.append(b)
    sizes = [Ws[0].shape[1]] + [W.shape[0] for W in Ws]
    net = into(
        sizes,
        activation=spec.get("activation", "sigmoid"),
        output_activation=spec.get("output_activation"),
        loss=spec.get("loss", "mse"),
    )
    for layer, W, b in zip(net.layers, Ws, bs):
        layer.W[...] = W
        layer.b[...] = b
    lr = spec.get("lr")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr < 0):
        raise ValueError(f"{where}: lr must be a number >= 0. Received: lr={lr!r}")
    x = None if spec.get("x") is None else np.asarray(spec["x"], dtype=np.float64)
    t = None if spec.get("t") is None else np.asarray(spec["t"])
    return Example(net, x, t, None if lr is None else float(lr))


def load_example(path: str | Path, into: type[FeedForward] = Network) -> Example:
    """Read an example file (see the module docstring) into an ``into`` network."""
    path = Path(path)
    text = read_text(path, MAX_EXAMPLE_BYTES, ValueError, "an example file")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from None
    return example_from_dict(spec, str(path), into)


def classic_example(into: type[FeedForward] = Network) -> Example:
    """The 2-2-2 worked example (module docstring): network, x, t and η = 0.5."""
    return example_from_dict(CLASSIC, "the classic example", into)
