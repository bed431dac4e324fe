"""Ctrl-C while the ``deltaprop`` command is still loading: "interrupted", never a traceback.

The command's ``main`` catches KeyboardInterrupt from its first line on, but the console
script (and ``python -m deltaprop``) import the package before ``main`` runs: a tenth of a
second or more of NumPy and the layers, during which Python would print a KeyboardInterrupt
traceback. This module is the package's first import and installs its hook when imported:
only in the command-line process (its ``argv[0]`` is the ``deltaprop`` script, or ``-m`` while
``python -m deltaprop`` loads) and without ``--debug`` does it replace ``sys.excepthook`` with
one that writes "interrupted" for a KeyboardInterrupt, or for an error raised because of one
(NumPy turns an interrupted import of its C core into an ImportError); Python still exits by
SIGINT (status 130). Any other program importing deltaprop keeps its hook.
"""

from __future__ import annotations

import os
import sys


def install() -> None:
    argv = sys.argv or [""]
    script = os.path.basename(argv[0])
    if script not in ("deltaprop", "deltaprop.exe", "-m") or "--debug" in argv:
        return
    previous = sys.excepthook

    def interrupted(kind: type[BaseException], value: BaseException, tb: object) -> None:
        if _caused_by_interrupt(value):
            print("interrupted", file=sys.stderr)
            return
        previous(kind, value, tb)  # type: ignore[arg-type]

    sys.excepthook = interrupted


def _caused_by_interrupt(error: BaseException | None) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


install()
