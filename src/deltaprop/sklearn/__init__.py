"""scikit-learn estimators backed by deltaprop networks.

``MLPClassifier`` and ``MLPRegressor`` take scikit-learn's parameters, expose its fitted
attributes and follow its training rules; they pass scikit-learn's estimator checks and work
in Pipeline, GridSearchCV and cross_val_score. Differences from scikit-learn are listed in the
classes' docstrings and in the README section "scikit-learn estimators".

Modules: ``_base`` (parameters, the training call, weights in scikit-learn's layout),
``_classifier`` and ``_regressor`` (targets, outputs, predictions), ``_engine`` (the solvers'
optimizers and scikit-learn's L2 penalty as the network's), ``_monitor`` (the end-of-epoch
rules: loss curve, tol, learning-rate schedules, early stopping), ``_weighted``
(scikit-learn's objective with sample weights, for L-BFGS), ``_lbfgs`` (solver="lbfgs"),
``_file`` and ``_load`` (the estimator file: ``est.save``, :func:`load`).
"""

from deltaprop.optim.sklearn_adam import SklearnAdam
from deltaprop.sklearn._classifier import MLPClassifier
from deltaprop.sklearn._load import load
from deltaprop.sklearn._regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "SklearnAdam", "load"]
