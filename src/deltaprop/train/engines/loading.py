"""Loading the Numba kernels, once per process, and only when a fast engine first needs them.

kernels.py, batch_kernels.py, updates.py and online_kernel.py import Numba at their top, so
they are imported here by name (importlib), never at the top of another module: ``import
deltaprop`` stays as cheap as NumPy alone, and where Numba is missing training runs on the
reference engine after one warning.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType
from typing import Any

from deltaprop.train.engines import compile_record

_kernels: Any = None  # the kernels module once loaded; False when Numba is unavailable


def load_kernels() -> ModuleType | None:
    """The kernels module (importing and compiling Numba on first use), or None without Numba."""
    global _kernels
    if _kernels is None:
        compile_record.discard_stale_kernels()
        try:
            _kernels = importlib.import_module("deltaprop.train.engines.kernels")
        except ImportError as exc:
            _kernels = False
            reason = (str(exc).splitlines() or ["import failed"])[0]
            warnings.warn(
                f"deltaprop: Numba is unavailable ({reason}); training runs on the slower "
                "NumPy path",
                RuntimeWarning,
                stacklevel=4,
            )
    return _kernels or None


def kernels_loaded() -> bool:
    """Whether this process has loaded the kernels already (so using them costs nothing)."""
    return bool(_kernels)


def require_kernels() -> ModuleType:
    """The kernels module, for an engine that cannot run without it (the chooser sends such
    trainings elsewhere when Numba is missing)."""
    kernels = load_kernels()
    if kernels is None:
        raise RuntimeError("the fast engines need Numba, which is not available")
    return kernels


def batch_kernels() -> ModuleType:
    """The batch engine's fused loops (batch_kernels.py), loaded with the kernels."""
    require_kernels()
    return importlib.import_module("deltaprop.train.engines.batch_kernels")


def update_kernels() -> ModuleType:
    """The updates module (the optimizers' fused updates), loaded with the kernels."""
    require_kernels()
    return importlib.import_module("deltaprop.train.engines.updates")


def online_kernel() -> ModuleType:
    """The online_kernel module (the whole online epoch as one Numba call), loaded with the
    kernels."""
    require_kernels()
    return importlib.import_module("deltaprop.train.engines.online_kernel")
