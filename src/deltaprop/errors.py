"""Every exception class deltaprop raises besides the built-in ones, in one place.

They sit below every other module so that any layer can raise them and any caller (the CLI,
a notebook) can catch them without importing the machinery that raises them.
"""

from __future__ import annotations


class DataError(ValueError):
    """A data file is not valid; the message names the file, and the line and column where they
    apply, e.g. ``data.csv, line 7, column 'petal_width': 'abc' is not a number``."""


class ModelFileError(Exception):
    """A file is not a valid deltaprop model; the message names the file and what is wrong.

    Raised for every problem with a file's content: not safetensors (a pickle, a zip, random
    bytes), truncated, a header larger than the file, shapes that do not chain, a dtype other
    than float32/float64, an unknown activation or loss name, non-finite weights, or a format
    version newer than this library reads.
    """


class CheckpointError(ModelFileError):
    """A checkpoint file is invalid (corrupt, truncated, not a checkpoint, inconsistent), or
    does not fit the fit it is asked to resume; the message names the file and the problem."""


class TrainingDivergedError(FloatingPointError):
    """A training step made the loss or a weight NaN or infinite.

    The network keeps the weights it had before that step.
    """
