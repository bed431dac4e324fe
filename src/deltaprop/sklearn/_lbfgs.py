"""``solver="lbfgs"``: scikit-learn's full-batch recipe for small data.

As scikit-learn's ``_fit_lbfgs``: SciPy's L-BFGS-B (``scipy.optimize.minimize``) moves the flat
vector of every weight and bias (``Network.parameter_vector``) to minimise the estimator's loss
over the whole training set, :func:`~._weighted.objective` (sample weights and the L2 term
included), with ``maxiter=max_iter``, ``maxfun=max_fun`` and ``gtol=tol``. The order of the
coordinates (deltaprop's W (n_out, n_in) before each bias; scikit-learn packs every coefs_
first) does not change L-BFGS's steps, which use only dot products.

scikit-learn's function value divides the squared error by n_outputs while its gradient does
not (the gradient is that of the undivided loss); both are reproduced, so that from the same
starting weights the solver takes scikit-learn's steps to rounding.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
from sklearn.utils.optimize import _check_optimize_result

from deltaprop.core.network import FeedForward
from deltaprop.sklearn._weighted import objective

Array = np.ndarray


def fit_lbfgs(
    net: FeedForward,
    X: object,
    T: Array,
    weights: Array | None,
    *,
    loss_divisor: int,
    max_iter: int,
    max_fun: int,
    tol: float,
    verbose: bool | int,
) -> tuple[int, float]:
    """Minimise scikit-learn's loss from the network's parameters, leaving the minimiser in
    the network; returns (iterations, final loss) and warns with ConvergenceWarning, as
    scikit-learn, when L-BFGS-B stopped before converging."""

    def loss_and_gradient(vector: Array) -> tuple[float, Array]:
        net.set_parameter_vector(vector)
        step = objective(net, X, T, weights)
        flat = np.concatenate([g.reshape(-1) for g in step.gradients]).astype(np.float64)
        return step.data / loss_divisor + step.penalty, flat

    result = scipy.optimize.minimize(
        loss_and_gradient,
        net.parameter_vector().astype(np.float64),
        method="L-BFGS-B",
        jac=True,
        options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol},
    )
    n_iter = _check_optimize_result("lbfgs", result, max_iter)
    net.set_parameter_vector(result.x)
    if verbose:
        print(f"L-BFGS-B: {n_iter} iterations, loss = {result.fun:.8f} ({result.message})")
    return n_iter, float(result.fun)
