"""The command line: one parser, a subparser per subcommand.

Each subcommand declares its own options in its own room (`run/_args.py`, `info.py`,
`bench.py`); what they share comes from `_controls`. The parser prints one line per error,
not argparse's usage block: scripts grep stderr, and the usage is one `--help` away.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from .. import __version__

_NEGATIVE = re.compile(r"-\d+(\.\d*)?|-\.\d+")


class _Formatter(argparse.HelpFormatter):
    """argparse's own, told the width. Its default asks shutil, whose import (with zlib,
    bz2 and lzma) was 3-4 ms of every start-up, for a formatter that every add_argument
    makes and only --help uses."""

    def __init__(self, prog, **kwargs):
        kwargs.setdefault("width", _columns() - 2)  # as argparse: 2 short of the terminal
        super().__init__(prog, **kwargs)


def _columns() -> int:
    """shutil.get_terminal_size's columns: $COLUMNS, else the terminal's, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", 0))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"batch: error: {message} (see '{self.prog} --help')\n")

    def _parse_optional(self, arg_string):
        # A negative number is a value: `--timeout -1` must reach --timeout's own check
        # ("must be a positive number of seconds"). argparse takes it for an option once
        # a parser has one that looks like a number, and both subcommands have -0 (GNU
        # parallel's --null), which an exact match still finds first; `-0.5` would
        # otherwise even be read as -0 with the argument ".5".
        if _NEGATIVE.fullmatch(arg_string) and arg_string not in self._option_string_actions:
            return None
        return super()._parse_optional(arg_string)


def build(subcommands) -> Parser:
    """The parser; each of `subcommands` has `add_parser(sub)`, which sets `func`."""
    parser = Parser(prog="batch", description="Parallel map-reduce over arrays, lines and "
                    "files, and programs run over items, on every core.")
    parser.add_argument("--version", action="version", version=f"batch {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in subcommands:
        command.add_parser(sub)
    return parser


def add_debug(p) -> None:
    # SUPPRESS: the subcommand's default must not overwrite `batch --debug run`.
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks")
