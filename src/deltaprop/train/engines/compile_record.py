"""What this machine's Numba cache holds for deltaprop: the record a fit's engine is priced by.

A fast engine's first fit of a configuration on a machine compiles its kernels (about 1 s:
0.74-0.96 s for the batch engine, 1.20 s for the online kernel on 2026-12-04; README "What a
first run costs"); every later process loads them from Numba's cache. The chooser
(:mod:`.choose`) needs to know which of the two a fit would pay before it runs one, without
importing Numba (which costs what a small fit does), so the engines leave a record here:

- ``compiled``: an engine has trained this configuration with its kernels, so Numba's cache
  holds them (:func:`mark_compiled`, after the engine's first epoch in a process);
- ``forgone_seconds``: what the kernels would have saved, beyond loading them, on the fits of
  this configuration that ran on NumPy in earlier processes because a compilation did not pay
  yet (:func:`add_forgone`): once that and the next fit's saving exceed the compilation, it
  compiles (the rent-or-buy rule, across processes).

One small JSON file per configuration, written atomically (``io.atomic``), in a folder that is
emptied with Numba's cache: ``$NUMBA_CACHE_DIR/deltaprop`` when that is set, else the engines'
``__pycache__`` where Numba caches them when it can write there, else the user's cache
folder for Numba (``$XDG_CACHE_HOME/numba/deltaprop``, ``~/.cache/numba/deltaprop``). The
environment variable DELTAPROP_COMPILE_RECORD names another folder (the test suite uses its
own), or turns the record off when empty: then every configuration counts as not compiled.
A file's name hashes the configuration with a stamp of what Numba's cache depends on (the
Python and Numba installations, the kernels' sources, DELTAPROP_SPECIALISATIONS), so a new
version of any of them starts afresh. A record that cannot be read or written is treated as
empty: the cost is a fit on NumPy that the kernels would have run, or a compilation the chooser
did not expect, never a wrong result (every engine computes the reference's formulas).

Numba's cache itself has one gap, closed here: it checks a cached function against that
function's own file only, so a kernel compiled with a helper from another file (every kernel
compiles kernels.py's rules into itself) would load unchanged after that file was edited.
:func:`discard_stale_kernels`, run before the kernels are first imported in a process, keeps
a digest of every kernel source beside Numba's files and deletes the cached kernels when it
changes. (Found when a source tree's cache, after a day of edits to kernels.py and
compiling.py, gave an online kernel training 1.09 M examples/s against 1.55-1.69 M when
compiled afresh from the same sources.)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import sys
from functools import cache
from pathlib import Path
from typing import NamedTuple

from deltaprop.core.network import FeedForward
from deltaprop.io.atomic import write_atomically
from deltaprop.optim.base import Optimizer

__all__ = [
    "Entry",
    "add_forgone",
    "configuration",
    "discard_stale_kernels",
    "mark_compiled",
    "numba_cache_folder",
    "read",
    "record_folder",
]

RECORD_VARIABLE = "DELTAPROP_COMPILE_RECORD"
# The modules whose source Numba's cache of the kernels depends on.
KERNEL_SOURCES = (
    "compiling",
    "exponential",
    "kernels",
    "batch_kernels",
    "updates",
    "online_kernel",
)
_HERE = Path(__file__).resolve().parent


class Entry(NamedTuple):
    """A configuration's record: compiled into Numba's cache, and the seconds forgone."""

    compiled: bool = False
    forgone_seconds: float = 0.0


_compiled_here: set[str] = set()  # marked by this process already (one write each)


def configuration(engine: str, net: FeedForward, opt: Optimizer) -> str:
    """What decides which kernels ``engine`` ("batch" or "online") compiles for a fit of
    ``net`` with ``opt``, in words (compiling.Specialised). The online kernel is compiled for
    the hidden layers' activation (one for them all, or "mixed"), the output's, the loss and
    the SGD variant (plain, momentum, Nesterov: the rates, decay and dampening are run-time
    numbers); the batch engine's loops and updates for the layers' activations, the loss and
    the optimizer's settings but the learning rate. The accuracy rule is left out (the
    chooser does not know it beforehand): another one compiles its output loop, about 0.1 s."""
    loss = net.loss_function.name
    if engine == "online":
        hidden = {layer.activation.name for layer in net.layers[:-1]}
        shared = hidden.pop() if len(hidden) == 1 else "mixed" if hidden else "none"
        output = net.layers[-1].activation.name
        return f"online {net.dtype} {shared},{output} {loss} {getattr(opt, 'variant', '')}"
    settings = {k: v for k, v in opt.config().items() if k != "lr"}
    activations = ",".join(layer.activation.name for layer in net.layers)
    return f"batch {net.dtype} {activations} {loss} {json.dumps(settings, sort_keys=True)}"


def _user_cache() -> Path:
    """Numba's user-wide cache folder (numba.misc.appdirs.user_cache_dir("numba"))."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "numba"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "numba" / "numba" / "Cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "numba"


def _beside_numba(name: str) -> Path:
    """The folder ``name`` in Numba's cache for the engines, by Numba's order of locators:
    ``$NUMBA_CACHE_DIR/name`` when that is set, else the engines' ``__pycache__`` when files
    can be created there (Numba's own test), else ``name`` in the user's cache for Numba."""
    numba_cache = os.environ.get("NUMBA_CACHE_DIR")
    if numba_cache:
        return Path(numba_cache) / name
    here = os.path.abspath(os.path.dirname(__file__))  # as Numba takes it: links unresolved
    in_tree = Path(here) / "__pycache__"
    if os.access(in_tree if in_tree.is_dir() else here, os.W_OK):
        return in_tree
    return _user_cache() / name


def record_folder() -> Path | None:
    """Where the record lives (see the module docstring); None when it is turned off."""
    chosen = os.environ.get(RECORD_VARIABLE)
    if chosen is not None:
        return Path(chosen) if chosen else None
    return _beside_numba("deltaprop")


@cache
def _stamp() -> str:
    """What Numba's cache of the kernels depends on, as its index checks it: file stamps
    (modification time and size) of the kernels' sources and of Numba's, and Python's
    version. Numba's is found without importing it."""
    parts = [sys.version, os.environ.get("DELTAPROP_SPECIALISATIONS", "")]
    spec = importlib.util.find_spec("numba")
    paths = [Path(spec.origin)] if spec is not None and spec.origin else []
    paths += [_HERE / f"{name}.py" for name in KERNEL_SOURCES]
    for path in paths:
        with contextlib.suppress(OSError):
            st = path.stat()
            parts.append(f"{path.name}:{st.st_mtime_ns}:{st.st_size}")
    return "\n".join(parts)


def _path(folder: Path, config: str) -> Path:
    digest = hashlib.sha256(f"{_stamp()}\n{config}".encode()).hexdigest()[:24]
    return folder / f"deltaprop-{digest}.json"


def read(config: str) -> Entry:
    """The record of ``config`` (an empty Entry when there is none or it cannot be read)."""
    return Entry(compiled=True) if config in _compiled_here else read_from_disk(config)


def _write(config: str, entry: Entry) -> None:
    folder = record_folder()
    if folder is None:
        return
    text = json.dumps({"configuration": config, **entry._asdict()}, indent=1)
    with contextlib.suppress(OSError):  # a record that cannot be written is an empty one
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(_path(folder, config), text.encode())


def mark_compiled(config: str) -> None:
    """Record that an engine has run ``config``'s kernels, so Numba has compiled (and cached)
    them; written once per process and configuration."""
    if config in _compiled_here:
        return
    _compiled_here.add(config)
    if not read_from_disk(config).compiled:
        _write(config, Entry(compiled=True))


def read_from_disk(config: str) -> Entry:
    """The record as the files hold it, whatever this process has marked."""
    folder = record_folder()
    if folder is None:
        return Entry()
    try:
        data = json.loads(_path(folder, config).read_text(encoding="utf-8"))
        return Entry(bool(data["compiled"]), float(data["forgone_seconds"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Entry()


def add_forgone(config: str, seconds: float) -> None:
    """Add ``seconds`` to what compiling ``config`` would have saved (see the module
    docstring); nothing once it is compiled."""
    entry = read(config)
    if entry.compiled or seconds <= 0:
        return
    _write(config, Entry(False, entry.forgone_seconds + seconds))


# ------------------------------------------------------------------ kernels cached before an edit
SOURCES_STAMP = "deltaprop-kernel-sources.sha256"


def numba_cache_folder() -> Path:
    """Where Numba caches the kernels: the engines' ``__pycache__``, or, in a cache folder of
    its own, ``<folder>_<sha1 of the folder's path>`` (numba.core.caching's subpath)."""
    here = os.path.abspath(os.path.dirname(__file__))
    return _beside_numba(f"{os.path.basename(here)}_{hashlib.sha1(here.encode()).hexdigest()}")


def _sources_digest() -> str:
    digest = hashlib.sha256()
    for name in KERNEL_SOURCES:
        digest.update((_HERE / f"{name}.py").read_bytes())
    return digest.hexdigest()


def discard_stale_kernels() -> int:
    """Delete Numba's cached kernels if any kernel source has changed since they were cached;
    the number of files deleted. Numba checks a cached function against its own file only,
    so a kernel cached before an edit of a helper it compiles in (kernels.py, compiling.py's
    options) would load with the helper's old code: slower, or computing the old rule. An
    install renews every file, a source tree does not. Run before the kernels are imported;
    a folder that cannot be read or written is left as it is (Numba then compiles anew or
    loads what it finds, as without this check)."""
    folder = numba_cache_folder()
    stamp = folder / SOURCES_STAMP
    try:
        digest = _sources_digest()
        if stamp.is_file() and stamp.read_text(encoding="ascii") == digest:
            return 0
    except OSError:
        return 0
    removed = 0
    for name in KERNEL_SOURCES:
        for pattern in (f"{name}.*.nbi", f"{name}.*.nbc"):
            for path in folder.glob(pattern):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += 1
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(stamp, digest.encode("ascii"))
    return removed
