"""Data: the bundled and file data sets, the file readers, and preprocessing.

Imports :mod:`deltaprop.core` at most (scikit-learn only when a bundled set is loaded).
"""

from deltaprop.data.datasets import BUILTINS, Dataset, load_dataset, load_features
from deltaprop.data.preprocessing import Scaler, one_hot, train_test_split
from deltaprop.errors import DataError

__all__ = [
    "BUILTINS",
    "DataError",
    "Dataset",
    "Scaler",
    "load_dataset",
    "load_features",
    "one_hot",
    "train_test_split",
]
