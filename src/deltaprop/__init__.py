"""deltaprop: neural networks trained by backpropagation, exactly as the textbook writes it.

The package is layered (see docs/architecture.md): errors → core → optim → data, io → train →
explain → plot → model → sklearn → cli. This module gathers the public names.
"""

# _interrupt first, before NumPy loads: Ctrl-C while the command line loads says "interrupted".
from deltaprop import _interrupt, _moved  # noqa: F401
from deltaprop._version import __version__
from deltaprop.core.activations import ACTIVATIONS, Activation, get_activation
from deltaprop.core.gradcheck import gradcheck, numerical_gradients
from deltaprop.core.init import INITIALIZERS, get_initializer
from deltaprop.core.losses import LOSSES, Loss, get_loss
from deltaprop.core.network import ForwardPass, Layer
from deltaprop.errors import (
    CheckpointError,
    DataError,
    ModelFileError,
    TrainingDivergedError,
)
from deltaprop.explain import Trace, explain
from deltaprop.model import Network, load, save
from deltaprop.optim.optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, get_optimizer
from deltaprop.optim.schedules import CosineAnnealingLR, ExponentialLR, ReduceLROnPlateau, StepLR
from deltaprop.train.callbacks import Callback, CSVLogger, EarlyStopping, History, ModelCheckpoint
from deltaprop.train.loop import fit

_moved.install()

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LOSSES",
    "Activation",
    "Adagrad",
    "Adam",
    "AdamW",
    "Callback",
    "CSVLogger",
    "CheckpointError",
    "CosineAnnealingLR",
    "DataError",
    "EarlyStopping",
    "ExponentialLR",
    "ForwardPass",
    "History",
    "Layer",
    "Loss",
    "ModelCheckpoint",
    "ModelFileError",
    "Network",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "SGD",
    "StepLR",
    "Trace",
    "TrainingDivergedError",
    "__version__",
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


def __getattr__(name: str) -> object:
    from importlib import import_module

    if name == "load_dataset":  # scikit-learn's data sets behind it load on first use
        return import_module("deltaprop.data.datasets").load_dataset
    if name in _moved.MOVED:  # dp.datasets and the like, from before the layered package
        return import_module(f"deltaprop.{name}")
    try:  # a submodule not imported yet: dp.plot, dp.sklearn, ...
        return import_module(f"deltaprop.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"deltaprop.{name}":
            raise
    raise AttributeError(f"module 'deltaprop' has no attribute {name!r}")
