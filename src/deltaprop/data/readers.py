"""Readers for data files: .npy/.npz and IDX (MNIST), hardened against bad input (CSV: csvfile).

They turn bytes into arrays and cells and nothing more; :mod:`deltaprop.data.datasets` gives
those a meaning (targets, classes, tasks). Every problem with a file's content raises
:class:`DataError` naming the file, and the line and column where they apply. Nothing is ever
unpickled, and every size a file declares (IDX dimensions, .npy shapes, zip members) is
checked against the file's real size before anything is allocated for it, and against the
memory there is for what it becomes (float64 features) before anything is decompressed;
compressed data is then read in bounded pieces, so memory follows what a file really holds.
Only regular files are read: a FIFO or a device raises DataError at once instead of blocking.
A file that cannot be opened at all raises the usual OSError.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from deltaprop.errors import DataError
from deltaprop.resources import check_fits, open_regular

# Deflate expands data at most ~1032-fold, so a compressed size declaring more is a lie.
MAX_DEFLATE_RATIO = 1100
# Every array a reader returns becomes float64 features or targets: 8 bytes per element.
_FEATURE_ITEMSIZE = 8
_CHUNK = 1 << 24  # bytes decompressed at a time

T = TypeVar("T")


def error(source: object, message: str, line: int | None = None, column: object = None):
    """A DataError for ``source``, at ``line`` and ``column`` (a name, or a 1-based number)."""
    where = str(source)
    if line is not None:
        where += f", line {line}"
    if column is not None:
        where += f", column {column!r}" if isinstance(column, str) else f", column {column}"
    return DataError(f"{where}: {message}")


def guarded(path: object, read: Callable[[], T]) -> T:
    """Run a reader; any failure other than DataError or OSError still means a bad file."""
    try:
        return read()
    except (DataError, OSError, MemoryError):
        raise
    except Exception as exc:
        # Every expected problem has its own message; this keeps the surprises documented too.
        raise error(path, f"could not be read ({type(exc).__name__}: {exc})") from exc


def open_data(path: Path):
    """``path`` opened for binary reading if it is a regular file; DataError at once for a
    FIFO, a device or a socket, which could block or never end."""
    return open_regular(path, DataError, "a data file")


def check_array_fits(path: object, shape: tuple[int, ...], what: str) -> None:
    """DataError naming the size if ``shape`` as float64 would not fit in memory."""
    check_fits(
        math.prod(shape) * _FEATURE_ITEMSIZE,
        f"{path}: {what} of shape {tuple(shape)} as float64",
        DataError,
    )


def read_exactly(path: object, stream, nbytes: int, dtype: np.dtype) -> np.ndarray:
    """``nbytes`` bytes of ``stream`` into a new array, read in pieces of at most
    :data:`_CHUNK`: pages are touched only as data arrives, so a stream that declares more
    than it holds costs no more memory than it holds. DataError naming both sizes if it ends
    early or has more."""
    out = np.empty(nbytes, dtype=np.uint8)
    view, done = memoryview(out), 0
    while done < nbytes:
        n = stream.readinto(view[done : done + _CHUNK])
        if not n:
            raise error(path, f"declares {nbytes} bytes of data but holds only {done} bytes")
        done += n
    if stream.read(1):
        raise error(path, f"holds more than the {nbytes} bytes of data it declares")
    return out.view(dtype)


CSV_SUFFIXES = (".csv", ".tsv", ".tab", ".csv.gz", ".tsv.gz", ".tab.gz")


def sniff(path: Path) -> str:
    """ "csv", "npy", "npz" or "idx": binary formats by their first bytes, CSV by extension
    (.csv, .tsv, gzipped or not) or, gzipped, by the text inside."""
    if path.name.lower().endswith(CSV_SUFFIXES):
        with open_data(path):  # a FIFO named x.csv is refused here, not read
            return "csv"
    with open_data(path) as f:
        head = f.read(8)
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "npz"
    # IDX starts with a zero byte, which no text does; the IDX reader judges the rest.
    if head.startswith(b"\x1f\x8b"):
        return "idx" if _gunzipped_head(path) in (b"", b"\0") else "csv"
    if head.startswith(b"\0"):
        return "idx"
    hint = " The file is empty." if not head else ""
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        hint = " It looks like a Python pickle, which deltaprop never loads."
    raise error(
        path,
        "unrecognised data format; expected a .csv or .tsv file (gzipped or not) with a header "
        "row, a .npy or .npz "
        f"NumPy file, or an IDX file (MNIST), gzipped or raw.{hint}",
    )


def _gunzipped_head(path: Path) -> bytes:
    """The first byte inside a gzip file; b"" if it cannot be read (the IDX reader says why)."""
    try:
        with open_data(path) as raw, gzip.open(raw, "rb") as f:
            return f.read(1)
    except (OSError, EOFError, zlib.error):
        return b""


# ------------------------------------------------------------------------------ NumPy
REFUSED_KINDS = {
    "O": "Python objects (deltaprop never unpickles)",
    "c": "complex numbers",
    "U": "strings",
    "S": "bytes",
    "V": "structured or raw records",
    "M": "dates",
    "m": "time deltas",
}


def numeric(path: object, arr: np.ndarray, what: str) -> np.ndarray:
    """``arr`` as finite float64, without a copy when it already is float64."""
    if arr.dtype.kind in REFUSED_KINDS:
        raise error(
            path,
            f"{what} holds {REFUSED_KINDS[arr.dtype.kind]} (dtype {arr.dtype}); "
            "expected real numbers",
        )
    X = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(X)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise error(path, f"{what} contains {X[where]} at index {where}; expected finite numbers")
    return X


def two_d(path: object, arr: np.ndarray, what: str) -> np.ndarray:
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise error(
            path, f"{what} must be 2-D (n_examples, n_columns). Received: shape {arr.shape}"
        )
    return arr


def load_npy(path: Path) -> np.ndarray:
    """A .npy array, memory-mapped read-only: nothing is read or copied until it is used."""
    try:
        with open_data(path):  # a FIFO or device is refused here; np.memmap needs the path
            pass
        # numpy checks that the shape the header declares fits in the file before mapping.
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError, TypeError, OSError, SyntaxError, tokenize.TokenError) as exc:
        # The file opened a moment ago (sniff), so an OSError now is about its content;
        # SyntaxError and TokenError come from numpy's parser of Python 2 era headers.
        raise error(path, f"not a valid .npy file: {exc}") from None
    if not isinstance(arr, np.ndarray):  # pragma: no cover - sniff sends zips to load_npz
        raise error(path, "not a .npy array")
    return arr


def load_npz(path: Path, wanted: list[str], optional: frozenset = frozenset()) -> dict:
    """The arrays named ``wanted`` of an .npz archive; a missing optional one is left out."""
    with open_data(path) as f:
        return _load_npz(path, f, wanted, optional)


def _load_npz(path: Path, f, wanted: list[str], optional: frozenset) -> dict:
    try:
        with zipfile.ZipFile(f) as archive:
            present = {n[:-4] for n in archive.namelist() if n.endswith(".npy")}
            for name in wanted:
                if name not in present and name not in optional:
                    raise error(path, f"no array named {name!r}; it holds {sorted(present)}")
            return {n: _npz_member(path, archive, n) for n in wanted if n in present}
    except DataError:
        raise
    except (
        ValueError,  # a malformed .npy header or member name
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        NotImplementedError,
        RuntimeError,
        OSError,  # the file is open, so this is a seek to an offset the archive made up
    ) as exc:
        raise error(path, f"not a valid .npz archive: {exc}") from None


def _npz_member(path: Path, archive: zipfile.ZipFile, name: str) -> np.ndarray:
    info = archive.getinfo(f"{name}.npy")
    size = path.stat().st_size
    limit = info.compress_size * (MAX_DEFLATE_RATIO if info.compress_type else 1)
    if info.compress_size > size or info.file_size > limit:
        raise error(
            path,
            f"array {name!r} declares {info.file_size} bytes, more than its "
            f"{info.compress_size} stored bytes can hold",
        )
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise error(path, f"array {name!r} has an unsupported .npy version {version}")
        if dtype.hasobject:
            raise error(path, f"array {name!r} holds Python objects; deltaprop never unpickles")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > info.file_size:
            raise error(
                path,
                f"array {name!r} declares shape {shape} ({nbytes} bytes) but holds only "
                f"{info.file_size} bytes",
            )
        check_array_fits(path, shape, f"array {name!r}")
        data = read_exactly(f"{path}, array {name!r}", member, nbytes, dtype)
    return data.reshape(shape, order="F" if fortran else "C")


# ------------------------------------------------------------------------------ IDX
_IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format), gzipped or raw: the big-endian magic number 0x0000TTDD
    (TT the element type, DD the number of dimensions), DD big-endian uint32 sizes, the data."""
    with open_data(path) as raw:
        size = os.fstat(raw.fileno()).st_size
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
        try:
            magic = stream.read(4)
            if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _IDX_TYPES:
                raise error(
                    path,
                    f"not an IDX file: magic number 0x{magic.hex().upper()}; expected "
                    "0x00000803 (images) or 0x00000801 (labels)",
                )
            dtype, ndim = _IDX_TYPES[magic[2]], magic[3]
            dims_raw = stream.read(4 * ndim)
            if ndim == 0 or len(dims_raw) < 4 * ndim:
                raise error(path, f"truncated IDX header: {ndim} dimensions declared")
            dims = struct.unpack(f">{ndim}I", dims_raw)
            nbytes = math.prod(dims) * dtype.itemsize
            header = 4 + 4 * ndim
            if gzipped and nbytes > size * MAX_DEFLATE_RATIO:
                raise error(
                    path,
                    f"declares dimensions {dims} ({nbytes} bytes), more than a gzip file of "
                    f"{size} bytes can hold",
                )
            if not gzipped and nbytes != size - header:
                raise error(
                    path,
                    f"declares dimensions {dims} ({nbytes} bytes of data) but {size - header} "
                    "bytes follow the header",
                )
            check_array_fits(path, dims, "the data")
            # Reading one byte past the data reveals trailing bytes (and checks the CRC).
            data = read_exactly(f"{path}: dimensions {dims}", stream, nbytes, dtype)
        except (OSError, EOFError, zlib.error) as exc:
            if not gzipped:
                raise
            raise error(path, f"not a valid gzip file: {exc}") from None
    return data.reshape(dims)
