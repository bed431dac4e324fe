"""deltaprop against PyTorch: gradients and optimizer trajectories to rounding.

The oracle is tests/fixtures/network.npz, written by tests/fixtures/make_network_fixtures.py
with torch's autograd and torch.optim (float64) from weights and data drawn with NumPy. This
test never imports torch: it rebuilds every network in deltaprop from the stored weights and
compares

* the batch-mean loss and ∂E/∂W, ∂E/∂b of every layer, for every hidden activation x
  (output activation, loss) pair x depth 1-3, and cross-entropy on integer labels;
* ``fit`` with SGD, RMSprop, Adam, AdamW and Adagrad (with their options) in ordered batches:
  the weights after every step, the loss of every batch and ``History.loss`` per epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import deltaprop as dp

FIXTURE = Path(__file__).parent / "fixtures" / "network.npz"
RTOL = 1e-9
ATOL = 1e-12

with np.load(FIXTURE, allow_pickle=False) as _npz:
    DATA = {key: _npz[key] for key in _npz.files}
META = json.loads(str(DATA["meta"]))
GRADIENT_CASES = META["gradient_cases"]
TRAJECTORY_CASES = META["trajectory_cases"]


def build_network(
    sizes: list[int], hidden: str | None, output: str, loss: str, flat: np.ndarray
) -> dp.Network:
    """A deltaprop network with the given architecture and weights [W0.ravel(), b0, ...]."""
    net = dp.Network(sizes, activation=hidden or output, output_activation=output, loss=loss)
    assert net.sizes == sizes
    assert [layer.activation.name for layer in net.layers] == [hidden] * (len(sizes) - 2) + [output]
    pos = 0
    for layer in net.layers:
        for param in (layer.W, layer.b):
            param[...] = flat[pos : pos + param.size].reshape(param.shape)
            pos += param.size
    assert pos == flat.size
    return net


def flat_parameters(net: dp.Network) -> np.ndarray:
    return np.concatenate([p.ravel() for p in net.parameters()])


# --------------------------------------------------------------------------- the fixture
def test_fixture_is_complete() -> None:
    assert META["torch_version"]
    ids = [case["id"] for case in GRADIENT_CASES]
    assert len(ids) == len(set(ids))
    hidden = {"sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "identity"}
    pairs = {
        ("sigmoid", "mse"),
        ("tanh", "mse"),
        ("identity", "mse"),
        ("relu", "mse"),
        ("softmax", "mse"),
        ("softmax", "cross_entropy"),
        ("sigmoid", "binary_cross_entropy"),
    }
    dense = [c for c in GRADIENT_CASES if c["label_index"] is None]
    got = {(len(c["sizes"]) - 1, c["hidden"], c["output"], c["loss"]) for c in dense}
    want = {(1, None, o, lo) for o, lo in pairs} | {
        (d, h, o, lo) for d in (2, 3) for h in hidden for o, lo in pairs
    }
    assert got == want
    assert any(c["label_index"] is not None for c in GRADIENT_CASES)
    optimizers = {c["optimizer"] for c in TRAJECTORY_CASES}
    assert optimizers == {"SGD", "RMSprop", "Adam", "AdamW", "Adagrad"}
    assert any(c["batch_size"] == 1 for c in TRAJECTORY_CASES)


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("case", GRADIENT_CASES, ids=[c["id"] for c in GRADIENT_CASES])
def test_loss_and_gradients_match_torch(case: dict) -> None:
    i, start, n = case["index"], case["offset"], case["n_params"]
    net = build_network(
        case["sizes"],
        case["hidden"],
        case["output"],
        case["loss"],
        DATA["grad_params"][start : start + n],
    )
    X = DATA["grad_X"][i]
    T = (
        DATA["grad_T"][i]
        if case["label_index"] is None
        else DATA["grad_labels"][case["label_index"]]
    )

    np.testing.assert_allclose(net.loss(X, T), DATA["grad_loss"][i], rtol=RTOL, atol=ATOL)

    expected = DATA["grad_grads"][start : start + n]
    grads = net.gradients(X, T)
    assert len(grads) == len(net.layers)
    pos = 0
    for layer, (dW, db) in enumerate(grads):
        for name, got in ((f"dW{layer}", dW), (f"db{layer}", db)):
            want = expected[pos : pos + got.size].reshape(got.shape)
            pos += got.size
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=name)


# --------------------------------------------------------------------------- trajectories
class Recorder(dp.Callback):
    """Copies the weights after every update and every epoch, and keeps the batch losses."""

    def __init__(self) -> None:
        self.step_weights: list[np.ndarray] = []
        self.batch_losses: list[float] = []
        self.epoch_weights: list[np.ndarray] = []

    def on_batch_end(self, net: dp.Network, epoch: int, batch: int, loss: float) -> None:
        self.step_weights.append(flat_parameters(net))
        self.batch_losses.append(loss)

    def on_epoch_end(self, net: dp.Network, epoch: int, logs: dict) -> None:
        self.epoch_weights.append(flat_parameters(net))


@pytest.mark.parametrize("case", TRAJECTORY_CASES, ids=[c["id"] for c in TRAJECTORY_CASES])
def test_training_trajectory_matches_torch(case: dict) -> None:
    cid, data = case["id"], case["data"]
    weights = DATA[f"{cid}__weights"]  # (steps + 1, n_params), initial weights first
    n = case.get("n_examples", DATA[f"{data}__X"].shape[0])
    X, T = DATA[f"{data}__X"][:n], DATA[f"{data}__T"][:n]
    net = build_network(case["sizes"], case["hidden"], case["output"], case["loss"], weights[0])
    optimizer = getattr(dp, case["optimizer"])(**case["kwargs"])
    recorder = Recorder()

    history = net.fit(
        X,
        T,
        optimizer=optimizer,
        epochs=case["epochs"],
        batch_size=case["batch_size"],
        shuffle=False,
        callbacks=[recorder],
    )

    steps = case["steps"]
    assert len(recorder.step_weights) == steps
    # The first step that disagrees, so that a failure names where the trajectories part.
    for step in range(steps):
        np.testing.assert_allclose(
            recorder.batch_losses[step],
            DATA[f"{cid}__batch_loss"][step],
            rtol=RTOL,
            atol=ATOL,
            err_msg=f"loss of batch {step} (before update {step + 1})",
        )
        np.testing.assert_allclose(
            recorder.step_weights[step],
            weights[step + 1],
            rtol=RTOL,
            atol=ATOL,
            err_msg=f"weights after update {step + 1} of {steps}",
        )
    per_epoch = steps // case["epochs"]
    np.testing.assert_allclose(
        np.array(recorder.epoch_weights), weights[per_epoch::per_epoch], rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(flat_parameters(net), weights[-1], rtol=RTOL, atol=ATOL)
    assert history.epoch == list(range(1, case["epochs"] + 1))
    np.testing.assert_allclose(history.loss, DATA[f"{cid}__epoch_loss"], rtol=RTOL, atol=ATOL)
