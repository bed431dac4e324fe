"""Figures with matplotlib (Agg backend, so they render without a screen).

- :mod:`deltaprop.plot.figures`: training curves, confusion matrix, decision boundary,
  misclassified images.
- :mod:`deltaprop.plot.diagram`: the network drawn with its weights, values and deltas.
- :mod:`deltaprop.plot.animation`: the decision boundary and loss evolving over training.

Each function returns the matplotlib Figure and, given ``path``, saves it (PNG or SVG by the
file's extension).
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "training_curves": "figures",
    "confusion_matrix": "figures",
    "decision_boundary": "figures",
    "misclassified": "figures",
    "network": "diagram",
    "TrainingAnimation": "animation",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    # matplotlib is imported only when a figure is asked for, keeping `import deltaprop` cheap.
    if name not in _WHERE:
        raise AttributeError(f"module 'deltaprop.plot' has no attribute {name!r}")
    return getattr(importlib.import_module(f"deltaprop.plot.{_WHERE[name]}"), name)
