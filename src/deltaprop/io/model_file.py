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
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import struct
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from safetensors import SafetensorError, deserialize

from deltaprop._version import __version__
from deltaprop.core.activations import ACTIVATIONS
from deltaprop.core.losses import LOSSES
from deltaprop.core.network import FeedForward
from deltaprop.errors import ModelFileError

N = TypeVar("N", bound=FeedForward)

FORMAT_NAME = "deltaprop.model"
FORMAT_VERSION = 1
METADATA_KEY = "deltaprop"
# The safetensors reference implementation refuses larger headers; so do we, before parsing.
MAX_HEADER_BYTES = 100_000_000
_FILE_DTYPES = {"float32": ("F32", np.dtype("<f4")), "float64": ("F64", np.dtype("<f8"))}
_SAFETENSORS_PREFIX = 8


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

    tensors = _tensors_of(net)
    config = net.config()
    if config["seed"] is not None:
        config["seed"] = int(config["seed"])  # a NumPy integer seed is valid but not JSON

    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "network": config,
        "rng_state": net.rng.bit_generator.state,
        "metadata": merged,
    }
    text = json.dumps(document, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    import safetensors.numpy  # loaded with the first file written

    data = safetensors.numpy.save(tensors, metadata={METADATA_KEY: text})
    (header_len,) = struct.unpack("<Q", data[:_SAFETENSORS_PREFIX])
    if header_len > MAX_HEADER_BYTES:
        raise ValueError(
            f"metadata is too large: the file header would be {header_len} bytes, "
            f"above the safetensors limit of {MAX_HEADER_BYTES}"
        )
    _write_atomically(Path(os.fspath(path)), data)


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


def _tensors_of(net: FeedForward) -> dict[str, np.ndarray]:
    loss = net.loss_function
    if type(LOSSES.get(loss.name)) is not type(loss):
        raise ValueError(
            f"only the built-in losses {sorted(LOSSES)} can be saved, since a file names its "
            f"loss rather than storing code. Received: a custom loss named {loss.name!r}"
        )
    tensors = {}
    for i, layer in enumerate(net.layers):
        if ACTIVATIONS.get(layer.activation.name) != layer.activation:
            raise ValueError(
                f"only the built-in activations {sorted(ACTIVATIONS)} can be saved. Received: "
                f"a custom activation named {layer.activation.name!r} in layer {i}"
            )
        for role, attr, arr in (("weight", "W", layer.W), ("bias", "b", layer.b)):
            where = f"net.layers[{i}].{attr}"
            if not isinstance(arr, np.ndarray) or arr.dtype != net.dtype:
                got = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
                raise ValueError(
                    f"{where} must be a {net.dtype} array like the network. Received: {got}"
                )
            if role == "weight" and (arr.ndim != 2 or (i and arr.shape[1] != net.sizes[i])):
                raise ValueError(
                    f"{where} must be 2-D (n_out, {net.sizes[i]}) to chain with the layer "
                    f"before. Received: shape {arr.shape}"
                )
            if role == "bias" and arr.shape != (layer.W.shape[0],):
                raise ValueError(
                    f"{where} must have shape ({layer.W.shape[0]},), one bias per unit. "
                    f"Received: shape {arr.shape}"
                )
            if not np.isfinite(arr).all():
                raise ValueError(f"{where} contains NaN or inf; only finite weights are saved")
            tensors[f"layers.{i}.{role}"] = np.ascontiguousarray(arr)
    return tensors


def _write_atomically(path: Path, data: bytes) -> None:
    """Temporary file in the same folder, fsync, rename over ``path``, fsync the folder.

    On any failure the temporary file is removed and an existing ``path`` is untouched.
    """
    directory = path.parent
    # O_EXCL with a random name instead of mkstemp: os.open's mode goes through the umask, so
    # the file gets the permissions any new file would, where mkstemp would force 0600.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(f"could not create a temporary file next to {path}")
    try:
        with open(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # Makes the rename itself durable; not possible everywhere (Windows), and then harmless.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# ------------------------------------------------------------------------------------ load
def load(path: str | os.PathLike, into: type[N] = FeedForward) -> N:  # type: ignore[assignment]
    """The network saved at ``path``: same architecture, dtype, weights (bit for bit),
    random-generator state and ``metadata``, as an ``into`` (``deltaprop.load`` passes the
    public :class:`deltaprop.Network`; this layer knows only the maths below it).

    Raises ModelFileError for anything wrong with the file's content, and OSError
    (FileNotFoundError, IsADirectoryError, PermissionError) when it cannot be read at all.
    """
    document, arrays = _read(path)
    network = document["network"]
    try:
        net = into.from_config(network)
    except ValueError as exc:
        raise ModelFileError(f"{path}: the stored network is not valid: {exc}") from None
    for i, layer in enumerate(net.layers):
        layer.W = arrays[f"layers.{i}.weight"]
        layer.b = arrays[f"layers.{i}.bias"]
    if document.get("rng_state") is not None:
        _restore_rng(net, document["rng_state"], path)
    net.metadata = document["metadata"]
    return net


def read_info(path: str | os.PathLike) -> dict:
    """The validated JSON document of a model file (format and library versions, network
    config, metadata), without building the network."""
    document, _ = _read(path)
    return document


def _read(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        return _read_checked(path)
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


def _read_checked(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    return read_safetensors(path, _check_header)


def read_safetensors(
    path: str | os.PathLike,
    check_header: Callable[[object, object], tuple[dict, dict]],
    expected: str = "a deltaprop model file",
) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON document and the tensors of a deltaprop safetensors file (a model file, or a
    checkpoint: :mod:`deltaprop.train.checkpointing`), every size checked against the file's before
    anything is allocated and every float finite.

    ``check_header(path, header)`` validates the parsed safetensors header and returns the
    document and {tensor name: (dtype, shape, (start, end))}; ``expected`` names the kind of
    file in errors. Raises ModelFileError.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(_SAFETENSORS_PREFIX)
        _check_prefix(path, prefix, size, expected)
        (header_len,) = struct.unpack("<Q", prefix)
        header_bytes = f.read(header_len)
        header = _parse_json(path, header_bytes, "the safetensors header")
        document, specs = check_header(path, header)
        data_len = max((end for _, _, (_, end) in specs.values()), default=0)
        expected_size = _SAFETENSORS_PREFIX + header_len + data_len
        if size != expected_size:
            raise _fail(
                path,
                f"the header describes a file of {expected_size} bytes but the file has "
                f"{size}: {'truncated' if size < expected_size else 'extra bytes at the end'}",
            )
        data = prefix + header_bytes + f.read(data_len)
    if len(data) != expected_size:
        raise _fail(path, "the file changed size while it was being read")
    try:
        # The library's own checks (offsets cover the data exactly, no overlaps) on top of ours.
        views = dict(deserialize(data))
    except SafetensorError as exc:
        raise _fail(path, f"not a valid safetensors file: {exc}") from None
    arrays = {}
    for name, (dtype, shape, _) in specs.items():
        # np.array copies into native byte order and a writable array the optimizers can update.
        arr = np.array(
            np.frombuffer(views[name]["data"], dtype=dtype).reshape(shape),
            dtype=dtype.newbyteorder("="),
        )
        if not np.isfinite(arr).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
            raise _fail(path, f"{name} contains NaN or inf (first at index {where}: {arr[where]})")
        arrays[name] = arr
    return document, arrays


def _check_prefix(
    path: object, prefix: bytes, size: int, expected: str = "a deltaprop model file"
) -> None:
    """The first 8 bytes must declare a header that fits in the file."""
    if len(prefix) == _SAFETENSORS_PREFIX:
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len <= min(size - _SAFETENSORS_PREFIX, MAX_HEADER_BYTES):
            return
        problem = (
            f"its first 8 bytes declare a header of {header_len} bytes, but the file has "
            f"{size} bytes in all (and headers are at most {MAX_HEADER_BYTES})"
        )
    else:
        problem = f"the file has only {size} bytes; a safetensors file starts with 8"
    # Only now guess what the file is instead: a valid header length may begin with these bytes.
    if prefix.startswith(b"PK\x03\x04"):
        kind = "this is a zip archive (a PyTorch .pt/.pth or NumPy .npz file?)"
    elif prefix[:1] == b"\x80" and prefix[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        kind = (
            "this is a Python pickle, which deltaprop never unpickles because unpickling can "
            "run arbitrary code"
        )
    else:
        kind = "this is not a safetensors file, or it is truncated"
    raise _fail(path, f"{kind}, not {expected} (safetensors): {problem}")


def _parse_json(path: object, raw: bytes | str, what: str) -> object:
    def no_duplicates(pairs: list[tuple[str, object]]) -> dict:
        # Readers that keep the first or the last of two equal keys would disagree on the file.
        result: dict = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"duplicate key {key!r}")
            result[key] = value
        return result

    def no_constants(name: str) -> object:
        raise ValueError(f"{name} is not valid JSON")

    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except RecursionError:
        raise _fail(path, f"{what} is JSON nested too deeply") from None
    except ValueError as exc:  # includes UnicodeDecodeError and json.JSONDecodeError
        raise _fail(path, f"{what} is not valid JSON: {exc}") from None


def _is_int(value: object, low: int = 0) -> bool:
    return type(value) is int and value >= low


def _check_header(path: object, header: object) -> tuple[dict, dict]:
    """The deltaprop document and {tensor name: (dtype, shape, offsets)}, all checked."""
    if not isinstance(header, dict):
        raise _fail(path, "the safetensors header is not a JSON object")
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or not isinstance(meta.get(METADATA_KEY), str):
        raise _fail(
            path,
            f"not a deltaprop model file: the safetensors header has no {METADATA_KEY!r} "
            "metadata (a safetensors file written by another library?)",
        )
    document = _parse_json(path, meta[METADATA_KEY], f"the {METADATA_KEY!r} metadata")
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise _fail(path, f"the metadata does not declare format {FORMAT_NAME!r}")
    version = document.get("format_version")
    if not _is_int(version, 1):
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
    dtype_name, expected = _check_network(path, document.get("network"))
    file_dtype, np_dtype = _FILE_DTYPES[dtype_name]

    names = {k for k in header if k != "__metadata__"}
    if names != set(expected):
        missing, extra = sorted(set(expected) - names), sorted(names - set(expected))
        raise _fail(
            path,
            f"the tensors do not match the stored architecture: missing {missing}, "
            f"unexpected {extra}",
        )
    specs = {}
    for name, shape in expected.items():
        entry = header[name]
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
            and all(_is_int(o) for o in offsets)
            and offsets[1] - offsets[0] == nbytes
        ):
            raise _fail(
                path,
                f"tensor {name}: data_offsets {offsets!r} do not span its {nbytes} bytes",
            )
        specs[name] = (np_dtype, shape, tuple(offsets))
    return document, specs


def _check_network(path: object, network: object) -> tuple[str, dict[str, tuple[int, ...]]]:
    """The dtype name and the expected tensor shapes, from a checked network config."""
    if not isinstance(network, dict):
        raise _fail(path, "the 'network' entry is missing or not a JSON object")
    for key in ("sizes", "activations", "loss", "init", "dtype", "seed"):
        if key not in network:
            raise _fail(path, f"the network config has no {key!r}")
    sizes = network["sizes"]
    if not (isinstance(sizes, list) and len(sizes) >= 2 and all(_is_int(n, 1) for n in sizes)):
        raise _fail(
            path, f"sizes must list at least 2 positive integers. Received: {str(sizes)[:200]}"
        )
    activations = network["activations"]
    if not (isinstance(activations, list) and len(activations) == len(sizes) - 1):
        raise _fail(
            path,
            f"activations must list one name per layer ({len(sizes) - 1} for sizes {sizes}). "
            f"Received: {str(activations)[:200]}",
        )
    for name in activations:
        if not (isinstance(name, str) and name in ACTIVATIONS):
            raise _fail(
                path,
                f"unknown activation {str(name)[:100]!r}; expected one of {sorted(ACTIVATIONS)}",
            )
    loss = network["loss"]
    if not (isinstance(loss, str) and loss in LOSSES):
        raise _fail(path, f"unknown loss {str(loss)[:100]!r}; expected one of {sorted(LOSSES)}")
    dtype = network["dtype"]
    if not (isinstance(dtype, str) and dtype in _FILE_DTYPES):
        raise _fail(path, f"dtype must be 'float32' or 'float64'. Received: {str(dtype)[:100]!r}")
    expected: dict[str, tuple[int, ...]] = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        expected[f"layers.{i}.weight"] = (n_out, n_in)
        expected[f"layers.{i}.bias"] = (n_out,)
    return dtype, expected


def _restore_rng(net: FeedForward, state: object, path: object) -> None:
    reference = net.rng.bit_generator.state
    ok = (
        isinstance(state, dict)
        and state.keys() == reference.keys()
        and state.get("bit_generator") == reference["bit_generator"]
        and isinstance(state.get("state"), dict)
        and state["state"].keys() == reference["state"].keys()
        and all(_is_int(v) and v < 2**128 for v in state["state"].values())
        and all(_is_int(state[k]) and state[k] < 2**64 for k in ("has_uint32", "uinteger"))
    )
    if not ok:
        raise _fail(
            path,
            f"rng_state is not a {reference['bit_generator']} generator state. "
            f"Received: {str(state)[:200]}",
        )
    try:
        net.rng.bit_generator.state = state
    except (ValueError, TypeError, OverflowError) as exc:
        raise _fail(path, f"rng_state is not valid: {exc}") from None
