"""deltaprop: neural networks trained by backpropagation, exactly as the textbook writes it."""

from importlib.metadata import PackageNotFoundError, version

from .activations import ACTIVATIONS, Activation, get_activation
from .datasets import DataError, load_dataset
from .explain import Trace, explain
from .gradcheck import gradcheck, numerical_gradients
from .init import INITIALIZERS, get_initializer
from .losses import LOSSES, Loss, get_loss
from .network import ForwardPass, Layer, Network
from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, get_optimizer
from .persistence import ModelFileError, load, save
from .schedules import CosineAnnealingLR, ExponentialLR, ReduceLROnPlateau, StepLR
from .training import Callback, EarlyStopping, History, TrainingDivergedError, fit

try:
    __version__ = version("deltaprop")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

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
