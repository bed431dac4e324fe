"""Initialisers: ranges, spreads, biases and validation."""

import math

import numpy as np
import pytest

from deltaprop.core.init import INITIALIZERS, get_initializer


def draw(name, fan_in=400, fan_out=300, seed=0):
    return get_initializer(name)(fan_in, fan_out, np.random.default_rng(seed), np.float64)


def test_uniform_is_the_textbooks_small_random_numbers_for_weights_and_biases():
    W, b = draw("uniform")
    assert W.shape == (300, 400) and b.shape == (300,)
    assert np.abs(W).max() <= 0.05 and np.abs(b).max() <= 0.05
    assert np.abs(W).max() > 0.049 and np.any(b != 0)


def test_uniform_scale_is_adjustable():
    W, _ = get_initializer({"name": "uniform", "scale": 0.5})(
        10, 10, np.random.default_rng(0), np.float64
    )
    assert 0.4 < np.abs(W).max() <= 0.5


@pytest.mark.parametrize(
    "name, std",
    [
        ("xavier", math.sqrt(2 / 700)),
        ("glorot_normal", math.sqrt(2 / 700)),
        ("he", math.sqrt(2 / 400)),
        ("he_uniform", math.sqrt(2 / 400)),
        ("lecun", math.sqrt(1 / 400)),
        ("lecun_uniform", math.sqrt(1 / 400)),
        ("normal", 0.05),
    ],
)
def test_spread_follows_the_fan(name, std):
    W, b = draw(name)
    assert W.std() == pytest.approx(std, rel=0.02)
    assert abs(W.mean()) < 0.05 * std
    if name != "normal":
        assert not b.any()


def test_xavier_uniform_bound():
    W, _ = draw("glorot")
    assert np.abs(W).max() <= math.sqrt(6 / 700)


def test_dtype_and_reproducibility():
    init = get_initializer("he")
    a = init(5, 4, np.random.default_rng(1), np.float32)
    b = init(5, 4, np.random.default_rng(1), np.float32)
    assert a[0].dtype == np.float32
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize(
    "spec, message",
    [
        ("zeros", "Unknown init 'zeros'"),
        ({"scale": 1.0}, "needs a 'name'"),
        ({"name": "uniform", "scale": -1}, "Received: scale=-1"),
        ({"name": "uniform", "low": 0}, "needs a 'name'"),
        (3, "Received: init=3"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        get_initializer(spec)


def test_every_name_draws():
    for name in INITIALIZERS:
        W, b = draw(name, 3, 2)
        assert W.shape == (2, 3) and np.isfinite(W).all()
