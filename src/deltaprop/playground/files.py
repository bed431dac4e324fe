"""A run's files: the model it trains, downloaded as a model file, and one loaded to continue.

Model files are the library's own (:mod:`deltaprop.io.model_file`: safetensors, read by
``dp.load`` and every command), written and read through a temporary folder because the
library's writer is the atomic file writer, not a bytes encoder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from deltaprop.io import model_file
from deltaprop.model import Network
from deltaprop.playground.session import Session
from deltaprop.playground.settings import MAX_HIDDEN_LAYERS, MAX_UNITS


def model_bytes(session: Session) -> bytes:
    """The session's network as a model file, with what later commands need: the task,
    feature and class names, the inputs' scaling, and where the playground was."""
    net, problem = session.net.copy(), session.problem
    net.metadata = dict(session.net.metadata)
    net.metadata.update(
        {
            "task": problem.task,
            "dataset": problem.name,
            "feature_names": problem.feature_names,
            "class_names": problem.class_names,
            "scaler": None if problem.scaler is None else problem.scaler.to_dict(),
            "playground": {"epoch": session.epoch, "settings": session.hash()},
        }
    )
    with tempfile.TemporaryDirectory(prefix="deltaprop-playground-") as folder:
        path = Path(folder) / "model.safetensors"
        model_file.save(net, path)
        return path.read_bytes()


def _check_fits(net: Network, session: Session) -> None:
    problem = session.problem
    if net.n_inputs != problem.n_inputs:
        raise ValueError(
            f"the model takes {net.n_inputs} inputs but {problem.name} has "
            f"{problem.n_inputs}; load data of the same shape first"
        )
    hidden = net.sizes[1:-1]
    if len(hidden) > MAX_HIDDEN_LAYERS or any(n > MAX_UNITS for n in hidden):
        raise ValueError(
            f"the model's hidden layers {hidden} are more than the playground draws "
            f"(at most {MAX_HIDDEN_LAYERS} layers of {MAX_UNITS} units)"
        )
    natural = problem.n_classes or problem.T_train.shape[1]
    if net.n_outputs not in (natural, 1 if problem.n_classes == 2 else natural):
        raise ValueError(
            f"the model has {net.n_outputs} outputs but {problem.name} needs {natural}"
        )


def load_model(session: Session, content: bytes) -> None:
    """Continue the session from a model file: its weights and architecture on the current
    data. ModelFileError for a file that is not a model, ValueError for one that does not fit
    these data; either way the session is unchanged."""
    if session.settings.example:
        raise ValueError("load a model onto a data set, not onto the worked example")
    with tempfile.TemporaryDirectory(prefix="deltaprop-playground-") as folder:
        path = Path(folder) / "model.safetensors"
        path.write_bytes(content)
        net = model_file.load(path, into=Network)
    _check_fits(net, session)
    saved = net.metadata.get("playground")
    epoch = saved.get("epoch", 0) if isinstance(saved, dict) else 0
    session.adopt(net, epoch if isinstance(epoch, int) and epoch >= 0 else 0)
