"""The ``deltaprop`` command: subcommands live in :mod:`deltaprop.commands`, one module each.

Each command module defines ``HELP`` (one line), ``EXAMPLES`` (shown under ``--help``),
``add_arguments(parser)`` and ``run(args) -> int``. Errors the user can fix end the program
with a one-line message: exit code 2 for usage errors, 1 for data or model errors and for
every ``OSError`` (the path and the system's reason: a full disk, a read-only file system, a
name too long, ...) or lack of memory, 130 for Ctrl-C at any moment ("interrupted"). A
traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from deltaprop._version import __version__
from deltaprop.errors import DataError, ModelFileError

COMMANDS = ("train", "evaluate", "predict", "info", "gradcheck", "explain", "playground", "export")


class UsageError(Exception):
    """A bad option or combination of options (exit code 2)."""


# Exception classes that mean bad data, a bad model file, or a file or folder the system
# cannot read or write (exit code 1).
USER_ERRORS: tuple[type[BaseException], ...] = (
    DataError,
    ModelFileError,
    ValueError,
    OSError,
    MemoryError,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deltaprop",
        description="Train and inspect neural networks trained by backpropagation.",
        epilog="Run 'deltaprop COMMAND --help' for a command's options and examples.",
    )

    parser.add_argument("--version", action="version", version=f"deltaprop {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"deltaprop.commands.{name}")
        cmd = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            epilog=module.EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.add_argument("--debug", action="store_true", help="show tracebacks on errors")
        module.add_arguments(cmd)
        cmd.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code. Ctrl-C at any moment from here on, imports of the
    commands included, ends with "interrupted" and 130, never a traceback."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(arguments)
    except KeyboardInterrupt:
        if "--debug" in arguments:
            raise
        print("interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits with 2 on a usage error
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except UsageError as exc:
        if args.debug:
            raise
        print(f"deltaprop {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`deltaprop predict ... | head`): stop quietly, as Unix tools do,
        # and keep Python from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except USER_ERRORS as exc:
        if args.debug:
            raise
        print(f"deltaprop {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 1


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line: for an OSError, the path it names and the system's
    reason (``out.csv: No space left on device``), without Python's ``[Errno 28]``."""
    if isinstance(exc, OSError) and exc.strerror:
        names = [n for n in (exc.filename, exc.filename2) if n is not None]
        where = " -> ".join(os.fsdecode(n) if isinstance(n, bytes) else str(n) for n in names)
        text = f"{where}: {exc.strerror}" if where else exc.strerror
    elif isinstance(exc, MemoryError):
        text = f"not enough memory{': ' + str(exc) if str(exc) else ''}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split("\n"))
