"""The network against the seed's delta rule, worked out by hand, and its input checks."""

import numpy as np
import pytest

import deltaprop as dp

# ---------------------------------------------------------------------------------------------
# The seed's 2-2-2 all-sigmoid network with squared error, one example, η = 0.5.
# Weights as in the classic worked example (hidden h1, h2; outputs o1, o2):
#   w1 = 0.15 (h1←x1)  w2 = 0.20 (h1←x2)  w3 = 0.25 (h2←x1)  w4 = 0.30 (h2←x2)  b_h = 0.35
#   w5 = 0.40 (o1←h1)  w6 = 0.45 (o1←h2)  w7 = 0.50 (o2←h1)  w8 = 0.55 (o2←h2)  b_o = 0.60
# x = (0.05, 0.10), t = (0.01, 0.99).
#
# Forwarding:
#   a_h1 = 0.15·0.05 + 0.20·0.10 + 0.35 = 0.3775        h1 = σ(0.3775) = 0.593269992
#   a_h2 = 0.25·0.05 + 0.30·0.10 + 0.35 = 0.3925        h2 = σ(0.3925) = 0.596884378
#   a_o1 = 0.40·0.593269992 + 0.45·0.596884378 + 0.60 = 1.105905967   o1 = 0.751365070
#   a_o2 = 0.50·0.593269992 + 0.55·0.596884378 + 0.60 = 1.224921404   o2 = 0.772928465
#   E = ½(0.01 - 0.751365070)² + ½(0.99 - 0.772928465)² = 0.274811083 + 0.023560026 = 0.298371109
#
# Output deltas, δ_k = o_k(1 - o_k)(t_k - o_k):
#   δ_o1 = 0.751365070 · 0.248634930 · (0.01 - 0.751365070) = -0.138498562
#   δ_o2 = 0.772928465 · 0.227071535 · (0.99 - 0.772928465) =  0.038098236
# Hidden deltas, δ_j = h'(a_j) Σ_k δ_k w_kj with h' = h(1 - h), using the weights before update:
#   δ_h1 = 0.593269992·0.406730008 · (-0.138498562·0.40 + 0.038098236·0.50)
#        = 0.241300709 · (-0.036350306) = -0.008771354
#   δ_h2 = 0.596884378·0.403115622 · (-0.138498562·0.45 + 0.038098236·0.55)
#        = 0.240613417 · (-0.041370323) = -0.009954254
# Updates, w_ji ← w_ji + η δ_j z_i (a bias is a weight from a unit that is always 1):
#   w5 = 0.40 + 0.5·(-0.138498562)·0.593269992 = 0.358916480
#   w6 = 0.45 + 0.5·(-0.138498562)·0.596884378 = 0.408666186
#   w7 = 0.50 + 0.5·( 0.038098236)·0.593269992 = 0.511301270
#   w8 = 0.55 + 0.5·( 0.038098236)·0.596884378 = 0.561370121
#   w1 = 0.15 + 0.5·(-0.008771354)·0.05 = 0.149780716
#   w2 = 0.20 + 0.5·(-0.008771354)·0.10 = 0.199561432
#   w3 = 0.25 + 0.5·(-0.009954254)·0.05 = 0.249751144
#   w4 = 0.30 + 0.5·(-0.009954254)·0.10 = 0.299502287
#   b_h1 = 0.35 + 0.5·(-0.008771354) = 0.345614323    b_h2 = 0.35 + 0.5·(-0.009954254) = 0.345022873
#   b_o1 = 0.60 + 0.5·(-0.138498562) = 0.530750719    b_o2 = 0.60 + 0.5·( 0.038098236) = 0.619049118
# ---------------------------------------------------------------------------------------------
HAND = 1e-9  # the hand arithmetic above carries nine decimals


def seed_network() -> dp.Network:
    net = dp.Network([2, 2, 2], activation="sigmoid", loss="mse")
    net.layers[0].W[...] = [[0.15, 0.20], [0.25, 0.30]]
    net.layers[0].b[...] = [0.35, 0.35]
    net.layers[1].W[...] = [[0.40, 0.45], [0.50, 0.55]]
    net.layers[1].b[...] = [0.60, 0.60]
    return net


X_SEED = np.array([[0.05, 0.10]])
T_SEED = np.array([[0.01, 0.99]])


def test_forwarding_matches_hand_computation():
    fp = seed_network().forward(X_SEED)
    np.testing.assert_allclose(fp.a[0], [[0.3775, 0.3925]], atol=1e-15)
    np.testing.assert_allclose(fp.z[1], [[0.593269992, 0.596884378]], atol=HAND)
    np.testing.assert_allclose(fp.a[1], [[1.105905967, 1.224921404]], atol=HAND)
    np.testing.assert_allclose(fp.output, [[0.751365070, 0.772928465]], atol=HAND)
    assert seed_network().loss(X_SEED, T_SEED) == pytest.approx(0.298371109, abs=HAND)


def test_deltas_match_hand_computation():
    net = seed_network()
    fp = net.forward(X_SEED)
    hidden, output = net.backward(fp, T_SEED)
    np.testing.assert_allclose(output, [[-0.138498562, 0.038098236]], atol=HAND)
    np.testing.assert_allclose(hidden, [[-0.008771354, -0.009954254]], atol=HAND)


def test_one_online_sgd_step_is_the_seeds_update():
    net = seed_network()
    net.fit(X_SEED, T_SEED, optimizer=dp.SGD(lr=0.5), epochs=1, batch_size=1, shuffle=False)
    np.testing.assert_allclose(
        net.layers[1].W, [[0.358916480, 0.408666186], [0.511301270, 0.561370121]], atol=HAND
    )
    np.testing.assert_allclose(
        net.layers[0].W, [[0.149780716, 0.199561432], [0.249751144, 0.299502287]], atol=HAND
    )
    np.testing.assert_allclose(net.layers[0].b, [0.345614323, 0.345022873], atol=HAND)
    np.testing.assert_allclose(net.layers[1].b, [0.530750719, 0.619049118], atol=HAND)


def seed_rule_by_loops(W1, b1, W2, b2, X, T, eta):
    """The seed's algorithm written with scalar loops, independent of the library's matrices."""

    def sigma(a):
        return 1.0 / (1.0 + np.exp(-a))

    W1, b1, W2, b2 = W1.copy(), b1.copy(), W2.copy(), b2.copy()
    for x, t in zip(X, T):
        h = [sigma(sum(W1[j, i] * x[i] for i in range(len(x))) + b1[j]) for j in range(len(b1))]
        o = [sigma(sum(W2[k, j] * h[j] for j in range(len(h))) + b2[k]) for k in range(len(b2))]
        d_out = [o[k] * (1 - o[k]) * (t[k] - o[k]) for k in range(len(o))]
        d_hid = [
            h[j] * (1 - h[j]) * sum(d_out[k] * W2[k, j] for k in range(len(o)))
            for j in range(len(h))
        ]
        for k in range(len(o)):
            for j in range(len(h)):
                W2[k, j] += eta * d_out[k] * h[j]
            b2[k] += eta * d_out[k]
        for j in range(len(h)):
            for i in range(len(x)):
                W1[j, i] += eta * d_hid[j] * x[i]
            b1[j] += eta * d_hid[j]
    return W1, b1, W2, b2


def test_online_sgd_reproduces_the_seeds_loop_over_many_examples():
    rng = np.random.default_rng(7)
    X, T = rng.uniform(size=(25, 2)), rng.uniform(size=(25, 2))
    net = seed_network()
    expected = seed_rule_by_loops(
        net.layers[0].W,
        net.layers[0].b,
        net.layers[1].W,
        net.layers[1].b,
        np.vstack([X] * 3),
        np.vstack([T] * 3),
        0.5,
    )
    net.fit(X, T, optimizer=dp.SGD(lr=0.5), epochs=3, batch_size=1, shuffle=False)
    got = (net.layers[0].W, net.layers[0].b, net.layers[1].W, net.layers[1].b)
    for g, e in zip(got, expected):
        # Only the order of floating-point additions differs: agreement to rounding.
        np.testing.assert_allclose(g, e, rtol=1e-13, atol=1e-15)


def test_gradients_are_minus_delta_times_input_averaged():
    rng = np.random.default_rng(3)
    net = dp.Network([3, 4, 2], activation="tanh", output_activation="sigmoid", seed=1)
    X, T = rng.normal(size=(5, 3)), rng.uniform(size=(5, 2))
    fp = net.forward(X)
    deltas = net.backward(fp, T)
    (dW0, db0), (dW1, db1) = net.gradients(X, T)
    for i, (dW, db) in enumerate([(dW0, db0), (dW1, db1)]):
        by_example = -np.einsum("nj,ni->nji", deltas[i], fp.z[i]).mean(axis=0)
        np.testing.assert_allclose(dW, by_example, rtol=1e-12, atol=1e-17)
        np.testing.assert_allclose(db, -deltas[i].mean(axis=0), rtol=1e-12, atol=1e-17)


# ------------------------------------------------------------------------ construction
def test_weight_shapes_follow_w_j_i_convention():
    net = dp.Network(
        [64, 32, 10],
        activation="sigmoid",
        output_activation="softmax",
        loss="cross_entropy",
        init="xavier",
        seed=0,
        dtype=np.float32,
    )
    assert [layer.W.shape for layer in net.layers] == [(32, 64), (10, 32)]
    assert [layer.b.shape for layer in net.layers] == [(32,), (10,)]
    assert all(layer.W.dtype == np.float32 and layer.b.dtype == np.float32 for layer in net.layers)
    assert net.n_parameters == 64 * 32 + 32 + 32 * 10 + 10
    assert net.predict(np.zeros((3, 64), dtype=np.float32)).dtype == np.float32


def test_output_activation_defaults_to_activation_and_lists_per_layer():
    net = dp.Network([2, 2, 2], activation="sigmoid", loss="mse")
    assert [layer.activation.name for layer in net.layers] == ["sigmoid", "sigmoid"]
    net = dp.Network([3, 4, 5, 2], activation=["relu", "tanh"], output_activation="identity")
    assert [layer.activation.name for layer in net.layers] == ["relu", "tanh", "identity"]


def test_weights_are_writable_in_place():
    net = dp.Network([2, 3, 1], seed=0)
    net.layers[0].W[1, 0] = 5.0
    assert net.parameters()[0][1, 0] == 5.0


def test_same_seed_same_weights_whatever_the_global_rng():
    np.random.seed(1)  # noqa: NPY002 (the global RNG must not matter)
    a = dp.Network([5, 7, 3], seed=42)
    np.random.seed(999)  # noqa: NPY002 (the global RNG must not matter)
    np.random.uniform(size=100)  # noqa: NPY002 (the global RNG must not matter)
    b = dp.Network([5, 7, 3], seed=42)
    c = dp.Network([5, 7, 3], seed=43)
    for la, lb, lc in zip(a.layers, b.layers, c.layers):
        np.testing.assert_array_equal(la.W, lb.W)
        np.testing.assert_array_equal(la.b, lb.b)
        assert not np.array_equal(la.W, lc.W)


def test_same_seed_same_training_whatever_the_global_rng():
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(40, 3)), rng.integers(0, 2, size=(40, 1))
    runs = []
    for global_seed in (0, 12345):
        np.random.seed(global_seed)  # noqa: NPY002 (the global RNG must not matter)
        net = dp.Network([3, 4, 1], seed=5)
        hist = net.fit(X, T, epochs=3, batch_size=8, shuffle=True, validation_split=0.25)
        runs.append((net.parameters(), hist.loss))
    for p, q in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(p, q)
    assert runs[0][1] == runs[1][1]


def test_float32_and_float64_start_from_the_same_draws():
    a = dp.Network([4, 3, 2], seed=9, dtype=np.float32)
    b = dp.Network([4, 3, 2], seed=9, dtype=np.float64)
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.W, lb.W.astype(np.float32))


def test_copy_is_independent():
    net = dp.Network([2, 3, 1], seed=0)
    clone = net.copy()
    clone.layers[0].W += 1
    assert not np.array_equal(clone.layers[0].W, net.layers[0].W)
    assert net.rng.integers(1 << 30) == clone.rng.integers(1 << 30)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sizes": [3]}, "at least 2 positive integers"),
        ({"sizes": [3, 0, 1]}, "sizes=[3, 0, 1]"),
        ({"sizes": 5}, "Received: sizes=5"),
        ({"sizes": [2, 2], "activation": "swish"}, "Unknown activation 'swish'"),
        ({"sizes": [2, 3, 2], "activation": ["relu", "tanh"]}, "one name per hidden layer"),
        (
            {"sizes": [2, 3, 2], "activation": "softmax", "output_activation": "softmax"},
            "only be the output activation",
        ),
        ({"sizes": [2, 2], "loss": "hinge"}, "Unknown loss 'hinge'"),
        (
            {"sizes": [2, 2], "output_activation": "sigmoid", "loss": "cross_entropy"},
            "expects output_activation='softmax'",
        ),
        (
            {"sizes": [2, 2], "output_activation": "identity", "loss": "binary_cross_entropy"},
            "expects output_activation='sigmoid'",
        ),
        ({"sizes": [2, 2], "init": "zeros"}, "Unknown init 'zeros'"),
        ({"sizes": [2, 2], "dtype": np.int32}, "float32 or float64"),
        ({"sizes": [2, 2], "seed": -1}, "seed=-1"),
    ],
)
def test_bad_construction_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        dp.Network(**kwargs)


# ------------------------------------------------------------------------ bad input
def classifier():
    return dp.Network([3, 4, 2], output_activation="softmax", loss="cross_entropy", seed=0)


GOOD_X = np.zeros((4, 3))
GOOD_T = np.array([0, 1, 1, 0])


@pytest.mark.parametrize(
    "X, T, message",
    [
        (np.array([[0.0, np.nan, 1.0]] * 4), GOOD_T, "NaN or inf"),
        (np.array([[0.0, np.inf, 1.0]] * 4), GOOD_T, "NaN or inf"),
        (np.zeros((4, 5)), GOOD_T, "has 5 columns but the network has 3 inputs"),
        (np.zeros(3), GOOD_T[:1], "must be 2-D"),
        (np.zeros((0, 3)), GOOD_T[:0], "empty"),
        (np.array([["a", "b", "c"]] * 4), GOOD_T, "real numbers"),
        (np.zeros((4, 3), dtype=complex), GOOD_T, "complex"),
        (GOOD_X, np.array([0, 1, 1]), "X has 4 rows but the targets have 3"),
        (GOOD_X, np.array([0, 1, 2, 0]), "labels must lie in \\[0, 1\\]"),
        (GOOD_X, np.array([0, 1, -1, 0]), "Received: label -1"),
        (GOOD_X, np.array([0, 0.5, 1, 0]), "whole numbers"),
        (GOOD_X, np.array([[1.0, 0.0]] * 3 + [[0.7, 0.7]]), "sum to 1"),
        (GOOD_X, np.zeros((4, 3)), "3 columns but the network has 2 outputs"),
        (GOOD_X, np.array([0, np.nan, 1, 0]), "NaN or inf"),
    ],
)
def test_bad_input_raises_before_any_change(X, T, message):
    net = classifier()
    before = [p.copy() for p in net.parameters()]
    rng_state = net.rng.bit_generator.state
    for call in (net.loss, net.gradients, lambda X, T: net.fit(X, T, epochs=1)):
        with pytest.raises(ValueError, match=message):
            call(X, T)
    for p, q in zip(before, net.parameters()):
        np.testing.assert_array_equal(p, q)
    assert net.rng.bit_generator.state == rng_state


def test_bce_targets_outside_unit_interval():
    net = dp.Network([2, 3], output_activation="sigmoid", loss="binary_cross_entropy")
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        net.fit(np.zeros((2, 2)), np.full((2, 3), 1.5))


def test_one_dimensional_targets_only_for_single_output():
    net = dp.Network([2, 3], loss="mse")
    with pytest.raises(ValueError, match="1-D targets fit only a network with 1 output"):
        net.loss(np.zeros((2, 2)), np.zeros(2))
    single = dp.Network([2, 1], loss="mse", seed=0)
    assert single.loss(np.zeros((2, 2)), np.zeros(2)) == single.loss(
        np.zeros((2, 2)), np.zeros((2, 1))
    )


def test_predict_accepts_lists_and_ints_without_copying_right_dtype():
    net = dp.Network([2, 2, 1], seed=0)
    assert net.predict([[0, 1], [1, 0]]).shape == (2, 1)
    X = np.ones((3, 2))
    X.setflags(write=False)
    assert net.check_inputs(X) is X


def test_the_flat_parameter_vector_round_trips_and_its_gradient_is_the_layers_gradients():
    # The full-batch solver's view: one vector θ = [W_0, b_0, W_1, b_1] (row-major), E(θ) and
    # ∂E/∂θ, the per-layer gradients laid out the same way.
    rng = np.random.default_rng(3)
    net = dp.Network(
        [3, 4, 2], activation="tanh", output_activation="softmax", loss="cross_entropy", seed=1
    )
    X = rng.normal(size=(7, 3))
    T = net.check_targets(rng.integers(0, 2, size=7), 7)
    theta = net.parameter_vector()
    assert theta.shape == (net.n_parameters,)
    assert np.array_equal(theta[:12].reshape(4, 3), net.layers[0].W)
    moved = theta + 0.1
    loss, grad = net.loss_and_gradient(moved, X, T)
    assert np.array_equal(net.parameter_vector(), moved)
    assert loss == net.loss(X, T)
    expected = np.concatenate([g.reshape(-1) for pair in net.gradients(X, T) for g in pair])
    assert np.array_equal(grad, expected)
    # and against central differences of E(θ) itself
    eps = 1e-6
    for k in range(0, net.n_parameters, 5):
        step = np.zeros_like(moved)
        step[k] = eps
        up = net.loss_and_gradient(moved + step, X, T)[0]
        down = net.loss_and_gradient(moved - step, X, T)[0]
        assert abs((up - down) / (2 * eps) - grad[k]) < 1e-7


def test_a_parameter_vector_of_the_wrong_length_is_refused_before_anything_changes():
    net = dp.Network([2, 2, 1], seed=0)
    before = net.parameter_vector()
    with pytest.raises(ValueError, match=r"shape \(9,\)\. Received: shape \(8,\)"):
        net.set_parameter_vector(np.zeros(8))
    assert np.array_equal(net.parameter_vector(), before)


def test_scipy_lbfgs_can_train_through_the_flat_vector():
    from scipy.optimize import minimize

    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    T = np.array([[0], [1], [1], [0]], dtype=float)
    net = dp.Network(
        [2, 4, 1],
        activation="tanh",
        output_activation="sigmoid",
        loss="binary_cross_entropy",
        seed=0,
    )
    result = minimize(
        net.loss_and_gradient, net.parameter_vector(), args=(X, T), jac=True, method="L-BFGS-B"
    )
    net.set_parameter_vector(result.x)
    assert net.loss(X, T) < 1e-3 and net.accuracy(X, T) == 1.0


def test_layer_specs_describe_every_layer_for_an_exporter():
    net = dp.Network(
        [3, 4, 5, 2],
        activation=["leaky_relu", "elu"],
        output_activation="softmax",
        loss="cross_entropy",
        seed=0,
    )
    specs = net.layer_specs()
    assert [(s.n_in, s.n_out, s.activation) for s in specs] == [
        (3, 4, "leaky_relu"),
        (4, 5, "elu"),
        (5, 2, "softmax"),
    ]
    assert specs[0].constants == {"negative_slope": 0.01}
    assert specs[1].constants == {"alpha": 1.0} and specs[2].constants == {}
    assert all(s.W is ly.W and s.b is ly.b for s, ly in zip(specs, net.layers))
    # The constants are the ones h computes with: rebuild leaky_relu and elu from them.
    a = np.linspace(-3, 3, 13)
    slope, alpha = specs[0].constants["negative_slope"], specs[1].constants["alpha"]
    assert np.array_equal(np.where(a > 0, a, slope * a), net.layers[0].activation.forward(a))
    assert np.allclose(
        np.where(a > 0, a, alpha * np.expm1(a)),
        net.layers[1].activation.forward(a),
        rtol=0,
        atol=1e-15,
    )
