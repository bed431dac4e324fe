"""The safetensors layout both deltaprop file formats share: one reader, one atomic writer.

A deltaprop file is a standard safetensors file whose header carries one metadata entry,
:data:`METADATA_KEY`, a JSON document; :mod:`deltaprop.io.model_file` and
:mod:`deltaprop.io.checkpoint_file` say what that document and the tensors are. This module
holds what the two have in common:

- reading: :func:`read_safetensors` checks every size against the file's before anything is
  allocated and every float for finiteness; :func:`parse_json` refuses duplicate keys and the
  constants JSON lacks (NaN, Infinity); :func:`header_document`, :func:`check_network` and
  :func:`restore_rng` check the parts every file holds. Each raises the error class its
  caller passes (``ModelFileError`` for a model, ``CheckpointError`` for a checkpoint) with the
  message ``"{path}: {problem}"``; failing to open or read the file raises ``OSError``.
- writing: :func:`network_tensors` and :func:`network_config` (the network as tensors and
  JSON) and :func:`to_safetensors` (the file's bytes), which
  :func:`deltaprop.io.atomic.write_atomically` then writes whole or not at all.

safetensors is imported on the first read or write, so that ``import deltaprop`` does not load it.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Callable
from typing import BinaryIO

import numpy as np

from deltaprop.core.activations import ACTIVATIONS
from deltaprop.core.init import GivenWeights, get_initializer
from deltaprop.core.losses import LOSSES
from deltaprop.core.network import FeedForward
from deltaprop.errors import ModelFileError
from deltaprop.io.digest import seal, verify
from deltaprop.resources import open_regular

METADATA_KEY = "deltaprop"
# The safetensors reference implementation refuses larger headers; so do we, before parsing.
MAX_HEADER_BYTES = 100_000_000
PREFIX_BYTES = 8  # a little-endian uint64: the header's length
NETWORK_DTYPES = {"float32": ("F32", np.dtype("<f4")), "float64": ("F64", np.dtype("<f8"))}

# {tensor name: (NumPy dtype, shape, (start, end) in the data section)}
TensorSpecs = dict[str, tuple[np.dtype, tuple[int, ...], tuple[int, int]]]
# check_header(path, header) -> (the document, the tensors to read)
HeaderCheck = Callable[[object, object], tuple[dict, TensorSpecs]]
ErrorClass = type[ModelFileError]  # ModelFileError or its subclass CheckpointError


# ------------------------------------------------------------------------------------ read
def read_safetensors(
    path: str | os.PathLike,
    check_header: HeaderCheck,
    expected: str = "a deltaprop model file",
    error: ErrorClass = ModelFileError,
) -> tuple[dict, dict[str, np.ndarray], str | None]:
    """The JSON document, the tensors and the digest (:data:`DIGEST_NAME`, or None for a file
    written before files had one) of a deltaprop safetensors file, every size checked against
    the file's before anything is allocated, the digest verified and every float finite.

    ``check_header(path, header)`` validates the parsed safetensors header and returns the
    document and the :data:`TensorSpecs` of the tensors to read; ``expected`` names the kind of
    file in errors, which are ``error`` (OSError when the file cannot be read at all). Only a
    regular file is read (a FIFO or a device is refused at once), and the file is read once,
    into one buffer the tensors are views of: loading peaks at about the file's size.
    """
    with open_regular(path, error, expected) as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(PREFIX_BYTES)
        _check_prefix(path, prefix, size, expected, error)
        (header_len,) = struct.unpack("<Q", prefix)
        header_bytes = f.read(header_len)
        header = parse_json(path, header_bytes, "the safetensors header", error)
        document, specs = check_header(path, header)
        data_start = PREFIX_BYTES + header_len
        data_len = max((end for _, _, (_, end) in specs.values()), default=0)
        if size != data_start + data_len:
            raise error(
                f"{path}: the header describes a file of {data_start + data_len} bytes but the "
                f"file has {size}: "
                f"{'truncated' if size < data_start + data_len else 'extra bytes at the end'}"
            )
        buffer = bytearray(size)
        buffer[:data_start] = prefix + header_bytes
        if _read_into(f, memoryview(buffer)[data_start:]) != data_len:
            raise error(f"{path}: the file changed size while it was being read")
    text = header["__metadata__"][METADATA_KEY]
    digest = verify(path, buffer, PREFIX_BYTES, header_len, text, document, error)
    return document, _arrays(path, buffer, data_start, specs, error), digest


def _read_into(f: BinaryIO, view: memoryview) -> int:
    """Fill ``view`` from ``f``; the bytes read (fewer at the end of the file)."""
    done = 0
    while done < len(view):
        n = f.readinto(view[done:])
        if not n:
            break
        done += n
    return done


def _arrays(
    path: object, buffer: bytearray, data_start: int, specs: TensorSpecs, error: ErrorClass
) -> dict[str, np.ndarray]:
    """The tensors ``specs`` names, as native-order, writable, finite arrays over ``buffer``.

    safetensors' own ``deserialize`` would copy every tensor into new bytes (then NumPy would
    copy again): views of the one buffer keep loading near the file's size. Its checks are
    made here instead: the tensors tile the data section exactly, without gaps or overlaps.
    """
    position = 0
    for name, (_, _, (start, end)) in sorted(specs.items(), key=lambda item: item[1][2]):
        if start != position or end < start:
            raise error(
                f"{path}: not a valid safetensors file: tensor {name} starts at byte {start} "
                f"of the data, expected {position} (tensors must tile the data exactly)"
            )
        position = end
    arrays = {}
    for name, (dtype, shape, (start, _)) in specs.items():
        count = math.prod(shape)
        arr = np.frombuffer(buffer, dtype=dtype, count=count, offset=data_start + start)
        arr = arr.reshape(shape)
        if not dtype.isnative or arr.ctypes.data % dtype.itemsize:
            arr = arr.astype(dtype.newbyteorder("="))  # a writable, aligned, native copy
        where = _first_non_finite(arr)
        if where is not None:
            raise error(
                f"{path}: {name} contains NaN or inf (first at index {where}: {arr[where]})"
            )
        arrays[name] = arr
    return arrays


def _first_non_finite(arr: np.ndarray, chunk: int = 1 << 20) -> tuple[int, ...] | None:
    """The index of the first NaN or inf in ``arr``, None if every value is finite; checked
    in chunks, so that no mask the size of the tensor is ever made."""
    if arr.dtype.kind != "f":
        return None
    flat = arr.reshape(-1)
    for start in range(0, flat.size, chunk):
        bad = ~np.isfinite(flat[start : start + chunk])
        if bad.any():
            i = start + int(np.argmax(bad))
            return tuple(int(k) for k in np.unravel_index(i, arr.shape))
    return None


def _check_prefix(path: object, prefix: bytes, size: int, expected: str, error: ErrorClass) -> None:
    """The first 8 bytes must declare a header that fits in the file."""
    if len(prefix) == PREFIX_BYTES:
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len <= min(size - PREFIX_BYTES, MAX_HEADER_BYTES):
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
    raise error(f"{path}: {kind}, not {expected} (safetensors): {problem}")


def parse_json(
    path: object, raw: bytes | str, what: str, error: ErrorClass = ModelFileError
) -> object:
    """``raw`` parsed as strict JSON: no duplicate keys, no NaN or Infinity; ``error`` naming
    ``what`` otherwise."""

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
        raise error(f"{path}: {what} is JSON nested too deeply") from None
    except ValueError as exc:  # includes UnicodeDecodeError and json.JSONDecodeError
        raise error(f"{path}: {what} is not valid JSON: {exc}") from None


def is_int(value: object, low: int = 0) -> bool:
    """Whether ``value`` is a JSON integer of at least ``low`` (a bool is not one)."""
    return type(value) is int and value >= low


def header_document(
    path: object, header: object, missing: str, error: ErrorClass = ModelFileError
) -> object:
    """The parsed :data:`METADATA_KEY` document of a safetensors ``header``; ``missing`` is the
    problem reported when the header has none."""
    if not isinstance(header, dict):
        raise error(f"{path}: the safetensors header is not a JSON object")
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or not isinstance(meta.get(METADATA_KEY), str):
        raise error(f"{path}: {missing}")
    return parse_json(path, meta[METADATA_KEY], f"the {METADATA_KEY!r} metadata", error)


def check_network(
    path: object, network: object, error: ErrorClass = ModelFileError
) -> tuple[str, dict[str, tuple[int, ...]]]:
    """The dtype name and {tensor name: shape} of a stored network config, once every entry
    is checked: sizes, activation and loss names from the allow-lists, dtype."""
    if not isinstance(network, dict):
        raise error(f"{path}: the 'network' entry is missing or not a JSON object")
    for key in ("sizes", "activations", "loss", "init", "dtype", "seed"):
        if key not in network:
            raise error(f"{path}: the network config has no {key!r}")
    sizes = network["sizes"]
    if not (isinstance(sizes, list) and len(sizes) >= 2 and all(is_int(n, 1) for n in sizes)):
        raise error(
            f"{path}: sizes must list at least 2 positive integers. Received: {str(sizes)[:200]}"
        )
    activations = network["activations"]
    if not (isinstance(activations, list) and len(activations) == len(sizes) - 1):
        raise error(
            f"{path}: activations must list one name per layer ({len(sizes) - 1} for sizes "
            f"{sizes}). Received: {str(activations)[:200]}"
        )
    for name in activations:
        if not (isinstance(name, str) and name in ACTIVATIONS):
            raise error(
                f"{path}: unknown activation {str(name)[:100]!r}; "
                f"expected one of {sorted(ACTIVATIONS)}"
            )
    loss = network["loss"]
    if not (isinstance(loss, str) and loss in LOSSES):
        raise error(f"{path}: unknown loss {str(loss)[:100]!r}; expected one of {sorted(LOSSES)}")
    dtype = network["dtype"]
    if not (isinstance(dtype, str) and dtype in NETWORK_DTYPES):
        raise error(f"{path}: dtype must be 'float32' or 'float64'. Received: {str(dtype)[:100]!r}")
    return dtype, network_shapes(sizes)


def network_shapes(sizes: list[int]) -> dict[str, tuple[int, ...]]:
    """{tensor name: shape} of a network with these layer sizes, in file order."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"layers.{i}.weight"] = (n_out, n_in)
        shapes[f"layers.{i}.bias"] = (n_out,)
    return shapes


def network_from_tensors(
    into: type[FeedForward], config: dict, arrays: dict[str, np.ndarray]
) -> FeedForward:
    """An ``into`` with the architecture ``config`` (as :func:`check_network` accepted it)
    and the tensors ``layers.{l}.weight``/``.bias`` taken out of ``arrays`` as its weights,
    without drawing or allocating others first; ValueError if they do not fit it."""
    initializer = get_initializer(config["init"])
    pairs = [
        (arrays.pop(f"layers.{i}.weight"), arrays.pop(f"layers.{i}.bias"))
        for i in range(len(config["sizes"]) - 1)
    ]
    for W, _ in pairs:  # the file's init must still be able to draw, as on any network
        initializer.check(W.shape[1], W.shape[0], W.dtype, memory=False)
    net = into.from_config({**config, "init": GivenWeights(initializer, pairs)})
    net.initializer = initializer
    return net


def restore_rng(
    net: FeedForward, state: object, path: object, error: ErrorClass = ModelFileError
) -> None:
    """Set ``net``'s generator to a stored state, once it is checked to be one of its kind."""
    reference = net.rng.bit_generator.state
    ok = (
        isinstance(state, dict)
        and state.keys() == reference.keys()
        and state.get("bit_generator") == reference["bit_generator"]
        and isinstance(state.get("state"), dict)
        and state["state"].keys() == reference["state"].keys()
        and all(is_int(v) and v < 2**128 for v in state["state"].values())
        and all(is_int(state[k]) and state[k] < 2**64 for k in ("has_uint32", "uinteger"))
    )
    if not ok:
        raise error(
            f"{path}: rng_state is not a {reference['bit_generator']} generator state. "
            f"Received: {str(state)[:200]}"
        )
    try:
        net.rng.bit_generator.state = state
    except (ValueError, TypeError, OverflowError) as exc:
        raise error(f"{path}: rng_state is not valid: {exc}") from None


# ------------------------------------------------------------------------------------ write
def network_tensors(net: FeedForward) -> dict[str, np.ndarray]:
    """``net``'s weights as {tensor name: array}; ValueError for a network no file can
    describe (a custom activation or loss, a wrong dtype or shape, a non-finite weight)."""
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
            _check_parameter(net, i, role, f"net.layers[{i}].{attr}", arr)
            tensors[f"layers.{i}.{role}"] = np.ascontiguousarray(arr)
    return tensors


def _check_parameter(net: FeedForward, i: int, role: str, where: str, arr: object) -> None:
    if not isinstance(arr, np.ndarray) or arr.dtype != net.dtype:
        got = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
        raise ValueError(f"{where} must be a {net.dtype} array like the network. Received: {got}")
    if role == "weight" and (arr.ndim != 2 or (i and arr.shape[1] != net.sizes[i])):
        raise ValueError(
            f"{where} must be 2-D (n_out, {net.sizes[i]}) to chain with the layer "
            f"before. Received: shape {arr.shape}"
        )
    n_out = net.layers[i].W.shape[0]
    if role == "bias" and arr.shape != (n_out,):
        raise ValueError(
            f"{where} must have shape ({n_out},), one bias per unit. Received: shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{where} contains NaN or inf; only finite weights are saved")


def network_config(net: FeedForward) -> dict:
    """``net.config()`` as JSON stores it."""
    config = net.config()
    if config["seed"] is not None:
        config["seed"] = int(config["seed"])  # a NumPy integer seed is valid but not JSON
    return config


def to_safetensors(tensors: dict[str, np.ndarray], document: str) -> bytes:
    """The bytes of a safetensors file of ``tensors`` with the JSON text ``document`` as its
    :data:`METADATA_KEY` metadata, sealed with its digest: ``document`` must close with the
    digest placeholder (:func:`deltaprop.io.digest.with_digest_entry`)."""
    import safetensors.numpy  # loaded with the first file written

    return seal(safetensors.numpy.save(tensors, metadata={METADATA_KEY: document}), document)


def header_length(data: bytes) -> int:
    """The header length the first bytes of a safetensors file declare."""
    (length,) = struct.unpack("<Q", data[:PREFIX_BYTES])
    return length
