"""Checkpoints: everything a ``fit`` needs to continue exactly where it stopped.

A checkpoint is a safetensors file like a model file (see :mod:`deltaprop.io.model_file`), with
more tensors and a larger JSON document:

    layers.{l}.weight, layers.{l}.bias     the network, as in a model file
    optimizer.{buffer}.{i}                 the optimizer's buffers (momentum, moments, ...),
                                           i over [W_0, b_0, W_1, b_1, ...]
    early_stopping.{i}                     the best weights so far, when restoring them
    order                                  the unfinished epoch's shuffle order (int64)
    split                                  the validation_split permutation (int64)

    {"format": "deltaprop.checkpoint", "format_version": 1, "library_version": ...,
     "network": Network.config(), "rng_state": {...}, "metadata": net.metadata,
     "optimizer": {config, "step"}, "scheduler": state_dict or null,
     "early_stopping": {"best", "best_epoch", "wait"} or null,
     "position": {"epoch": epochs completed, "batch": batches of the next one completed,
                  "loss_sum": ..., "correct": ...},
     "history": History.as_dict(), "settings": the fit arguments a resume must repeat}

Writing is atomic (the previous complete checkpoint stays until the new one is whole), and
uses an unnamed temporary file where the system has them (Linux ``O_TMPFILE``), so a process
killed while writing leaves nothing behind (:func:`deltaprop.io.atomic.write_atomically`).
Every invalid checkpoint raises :class:`CheckpointError` naming the file and the problem;
there is no fallback to an older file, because only one is kept.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from deltaprop._version import __version__
from deltaprop.core.network import FeedForward
from deltaprop.errors import CheckpointError
from deltaprop.io import model_file
from deltaprop.io.atomic import sweep_leftovers, write_atomically
from deltaprop.io.digest import DIGEST_KEY, with_digest_entry
from deltaprop.io.tensorfile import (
    METADATA_KEY,
    TensorSpecs,
    check_network,
    header_document,
    is_int,
    network_config,
    network_from_tensors,
    network_shapes,
    network_tensors,
    read_safetensors,
    restore_rng,
    to_safetensors,
)
from deltaprop.optim.optimizers import Optimizer, get_optimizer

FORMAT_NAME = "deltaprop.checkpoint"
FORMAT_VERSION = 1
# Every entry a checkpoint document may hold; any other makes the file invalid (see
# model_file.DOCUMENT_KEYS).
DOCUMENT_KEYS = frozenset(
    {
        "format",
        "format_version",
        "library_version",
        "network",
        "rng_state",
        "metadata",
        "optimizer",
        "scheduler",
        "early_stopping",
        "position",
        "history",
        "settings",
        DIGEST_KEY,
    }
)
_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8")}


@dataclass
class TrainingState:
    """Where a fit stands, besides the network itself."""

    optimizer: Optimizer
    scheduler_state: dict | None = None
    epoch: int = 0  # epochs completed
    batch: int = 0  # batches of epoch + 1 completed
    loss_sum: float = 0.0  # the unfinished epoch's accumulators
    correct: float = 0.0
    penalty_sum: float = 0.0  # (and those of the training controls, written when not 0)
    clipped: int = 0
    order: np.ndarray | None = None  # the unfinished epoch's order, when shuffled
    split: np.ndarray | None = None  # the validation_split permutation
    history: dict = field(default_factory=dict)
    early_stopping: dict | None = None  # {"best", "best_epoch", "wait"}
    best_weights: list[np.ndarray] | None = None
    settings: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------ save
def save_checkpoint(path: str | os.PathLike, net: FeedForward, state: TrainingState) -> None:
    """Write a checkpoint of ``net`` and ``state`` to exactly ``path``, atomically."""
    tensors = network_tensors(net)
    optimizer_doc = _split_optimizer_state(state.optimizer, tensors)
    if state.best_weights is not None:
        for i, array in enumerate(state.best_weights):
            tensors[f"early_stopping.{i}"] = np.ascontiguousarray(array)
    if state.order is not None:
        tensors["order"] = np.ascontiguousarray(state.order, dtype=np.int64)
    if state.split is not None:
        tensors["split"] = np.ascontiguousarray(state.split, dtype=np.int64)
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "network": network_config(net),
        "rng_state": net.rng.bit_generator.state,
        "metadata": net.metadata,
        "optimizer": optimizer_doc,
        "scheduler": state.scheduler_state,
        "early_stopping": state.early_stopping,
        "position": {
            "epoch": state.epoch,
            "batch": state.batch,
            "loss_sum": state.loss_sum,
            "correct": state.correct,
            **({"penalty_sum": state.penalty_sum} if state.penalty_sum else {}),
            **({"clipped": state.clipped} if state.clipped else {}),
        },
        "history": state.history,
        "settings": state.settings,
    }
    text = json.dumps(with_digest_entry(_encode(document)), allow_nan=False, separators=(",", ":"))
    write_atomically(path, to_safetensors(tensors, text))


def _split_optimizer_state(optimizer: Optimizer, tensors: dict[str, np.ndarray]) -> dict:
    """The optimizer's state for the document; its buffers go into ``tensors`` instead, as
    ``optimizer.{buffer}.{i}``."""
    document: dict = {}
    for key, value in optimizer.state_dict().items():
        if isinstance(value, list) and all(isinstance(a, np.ndarray) for a in value) and value:
            for i, array in enumerate(value):
                tensors[f"optimizer.{key}.{i}"] = np.ascontiguousarray(array)
        elif isinstance(value, list) and not value and key not in optimizer.config():
            continue  # a buffer not created yet (no step taken)
        else:
            document[key] = value
    return document


def _encode(value: object) -> object:
    """JSON has no infinity (an early-stopping 'best' before any epoch): tag non-finite floats."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, np.generic):
        return _encode(value.item())
    return value


def _decode(value: object) -> object:
    if isinstance(value, dict):
        if value.keys() == {"__float__"} and value["__float__"] in ("inf", "-inf", "nan"):
            return float(value["__float__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


# ------------------------------------------------------------------------------------ load
def load_checkpoint(path: str | os.PathLike) -> tuple[FeedForward, TrainingState, dict]:
    """The network, the training state and the raw document of the checkpoint at ``path``.

    Raises CheckpointError for anything wrong with the content, OSError when the file cannot
    be read at all.
    """
    sweep_leftovers(path)  # a killed writer's temporary file goes with the next read too
    try:
        return _load_checked(path)
    except (CheckpointError, OSError, MemoryError):
        raise
    except Exception as exc:  # a corrupt file must never surface as a stray KeyError
        raise CheckpointError(
            f"{path}: not a valid deltaprop checkpoint ({type(exc).__name__}: {exc})"
        ) from exc


def _fail(path: object, message: str) -> CheckpointError:
    return CheckpointError(f"{path}: {message}")


def _load_checked(path: str | os.PathLike) -> tuple[FeedForward, TrainingState, dict]:
    document, arrays, _ = read_safetensors(
        path, _check_header, "a deltaprop checkpoint", CheckpointError
    )
    net, params = _network(path, document, arrays)
    optimizer = _optimizer(path, document.get("optimizer"), arrays, params, net.dtype)
    position = document.get("position")
    if not (
        isinstance(position, dict)
        and all(is_int(position.get(k)) for k in ("epoch", "batch"))
        and all(isinstance(position.get(k), (int, float)) for k in ("loss_sum", "correct"))
        and isinstance(position.get("penalty_sum", 0.0), (int, float))
        and is_int(position.get("clipped", 0))
    ):
        raise _fail(path, f"the 'position' entry is not valid. Received: {str(position)[:200]}")
    best_weights = None
    if any(name.startswith("early_stopping.") for name in arrays):
        best_weights = [
            _take(path, arrays, f"early_stopping.{i}", p.shape, net.dtype)
            for i, p in enumerate(params)
        ]
    state = TrainingState(
        optimizer=optimizer,
        scheduler_state=document.get("scheduler"),
        epoch=position["epoch"],
        batch=position["batch"],
        loss_sum=float(position["loss_sum"]),
        correct=float(position["correct"]),
        penalty_sum=float(position.get("penalty_sum", 0.0)),
        clipped=int(position.get("clipped", 0)),
        order=_permutation(path, arrays.pop("order", None), "order"),
        split=_permutation(path, arrays.pop("split", None), "split"),
        history=document.get("history") or {},
        early_stopping=document.get("early_stopping"),
        best_weights=best_weights,
        settings=document.get("settings") or {},
    )
    if arrays:
        raise _fail(path, f"unexpected tensors {sorted(arrays)[:5]}")
    return net, state, document


def _network(
    path: object, document: dict, arrays: dict[str, np.ndarray]
) -> tuple[FeedForward, list[np.ndarray]]:
    """The stored network (its tensors taken out of ``arrays``) and its parameters in order."""
    config = document["network"]
    dtype = np.dtype(config["dtype"])
    taken = {
        name: _take(path, arrays, name, shape, dtype)
        for name, shape in network_shapes(config["sizes"]).items()
    }
    net = network_from_tensors(FeedForward, config, taken)
    params = [p for layer in net.layers for p in (layer.W, layer.b)]
    restore_rng(net, document["rng_state"], path, CheckpointError)
    if not isinstance(document.get("metadata"), dict):
        raise _fail(path, "the 'metadata' entry is missing or not a JSON object")
    net.metadata = document["metadata"]
    return net, params


def _optimizer(
    path: object,
    opt_doc: object,
    arrays: dict[str, np.ndarray],
    params: list[np.ndarray],
    dtype: np.dtype,
) -> Optimizer:
    """The stored optimizer with its state, its buffers taken out of ``arrays``."""
    if not isinstance(opt_doc, dict) or "step" not in opt_doc:
        raise _fail(path, "the 'optimizer' entry is missing or has no step count")
    config = {k: v for k, v in opt_doc.items() if k != "step"}
    try:
        optimizer = get_optimizer(config)
    except (ValueError, TypeError) as exc:
        raise _fail(path, f"the stored optimizer is not valid: {exc}") from None
    opt_state = dict(opt_doc)
    stepped = opt_doc["step"] != 0
    for key in optimizer.state_dict():
        if key in opt_doc or key == "step":
            continue
        names = [f"optimizer.{key}.{i}" for i in range(len(params))]
        opt_state[key] = (
            [_take(path, arrays, name, p.shape, dtype) for name, p in zip(names, params)]
            if stepped
            else []
        )
    try:
        optimizer.load_state_dict(opt_state)
    except (ValueError, TypeError) as exc:
        raise _fail(path, f"the optimizer state is not valid: {exc}") from None
    return optimizer


def _take(path: object, arrays: dict, name: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    array = arrays.pop(name, None)
    if array is None:
        raise _fail(path, f"tensor {name} is missing")
    if array.shape != tuple(shape) or array.dtype != dtype:
        raise _fail(
            path,
            f"tensor {name} has shape {array.shape} and dtype {array.dtype}; "
            f"the network needs {tuple(shape)} and {dtype}",
        )
    return array  # finite: read_safetensors checked every float tensor


def _permutation(path: object, array: np.ndarray | None, name: str) -> np.ndarray | None:
    if array is None:
        return None
    if (
        array.dtype != np.int64
        or array.ndim != 1
        or not np.array_equal(np.sort(array), np.arange(array.size))
    ):
        raise _fail(path, f"tensor {name} is not a permutation of example indices")
    return array


def _check_header(path: object, header: object) -> tuple[dict, TensorSpecs]:
    """The checkpoint document and the tensors to read; which tensors must be there, and their
    shapes, is checked against the architecture when they are taken."""
    document = _decode(
        header_document(
            path,
            header,
            f"not a deltaprop checkpoint: no {METADATA_KEY!r} metadata",
            CheckpointError,
        )
    )
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        found = document.get("format") if isinstance(document, dict) else None
        hint = (
            " (a model file: pass it to dp.load instead)" if found == model_file.FORMAT_NAME else ""
        )
        raise _fail(path, f"not a deltaprop checkpoint: format is {found!r}{hint}")
    unknown = sorted(set(document) - DOCUMENT_KEYS)
    if unknown:
        raise _fail(path, f"unknown entries {[k[:40] for k in unknown[:5]]} in the document")
    version = document.get("format_version")
    if not is_int(version, 1) or version > FORMAT_VERSION:
        raise _fail(
            path,
            f"checkpoint format version {version!r} is not one this deltaprop "
            f"reads (up to {FORMAT_VERSION})",
        )
    check_network(path, document.get("network"), CheckpointError)
    return document, {
        name: _tensor_spec(path, name, entry)
        for name, entry in header.items()
        if name != "__metadata__"
    }


def _tensor_spec(
    path: object, name: str, entry: object
) -> tuple[np.dtype, tuple[int, ...], tuple[int, int]]:
    """One tensor's header entry: a dtype a checkpoint holds, a shape, offsets spanning it."""
    if not (
        isinstance(entry, dict)
        and entry.get("dtype") in _DTYPES
        and isinstance(entry.get("shape"), list)
        and all(is_int(n) for n in entry["shape"])
        and isinstance(entry.get("data_offsets"), list)
        and len(entry["data_offsets"]) == 2
        and all(is_int(o) for o in entry["data_offsets"])
    ):
        raise _fail(path, f"tensor {name!r}: its header entry is not valid")
    dtype = _DTYPES[entry["dtype"]]
    start, end = entry["data_offsets"]
    if end - start != math.prod(entry["shape"]) * dtype.itemsize:
        raise _fail(path, f"tensor {name}: data_offsets do not span its data")
    return dtype, tuple(entry["shape"]), (start, end)
