"""The ``deltaprop`` command: subcommands live in :mod:`deltaprop.commands`, one module each.

Each command module defines ``HELP`` (one line), ``EXAMPLES`` (shown under ``--help``),
``add_arguments(parser)`` and ``run(args) -> int``. Errors the user can fix end the program
with a one-line message: exit code 2 for usage errors, 1 for data or model errors. A
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

COMMANDS = ("train", "evaluate", "predict", "info", "gradcheck", "explain", "playground")


class UsageError(Exception):
    """A bad option or combination of options (exit code 2)."""


# Exception classes that mean bad data or a bad model file (exit code 1).
USER_ERRORS: tuple[type[BaseException], ...] = (
    DataError,
    ModelFileError,
    ValueError,
    FileNotFoundError,
    IsADirectoryError,
    PermissionError,
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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`deltaprop predict ... | head`): stop quietly, as Unix tools do,
        # and keep Python from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except USER_ERRORS as exc:
        if args.debug:
            raise
        print(f"deltaprop {args.command}: error: {exc}", file=sys.stderr)
        return 1
