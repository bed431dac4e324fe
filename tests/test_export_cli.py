"""deltaprop export: the ONNX file runs in ONNX Runtime, the torch state dict loads into the
module the command prints; bad input is one line on stderr and leaves no file."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.cli import main
from deltaprop.data.preprocessing import Scaler

ort = pytest.importorskip("onnxruntime", reason="needs pip install 'deltaprop[onnx]'")


@pytest.fixture
def model_file(tmp_path):
    net = dp.Network(
        [4, 6, 3], activation="elu", output_activation="softmax", loss="cross_entropy", seed=0
    )
    path = tmp_path / "model.safetensors"
    net.save(path, metadata={"class_names": ["a", "b", "c"]})
    return net, path


def X(dtype="float64"):
    return np.random.default_rng(2).normal(scale=2.0, size=(25, 4)).astype(dtype)


def test_onnx_export_runs_in_onnx_runtime(model_file, tmp_path, capsys):
    net, path = model_file
    out = tmp_path / "model.onnx"
    assert main(["export", str(path), "--format", "onnx", "-o", str(out)]) == 0
    assert "ONNX opset 17, input 'input' [N, 4] float64" in capsys.readouterr().out
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        session.run(None, {"input": X()})[0], net.predict(X()), rtol=1e-10, atol=1e-10
    )
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["class_names"] == '["a", "b", "c"]'


def test_onnx_export_as_float32(model_file, tmp_path):
    net, path = model_file
    out = tmp_path / "model32.onnx"
    assert (
        main(
            [
                "export",
                str(path),
                "--format",
                "onnx",
                "-o",
                str(out),
                "--dtype",
                "float32",
                "--opset",
                "13",
            ]
        )
        == 0
    )
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    result = session.run(None, {"input": X("float32")})[0]
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, net.predict(X()), rtol=1e-5, atol=1e-5)


def test_torch_export_loads_into_the_printed_module(model_file, tmp_path, capsys, monkeypatch):
    torch = pytest.importorskip("torch", reason="needs torch==2.13.0 ([test])")
    net, path = model_file
    out = tmp_path / "state.safetensors"
    assert main(["export", str(path), "--format", "torch", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    source = printed.split("\n\n", 1)[1]
    assert "nn.ELU(alpha=1.0)" in source and "load_state_dict(load_file(" in source
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(source, namespace)
    with torch.no_grad():
        result = namespace["model"](torch.from_numpy(X())).numpy()
    np.testing.assert_allclose(result, net.predict(X()), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "extra,code,message",
    [
        (["--format", "tensorflow"], 2, "invalid choice: 'tensorflow'"),
        (["--format", "onnx", "--opset", "9"], 1, "opset must be between 13"),
        (["--format", "torch", "--dtype", "float32"], 2, "apply to --format onnx only"),
    ],
)
def test_bad_options_are_one_line_and_write_nothing(
    model_file, tmp_path, capsys, extra, code, message
):
    _, path = model_file
    out = tmp_path / "out.file"
    assert_fails(capsys, ["export", str(path), "-o", str(out), *extra], code, message)
    assert not out.exists()


def test_missing_folder_and_missing_model(model_file, tmp_path, capsys):
    _, path = model_file
    target = tmp_path / "no" / "m.onnx"
    assert_fails(
        capsys, ["export", str(path), "--format", "onnx", "-o", str(target)], 1, "does not exist"
    )
    assert_fails(
        capsys, ["export", str(path), "--format", "torch", "-o", str(target)], 1, "does not exist"
    )
    assert not (tmp_path / "no").exists()
    assert_fails(
        capsys,
        [
            "export",
            str(tmp_path / "none.safetensors"),
            "--format",
            "onnx",
            "-o",
            str(tmp_path / "m.onnx"),
        ],
        1,
        "No such file",
    )


def test_missing_onnx_package_is_one_line(model_file, tmp_path, capsys, monkeypatch):
    _, path = model_file
    monkeypatch.setitem(sys.modules, "onnx", None)
    out = tmp_path / "m.onnx"
    assert_fails(
        capsys,
        ["export", str(path), "--format", "onnx", "-o", str(out)],
        1,
        r"pip install 'deltaprop[onnx]'",
    )
    assert not out.exists()


@pytest.mark.parametrize("kind", ["standard", "minmax"])
def test_a_scaled_model_scales_raw_features_in_the_graph(tmp_path, capsys, kind):
    raw = X() * 10 + 3
    scaler = Scaler(kind).fit(raw)
    net = dp.Network([4, 5, 2], activation="tanh", loss="mse", seed=0)
    path = tmp_path / "m.safetensors"
    net.save(path, metadata={"scaler": scaler.to_dict()})
    out, bare = tmp_path / "m.onnx", tmp_path / "bare.onnx"
    assert main(["export", str(path), "--format", "onnx", "-o", str(out)]) == 0
    assert "give it raw features" in capsys.readouterr().out
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    expected = net.predict(scaler.transform(raw))  # what deltaprop predict computes
    np.testing.assert_allclose(
        session.run(None, {"input": raw})[0], expected, rtol=1e-10, atol=1e-10
    )
    assert main(["export", str(path), "--format", "onnx", "-o", str(bare), "--no-scaling"]) == 0
    assert "give it inputs already scaled" in capsys.readouterr().err
    session = ort.InferenceSession(str(bare), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        session.run(None, {"input": raw})[0], net.predict(raw), rtol=1e-10, atol=1e-10
    )


def assert_fails(capsys, argv, code, message):
    if code == 2 and "invalid choice" in message:
        with pytest.raises(SystemExit) as exc:  # argparse's own usage error
            main(argv)
        assert exc.value.code == 2
    else:
        assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    if "invalid choice" not in message:
        assert len(err.strip().splitlines()) == 1, err
