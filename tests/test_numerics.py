"""Extreme inputs under np.errstate(all="raise"): nothing raises, results finite where the
maths is finite, float32 stays float32 and tracks float64."""

import numpy as np
import pytest

import deltaprop as dp

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "identity"]
PAIRS = [
    ("sigmoid", "mse"),
    ("identity", "mse"),
    ("softmax", "mse"),
    ("softmax", "cross_entropy"),
    ("sigmoid", "binary_cross_entropy"),
    ("tanh", "mse"),
    ("softplus", "mse"),
    ("elu", "mse"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("output, loss", PAIRS)
def test_extreme_net_inputs_raise_nothing(hidden, output, loss, dtype):
    net = dp.Network(
        [2, 3, 3], activation=hidden, output_activation=output, loss=loss, seed=0, dtype=dtype
    )
    # Weights of ±1 and inputs of ±1e4 put every net input at about ±1e4 (float32 keeps it
    # below overflow: 1e4 · 3 terms).
    for layer in net.layers:
        layer.W[...] = np.where(np.arange(layer.W.size).reshape(layer.W.shape) % 2, 1.0, -1.0)
    X = np.array([[1e4, -1e4], [-1e4, 1e4], [1e4, 1e4], [0.0, 0.0]], dtype=dtype)
    T = (
        np.array([0, 1, 2, 0])
        if loss == "cross_entropy"
        else np.array([[0, 1, 0], [1, 0, 1], [0, 0, 1], [1, 1, 0]], dtype=dtype)
    )
    with np.errstate(all="raise"):
        outputs = net.predict(X)
        loss_value = net.loss(X, T)
        grads = net.gradients(X, T)
    assert outputs.dtype == dtype and np.isfinite(outputs).all()
    # Unbounded activations give squared errors near 1e8-1e16: finite, if not small.
    assert np.isfinite(loss_value)
    for dW, db in grads:
        assert dW.dtype == dtype and db.dtype == dtype
        assert np.isfinite(dW).all() and np.isfinite(db).all()


def test_saturated_probabilities_give_exact_finite_losses():
    net = dp.Network(
        [1, 2], activation="identity", output_activation="softmax", loss="cross_entropy"
    )
    net.layers[0].W[...] = [[1.0], [-1.0]]
    net.layers[0].b[...] = 0.0
    X = np.array([[500.0]])  # logits ±500: softmax gives exactly (1, 0) in float64
    with np.errstate(all="raise"):
        assert net.predict(X)[0, 1] == 0.0
        assert net.loss(X, np.array([1])) == pytest.approx(1000.0, rel=1e-15)
        assert net.loss(X, np.array([0])) == 0.0


def test_float32_training_tracks_float64():
    """float32 weights stay within 1e-4 (relative to the weights' scale) of the float64 run
    after 20 epochs of Adam on a small classification problem."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)
    runs = {}
    for dtype in (np.float32, np.float64):
        net = dp.Network(
            [5, 8, 2],
            activation="tanh",
            output_activation="softmax",
            loss="cross_entropy",
            seed=3,
            dtype=dtype,
        )
        history = net.fit(X, y, optimizer=dp.Adam(lr=0.01), epochs=20, batch_size=16)
        assert all(p.dtype == dtype for p in net.parameters())
        runs[dtype] = (net, history)
    (n32, h32), (n64, h64) = runs[np.float32], runs[np.float64]
    for p, q in zip(n32.parameters(), n64.parameters()):
        scale = np.abs(q).max()
        assert np.abs(p - q).max() <= 1e-4 * max(scale, 1.0)
    np.testing.assert_allclose(h32.loss, h64.loss, rtol=1e-4)
