"""deltaprop: neural networks trained by backpropagation, exactly as the textbook writes it."""

from .activations import ACTIVATIONS, Activation, get_activation
from .explain import Trace, explain
from .gradcheck import gradcheck, numerical_gradients
from .init import INITIALIZERS, get_initializer
from .losses import LOSSES, Loss, get_loss
from .network import ForwardPass, Layer, Network
from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, get_optimizer
from .schedules import CosineAnnealingLR, ExponentialLR, ReduceLROnPlateau, StepLR
from .training import Callback, EarlyStopping, History, TrainingDivergedError, fit

# The one place the version is written; pyproject.toml reads it from here. A literal rather
# than importlib.metadata, which alone costs a third of `import numpy`.
__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LOSSES",
    "Activation",
    "Adagrad",
    "Adam",
    "AdamW",
    "Callback",
    "CosineAnnealingLR",
    "DataError",
    "EarlyStopping",
    "ExponentialLR",
    "ForwardPass",
    "History",
    "Layer",
    "Loss",
    "ModelFileError",
    "Network",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "SGD",
    "StepLR",
    "Trace",
    "TrainingDivergedError",
    "explain",
    "fit",
    "get_activation",
    "get_initializer",
    "get_loss",
    "get_optimizer",
    "gradcheck",
    "load",
    "load_dataset",
    "numerical_gradients",
    "save",
]

# Data sets (scikit-learn) and model files (safetensors) load on first use, so that
# `import deltaprop` costs little more than NumPy.
_LAZY = {
    "DataError": "datasets",
    "load_dataset": "datasets",
    "ModelFileError": "persistence",
    "load": "persistence",
    "save": "persistence",
}


def __getattr__(name: str) -> object:
    from importlib import import_module

    if name in _LAZY:
        return getattr(import_module(f"deltaprop.{_LAZY[name]}"), name)
    try:  # a submodule not imported yet: dp.datasets, dp.plot, dp.sklearn, ...
        return import_module(f"deltaprop.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"deltaprop.{name}":
            raise
    raise AttributeError(f"module 'deltaprop' has no attribute {name!r}")
