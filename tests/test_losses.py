"""Losses: their definitions, output deltas, stability at o = 0 and 1, and target checks."""

import numpy as np
import pytest

from deltaprop.core.activations import get_activation, sigmoid, softmax
from deltaprop.core.losses import get_loss, prepare_targets

SIGMOID = get_activation("sigmoid")
SOFTMAX = get_activation("softmax")


def test_mse_is_half_the_summed_squares_averaged_over_examples():
    o = np.array([[0.2, 0.7], [0.5, 0.5]])
    t = np.array([[0.0, 1.0], [1.0, 0.0]])
    # ½(0.04 + 0.09) = 0.065 and ½(0.25 + 0.25) = 0.25; mean 0.1575
    assert get_loss("mse").value(o, t) == pytest.approx(0.1575, rel=1e-15)
    # PyTorch's MSELoss averages over outputs too: ours = MSELoss · n_outputs / 2.
    assert get_loss("mse").value(o, t) == pytest.approx(np.mean((o - t) ** 2) * 2 / 2)


def test_mse_output_delta_with_sigmoid_is_the_seeds_formula():
    o, t = np.array([[0.75136507, 0.77292847]]), np.array([[0.01, 0.99]])
    delta = get_loss("mse").output_delta(o, t, SIGMOID)
    np.testing.assert_allclose(delta, o * (1 - o) * (t - o), rtol=1e-15)


def test_cross_entropy_from_logits_is_exact_where_probabilities_round_to_zero():
    a = np.array([[0.0, 1000.0]])
    t = np.array([[1.0, 0.0]])
    o = softmax(a)
    assert o[0, 0] == 0.0
    assert get_loss("cross_entropy").value(o, t, a) == pytest.approx(1000.0, rel=1e-15)
    # Without the logits the same probabilities give the honest answer: infinity.
    assert get_loss("cross_entropy").value(o, t) == np.inf


def test_binary_cross_entropy_at_saturated_outputs():
    bce = get_loss("binary_cross_entropy")
    a = np.array([[-1000.0, 1000.0, -1000.0]])
    t = np.array([[0.0, 1.0, 1.0]])
    o = sigmoid(a)
    # The first two are right and certain (loss 0); the third is wrong by a logit of 1000.
    assert bce.value(o, t, a) == pytest.approx(1000.0, rel=1e-15)
    assert bce.value(o[:, :2], t[:, :2]) == 0.0  # 0 log 0 = 0 from probabilities too
    np.testing.assert_array_equal(bce.output_delta(o, t, SIGMOID), t - o)


def test_cross_entropy_value_matches_its_definition():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 3))
    t = np.eye(3)[[0, 2, 1, 1]]
    o = softmax(a)
    expected = np.mean(-np.sum(t * np.log(o), axis=1))
    assert get_loss("cross_entropy").value(o, t, a) == pytest.approx(expected, rel=1e-14)
    assert get_loss("cross_entropy").value(o, t) == pytest.approx(expected, rel=1e-14)


def test_losses_stay_finite_under_raise_for_extreme_logits():
    a = np.array([[-1e4, 0.0, 1e4], [1e4, 1e4, -1e4]])
    for name, act, t in [
        ("cross_entropy", SOFTMAX, np.eye(3)[[0, 2]]),
        ("binary_cross_entropy", SIGMOID, np.array([[0, 1, 1], [1, 0, 0.5]])),
        ("mse", SIGMOID, np.array([[0, 1, 1], [1, 0, 0.5]])),
    ]:
        with np.errstate(all="raise", under="ignore"):
            o = act.forward(a)
            assert np.isfinite(get_loss(name).value(o, t, a))
            assert np.isfinite(get_loss(name).output_delta(o, t, act)).all()


def test_aliases_and_unknown_loss():
    assert get_loss("BCE").name == "binary_cross_entropy"
    assert get_loss("squared_error").name == "mse"
    with pytest.raises(ValueError, match=r"expected one of \['binary_cross_entropy'"):
        get_loss("hinge")


def test_prepare_targets_turns_labels_into_one_hot_rows():
    loss = get_loss("cross_entropy")
    T = prepare_targets(loss, np.array([2, 0, 1]), 3, 3, np.float32)
    assert T.dtype == np.float32
    np.testing.assert_array_equal(T, np.eye(3)[[2, 0, 1]])
    # Whole-number floats are labels too.
    np.testing.assert_array_equal(prepare_targets(loss, [2.0, 0.0, 1.0], 3, 3, np.float64), T)


def test_prepare_targets_rejects_strings():
    with pytest.raises(ValueError, match="numeric"):
        prepare_targets(get_loss("mse"), np.array(["a", "b"]), 2, 1, np.float64)
