"""Weight initialisers.

The seed says "initiate weights for neural network, randomly or by some methods". ``"uniform"`` is
the randomly of the classic textbook: small numbers from U(-0.05, 0.05) for every weight *and*
bias. The other methods scale the weights by the layer's fan-in and fan-out so that signals keep
their variance through deep networks, and start the biases at zero:

    name                        W[j, i] drawn from                       biases
    uniform (scale s=0.05)      U(-s, s)                                 U(-s, s)
    normal (std s=0.05)         N(0, s²)                                 N(0, s²)
    xavier, glorot              U(-r, r), r = √(6 / (fan_in + fan_out))  0
    xavier_normal, glorot_normal N(0, 2 / (fan_in + fan_out))            0
    he, he_normal, kaiming      N(0, 2 / fan_in)                         0
    he_uniform                  U(-r, r), r = √(6 / fan_in)              0
    lecun, lecun_normal         N(0, 1 / fan_in)                         0
    lecun_uniform               U(-r, r), r = √(3 / fan_in)              0

Numbers are drawn in float64 from the network's own ``numpy.random.Generator`` and then cast, so a
float32 and a float64 network with the same seed start from the same weights up to rounding,
and the global NumPy random state never matters. Per layer, W is drawn before b.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from deltaprop.resources import check_fits


@dataclass(frozen=True)
class Initializer:
    """Draws (W, b) for a layer with ``fan_in`` inputs and ``fan_out`` units."""

    name: str
    distribution: str  # "uniform" or "normal"
    scale: float | None = None  # fixed half-width / std; None: derived from the fan

    def spread(self, fan_in: int, fan_out: int) -> float:
        if self.scale is not None:
            return self.scale
        if self.name.startswith(("xavier", "glorot")):
            base = 2.0 / (fan_in + fan_out)
        elif self.name.startswith(("he", "kaiming")):
            base = 2.0 / fan_in
        else:  # lecun
            base = 1.0 / fan_in
        # A uniform U(-r, r) has variance r²/3, so r = √(3 · variance).
        return math.sqrt(3.0 * base) if self.distribution == "uniform" else math.sqrt(base)

    @property
    def random_bias(self) -> bool:
        # The textbook's small random numbers apply to the bias weight w_j0 as to any other.
        return self.name in ("uniform", "normal")

    def check(self, fan_in: int, fan_out: int, dtype: np.dtype, *, memory: bool = True) -> None:
        """ValueError, before anything is drawn, if this layer's weights cannot be: a scale
        whose draws overflow ``dtype`` (or the float64 they are drawn in), or (``memory``)
        more weights than memory holds, named with their size."""
        dtype = np.dtype(dtype)
        s = self.spread(fan_in, fan_out)
        # U(-s, s) needs 2s finite; N(0, s²) draws reach about 9 s in a billion draws.
        largest = float(np.finfo(dtype).max) / (2.0 if self.distribution == "uniform" else 16.0)
        if not s <= largest:
            raise ValueError(
                f"init {self.name!r} with scale {s:g} draws weights too large for {dtype.name} "
                f"(the scale must be at most {largest:.3g}). Received: scale={s!r}"
            )
        if memory:
            check_fits(
                fan_in * fan_out * max(8, dtype.itemsize),
                f"a layer of {fan_in} inputs and {fan_out} units ({fan_in * fan_out:,} weights, "
                "drawn in float64)",
            )

    def __call__(
        self, fan_in: int, fan_out: int, rng: np.random.Generator, dtype: np.dtype
    ) -> tuple[np.ndarray, np.ndarray]:
        self.check(fan_in, fan_out, dtype)
        s = self.spread(fan_in, fan_out)
        draw = rng.uniform if self.distribution == "uniform" else rng.normal
        lo_or_mean = -s if self.distribution == "uniform" else 0.0
        W = draw(lo_or_mean, s, size=(fan_out, fan_in)).astype(dtype, copy=False)
        if self.random_bias:
            b = draw(lo_or_mean, s, size=fan_out).astype(dtype)
        else:
            b = np.zeros(fan_out, dtype=dtype)
        return W, b

    def config(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


class GivenWeights(Initializer):
    """Hands out given ``(W, b)`` pairs, layer by layer, instead of drawing: how a network is
    rebuilt from a file without first allocating (and drawing) a second set of weights. It
    describes itself as ``like``, the initialiser the network was made with."""

    def __init__(self, like: Initializer, weights: list[tuple[np.ndarray, np.ndarray]]) -> None:
        super().__init__(like.name, like.distribution, like.scale)
        object.__setattr__(self, "_pairs", iter(weights))  # a frozen dataclass

    def __call__(
        self, fan_in: int, fan_out: int, rng: np.random.Generator, dtype: np.dtype
    ) -> tuple[np.ndarray, np.ndarray]:
        W, b = next(self._pairs)
        if W.shape != (fan_out, fan_in) or b.shape != (fan_out,) or W.dtype != dtype:
            raise ValueError(
                f"given weights of shapes {W.shape}, {b.shape} ({W.dtype}) do not fit a layer "
                f"of {fan_in} inputs and {fan_out} units ({np.dtype(dtype)})"
            )
        return W, b


INITIALIZERS: dict[str, Initializer] = {
    "uniform": Initializer("uniform", "uniform", 0.05),
    "normal": Initializer("normal", "normal", 0.05),
    "xavier": Initializer("xavier", "uniform"),
    "xavier_normal": Initializer("xavier_normal", "normal"),
    "he": Initializer("he", "normal"),
    "he_uniform": Initializer("he_uniform", "uniform"),
    "lecun": Initializer("lecun", "normal"),
    "lecun_uniform": Initializer("lecun_uniform", "uniform"),
}
ALIASES = {
    "glorot": "xavier",
    "xavier_uniform": "xavier",
    "glorot_uniform": "xavier",
    "glorot_normal": "xavier_normal",
    "he_normal": "he",
    "kaiming": "he",
    "kaiming_normal": "he",
    "kaiming_uniform": "he_uniform",
    "lecun_normal": "lecun",
}


def get_initializer(spec: str | dict | Initializer) -> Initializer:
    """An initialiser from a name, a dict ``{"name": "uniform", "scale": 0.1}`` or an instance.

    ``scale`` (half-width for uniform, standard deviation for normal) may be given for any name;
    it replaces the fan-derived spread.
    """
    if isinstance(spec, Initializer):
        return spec
    scale = None
    if isinstance(spec, dict):
        unknown = set(spec) - {"name", "scale", "distribution"}
        if "name" not in spec or unknown:
            raise ValueError(
                f"an init dict needs a 'name' and may have a 'scale'. Received: init={spec!r}"
            )
        scale = spec.get("scale")
        spec = spec["name"]
    if not isinstance(spec, str):
        raise ValueError(f"init must be a name such as 'xavier'. Received: init={spec!r}")
    key = ALIASES.get(spec.lower(), spec.lower())
    if key not in INITIALIZERS:
        raise ValueError(
            f"Unknown init {spec!r}; expected one of {sorted(INITIALIZERS)} "
            f"or an alias {sorted(ALIASES)}. Received: init={spec!r}"
        )
    base = INITIALIZERS[key]
    if scale is None:
        return base
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"init scale must be a finite number > 0. Received: scale={scale!r}")
    return Initializer(base.name, base.distribution, float(scale))
