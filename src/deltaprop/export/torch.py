"""A network as a ``torch.nn.Sequential``, its weights as a PyTorch state dict, and back.

Layer l becomes two modules: ``nn.Linear`` at index 2l (W is already torch's (out, in)
layout) and its activation at index 2l + 1, ``nn.Identity`` included, so the state-dict names
are always ``0.weight``, ``0.bias``, ``2.weight``, ... The state dict and the Python source
that builds the module need no torch at all (NumPy and safetensors); :func:`to_torch` and
:func:`layers_from_torch` import torch when called (``pip install 'deltaprop[torch]'``).
"""

from __future__ import annotations

import json
import os
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from deltaprop.core.activations import ACTIVATIONS
from deltaprop.core.network import FeedForward
from deltaprop.export.equivalents import (
    EQUIVALENTS,
    SOFTPLUS_MIN_THRESHOLD,
    torch_layers,
    torch_module_source,
)
from deltaprop.export.target import checked_target
from deltaprop.io.atomic import write_atomically

if TYPE_CHECKING:
    import torch

INSTALL_HINT = "pip install 'deltaprop[torch]'"
TORCH_DTYPES = {"float32": "float32", "float64": "float64"}
# torch.nn class name -> deltaprop activation name, from the one table.
ACTIVATION_OF_MODULE = {
    eq.torch_module: name for name, eq in EQUIVALENTS.items() if eq.torch_module is not None
}


def import_torch() -> ModuleType:
    """The ``torch`` package, or ModuleNotFoundError saying how to install it."""
    try:
        import torch
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"this needs PyTorch, an optional extra: {INSTALL_HINT}", name="torch"
        ) from exc
    return torch


def state_dict_arrays(net: FeedForward) -> dict[str, np.ndarray]:
    """The weights under ``nn.Sequential``'s names (``0.weight``, ``0.bias``, ``2.weight``,
    ...) as NumPy arrays, in the network's dtype."""
    arrays = {}
    for i, (spec, _) in enumerate(torch_layers(net)):
        for role, array in (("weight", spec.W), ("bias", spec.b)):
            if not np.isfinite(array).all():
                raise ValueError(f"layer {i}: its {role} contains NaN or inf; nothing to export")
            arrays[f"{2 * i}.{role}"] = np.ascontiguousarray(array)
    return arrays


def module_source(net: FeedForward, state_dict_path: str | None = None) -> str:
    """Python that builds the matching module (and loads the state dict from
    ``state_dict_path`` when given)."""
    dtype = TORCH_DTYPES[net.dtype.name]
    lines = ["import torch", "from torch import nn"]
    if state_dict_path is not None:
        lines.append("from safetensors.torch import load_file")
    lines += ["", "model = nn.Sequential("]
    for spec, equivalent in torch_layers(net):
        lines.append(f"    nn.Linear({spec.n_in}, {spec.n_out}, dtype=torch.{dtype}),")
        lines.append(f"    {torch_module_source(spec, equivalent)},")
    lines.append(")")
    if state_dict_path is not None:
        lines.append(f"model.load_state_dict(load_file({state_dict_path!r}))")
    return "\n".join(lines) + "\n"


def save_state_dict(net: FeedForward, path: str | os.PathLike) -> None:
    """Write the state dict as a safetensors file, atomically; its metadata holds the
    architecture and ``net.metadata`` (JSON text) and the module's source."""
    target = checked_target(path, "state dict")
    arrays = state_dict_arrays(net)
    # Imported here: safetensors loads with the first file written, as for model files.
    import safetensors.numpy

    metadata = {
        "format": "pt",
        "architecture": json.dumps(net.config()),
        "metadata": metadata_json(net),
        "module": module_source(net),
    }
    write_atomically(target, safetensors.numpy.save(arrays, metadata=metadata))


def metadata_json(net: FeedForward) -> str:
    try:
        return json.dumps(net.metadata, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"net.metadata must be plain JSON data to export it: {exc}") from None


def to_torch(net: FeedForward) -> torch.nn.Sequential:
    """A ``torch.nn.Sequential`` computing what ``net.predict`` does, in the network's dtype,
    with its own copy of the weights; torch's random state is left untouched."""
    layers = torch_layers(net)
    arrays = state_dict_arrays(net)
    torch = import_torch()
    nn, dtype = torch.nn, getattr(torch, TORCH_DTYPES[net.dtype.name])
    modules = []
    for spec, equivalent in layers:
        # skip_init: no random initial weights drawn from torch's global generator.
        modules.append(nn.utils.skip_init(nn.Linear, spec.n_in, spec.n_out, dtype=dtype))
        modules.append(
            getattr(nn, equivalent.torch_module)(**equivalent.torch_arguments_for(spec.constants))
        )
    module = nn.Sequential(*modules)
    module.load_state_dict({name: torch.from_numpy(a.copy()) for name, a in arrays.items()})
    return module


class TorchLayers(NamedTuple):
    """What :func:`layers_from_torch` found: sizes, activation names, (W, b) per layer, dtype."""

    sizes: list[int]
    activations: list[str]
    parameters: list[tuple[np.ndarray, np.ndarray]]
    dtype: np.dtype


def layers_from_torch(module: object) -> TorchLayers:
    """The layers of a ``torch.nn.Sequential`` of ``Linear`` modules, each followed by one
    supported activation (or none: identity); ValueError naming the first module that does
    not fit."""
    torch = import_torch()
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise ValueError(
            "from_torch expects a torch.nn.Sequential of Linear and activation modules. "
            f"Received: {type(module).__name__}"
        )
    children = list(module)
    sizes: list[int] = []
    activations: list[str] = []
    parameters: list[tuple[np.ndarray, np.ndarray]] = []
    i = 0
    while i < len(children):
        linear = children[i]
        if type(linear) is not nn.Linear:
            raise ValueError(_unsupported(i, linear, "a Linear module"))
        if sizes and linear.in_features != sizes[-1]:
            raise ValueError(
                f"module {i} (Linear) takes {linear.in_features} inputs but the layer before "
                f"gives {sizes[-1]}"
            )
        sizes = sizes or [linear.in_features]
        sizes.append(linear.out_features)
        parameters.append(_linear_arrays(linear))
        following = children[i + 1] if i + 1 < len(children) else None
        if following is None or type(following) is nn.Linear:
            activations.append("identity")
            i += 1
            continue
        activations.append(_activation_of(i + 1, following, nn))
        i += 2
    if not parameters:
        raise ValueError(
            "from_torch needs at least one Linear module. Received: an empty Sequential"
        )
    dtypes = {W.dtype for pair in parameters for W in pair}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
        raise ValueError(
            "from_torch needs every weight float32 or every weight float64. Received: "
            f"{sorted(str(d) for d in dtypes)}"
        )
    return TorchLayers(sizes, activations, parameters, next(iter(dtypes)))


def _linear_arrays(linear: object) -> tuple[np.ndarray, np.ndarray]:
    W = linear.weight.detach().cpu().numpy().copy()
    if linear.bias is None:  # bias=False: the same function with b = 0
        return W, np.zeros(W.shape[0], dtype=W.dtype)
    return W, linear.bias.detach().cpu().numpy().copy()


def _unsupported(index: int, module: object, expected: str) -> str:
    return (
        f"module {index} ({type(module).__name__}) is not supported here; expected {expected}. "
        f"from_torch reads Linear modules each followed by one of "
        f"{sorted(ACTIVATION_OF_MODULE)} (or by none, for identity). Received: {module!r}"
    )


def _activation_of(index: int, module: object, nn: ModuleType) -> str:
    """The deltaprop activation ``module`` computes, constants and all, or ValueError."""
    name = ACTIVATION_OF_MODULE.get(type(module).__name__)
    if name is None or type(module) is not getattr(nn, type(module).__name__):
        raise ValueError(_unsupported(index, module, "an activation or a Linear module"))
    equivalent = EQUIVALENTS[name]
    for constant, value in ACTIVATIONS[name].constants.items():
        keyword = equivalent.torch_arguments[constant]
        if getattr(module, keyword) != value:
            raise ValueError(
                f"module {index} ({type(module).__name__}) has {keyword}="
                f"{getattr(module, keyword)!r}; deltaprop's {name} has {keyword}={value!r}"
            )
    if name == "softmax" and module.dim not in (-1, 1):
        raise ValueError(
            f"module {index} (Softmax) has dim={module.dim!r}; a layer's softmax is over its "
            "units, dim=-1 (or 1)"
        )
    if name == "softplus" and (module.beta != 1 or module.threshold < SOFTPLUS_MIN_THRESHOLD):
        raise ValueError(
            f"module {index} (Softplus) has beta={module.beta!r}, threshold="
            f"{module.threshold!r}; deltaprop's softplus is log(1 + e^a): beta=1 and a "
            f"threshold of at least {SOFTPLUS_MIN_THRESHOLD:g}"
        )
    return name
