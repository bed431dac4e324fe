"""Each deltaprop activation's equivalent in ONNX and in PyTorch: the one place they are named.

An :class:`Equivalent` says which ONNX operator (of :data:`OPSET`, the pinned opset) computes the
activation and which attribute carries each of its ``constants`` (leaky_relu's negative slope is
ONNX's ``alpha``), and which ``torch.nn`` module does, with the keyword that carries each
constant (``negative_slope``). The ONNX writer, the PyTorch builder, the source printed by the
CLI, the scikit-learn converters and :func:`activation_of_torch_module` all read this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from deltaprop.core.activations import ACTIVATIONS, Activation
from deltaprop.core.network import FeedForward, LayerSpec

# Opset 17: Softmax has opset-13 semantics (over the last axis alone, not the flattened rest),
# every operator below is standard in it, and ONNX Runtime (1.11+), onnxruntime-web and
# TensorRT 8.5+ run it. MIN_OPSET is the oldest opset with those Softmax semantics.
OPSET = 17
MIN_OPSET = 13

# torch.nn.Softplus switches to the identity above `threshold` (x > 20 by default), where the
# exact value differs by log1p(e^-x) < 2.1e-9; a smaller threshold is a different function.
SOFTPLUS_MIN_THRESHOLD = 20.0


@dataclass(frozen=True)
class Equivalent:
    """An activation as an ONNX operator and as a ``torch.nn`` module.

    ``onnx_attributes`` and ``torch_arguments`` map each name in the activation's
    ``constants`` to the attribute / keyword that carries it; ``onnx_fixed`` and
    ``torch_fixed`` are attributes the activation always has (softmax's axis).
    """

    onnx_op: str
    torch_module: str | None  # None: torch.nn has no module for it
    onnx_attributes: Mapping[str, str] = field(default_factory=dict)
    torch_arguments: Mapping[str, str] = field(default_factory=dict)
    onnx_fixed: Mapping[str, int] = field(default_factory=dict)
    torch_fixed: Mapping[str, int] = field(default_factory=dict)
    # In a float64 graph, relu(a) + the chain of (operator, second operand) steps applied to
    # a, where an operand is "zero", "one" or a constant's name: ONNX Runtime has no float64
    # kernel for Elu or Softplus, and ONNX attributes are float32, so LeakyRelu's alpha=0.01
    # would be off by 2e-10. Read by deltaprop.export.onnx.composed_activation.
    onnx_float64_steps: tuple[tuple[str, str | None], ...] | None = None

    def onnx_attributes_for(self, constants: Mapping[str, float]) -> dict[str, float | int]:
        return {
            **self.onnx_fixed,
            **{self.onnx_attributes[k]: float(v) for k, v in constants.items()},
        }

    def torch_arguments_for(self, constants: Mapping[str, float]) -> dict[str, float | int]:
        return {
            **self.torch_fixed,
            **{self.torch_arguments[k]: float(v) for k, v in constants.items()},
        }


EQUIVALENTS: dict[str, Equivalent] = {
    "sigmoid": Equivalent("Sigmoid", "Sigmoid"),
    "tanh": Equivalent("Tanh", "Tanh"),
    "relu": Equivalent("Relu", "ReLU"),
    "leaky_relu": Equivalent(
        "LeakyRelu",
        "LeakyReLU",
        onnx_attributes={"negative_slope": "alpha"},
        torch_arguments={"negative_slope": "negative_slope"},
        # leaky_relu(a) = relu(a) + slope min(a, 0), exactly as core.activations rounds it.
        onnx_float64_steps=(("Min", "zero"), ("Mul", "negative_slope")),
    ),
    "elu": Equivalent(
        "Elu",
        "ELU",
        onnx_attributes={"alpha": "alpha"},
        torch_arguments={"alpha": "alpha"},
        # elu(a) = relu(a) + α (e^min(a, 0) - 1): ONNX has no expm1 (~1e-16 absolute error).
        onnx_float64_steps=(("Min", "zero"), ("Exp", None), ("Sub", "one"), ("Mul", "alpha")),
    ),
    "softplus": Equivalent(
        "Softplus",
        "Softplus",
        # softplus(a) = relu(a) + log(1 + e^-|a|): ONNX has no log1p (~1e-16 absolute error).
        onnx_float64_steps=(
            ("Abs", None),
            ("Neg", None),
            ("Exp", None),
            ("Add", "one"),
            ("Log", None),
        ),
    ),
    # nn.Identity rather than no module: every layer is then two modules, Linear at the even
    # indices (state-dict names 0.weight, 2.weight, ...) and its activation at the odd ones.
    "identity": Equivalent("Identity", "Identity"),
    "softmax": Equivalent("Softmax", "Softmax", onnx_fixed={"axis": -1}, torch_fixed={"dim": -1}),
    # exp, the output of Poisson regression: torch.nn has no Exp module, so no PyTorch export.
    "exp": Equivalent("Exp", None),
}


def equivalent_of(activation: Activation, where: str) -> Equivalent:
    """The table's entry for ``activation``; ValueError for an activation that is not one of
    deltaprop's own (a custom Activation, even under a built-in name, has no known equivalent)."""
    name = activation.name
    if name not in EQUIVALENTS or ACTIVATIONS.get(name) != activation:
        raise ValueError(
            f"{where} has the custom activation {name!r}, which has no ONNX or PyTorch "
            f"equivalent; export supports deltaprop's activations {sorted(EQUIVALENTS)}. "
            f"Received: activation={activation!r}"
        )
    return EQUIVALENTS[name]


def exportable_layers(net: FeedForward) -> list[tuple[LayerSpec, Equivalent]]:
    """Each layer's description with its activation's equivalent, every layer checked first."""
    if not isinstance(net, FeedForward):
        raise ValueError(f"export expects a deltaprop Network. Received: {type(net).__name__}")
    return [
        (spec, equivalent_of(layer.activation, f"layer {i}"))
        for i, (spec, layer) in enumerate(zip(net.layer_specs(), net.layers))
    ]


def torch_layers(net: FeedForward) -> list[tuple[LayerSpec, Equivalent]]:
    """:func:`exportable_layers` for PyTorch: ValueError for an activation no torch.nn module
    computes."""
    layers = exportable_layers(net)
    for i, (spec, equivalent) in enumerate(layers):
        if equivalent.torch_module is None:
            raise ValueError(
                f"layer {i} has the activation {spec.activation!r}, which no torch.nn module "
                "computes, so the network has no PyTorch equivalent (ONNX export supports it)"
            )
    return layers


def torch_module_source(spec: LayerSpec, equivalent: Equivalent) -> str:
    """The Python expression (``nn.LeakyReLU(negative_slope=0.01)``) of a layer's activation."""
    arguments = equivalent.torch_arguments_for(spec.constants)
    shown = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return f"nn.{equivalent.torch_module}({shown})"
