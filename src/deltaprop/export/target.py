"""Where an export is written: checked before anything is computed, so that a bad path loses
nothing and leaves no file (the writing itself is
:func:`deltaprop.io.atomic.write_atomically`'s)."""

from __future__ import annotations

import errno
import os
from pathlib import Path


def checked_target(path: str | os.PathLike | None, what: str) -> Path | None:
    """``path`` as a Path to write ``what`` to, or None; its folder must exist and the path
    must not be a folder, checked before anything is computed or written."""
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a file path. Received: path={path!r}")
    target = Path(os.fspath(path))
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(
            errno.ENOENT,
            f"cannot write the {what}: the folder {str(folder)!r} does not exist",
            str(target),
        )
    if target.is_dir():
        raise IsADirectoryError(
            errno.EISDIR, f"cannot write the {what}: the path is a folder", str(target)
        )
    return target
