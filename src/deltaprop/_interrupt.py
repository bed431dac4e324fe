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

The chain of causes does not always show the interrupt: a SIGINT while NumPy's C core
imports ``datetime`` through ``PyCapsule_Import`` comes out as ImportError("PyCapsule_Import
could not import module "datetime"") with no KeyboardInterrupt behind it (CPython 3.11; it
made the command print NumPy's traceback about once in 130 interrupts, 1-3 ms after NumPy's
core was mapped). So the hook also installs a SIGINT handler that notes the signal before
raising KeyboardInterrupt as Python's own does, and any error that escapes after a SIGINT
arrived counts as caused by it.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import time
from collections.abc import Callable  # 0.1 ms; typing would add 2 ms before the hook is in place


def install() -> None:
    argv = sys.argv or [""]
    script = os.path.basename(argv[0])
    if script not in ("deltaprop", "deltaprop.exe", "-m") or "--debug" in argv:
        return
    previous = sys.excepthook
    signals_received = _note_signals()

    def interrupted(kind: type[BaseException], value: BaseException, tb: object) -> None:
        if signals_received or _caused_by_interrupt(value):
            print("interrupted", file=sys.stderr)
            return
        previous(kind, value, tb)  # type: ignore[arg-type]

    sys.excepthook = interrupted
    sys.unraisablehook = _interrupt_again(sys.unraisablehook)


def _note_signals() -> list[int]:
    """Handle SIGINT as Python does (KeyboardInterrupt), noting each in the list returned."""
    received: list[int] = []

    def note_and_interrupt(signum: int, frame: object) -> None:
        received.append(signum)
        signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not if ignored
        try:
            signal.signal(signal.SIGINT, note_and_interrupt)
        except ValueError:  # imported outside the main thread: signals are not ours to take
            pass
    return received


def _interrupt_again(previous: Callable[[object], object]) -> Callable[[object], None]:
    """An unraisable hook that delivers a lost Ctrl-C again.

    A KeyboardInterrupt raised inside a callback that Python cannot propagate from (the
    import system's weakref callback for its module locks, seen here 60 ms into the command,
    or a __del__) is printed as "Exception ignored in ..." with a traceback, and the command
    then runs on as if Ctrl-C had not been pressed. So the hook has the interrupt delivered
    again once the callback has returned, to land in the command's own code, whose handlers
    say "interrupted". Not from the hook itself: signal.raise_signal, os.kill and even
    ``_thread.interrupt_main`` have the handler run at the hook's next instruction, inside
    the hook, where it is ignored again. A thread of its own flags SIGINT a millisecond
    later, as its arrival does, and the main thread runs the handler at its next instruction.
    """

    def hook(unraisable: object) -> None:  # sys.UnraisableHookArgs
        if isinstance(getattr(unraisable, "exc_value", None), KeyboardInterrupt):
            try:
                _thread.start_new_thread(_interrupt_main_soon, ())
            except RuntimeError:  # Python is shutting down: nothing is left to interrupt
                pass
            return
        previous(unraisable)

    return hook


def _interrupt_main_soon() -> None:
    time.sleep(0.001)  # the main thread, which held the GIL, has left the hook by then
    _thread.interrupt_main(signal.SIGINT)


def _caused_by_interrupt(error: BaseException | None) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


install()
