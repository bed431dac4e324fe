"""What the export tests share: every hidden activation, every output activation with each
loss it may be trained with, inputs that reach every activation's kink and tails, and the
tolerances the issue sets (float32 1e-5, float64 1e-10)."""

from __future__ import annotations

import numpy as np
import pytest

import deltaprop as dp

HIDDEN = [name for name, act in dp.ACTIVATIONS.items() if act.elementwise]


def _trainable(activation: str, loss: str) -> bool:
    try:
        dp.get_loss(loss).check_activation(dp.get_activation(activation))
    except ValueError:
        return False
    return True


# Every output activation with every loss it may be trained with.
OUTPUTS = [(act, loss) for act in dp.ACTIVATIONS for loss in dp.LOSSES if _trainable(act, loss)]
TOLERANCE = {"float32": 1e-5, "float64": 1e-10}


def inputs(n_in: int, dtype: str, seed: int = 7, scale: float = 3.0) -> np.ndarray:
    """Rows that reach both sides of every activation's kink, and its far tails (±40) unless
    ``scale`` is smaller than the default."""
    X = np.random.default_rng(seed).normal(scale=scale, size=(40, n_in))
    if scale >= 3.0:
        X[:3] = [[0.0] * n_in, [40.0] * n_in, [-40.0] * n_in]
    return X.astype(dtype)


def case_inputs(hidden: str, n_in: int, dtype: str) -> np.ndarray:
    """:func:`inputs` for a case; small ones behind hidden exp layers. exp's relative error is
    |a| times its argument's absolute error, so two exp layers fed inputs of scale 3 reach
    e^45, where float32 rounding alone passes 1e-5 (NumPy's and ONNX Runtime's sums differ in
    order): ill-conditioned, not an export error."""
    return inputs(n_in, dtype, scale=0.5 if hidden == "exp" else 3.0)


def close(actual: np.ndarray, expected: np.ndarray, dtype: str) -> None:
    """Equal to the issue's tolerance for ``dtype``, and of the same dtype."""
    assert actual.dtype == expected.dtype
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)


# Every hidden activation x every output/loss pair x both dtypes, as one parametrization.
every_case = pytest.mark.parametrize(
    "hidden,output,loss,dtype",
    [(h, o, loss, d) for h in HIDDEN for o, loss in OUTPUTS for d in ("float32", "float64")],
)


def case_network(hidden: str, output: str, loss: str, dtype: str, sizes=(3, 6, 5, 4)):
    """Two hidden layers of ``hidden``, then ``output`` trained with ``loss``."""
    return dp.Network(
        list(sizes), activation=hidden, output_activation=output, loss=loss, seed=3, dtype=dtype
    )
