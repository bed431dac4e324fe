"""Backpropagation's gradients against finite differences, for every activation and loss."""

import numpy as np
import pytest

import deltaprop as dp

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "identity"]
OUTPUT_LOSS = [
    ("sigmoid", "mse"),
    ("tanh", "mse"),
    ("relu", "mse"),
    ("leaky_relu", "mse"),
    ("elu", "mse"),
    ("softplus", "mse"),
    ("identity", "mse"),
    ("softmax", "mse"),
    ("softmax", "cross_entropy"),
    ("sigmoid", "binary_cross_entropy"),
]
SIZES = {1: [4, 3], 2: [4, 5, 3], 3: [4, 5, 6, 3]}


def problem(loss, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(6, 4))
    if loss == "cross_entropy":
        return X, rng.integers(0, 3, size=6)
    return X, rng.uniform(size=(6, 3))


def network(sizes, hidden, output, loss, seed):
    net = dp.Network(
        sizes, activation=hidden, output_activation=output, loss=loss, init="xavier", seed=seed
    )
    # Non-zero biases keep every ReLU net input away from its kink, where the derivative is
    # undefined and finite differences measure nothing.
    for layer in net.layers:
        layer.b[...] = net.rng.uniform(0.1, 0.5, size=layer.b.shape)
    return net


CASES = [(1, "-", out, loss) for out, loss in OUTPUT_LOSS] + [
    (depth, hidden, out, loss) for depth in (2, 3) for hidden in HIDDEN for out, loss in OUTPUT_LOSS
]


@pytest.mark.parametrize(
    "depth, hidden, output, loss", CASES, ids=[f"d{d}-{h}-{o}-{name}" for d, h, o, name in CASES]
)
def test_gradients_match_finite_differences(depth, hidden, output, loss):
    activation = hidden if hidden != "-" else "sigmoid"
    X, T = problem(loss, depth)
    net = network(SIZES[depth], activation, output, loss, seed=depth)
    assert dp.gradcheck(net, X, T) < 1e-6


def test_gradcheck_leaves_the_network_unchanged():
    X, T = problem("mse", 0)
    net = network(SIZES[2], "tanh", "sigmoid", "mse", 0)
    before = [p.copy() for p in net.parameters()]
    dp.gradcheck(net, X, T)
    for p, q in zip(before, net.parameters()):
        np.testing.assert_array_equal(p, q)


def test_gradcheck_catches_a_wrong_derivative():
    X, T = problem("mse", 0)
    net = network(SIZES[2], "tanh", "sigmoid", "mse", 0)
    wrong = dp.Activation("tanh", np.tanh, lambda z: 1.0 - z, "tanh(a)", "1-z (wrong)")
    net.layers[0].activation = wrong
    assert dp.gradcheck(net, X, T) > 1e-2


def test_gradcheck_of_a_float32_network_uses_a_float64_copy():
    X, T = problem("cross_entropy", 1)
    net = dp.Network(
        SIZES[2],
        activation="tanh",
        output_activation="softmax",
        loss="cross_entropy",
        seed=1,
        dtype=np.float32,
    )
    assert dp.gradcheck(net, X, T) < 1e-6
    assert net.dtype == np.float32 and net.layers[0].W.dtype == np.float32
