"""The one way deltaprop writes a file: whole or not at all, durably, leaving no litter.

Model files and checkpoints both go through :func:`write_atomically`. Standard library only.

A temporary file is named ``.{name}.{pid}.{12 hex digits}.tmp`` after its target and its
writer's process id, and its writer holds an exclusive ``flock`` on it from before it has a
name until it is renamed. :func:`sweep_leftovers` (run before every write and every read of a
target) removes a temporary file of that target only when no one holds its lock *and* its
writer is gone (its process id is not a live process) or it is more than 5 s old: so a file
left by a process killed at any moment goes the next time anyone touches that target, and a
live writer's file is never removed (it holds the lock, and for the microseconds between
creating a named file and locking it, its process is alive).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the process-id and age rules alone
    fcntl = None  # type: ignore[assignment]

STALE_SECONDS = 5.0


def write_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` whole or not at all; an existing ``path`` stays as it was
    until the new file is complete and synced.

    The data goes to an unnamed file (Linux ``O_TMPFILE``), which gets a name only for the
    instant between ``link`` and ``rename``, so even a process killed while writing leaves
    nothing behind; elsewhere, to a named temporary file in the same folder. Temporary files
    an earlier writer of ``path`` left when killed are removed first.
    """
    path = Path(os.fspath(path))
    sweep_leftovers(path)
    try:
        if not _write_unnamed(path, data):
            _write_named(path, data)
    except OSError as exc:
        # The system names the hidden temporary file, or nothing (a full disk): name the
        # user's path instead, keeping the reason and the class (PermissionError, ...).
        if exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, os.fspath(path)) from exc
    _sync_directory(path.parent)


def _temporary_name(path: Path) -> Path:
    # os.urandom is what secrets.token_hex reads; importing secrets would cost every
    # `import deltaprop` 7 ms (hmac, hashlib, random) for these 12 hex digits.
    return path.parent / f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp"


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
        _lock(fd)
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
        _lock(fd)
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


def sweep_leftovers(path: str | os.PathLike) -> None:
    """Remove the temporary files that writers of ``path`` killed before renaming them left
    behind (see the module docstring for why a live writer's file is never removed). Never
    raises: an unreadable folder or a file that cannot be removed is left as it is."""
    path = Path(os.fsdecode(path))  # str, bytes or path-like, as dp.load accepts
    prefix = f".{path.name}."
    with contextlib.suppress(OSError):
        for leftover in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
            with contextlib.suppress(OSError):
                _remove_if_abandoned(leftover, leftover.name[len(prefix) : -len(".tmp")])


def _remove_if_abandoned(leftover: Path, middle: str) -> None:
    fd = os.open(leftover, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not _try_lock(fd):
            return  # its writer is alive and writing
        pid_text = middle.split(".")[0] if "." in middle else ""
        gone = pid_text.isdigit() and not _process_alive(int(pid_text))
        if gone or time.time() - os.fstat(fd).st_mtime > STALE_SECONDS:
            leftover.unlink()
    finally:
        os.close(fd)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or a number we cannot ask about: assume alive
    return True


def _lock(fd: int) -> None:
    """Hold an exclusive lock on the file ``fd`` until it is closed (none where there is no
    flock: the process-id and age rules then protect it alone)."""
    if fcntl is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _try_lock(fd: int) -> bool:
    """Whether no one else holds the lock of ``fd``'s file (True where locks are missing)."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True  # a file system without locks: the other rules decide
    return True


def _link(fd: int, name: Path) -> None:
    """Give the unnamed file ``fd`` a name: linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd, which
    Python's os.link does not expose (it calls plain link, which fails across /proc)."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, at_symlink_follow = -100, 0x400
    source = f"/proc/self/fd/{fd}".encode()
    if libc.linkat(at_fdcwd, source, at_fdcwd, os.fsencode(name), at_symlink_follow) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), str(name))
