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
killed while writing leaves nothing behind. Every invalid checkpoint raises
:class:`CheckpointError` naming the file and the problem; there is no fallback to an older
file, because only one is kept.
"""

from __future__ import annotations

import contextlib
import glob
import json
import math
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deltaprop._version import __version__
from deltaprop.core.network import FeedForward
from deltaprop.errors import CheckpointError
from deltaprop.io import model_file as persistence
from deltaprop.optim.optimizers import Optimizer, get_optimizer

FORMAT_NAME = "deltaprop.checkpoint"
FORMAT_VERSION = 1
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
    order: np.ndarray | None = None  # the unfinished epoch's order, when shuffled
    split: np.ndarray | None = None  # the validation_split permutation
    history: dict = field(default_factory=dict)
    early_stopping: dict | None = None  # {"best", "best_epoch", "wait"}
    best_weights: list[np.ndarray] | None = None
    settings: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------ save
def save_checkpoint(path: str | os.PathLike, net: FeedForward, state: TrainingState) -> None:
    """Write a checkpoint of ``net`` and ``state`` to exactly ``path``, atomically."""
    tensors = persistence._tensors_of(net)
    opt_state = state.optimizer.state_dict()
    optimizer_doc: dict = {}
    for key, value in opt_state.items():
        if isinstance(value, list) and all(isinstance(a, np.ndarray) for a in value) and value:
            for i, array in enumerate(value):
                tensors[f"optimizer.{key}.{i}"] = np.ascontiguousarray(array)
        elif isinstance(value, list) and not value and key not in state.optimizer.config():
            continue  # a buffer not created yet (no step taken)
        else:
            optimizer_doc[key] = value
    if state.best_weights is not None:
        for i, array in enumerate(state.best_weights):
            tensors[f"early_stopping.{i}"] = np.ascontiguousarray(array)
    if state.order is not None:
        tensors["order"] = np.ascontiguousarray(state.order, dtype=np.int64)
    if state.split is not None:
        tensors["split"] = np.ascontiguousarray(state.split, dtype=np.int64)

    config = net.config()
    if config["seed"] is not None:
        config["seed"] = int(config["seed"])
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "network": config,
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
        },
        "history": state.history,
        "settings": state.settings,
    }
    text = json.dumps(_encode(document), allow_nan=False, separators=(",", ":"))
    import safetensors.numpy  # loaded with the first file written

    data = safetensors.numpy.save(tensors, metadata={persistence.METADATA_KEY: text})
    write_atomically(Path(os.fspath(path)), data)


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


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` whole or not at all, leaving no temporary file even if
    the process is killed: the data goes to an unnamed file (O_TMPFILE), which gets a name
    only for the instant between ``link`` and ``rename``. Elsewhere, a named temporary file
    as in :func:`deltaprop.io.model_file.save`."""
    directory = path.parent
    _sweep_leftovers(path)
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None:
        persistence._write_atomically(path, data)
        return
    try:
        fd = os.open(directory, flag | os.O_WRONLY, 0o666)
    except OSError:  # a file system without unnamed files
        persistence._write_atomically(path, data)
        return
    tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        with open(fd, "wb", closefd=False) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _link(fd, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _sweep_leftovers(path: Path, min_age: float = 5.0) -> None:
    """Remove temporary files an earlier writer of ``path`` left when it was killed in the
    instant between link and rename. A live writer's named file exists for microseconds, so
    any seconds old is a leftover."""
    import time

    now = time.time()
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > min_age:
                leftover.unlink()


def _link(fd: int, name: Path) -> None:
    """Give the unnamed file ``fd`` a name: linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd, which
    Python's os.link does not expose (it calls plain link, which fails across /proc)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, at_symlink_follow = -100, 0x400
    if (
        libc.linkat(
            at_fdcwd, f"/proc/self/fd/{fd}".encode(), at_fdcwd, os.fsencode(name), at_symlink_follow
        )
        != 0
    ):
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), str(name))


# ------------------------------------------------------------------------------------ load
def load_checkpoint(path: str | os.PathLike) -> tuple[FeedForward, TrainingState, dict]:
    """The network, the training state and the raw document of the checkpoint at ``path``.

    Raises CheckpointError for anything wrong with the content, OSError when the file cannot
    be read at all.
    """
    try:
        return _load_checked(path)
    except (CheckpointError, OSError, MemoryError):
        raise
    except persistence.ModelFileError as exc:
        raise CheckpointError(str(exc)) from None
    except Exception as exc:  # a corrupt file must never surface as a stray KeyError
        raise CheckpointError(
            f"{path}: not a valid deltaprop checkpoint ({type(exc).__name__}: {exc})"
        ) from exc


def _fail(path: object, message: str) -> CheckpointError:
    return CheckpointError(f"{path}: {message}")


def _load_checked(path: str | os.PathLike) -> tuple[FeedForward, TrainingState, dict]:
    document, arrays = _read_tensors(path)
    network = document["network"]
    net = FeedForward.from_config(network)
    params = []
    for i, layer in enumerate(net.layers):
        layer.W = _take(path, arrays, f"layers.{i}.weight", layer.W.shape, net.dtype)
        layer.b = _take(path, arrays, f"layers.{i}.bias", layer.b.shape, net.dtype)
        params += [layer.W, layer.b]
    persistence._restore_rng(net, document["rng_state"], path)
    if not isinstance(document.get("metadata"), dict):
        raise _fail(path, "the 'metadata' entry is missing or not a JSON object")
    net.metadata = document["metadata"]

    opt_doc = document.get("optimizer")
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
        opt_state[key] = (
            [
                _take(path, arrays, f"optimizer.{key}.{i}", p.shape, net.dtype)
                for i, p in enumerate(params)
            ]
            if stepped
            else []
        )
    try:
        optimizer.load_state_dict(opt_state)
    except (ValueError, TypeError) as exc:
        raise _fail(path, f"the optimizer state is not valid: {exc}") from None

    position = document.get("position")
    if not (
        isinstance(position, dict)
        and all(persistence._is_int(position.get(k)) for k in ("epoch", "batch"))
        and all(isinstance(position.get(k), (int, float)) for k in ("loss_sum", "correct"))
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


def _read_tensors(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """The checked JSON document and every tensor, each size checked against the file's."""
    return persistence.read_safetensors(path, _check_header, "a deltaprop checkpoint")


def _check_header(path: object, header: object) -> tuple[dict, dict]:
    """The checkpoint document and {tensor: (dtype, shape, offsets)}; which tensors must be
    there, and their shapes, is checked against the architecture when they are taken."""
    if not isinstance(header, dict):
        raise _fail(path, "the safetensors header is not a JSON object")
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or not isinstance(meta.get(persistence.METADATA_KEY), str):
        raise _fail(path, "not a deltaprop checkpoint: no 'deltaprop' metadata")
    document = _decode(
        persistence._parse_json(path, meta[persistence.METADATA_KEY], "the 'deltaprop' metadata")
    )
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        found = document.get("format") if isinstance(document, dict) else None
        hint = (
            " (a model file: pass it to dp.load instead)"
            if found == persistence.FORMAT_NAME
            else ""
        )
        raise _fail(path, f"not a deltaprop checkpoint: format is {found!r}{hint}")
    version = document.get("format_version")
    if not persistence._is_int(version, 1) or version > FORMAT_VERSION:
        raise _fail(
            path,
            f"checkpoint format version {version!r} is not one this deltaprop "
            f"reads (up to {FORMAT_VERSION})",
        )
    persistence._check_network(path, document.get("network"))
    specs = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not (
            isinstance(entry, dict)
            and entry.get("dtype") in _DTYPES
            and isinstance(entry.get("shape"), list)
            and all(persistence._is_int(n) for n in entry["shape"])
            and isinstance(entry.get("data_offsets"), list)
            and len(entry["data_offsets"]) == 2
            and all(persistence._is_int(o) for o in entry["data_offsets"])
        ):
            raise _fail(path, f"tensor {name!r}: its header entry is not valid")
        dtype = _DTYPES[entry["dtype"]]
        start, end = entry["data_offsets"]
        if end - start != math.prod(entry["shape"]) * dtype.itemsize:
            raise _fail(path, f"tensor {name}: data_offsets do not span its data")
        specs[name] = (dtype, tuple(entry["shape"]), (start, end))
    return document, specs
