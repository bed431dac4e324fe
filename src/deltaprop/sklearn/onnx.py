"""ONNX conversion of deltaprop's estimators by skl2onnx: importing this module registers
:class:`~deltaprop.sklearn.MLPClassifier` and :class:`~deltaprop.sklearn.MLPRegressor` with
skl2onnx, the one line a user adds::

    import deltaprop.sklearn.onnx  # registers deltaprop's estimators with skl2onnx

after which ``skl2onnx.convert_sklearn`` / ``skl2onnx.to_onnx`` convert them, alone or inside a
Pipeline. ``est.to_onnx()`` needs no such line. The converters are in :mod:`._onnx`. Needs
``pip install 'deltaprop[onnx]'``.
"""

from __future__ import annotations

from deltaprop.sklearn._classifier import MLPClassifier
from deltaprop.sklearn._onnx import estimator_to_onnx, register
from deltaprop.sklearn._regressor import MLPRegressor

for _estimator_class in (MLPClassifier, MLPRegressor):
    register(_estimator_class)

__all__ = ["estimator_to_onnx", "register"]
