"""Activations: values, derivatives through the output, and overflow safety."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.core.activations import ACTIVATIONS, get_activation, softmax, softmax_backward

ELEMENTWISE = [name for name, act in ACTIVATIONS.items() if act.elementwise]

# Reference formulas written directly from the definitions, in terms of a.
REFERENCE = {
    "sigmoid": (lambda a: 1 / (1 + np.exp(-a)), lambda a: np.exp(-a) / (1 + np.exp(-a)) ** 2),
    "tanh": (np.tanh, lambda a: 1 / np.cosh(a) ** 2),
    "relu": (lambda a: np.where(a > 0, a, 0.0), lambda a: np.where(a > 0, 1.0, 0.0)),
    "leaky_relu": (lambda a: np.where(a > 0, a, 0.01 * a), lambda a: np.where(a > 0, 1.0, 0.01)),
    "elu": (lambda a: np.where(a > 0, a, np.exp(a) - 1), lambda a: np.where(a > 0, 1.0, np.exp(a))),
    "softplus": (lambda a: np.log(1 + np.exp(a)), lambda a: 1 / (1 + np.exp(-a))),
    "identity": (lambda a: a, lambda a: np.ones_like(a)),
    "exp": (np.exp, np.exp),
}


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_value_and_derivative_from_output_match_definitions(name):
    a = np.linspace(-6, 6, 121) + 0.013  # avoid the exact kink at 0
    f, df = REFERENCE[name]
    act = get_activation(name)
    z = act.forward(a)
    np.testing.assert_allclose(z, f(a), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(act.derivative(z), df(a), rtol=1e-9, atol=1e-15)


# exp (Poisson regression's output) is e^a itself: inf beyond a ≈ 709, as it should be.
@pytest.mark.parametrize("name", [name for name in ELEMENTWISE if name != "exp"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_stay_finite_without_warnings(name, dtype):
    a = np.array([-1e4, -1000.0, -50.0, 0.0, 50.0, 1000.0, 1e4], dtype=dtype)
    act = get_activation(name)
    with np.errstate(all="raise", under="ignore"):
        z = act.forward(a)
        d = act.derivative(z)
    assert z.dtype == dtype and d.dtype == dtype
    assert np.isfinite(z).all() and np.isfinite(d).all()


def test_sigmoid_saturates_exactly():
    z = get_activation("sigmoid").forward(np.array([-1000.0, 1000.0]))
    assert z[0] == 0.0 and z[1] == 1.0
    # Far tails keep their relative precision (no 1 - tiny cancellation).
    assert get_activation("sigmoid").forward(np.array([-30.0]))[0] == pytest.approx(
        np.exp(-30.0) / (1 + np.exp(-30.0)), rel=1e-14
    )


def test_softplus_is_exact_for_large_inputs():
    z = get_activation("softplus").forward(np.array([1000.0, -1000.0, 40.0]))
    assert z[0] == 1000.0 and z[1] == 0.0 and z[2] == 40.0


def test_softmax_rows_sum_to_one_and_ignore_offsets():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 4))
    z = softmax(a)
    np.testing.assert_allclose(z.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(softmax(a + 1e4), z, rtol=1e-10)
    np.testing.assert_allclose(softmax(a - 1e4), z, rtol=1e-10)
    assert np.array_equal(softmax(np.array([[0.0, 1e4]])), [[0.0, 1.0]])


def test_softmax_backward_is_the_jacobian_product():
    rng = np.random.default_rng(1)
    a, g = rng.normal(size=(1, 4)), rng.normal(size=(1, 4))
    z = softmax(a)[0]
    jacobian = np.diag(z) - np.outer(z, z)
    np.testing.assert_allclose(softmax_backward(z[None], g), g @ jacobian, rtol=1e-13)


def test_softmax_has_no_elementwise_derivative():
    with pytest.raises(TypeError, match="Jacobian"):
        get_activation("softmax").derivative(np.zeros((1, 2)))


def test_names_are_case_insensitive_with_aliases_and_unknown_names_are_listed():
    assert get_activation("Logistic").name == "sigmoid"
    assert get_activation("linear").name == "identity"
    with pytest.raises(ValueError, match=r"Unknown activation 'gelu'.*Received: activation='gelu'"):
        get_activation("gelu")
    with pytest.raises(ValueError, match="Received: activation=3"):
        get_activation(3)
    assert dp.ACTIVATIONS["tanh"].derivative_formula == "1-z^2"


def test_exp_is_the_correctly_rounded_exponential_and_overflows_to_inf():
    act = get_activation("exp")
    a = np.array([-1000.0, 0.0, 1.5, 709.0, 710.0])
    with np.errstate(over="ignore"):
        z = act.forward(a)
    np.testing.assert_array_equal(z[:4], np.exp(a[:4]))
    assert z[4] == np.inf
    np.testing.assert_array_equal(act.derivative(z), z)
