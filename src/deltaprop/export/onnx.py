"""A network as an ONNX model: one input ``input`` [N, n_in], one output ``output`` [N, n_out].

Each layer is a ``Gemm`` (``input @ W.T + b``, with ``transB=1`` so that W keeps deltaprop's
(n_out, n_in) layout) followed by its activation's operator from
:data:`~deltaprop.export.equivalents.EQUIVALENTS`, all standard operators of the pinned opset
(:data:`~deltaprop.export.equivalents.OPSET`). The weights are the graph's initializers, named
as in model files (``layers.0.weight``); the architecture, the class names and the rest of
``net.metadata`` travel as the model's metadata properties (JSON text).

The ``onnx`` package is imported when an export runs (``pip install 'deltaprop[onnx]'``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from deltaprop._version import __version__
from deltaprop.core.network import FeedForward, LayerSpec
from deltaprop.export.equivalents import MIN_OPSET, OPSET, Equivalent, exportable_layers
from deltaprop.export.target import checked_target
from deltaprop.io.atomic import write_atomically

if TYPE_CHECKING:
    import onnx

INPUT_NAME = "input"
OUTPUT_NAME = "output"
INSTALL_HINT = "pip install 'deltaprop[onnx]'"


class Node(NamedTuple):
    """One ONNX node, as plain data: whoever builds the graph (onnx.helper, skl2onnx's
    container) makes it from these fields."""

    op_type: str
    inputs: list[str]
    outputs: list[str]
    attributes: dict[str, float | int]


def import_onnx() -> ModuleType:
    """The ``onnx`` package, or ModuleNotFoundError saying how to install it."""
    try:
        import onnx
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"ONNX export needs the onnx package, an optional extra: {INSTALL_HINT}",
            name="onnx",
        ) from exc
    return onnx


def export_dtype(net: FeedForward, dtype: object) -> np.dtype:
    """The graph's dtype: ``dtype`` (float32 or float64) or else the network's."""
    if dtype is None:
        return net.dtype
    try:
        chosen = np.dtype(dtype)
    except TypeError:
        chosen = None
    if chosen not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64. Received: dtype={dtype!r}")
    return chosen


def check_opset(opset: object, newest: int) -> int:
    """``opset`` as an int within what the graph needs and the installed onnx knows."""
    if opset is None:
        return OPSET
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise ValueError(f"opset must be an integer such as {OPSET}. Received: opset={opset!r}")
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(
            f"opset must be between {MIN_OPSET} (Softmax over the last axis) and {newest} (the "
            f"newest the installed onnx package knows). Received: opset={opset!r}"
        )
    return int(opset)


def layer_nodes(
    layers: Sequence[tuple[LayerSpec, Equivalent]],
    input_name: str,
    output_name: str,
    dtype: np.dtype,
    unique: Callable[[str], str] = str,
) -> tuple[list[Node], dict[str, np.ndarray]]:
    """The nodes and initializers that compute the layers from ``input_name`` into
    ``output_name``; ``unique`` turns each proposed name into one free in the graph."""
    nodes: list[Node] = []
    initializers: dict[str, np.ndarray] = {}
    current = input_name
    for i, (spec, equivalent) in enumerate(layers):
        weight, bias = unique(f"layers.{i}.weight"), unique(f"layers.{i}.bias")
        for name, array, role in ((weight, spec.W, "W"), (bias, spec.b, "b")):
            if not np.isfinite(array).all():
                raise ValueError(f"layer {i}: {role} contains NaN or inf; nothing to export")
            initializers[name] = np.ascontiguousarray(array, dtype=dtype)
        net_input = unique(f"layers.{i}.net_input")
        nodes.append(Node("Gemm", [current, weight, bias], [net_input], {"transB": 1}))
        last = i == len(layers) - 1
        current = output_name if last else unique(f"layers.{i}.output")
        if equivalent.onnx_float64_steps and dtype == np.float64:
            steps = equivalent.onnx_float64_steps
            composed = composed_activation(spec, steps, net_input, current, dtype, unique)
            nodes += composed[0]
            initializers.update(composed[1])
        else:
            attributes = equivalent.onnx_attributes_for(spec.constants)
            nodes.append(Node(equivalent.onnx_op, [net_input], [current], attributes))
    return nodes, initializers


def composed_activation(
    spec: LayerSpec,
    steps: tuple[tuple[str, str | None], ...],
    a: str,
    z: str,
    dtype: np.dtype,
    unique: Callable[[str], str],
) -> tuple[list[Node], dict[str, np.ndarray]]:
    """z = relu(a) + (``steps`` applied to a): an activation from elementary operators, with
    its constants as float64 tensors (see ``Equivalent.onnx_float64_steps``)."""
    values = {"zero": 0.0, "one": 1.0, **spec.constants}
    positive = unique(f"{z}.relu")
    nodes = [Node("Relu", [a], [positive], {})]
    constants: dict[str, np.ndarray] = {}
    previous = a
    for op_type, operand in steps:
        inputs = [previous]
        if operand is not None:
            constant = unique(f"{z}.{operand}")
            constants[constant] = np.array(values[operand], dtype)
            inputs.append(constant)
        previous = unique(f"{z}.{op_type.lower()}")
        nodes.append(Node(op_type, inputs, [previous], {}))
    nodes.append(Node("Add", [positive, previous], [z], {}))
    return nodes, constants


def scaling_nodes(
    net: FeedForward, input_scaling: tuple[np.ndarray, np.ndarray] | None, dtype: np.dtype
) -> tuple[list[Node], dict[str, np.ndarray]]:
    """(input - offset) / scale as Sub and Div nodes, or nothing for ``input_scaling=None``."""
    if input_scaling is None:
        return [], {}
    offset, scale = (np.asarray(v, dtype=np.float64) for v in input_scaling)
    n = net.n_inputs
    if offset.shape != (n,) or scale.shape != (n,):
        raise ValueError(
            f"input_scaling must be (offset, scale), each of shape ({n},) for the network's "
            f"{n} inputs. Received: shapes {offset.shape} and {scale.shape}"
        )
    if not (np.isfinite(offset).all() and np.isfinite(scale).all() and (scale > 0).all()):
        raise ValueError("input_scaling needs finite offsets and finite scales > 0")
    initializers = {"input.offset": offset.astype(dtype), "input.scale": scale.astype(dtype)}
    nodes = [
        Node("Sub", [INPUT_NAME, "input.offset"], ["input.centred"], {}),
        Node("Div", ["input.centred", "input.scale"], ["input.scaled"], {}),
    ]
    return nodes, initializers


def metadata_properties(net: FeedForward) -> dict[str, str]:
    """The model's metadata properties: JSON text of the architecture, the class names (when
    the network has them) and all of ``net.metadata``."""
    try:
        properties = {
            "architecture": json.dumps(net.config(), allow_nan=False),
            "metadata": json.dumps(net.metadata, allow_nan=False, ensure_ascii=False),
        }
    except (TypeError, ValueError) as exc:
        raise ValueError(f"net.metadata must be plain JSON data to export it: {exc}") from None
    class_names = net.metadata.get("class_names") if isinstance(net.metadata, dict) else None
    if class_names is not None:
        properties["class_names"] = json.dumps(class_names, ensure_ascii=False)
    properties["deltaprop_version"] = __version__
    return properties


def network_to_onnx(
    net: FeedForward,
    path: str | os.PathLike | None = None,
    *,
    opset: int | None = None,
    dtype: object = None,
    input_scaling: tuple[np.ndarray, np.ndarray] | None = None,
) -> onnx.ModelProto:
    """``net`` as an ONNX model, checked by ``onnx.checker``; written atomically to ``path``
    when one is given. ``input_scaling=(offset, scale)`` puts ``(input - offset) / scale``
    before the first layer (the scaling a model trained by ``deltaprop train`` keeps), so that
    the graph takes raw features. Every argument is checked before anything is written."""
    layers = exportable_layers(net)
    target = checked_target(path, "ONNX model")
    lib = import_onnx()
    helper, numpy_helper = lib.helper, lib.numpy_helper
    opset = check_opset(opset, lib.defs.onnx_opset_version())
    dtype = export_dtype(net, dtype)
    nodes, initializers = scaling_nodes(net, input_scaling, dtype)
    first = nodes[-1].outputs[0] if nodes else INPUT_NAME
    more_nodes, more_initializers = layer_nodes(layers, first, OUTPUT_NAME, dtype)
    nodes += more_nodes
    initializers.update(more_initializers)
    element = helper.np_dtype_to_tensor_dtype(dtype)
    graph = helper.make_graph(
        [
            helper.make_node(
                n.op_type, n.inputs, n.outputs, name=f"{n.outputs[0]}.{n.op_type}", **n.attributes
            )
            for n in nodes
        ],
        "deltaprop.Network",
        [helper.make_tensor_value_info(INPUT_NAME, element, ["N", net.n_inputs])],
        [helper.make_tensor_value_info(OUTPUT_NAME, element, ["N", net.n_outputs])],
        initializer=[numpy_helper.from_array(a, name) for name, a in initializers.items()],
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph,
        opset_imports=opsets,
        ir_version=helper.find_min_ir_version_for(opsets),
        producer_name="deltaprop",
        producer_version=__version__,
        doc_string=repr(net),
    )
    properties = metadata_properties(net)
    properties["input_scaling"] = "in the graph" if input_scaling is not None else "none"
    helper.set_model_props(model, properties)
    lib.checker.check_model(model, full_check=True)
    if target is not None:
        write_atomically(target, model.SerializeToString())
    return model
