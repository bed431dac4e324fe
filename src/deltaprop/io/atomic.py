"""The one way deltaprop writes a file: whole or not at all, durably, leaving no litter.

Model files and checkpoints both go through :func:`write_atomically`. Standard library only.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import time
from pathlib import Path


def write_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` whole or not at all; an existing ``path`` stays as it was
    until the new file is complete and synced.

    The data goes to an unnamed file (Linux ``O_TMPFILE``), which gets a name only for the
    instant between ``link`` and ``rename``, so even a process killed while writing leaves
    nothing behind; elsewhere, to a named temporary file in the same folder. Temporary files
    an earlier writer of ``path`` left when killed are removed first.
    """
    path = Path(os.fspath(path))
    _sweep_leftovers(path)
    if not _write_unnamed(path, data):
        _write_named(path, data)
    _sync_directory(path.parent)


def _temporary_name(path: Path) -> Path:
    # os.urandom is what secrets.token_hex reads; importing secrets would cost every
    # `import deltaprop` 7 ms (hmac, hashlib, random) for these 12 hex digits.
    return path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp"


def _write_unnamed(path: Path, data: bytes) -> bool:
    """Write through an O_TMPFILE file; False, with nothing done, where there are none."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None:
        return False
    try:
        fd = os.open(path.parent, flag | os.O_WRONLY, 0o666)
    except OSError:  # a file system without unnamed files
        return False
    tmp = _temporary_name(path)
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
    return True


def _write_named(path: Path, data: bytes) -> None:
    """Temporary file in the same folder, fsync, rename over ``path``; on any failure the
    temporary file is removed."""
    # O_EXCL with a random name instead of mkstemp: os.open's mode goes through the umask, so
    # the file gets the permissions any new file would, where mkstemp would force 0600.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = _temporary_name(path)
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


def _sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable; not possible everywhere (Windows), and then
    harmless to skip."""
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
    now = time.time()
    with contextlib.suppress(OSError):  # an unreadable folder: nothing to sweep, write anyway
        for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                if now - leftover.stat().st_mtime > min_age:
                    leftover.unlink()


def _link(fd: int, name: Path) -> None:
    """Give the unnamed file ``fd`` a name: linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd, which
    Python's os.link does not expose (it calls plain link, which fails across /proc)."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, at_symlink_follow = -100, 0x400
    source = f"/proc/self/fd/{fd}".encode()
    if libc.linkat(at_fdcwd, source, at_fdcwd, os.fsencode(name), at_symlink_follow) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), str(name))
