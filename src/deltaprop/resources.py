"""Reading a user's file without hanging, and sizing what they ask for against the memory there is.

- :func:`open_regular` opens a path for reading only if it is a regular file: a FIFO, a
  character or block device (``/dev/zero``) or a socket is refused at once, never read from,
  because reading one can block forever or never end. The check is made on the opened file
  (``fstat``), so the path cannot be swapped for a FIFO between a check and the open, and the
  open itself cannot block (``O_NONBLOCK``, cleared again for the reads).
- :func:`read_bounded` reads at most a given number of bytes of such a file, and
  :func:`read_text` a whole small text file so.
- :func:`check_fits` refuses an allocation larger than the memory of the machine, naming its
  size, before anything is allocated: a 1 MB file must not be able to ask for 30 GB.

Standard library only; it sits with :mod:`deltaprop.errors` below every other layer, so the
data readers, the file formats and the maths (layer sizes) share one definition of each limit.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from typing import BinaryIO

# The environment variable that lowers the memory limit (bytes), for tests and shared machines.
MEMORY_LIMIT_VARIABLE = "DELTAPROP_MEMORY_LIMIT"

_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}

ErrorFactory = Callable[[str], Exception]


def open_regular(path: str | os.PathLike, error: ErrorFactory, what: str = "a file") -> BinaryIO:
    """``path`` opened for binary reading, if it is a regular file.

    A directory raises IsADirectoryError and a missing file FileNotFoundError, as ``open``
    would; a FIFO, device or socket raises ``error(message)``, the message naming the path.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # opening a socket
            raise error(_not_regular(path, "a socket", what)) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(mode):
            raise error(_not_regular(path, _KINDS.get(stat.S_IFMT(mode), "not a file"), what))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _not_regular(path: object, kind: str, what: str) -> str:
    return (
        f"{os.fspath(path)} is {kind}, not a regular file; deltaprop reads {what} only from "
        "a regular file (reading this could block or never end)"
    )


def read_bounded(f: BinaryIO, limit: int, path: object, error: ErrorFactory, what: str) -> bytes:
    """The whole content of the open file ``f``, refused with ``error`` if it exceeds
    ``limit`` bytes; never reads more than ``limit + 1``."""
    data = f.read(limit + 1)
    if len(data) > limit:
        raise error(f"{path}: the {what} is larger than {format_bytes(limit)}, the most read")
    return data


def read_text(
    path: str | os.PathLike, limit: int, error: ErrorFactory = ValueError, what: str = "a file"
) -> str:
    """The UTF-8 text of the regular file ``path``, at most ``limit`` bytes of it (``error``
    for more, for a FIFO or device, or for bytes that are not UTF-8)."""
    with open_regular(path, error, what) as f:
        data = read_bounded(f, limit, path, error, what.removeprefix("a "))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{os.fspath(path)}: not UTF-8 text ({exc.reason})") from None


def memory_limit() -> int:
    """The most bytes one array may take: the memory available now (``MemAvailable``, else
    the physical memory), lowered by ``DELTAPROP_MEMORY_LIMIT`` when that is set."""
    limit = _available_memory()
    override = os.environ.get(MEMORY_LIMIT_VARIABLE)
    if override:
        try:
            limit = min(limit, int(float(override)))
        except ValueError:
            pass  # a malformed setting must not break training: the machine's limit stands
    return limit


def _available_memory() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 2**62


def check_fits(nbytes: int, what: str, error: ErrorFactory = ValueError) -> None:
    """Raise ``error`` naming ``what`` and its size if ``nbytes`` exceed :func:`memory_limit`."""
    limit = memory_limit()
    if nbytes > limit:
        raise error(
            f"{what} would take {format_bytes(nbytes)}, more than the {format_bytes(limit)} "
            "of memory available"
        )


def format_bytes(n: float) -> str:
    """``n`` bytes for people: 29.8 GiB, 512 KiB, 40 bytes."""
    if n < 1024:
        return f"{int(n)} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        n /= 1024
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}"
    return f"{n:.1f} PiB"  # pragma: no cover
