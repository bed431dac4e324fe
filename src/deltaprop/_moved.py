"""The module paths of deltaprop 0.1, before the package was layered, still import.

``import deltaprop.datasets`` (or ``.persistence``, ``.checkpoint``, ...) gives the module that
now holds that code, under its new name, so code and notebooks written against 0.1 keep
working. An import hook rather than a file per old name: the old names stay out of the tree
and out of the layers' contract.
"""

from __future__ import annotations

import importlib
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType

MOVED = {
    "activations": "deltaprop.core.activations",
    "losses": "deltaprop.core.losses",
    "init": "deltaprop.core.init",
    "validation": "deltaprop.core.validation",
    "network": "deltaprop.core.network",
    "gradcheck": "deltaprop.core.gradcheck",
    "optimizers": "deltaprop.optim.optimizers",
    "schedules": "deltaprop.optim.schedules",
    "datasets": "deltaprop.data.datasets",
    "readers": "deltaprop.data.readers",
    "preprocessing": "deltaprop.data.preprocessing",
    "persistence": "deltaprop.io.model_file",
    "checkpoint": "deltaprop.io.checkpoint_file",
    "training": "deltaprop.train.loop",
}


class _Alias:
    """Finds ``deltaprop.<old name>`` and loads it as the module that replaced it.

    A meta path finder and loader by protocol (find_spec; create_module, exec_module), not by
    subclassing importlib.abc, whose import alone would cost ``import deltaprop`` 15 ms.
    """

    def find_spec(self, fullname: str, path: object, target: object = None) -> ModuleSpec | None:
        prefix, _, leaf = fullname.partition(".")
        if prefix != "deltaprop" or leaf not in MOVED:
            return None
        return ModuleSpec(fullname, self)

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return importlib.import_module(MOVED[spec.name.partition(".")[2]])

    def exec_module(self, module: ModuleType) -> None:
        pass  # already executed under its new name


def install() -> None:
    """Make the old paths importable; called once ``import deltaprop`` has run.

    An old path whose new module is already loaded goes straight into ``sys.modules``: were it
    loaded through the finder, the import system would then set it as an attribute of the
    package, and ``deltaprop.gradcheck`` (the old module) would shadow ``dp.gradcheck`` (the
    function). The finder serves the rest (the data modules, loaded on first use).
    """
    for old, new in MOVED.items():
        if new in sys.modules:
            sys.modules.setdefault(f"deltaprop.{old}", sys.modules[new])
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())
