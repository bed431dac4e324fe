"""Network.to_torch and Network.from_torch: the same outputs, and back to the same network, for
every activation, output/loss pair and dtype; the state dict's names; the printed source; every
module from_torch cannot read is named."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from export_cases import case_inputs, case_network, close, every_case, inputs

import deltaprop as dp
from deltaprop.export import torch as torch_export
from deltaprop.export.equivalents import EQUIVALENTS

torch = pytest.importorskip("torch", reason="PyTorch export tests need torch==2.13.0 ([test])")
nn = torch.nn
NO_TORCH_MODULE = {name for name, eq in EQUIVALENTS.items() if eq.torch_module is None}


def torch_outputs(module: nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(X)).numpy()


@every_case
def test_to_torch_and_back(hidden, output, loss, dtype):
    net = case_network(hidden, output, loss, dtype)
    X = case_inputs(hidden, 3, dtype)
    if {hidden, output} & NO_TORCH_MODULE:
        with pytest.raises(ValueError, match="no torch.nn module computes"):
            net.to_torch()
        return
    module = net.to_torch()
    close(torch_outputs(module, X), net.predict(X), dtype)

    back = dp.Network.from_torch(module, loss=loss)
    assert back.config() | {"seed": None, "init": None} == net.config() | {
        "seed": None,
        "init": None,
    }
    for mine, theirs in zip(back.layers, net.layers):
        np.testing.assert_array_equal(mine.W, theirs.W)
        np.testing.assert_array_equal(mine.b, theirs.b)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


def test_sequential_layout_and_state_dict_names():
    net = dp.Network([4, 8, 3], activation="leaky_relu", output_activation="identity", seed=0)
    module = net.to_torch()
    assert [type(m).__name__ for m in module] == ["Linear", "LeakyReLU", "Linear", "Identity"]
    assert module[1].negative_slope == 0.01
    assert list(module.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert list(torch_export.state_dict_arrays(net)) == list(module.state_dict())


def test_to_torch_copies_the_weights_and_leaves_torch_random_state_alone():
    net = dp.Network([2, 3, 1], seed=0)
    state = torch.random.get_rng_state()
    module = net.to_torch()
    assert torch.equal(torch.random.get_rng_state(), state)
    with torch.no_grad():
        module[0].weight.add_(1.0)
    assert not np.allclose(net.layers[0].W, module[0].weight.detach().numpy())
    back = dp.Network.from_torch(module, loss="mse")
    back.layers[0].W += 1.0
    assert not torch.equal(torch.from_numpy(back.layers[0].W), module[0].weight)


def test_from_torch_reads_modules_written_by_hand():
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Linear(3, 4, dtype=torch.float64),
        nn.ReLU(),
        nn.Linear(4, 4, bias=False, dtype=torch.float64),  # b = 0; no activation: identity
        nn.Linear(4, 2, dtype=torch.float64),
        nn.Softmax(dim=1),
    )
    net = dp.Network.from_torch(module, loss="cross_entropy")
    assert net.sizes == [3, 4, 4, 2]
    assert [ly.activation.name for ly in net.layers] == ["relu", "identity", "softmax"]
    np.testing.assert_array_equal(net.layers[1].b, np.zeros(4))
    X = inputs(3, "float64")
    np.testing.assert_allclose(net.predict(X), torch_outputs(module, X), rtol=1e-12, atol=1e-12)
    net.fit(X, np.arange(40) % 2, epochs=1)  # trainable further with the loss given


@pytest.mark.parametrize(
    "modules,message",
    [
        ([nn.Linear(2, 3), nn.Dropout(0.5), nn.Linear(3, 1)], r"module 1 \(Dropout\)"),
        ([nn.Linear(2, 3), nn.ReLU(), nn.ReLU()], r"module 2 \(ReLU\).*expected a Linear"),
        ([nn.ReLU(), nn.Linear(2, 3)], r"module 0 \(ReLU\)"),
        ([nn.Linear(2, 3), nn.GELU()], r"module 1 \(GELU\)"),
        ([nn.Linear(2, 3), nn.LeakyReLU(0.2)], r"module 1 \(LeakyReLU\) has negative_slope=0.2"),
        ([nn.Linear(2, 3), nn.ELU(alpha=0.5)], r"module 1 \(ELU\) has alpha=0.5"),
        ([nn.Linear(2, 3), nn.Softmax(dim=0)], r"module 1 \(Softmax\) has dim=0"),
        ([nn.Linear(2, 3), nn.Softplus(beta=2.0)], r"module 1 \(Softplus\) has beta=2.0"),
        ([nn.Linear(2, 3), nn.Softplus(threshold=5.0)], r"threshold=5.0"),
        ([nn.Linear(2, 3), nn.Linear(4, 1)], r"module 1 \(Linear\) takes 4 inputs.* gives 3"),
        ([nn.Linear(2, 3), nn.Sequential(nn.ReLU())], r"module 1 \(Sequential\)"),
        ([], "at least one Linear"),
        ([nn.Linear(2, 3, dtype=torch.float16)], r"float32 or every weight float64"),
        ([nn.Linear(2, 3), nn.Linear(3, 1, dtype=torch.float64)], "float32 or every weight"),
    ],
)
def test_from_torch_names_the_first_module_it_cannot_read(modules, message):
    with pytest.raises(ValueError, match=message):
        dp.Network.from_torch(nn.Sequential(*modules), loss="mse")


def test_from_torch_checks_the_module_and_the_loss():
    with pytest.raises(ValueError, match="torch.nn.Sequential.*Received: Linear"):
        dp.Network.from_torch(nn.Linear(2, 1), loss="mse")
    with pytest.raises(ValueError, match="binary_cross_entropy.*sigmoid"):
        dp.Network.from_torch(
            nn.Sequential(nn.Linear(2, 1), nn.Tanh()), loss="binary_cross_entropy"
        )


def test_custom_activation_has_no_torch_module():
    swish = dp.Activation("swish", lambda a: a / (1 + np.exp(-a)), lambda z: z, "a σ(a)", "…")
    net = dp.Network([2, 3, 1], activation=swish, output_activation="identity", seed=0)
    with pytest.raises(ValueError, match="layer 0 has the custom activation 'swish'"):
        net.to_torch()


def test_printed_source_builds_the_module_and_loads_the_state_dict(tmp_path):
    net = dp.Network(
        [3, 5, 2],
        activation="softplus",
        output_activation="softmax",
        loss="cross_entropy",
        seed=4,
        dtype="float32",
    )
    path = tmp_path / "state.safetensors"
    torch_export.save_state_dict(net, path)
    namespace: dict = {}
    exec(torch_export.module_source(net, str(path)), namespace)
    X = inputs(3, "float32")
    np.testing.assert_allclose(
        torch_outputs(namespace["model"], X), net.predict(X), rtol=1e-5, atol=1e-5
    )
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        assert sorted(f.keys()) == ["0.bias", "0.weight", "2.bias", "2.weight"]
        assert "nn.Softplus()" in f.metadata()["module"]


def test_state_dict_bad_target_leaves_no_file(tmp_path):
    net = dp.Network([2, 1], seed=0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        torch_export.save_state_dict(net, tmp_path / "no" / "state.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_missing_torch_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'deltaprop\[torch\]'"):
        dp.Network([2, 1], seed=0).to_torch()
    with pytest.raises(ModuleNotFoundError, match=r"deltaprop\[torch\]"):
        dp.Network.from_torch(object(), loss="mse")
