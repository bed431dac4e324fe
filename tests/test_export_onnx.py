"""Network.to_onnx: ONNX Runtime's outputs equal predict for every activation, output/loss pair
and dtype; metadata, opsets, dtypes; bad input raises before anything is written."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from export_cases import OUTPUTS, case_inputs, case_network, close, every_case, inputs

import deltaprop as dp
from deltaprop.export.equivalents import EQUIVALENTS, OPSET

onnx = pytest.importorskip("onnx", reason="ONNX export tests need pip install 'deltaprop[onnx]'")
ort = pytest.importorskip(
    "onnxruntime", reason="ONNX export tests need pip install 'deltaprop[onnx]'"
)


def run(model: onnx.ModelProto, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"input": X})
    return output


def test_every_activation_has_an_equivalent():
    assert set(dp.ACTIVATIONS) <= set(EQUIVALENTS)
    assert ("softmax", "cross_entropy") in OUTPUTS and ("identity", "mse") in OUTPUTS


@every_case
def test_onnx_runtime_computes_predict(hidden, output, loss, dtype):
    net = case_network(hidden, output, loss, dtype)
    X = case_inputs(hidden, 3, dtype)
    model = net.to_onnx()
    onnx.checker.check_model(model, full_check=True)
    close(run(model, X), net.predict(X), dtype)


def test_the_graph_is_standard_operators_of_the_pinned_opset():
    net = case_network("leaky_relu", "softmax", "cross_entropy", "float32", sizes=(2, 3, 2))
    model = net.to_onnx()
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)] == [("", 17)]
    ops = [node.op_type for node in model.graph.node]
    assert ops == ["Gemm", "LeakyRelu", "Gemm", "Softmax"]
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in model.graph.node[1].attribute}
    assert attributes["alpha"] == pytest.approx(0.01)
    softmax = {a.name: onnx.helper.get_attribute_value(a) for a in model.graph.node[3].attribute}
    assert softmax == {"axis": -1}
    (graph_input,) = model.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.name == "input" and [d.dim_param or d.dim_value for d in dims] == ["N", 2]
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    np.testing.assert_array_equal(weights["layers.0.weight"], net.layers[0].W)


def test_float64_leaky_relu_keeps_its_slope_exactly():
    # ONNX attributes are float32: LeakyRelu(alpha=0.01) would be off by 2e-10 in doubles.
    net = dp.Network([1, 1], activation="leaky_relu", loss="mse", seed=0)
    net.layers[0].W[...] = 1.0
    net.layers[0].b[...] = 0.0
    X = np.array([[-1e6], [-3.0], [2.0]])
    np.testing.assert_array_equal(run(net.to_onnx(), X), net.predict(X))


def test_metadata_properties_carry_architecture_and_class_names():
    net = dp.Network(
        [4, 5, 3], activation="tanh", output_activation="softmax", loss="cross_entropy", seed=1
    )
    net.metadata.update(class_names=["setosa", "versicolor", "virginica"], task="classification")
    props = {p.key: p.value for p in net.to_onnx().metadata_props}
    assert json.loads(props["architecture"]) == net.config()
    assert json.loads(props["class_names"]) == ["setosa", "versicolor", "virginica"]
    assert json.loads(props["metadata"]) == net.metadata
    assert props["deltaprop_version"] == dp.__version__


def test_opset_and_dtype_arguments():
    net = case_network("elu", "sigmoid", "binary_cross_entropy", "float64", sizes=(3, 4, 2))
    X = inputs(3, "float64")
    old = net.to_onnx(opset=13)
    assert old.opset_import[0].version == 13
    close(run(old, X), net.predict(X), "float64")
    as32 = net.to_onnx(dtype="float32")
    out = run(as32, X.astype(np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, net.predict(X), rtol=1e-5, atol=1e-5)
    for bad in (12, "17", 17.0, True, 10_000):
        with pytest.raises(ValueError, match="opset"):
            net.to_onnx(opset=bad)
    with pytest.raises(ValueError, match="float32 or float64. Received: dtype='float16'"):
        net.to_onnx(dtype="float16")


def test_writes_the_file_atomically(tmp_path):
    net = dp.Network([2, 2, 1], seed=0)
    path = tmp_path / "net.onnx"
    model = net.to_onnx(path)
    assert path.read_bytes() == model.SerializeToString()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx"]
    X = inputs(2, "float64")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    close(session.run(None, {"input": X})[0], net.predict(X), "float64")


def swish_network() -> dp.Network:
    swish = dp.Activation("swish", lambda a: a / (1 + np.exp(-a)), lambda z: z, "a σ(a)", "…")
    return dp.Network([2, 3, 1], activation=swish, output_activation="identity", seed=0)


def impostor_network() -> dp.Network:
    # A custom activation under a built-in name is still not the built-in one.
    fake = dp.Activation("tanh", np.sin, np.cos, "sin(a)", "cos(a)")
    return dp.Network([2, 3, 1], activation=fake, output_activation="identity", seed=0)


def test_bad_input_raises_and_leaves_no_file(tmp_path):
    net = dp.Network([2, 3, 1], seed=0)
    with pytest.raises(ValueError, match=r"layer 0 has the custom activation 'swish'"):
        swish_network().to_onnx(tmp_path / "a.onnx")
    with pytest.raises(ValueError, match=r"custom activation 'tanh'"):
        impostor_network().to_onnx(tmp_path / "a.onnx")
    with pytest.raises(FileNotFoundError, match="the folder .* does not exist"):
        net.to_onnx(tmp_path / "missing" / "a.onnx")
    with pytest.raises(IsADirectoryError):
        net.to_onnx(tmp_path)
    with pytest.raises(ValueError, match="path must be a file path"):
        net.to_onnx(3)
    broken = net.copy()
    broken.layers[1].W[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        broken.to_onnx(tmp_path / "a.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_leaves_an_existing_file_as_it_was(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"the old model")
    with pytest.raises(ValueError):
        swish_network().to_onnx(path)
    with pytest.raises(ValueError):
        dp.Network([2, 1], seed=0).to_onnx(path, opset=3)
    assert path.read_bytes() == b"the old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_missing_onnx_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'deltaprop\[onnx\]'"):
        dp.Network([2, 1], seed=0).to_onnx()


def test_import_deltaprop_loads_no_export_dependency():
    code = (
        "import sys, deltaprop, deltaprop.sklearn, deltaprop.export.onnx, deltaprop.export.torch;"
        "print(sorted({'onnx', 'onnxruntime', 'skl2onnx', 'torch'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_input_scaling_in_the_graph_and_its_checks():
    from deltaprop.export.onnx import network_to_onnx

    net = dp.Network([3, 4, 1], activation="relu", loss="mse", seed=0)
    offset, scale = np.array([1.0, -2.0, 0.5]), np.array([2.0, 0.25, 3.0])
    model = network_to_onnx(net, input_scaling=(offset, scale))
    X = inputs(3, "float64")
    close(run(model, X), net.predict((X - offset) / scale), "float64")
    assert {p.key: p.value for p in model.metadata_props}["input_scaling"] == "in the graph"
    with pytest.raises(ValueError, match=r"each of shape \(3,\)"):
        network_to_onnx(net, input_scaling=(offset[:2], scale[:2]))
    with pytest.raises(ValueError, match="scales > 0"):
        network_to_onnx(net, input_scaling=(offset, -scale))
