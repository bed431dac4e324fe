"""skl2onnx converters and shape calculators for deltaprop's estimators, and
``estimator_to_onnx`` (``est.to_onnx()``). :mod:`deltaprop.sklearn.onnx` registers them for
both estimators when imported; this module takes an estimator class as an argument rather than
importing the estimators, so that their base class can call it without an import circle.

The converters are deltaprop's own rather than scikit-learn's MLP converters (which the fitted
attributes would also satisfy) so that every layer is written by :mod:`deltaprop.export.onnx`,
exactly as ``Network.to_onnx`` writes it (every deltaprop activation, float64 to the last bit
but rounding), and so that multi-output regression keeps its [N, n_outputs] shape (skl2onnx's
MLP converter reshapes every regressor's output to [N, 1]). Outputs are otherwise skl2onnx's
for scikit-learn's MLPs: a classifier's labels and probabilities (a ZipMap of them unless
``options={"zipmap": False}``), a regressor's predictions. Needs
``pip install 'deltaprop[onnx]'``.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from deltaprop.export.equivalents import exportable_layers
from deltaprop.export.onnx import (
    INSTALL_HINT,
    check_opset,
    export_dtype,
    import_onnx,
    layer_nodes,
    metadata_properties,
)
from deltaprop.export.target import checked_target
from deltaprop.io.atomic import write_atomically

if TYPE_CHECKING:
    from deltaprop.sklearn._base import BaseMLP
    from deltaprop.sklearn._classifier import MLPClassifier

try:
    import onnx
    from skl2onnx import to_onnx as skl2onnx_to_onnx
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
except ModuleNotFoundError as exc:
    raise ModuleNotFoundError(
        f"converting deltaprop's estimators to ONNX needs onnx and skl2onnx: {INSTALL_HINT}",
        name=exc.name,
    ) from exc

# The options skl2onnx has for every classifier (as for scikit-learn's MLP); nocl=True gives
# class indices 0..n-1 for labels.
CLASSIFIER_OPTIONS = {
    "zipmap": [True, False, "columns"],
    "output_class_labels": [False, True],
    "nocl": [True, False],
}


def _add(
    scope: object, container: object, op_type: str, *args: object, **attributes: object
) -> None:
    """One node, named uniquely in the graph."""
    name = scope.get_unique_operator_name(op_type)
    container.add_node(op_type, *args, name=name, **attributes)


def _compute_type(operator: object) -> tuple[np.dtype, int]:
    """The graph computes in double for a double input and in float otherwise, as
    skl2onnx's converter for scikit-learn's MLP does."""
    if isinstance(operator.inputs[0].type, DoubleTensorType):
        return np.dtype(np.float64), onnx.TensorProto.DOUBLE
    return np.dtype(np.float32), onnx.TensorProto.FLOAT


def _is_multilabel(estimator: MLPClassifier) -> bool:
    # Binary targets have one logistic output; multilabel ones one per label (two or more).
    return estimator.out_activation_ == "logistic" and estimator.n_outputs_ > 1


def _network_outputs(scope: object, operator: object, container: object) -> tuple[str, int]:
    """Add the network's layers after a cast of the input; the outputs' name and type."""
    estimator = operator.raw_operator
    dtype, proto = _compute_type(operator)
    cast = scope.get_unique_variable_name("input_cast")
    _add(scope, container, "Cast", operator.inputs[0].full_name, cast, to=proto)
    outputs = scope.get_unique_variable_name("network_output")
    layers = exportable_layers(estimator.network_)
    nodes, initializers = layer_nodes(layers, cast, outputs, dtype, scope.get_unique_variable_name)
    for name, array in initializers.items():
        container.add_initializer(name, proto, list(array.shape), array.ravel().tolist())
    for node in nodes:
        _add(scope, container, node.op_type, node.inputs, node.outputs, **node.attributes)
    return outputs, proto


def _classes(scope: object, estimator: MLPClassifier) -> np.ndarray:
    """``classes_``, or their indices with skl2onnx's option nocl=True."""
    if scope.get_options(estimator, {"nocl": False})["nocl"]:
        return np.arange(len(estimator.classes_))
    return np.asarray(estimator.classes_)


def _classes_tensor(classes: np.ndarray) -> tuple[int, np.ndarray]:
    """The class labels as an ONNX tensor type and content: strings stay strings, anything
    else becomes int64 (skl2onnx's rule for scikit-learn's MLP)."""
    if classes.dtype.kind in "OUS":
        return onnx.TensorProto.STRING, np.array([str(c).encode("utf-8") for c in classes])
    return onnx.TensorProto.INT64, classes.astype(np.int64)


def convert_classifier(scope: object, operator: object, container: object) -> None:
    """skl2onnx converter: labels (outputs[0]) and probabilities (outputs[1])."""
    estimator = operator.raw_operator
    labels, probabilities = operator.outputs[0].full_name, operator.outputs[1].full_name
    p, proto = _network_outputs(scope, operator, container)
    if _is_multilabel(estimator):
        # Each label whose probability is over 0.5, as LabelBinarizer.inverse_transform.
        half = scope.get_unique_variable_name("half")
        over = scope.get_unique_variable_name("over_half")
        container.add_initializer(half, proto, [], [0.5])
        _add(scope, container, "Greater", [p, half], over)
        _add(scope, container, "Cast", over, labels, to=onnx.TensorProto.INT64)
        _add(scope, container, "Identity", p, probabilities)
        return
    if len(estimator.classes_) == 2:  # one sigmoid output: P(class 1); P(class 0) = 1 - it
        one = scope.get_unique_variable_name("one")
        complement = scope.get_unique_variable_name("complement")
        container.add_initializer(one, proto, [], [1.0])
        _add(scope, container, "Sub", [one, p], complement)
        _add(scope, container, "Concat", [complement, p], probabilities, axis=1)
    else:
        _add(scope, container, "Identity", p, probabilities)
    # The first most probable class, as argmax in predict (and 1 - p < p exactly when p > 0.5).
    winner = scope.get_unique_variable_name("winner")
    _add(scope, container, "ArgMax", probabilities, winner, axis=1, keepdims=0)
    classes = scope.get_unique_variable_name("classes")
    class_type, content = _classes_tensor(_classes(scope, estimator))
    container.add_initializer(classes, class_type, list(content.shape), content.tolist())
    _add(scope, container, "Gather", [classes, winner], labels, axis=0)


def classifier_shapes(operator: object) -> None:
    """skl2onnx shape calculator: labels [N] (multilabel [N, n_labels]), probabilities
    [N, n_classes]."""
    estimator = operator.raw_operator
    check_is_fitted(estimator)
    n = operator.inputs[0].get_first_dimension()
    classes = _classes(operator.scope_inst, estimator)
    if _is_multilabel(estimator):
        operator.outputs[0].type = Int64TensorType([n, estimator.n_outputs_])
    elif classes.dtype.kind in "OUS":
        operator.outputs[0].type = StringTensorType([n])
    else:
        operator.outputs[0].type = Int64TensorType([n])
    compute = DoubleTensorType if _compute_type(operator)[0] == np.float64 else FloatTensorType
    operator.outputs[1].type = compute([n, len(classes)])


def convert_regressor(scope: object, operator: object, container: object) -> None:
    """skl2onnx converter: the predictions [N, n_outputs]."""
    outputs, _ = _network_outputs(scope, operator, container)
    _add(scope, container, "Identity", outputs, operator.outputs[0].full_name)


def regressor_shapes(operator: object) -> None:
    """skl2onnx shape calculator: predictions [N, n_outputs] in the computing type."""
    estimator = operator.raw_operator
    check_is_fitted(estimator)
    n = operator.inputs[0].get_first_dimension()
    compute = DoubleTensorType if _compute_type(operator)[0] == np.float64 else FloatTensorType
    operator.outputs[0].type = compute([n, estimator.n_outputs_])


def register(estimator_class: type) -> None:
    """Register a deltaprop estimator class (a classifier or a regressor) with skl2onnx;
    registering again replaces the registration with the same one."""
    if issubclass(estimator_class, ClassifierMixin):
        update_registered_converter(
            estimator_class,
            f"Deltaprop{estimator_class.__name__}",
            classifier_shapes,
            convert_classifier,
            options=CLASSIFIER_OPTIONS,
        )
    else:
        update_registered_converter(
            estimator_class,
            f"Deltaprop{estimator_class.__name__}",
            regressor_shapes,
            convert_regressor,
        )


def estimator_to_onnx(
    estimator: BaseMLP,
    path: str | os.PathLike | None = None,
    *,
    opset: int | None = None,
    dtype: object = None,
    options: dict | None = None,
) -> onnx.ModelProto:
    """A fitted estimator as an ONNX model by skl2onnx, input ``input`` [N, n_features] in
    ``dtype`` (default: the network's), checked, with the architecture and classes as metadata
    properties; written atomically to ``path`` when given. Everything is checked first."""
    check_is_fitted(estimator)
    register(type(estimator))
    net = estimator.network_
    exportable_layers(net)
    dtype = export_dtype(net, dtype)
    opset = check_opset(opset, import_onnx().defs.onnx_opset_version())
    target = checked_target(path, "ONNX model")
    tensor = DoubleTensorType if dtype == np.float64 else FloatTensorType
    model = skl2onnx_to_onnx(
        estimator,
        initial_types=[("input", tensor([None, estimator.n_features_in_]))],
        target_opset=opset,
        options=options,
    )
    properties = metadata_properties(net)
    if hasattr(estimator, "classes_"):
        properties["classes"] = json.dumps(np.asarray(estimator.classes_).tolist())
    onnx.helper.set_model_props(model, properties)
    onnx.checker.check_model(model, full_check=True)
    if target is not None:
        write_atomically(target, model.SerializeToString())
    return model
