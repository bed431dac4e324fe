"""Model files: the weights as safetensors tensors, everything else as JSON in its header.

A file is a standard safetensors file (readable by any safetensors reader) holding

    layers.{l}.weight   (n_{l+1}, n_l)   float32 or float64, the layout of torch.nn.Linear.weight
    layers.{l}.bias     (n_{l+1},)

and one metadata entry, ``"deltaprop"``, a JSON document::

    {"format": "deltaprop.model", "format_version": 1, "library_version": "0.1.0",
     "network": Network.config(),          # sizes, activations, loss, init, dtype, seed
     "rng_state": {...},                   # the network's generator, so training resumes exactly
     "metadata": net.metadata}             # class names, scaling, training summary, ...

Loading never runs code named by a file: nothing is unpickled, and activation and loss names
are looked up in fixed allow-lists. Any file that is not a valid model raises
:class:`ModelFileError`; only failing to open or read the file at all (a missing file, a
directory, no permission) raises the usual ``OSError``.

The reading and writing shared with checkpoints live in :mod:`deltaprop.io.tensorfile` and
:mod:`deltaprop.io.atomic`; this module holds what is particular to a model file: its document
and the checks that every tensor the architecture needs is there, with its shape and dtype.
"""

from __future__ import annotations

import json
import math
import os
from typing import TypeVar

import numpy as np

from deltaprop._version import __version__
from deltaprop.core.network import FeedForward
from deltaprop.errors import ModelFileError
from deltaprop.io.atomic import sweep_leftovers, write_atomically
from deltaprop.io.digest import DIGEST_KEY, with_digest_entry
from deltaprop.io.tensorfile import (
    MAX_HEADER_BYTES,
    METADATA_KEY,
    NETWORK_DTYPES,
    TensorSpecs,
    check_network,
    header_document,
    header_length,
    is_int,
    network_config,
    network_from_tensors,
    network_tensors,
    read_safetensors,
    restore_rng,
    to_safetensors,
)

N = TypeVar("N", bound=FeedForward)

FORMAT_NAME = "deltaprop.model"
FORMAT_VERSION = 1
# Every entry a model document may hold: an unknown one (a misspelt key, or a flipped bit in
# one, which could otherwise hide the digest) makes the file invalid.
DOCUMENT_KEYS = frozenset(
    {"format", "format_version", "library_version", "network", "rng_state", "metadata", DIGEST_KEY}
)


# ------------------------------------------------------------------------------------ save
def save(net: FeedForward, path: str | os.PathLike, *, metadata: dict | None = None) -> None:
    """Write ``net`` to exactly ``path``, atomically: either the whole new file or nothing.

    The file holds the weights, the architecture, the random generator's state and
    ``net.metadata`` updated with ``metadata``. Metadata must be plain JSON data (dicts with
    string keys, lists, str, int, finite float, bool, None) so that it loads back equal;
    anything else raises ValueError and nothing is written.
    """
    if not isinstance(net, FeedForward):
        raise ValueError(f"save expects a deltaprop Network. Received: {type(net).__name__}")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict. Received: {type(metadata).__name__}")
    if not isinstance(net.metadata, dict):
        raise ValueError(f"net.metadata must be a dict. Received: {type(net.metadata).__name__}")
    merged = {**net.metadata, **(metadata or {})}
    try:
        _check_json(merged, "metadata")
    except RecursionError:
        raise ValueError("metadata is nested too deeply to store as JSON") from None

    tensors = network_tensors(net)
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "network": network_config(net),
        "rng_state": net.rng.bit_generator.state,
        "metadata": merged,
    }
    text = json.dumps(
        with_digest_entry(document), allow_nan=False, ensure_ascii=False, separators=(",", ":")
    )
    data = to_safetensors(tensors, text)
    if header_length(data) > MAX_HEADER_BYTES:
        raise ValueError(
            f"metadata is too large: the file header would be {header_length(data)} bytes, "
            f"above the safetensors limit of {MAX_HEADER_BYTES}"
        )
    write_atomically(path, data)


def _check_json(value: object, where: str) -> None:
    """Raise ValueError unless ``value`` comes back from JSON equal and of the same type."""
    kind = type(value)
    if value is None or kind in (str, bool, int):
        return
    if kind is float:
        if not math.isfinite(value):
            raise ValueError(
                f"{where} is {value!r}; JSON has no NaN or infinity. Store None or a string"
            )
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise ValueError(
                    f"{where} has the key {key!r} of type {type(key).__name__}; "
                    "expected string keys (JSON object keys are strings)"
                )
            _check_json(item, f"{where}[{key!r}]")
        return
    if kind is list:
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")
        return
    hint = ""
    if isinstance(value, tuple):
        hint = "; it would load back as a list, so store a list"
    elif isinstance(value, (np.generic, np.ndarray)):
        hint = "; convert NumPy values with .item() or .tolist()"
    raise ValueError(
        f"{where} is a {kind.__module__}.{kind.__qualname__} ({str(value)[:60]!r}), which JSON "
        f"cannot store exactly{hint}. Expected dicts with string keys, lists, str, int, "
        "finite float, bool or None"
    )


# ------------------------------------------------------------------------------------ load
def load(path: str | os.PathLike, into: type[N] = FeedForward) -> N:  # type: ignore[assignment]
    """The network saved at ``path``: same architecture, dtype, weights (bit for bit),
    random-generator state and ``metadata``, as an ``into`` (``deltaprop.load`` passes the
    public :class:`deltaprop.Network`; this layer knows only the maths below it).

    Raises ModelFileError for anything wrong with the file's content, and OSError
    (FileNotFoundError, IsADirectoryError, PermissionError) when it cannot be read at all.
    """
    document, arrays, _ = _read(path)
    network = document["network"]
    try:
        net = network_from_tensors(into, network, arrays)
    except ValueError as exc:
        raise ModelFileError(f"{path}: the stored network is not valid: {exc}") from None
    if document.get("rng_state") is not None:
        restore_rng(net, document["rng_state"], path)
    net.metadata = document["metadata"]
    return net


def read_info(path: str | os.PathLike) -> dict:
    """The validated JSON document of a model file (format and library versions, network
    config, metadata, and ``digest``: 64 hex digits, verified, absent from files written
    before deltaprop wrote digests), without building the network."""
    document, _, _ = _read(path)
    return document


def _read(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray], str | None]:
    sweep_leftovers(path)  # a killed writer's temporary file goes with the next read too
    try:
        return read_safetensors(path, _check_header)
    except (ModelFileError, OSError, MemoryError):
        raise
    except Exception as exc:
        # The checks above should leave nothing else, but a file must never surface as a
        # stray KeyError or TypeError: whatever slipped through is still a bad file.
        raise ModelFileError(
            f"{path}: not a valid deltaprop model file ({type(exc).__name__}: {exc})"
        ) from exc


def _fail(path: object, message: str) -> ModelFileError:
    return ModelFileError(f"{path}: {message}")


def _check_header(path: object, header: object) -> tuple[dict, TensorSpecs]:
    """The deltaprop document and the tensors to read, all checked."""
    document = header_document(
        path,
        header,
        f"not a deltaprop model file: the safetensors header has no {METADATA_KEY!r} "
        "metadata (a safetensors file written by another library?)",
    )
    _check_document(path, document)
    dtype_name, expected = check_network(path, document.get("network"))
    names = {k for k in header if k != "__metadata__"}
    if names != set(expected):
        missing, extra = sorted(set(expected) - names), sorted(names - set(expected))
        raise _fail(
            path,
            f"the tensors do not match the stored architecture: missing {missing}, "
            f"unexpected {extra}",
        )
    return document, {
        name: _tensor_spec(path, name, header[name], shape, dtype_name, document)
        for name, shape in expected.items()
    }


def _check_document(path: object, document: object) -> None:
    """The document's own entries: format, a version this code reads, metadata."""
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise _fail(path, f"the metadata does not declare format {FORMAT_NAME!r}")
    unknown = sorted(set(document) - DOCUMENT_KEYS)
    if unknown:
        raise _fail(
            path,
            f"unknown entries {[k[:40] for k in unknown[:5]]} in the {METADATA_KEY!r} document; "
            f"expected only {sorted(DOCUMENT_KEYS)}",
        )
    version = document.get("format_version")
    if not is_int(version, 1):
        raise _fail(path, f"format_version must be an integer >= 1. Received: {version!r}")
    if version > FORMAT_VERSION:
        raise _fail(
            path,
            f"format version {version} is newer than this deltaprop reads (up to version "
            f"{FORMAT_VERSION}); the file was written by deltaprop "
            f"{document.get('library_version')!r}. Upgrade deltaprop to load it",
        )
    if not isinstance(document.get("metadata"), dict):
        raise _fail(path, "the 'metadata' entry is missing or not a JSON object")


def _tensor_spec(
    path: object, name: str, entry: object, shape: tuple[int, ...], dtype_name: str, document: dict
) -> tuple[np.dtype, tuple[int, ...], tuple[int, int]]:
    """One tensor's header entry, checked against the shape and dtype the network needs."""
    file_dtype, np_dtype = NETWORK_DTYPES[dtype_name]
    if not isinstance(entry, dict):
        raise _fail(path, f"tensor {name}: its header entry is not a JSON object")
    if entry.get("dtype") != file_dtype:
        raise _fail(
            path,
            f"tensor {name} has dtype {entry.get('dtype')!r}; the network is {dtype_name}, "
            f"so expected {file_dtype!r} (only float32 and float64 are accepted)",
        )
    if entry.get("shape") != list(shape):
        raise _fail(
            path,
            f"tensor {name} has shape {entry.get('shape')!r} but the layer sizes "
            f"{document['network']['sizes']} need {list(shape)}: the shapes do not chain",
        )
    offsets = entry.get("data_offsets")
    nbytes = math.prod(shape) * np_dtype.itemsize
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(is_int(o) for o in offsets)
        and offsets[1] - offsets[0] == nbytes
    ):
        raise _fail(
            path,
            f"tensor {name}: data_offsets {offsets!r} do not span its {nbytes} bytes",
        )
    return np_dtype, shape, tuple(offsets)
