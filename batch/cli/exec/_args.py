"""`batch exec`'s own options; the ones every subcommand shares come from `_controls`.

Everything after COMMAND belongs to it, options included: argparse's REMAINDER takes the
rest of the line at the first positional argument, and `split` then cuts it at `:::` and
`::::` (as GNU parallel, those two tokens cannot be passed to the program itself).
"""

from __future__ import annotations

import argparse
import re

from .. import _controls
from .._exits import UsageError
from .._parser import add_debug
from ._blocks import block_size

def env_pair(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise argparse.ArgumentTypeError(f"expected VAR=VALUE, got {text!r}")
    return name, value


def add_parser(sub, func):
    p = sub.add_parser(
        "exec", help="run a program on every item, many at a time (GNU parallel's vocabulary)",
        usage="batch exec [OPTIONS] COMMAND [ARG...] [::: ITEM... | :::: FILE...]",
        description="Run COMMAND once per item on every core, with no shell in between. "
        "Items come from ::: groups (several give their cross product), :::: FILE or "
        "-a FILE (one a line), else stdin. In COMMAND, {} is the item, {.} without its "
        "extension, {/} its basename, {//} its dirname, {/.} basename without extension, "
        "{#} the job number, {%} the slot, {1}..{n} columns (--colsep) or ::: groups; with "
        "none the item is appended. Exit status: 0 all succeeded, 1-100 that many jobs "
        "failed, 101 more than 100, with --halt the failing job's status, 130/143 on "
        "SIGINT/SIGTERM, 255 a usage error or a program that cannot run.")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]",
                   help="the program and its arguments, then ::: ITEM... or :::: FILE...")
    src = p.add_argument_group("items")
    src.add_argument("-a", "--arg-file", action="append", default=[], metavar="FILE",
                     help="items from FILE, one a line (again: another ::: group)")
    src.add_argument("-0", "--null", action="store_true",
                     help="items (and --pipe records) end with NUL, as find -print0 writes")
    src.add_argument("--colsep", metavar="REGEX", help="split each item into {1} {2} ...")
    src.add_argument("--pipe", action="store_true",
                     help="cut stdin into blocks and feed each to a job's stdin instead "
                          "(stdin a regular file: cut in place and spliced, never read)")
    src.add_argument("--round-robin", action="store_true",
                     help="--pipe: one long-lived job per slot, each given the next block "
                          "whenever its stdin is free (wc -l prints one count per slot)")
    src.add_argument("--block", type=block_size, default=1 << 20, metavar="SIZE",
                     help="--pipe block size (default 1M), cut at a record end")
    src.add_argument("--recend", metavar="STR",
                     help="--pipe record end (default newline; NUL with -0)")
    out = p.add_argument_group("output")
    out.add_argument("-k", "--keep-order", action="store_true",
                     help="print outputs in input order (default: as jobs finish)")
    out.add_argument("--tag", action="store_true", help="prefix each line with the item")
    out.add_argument("--line-buffer", action="store_true",
                     help="print lines as they come instead of each job's output whole")
    out.add_argument("--results", metavar="DIR",
                     help="also write DIR/SEQ/stdout, stderr, exitval and command")
    how = p.add_argument_group("how to run")
    _controls.add(how, unit="job")
    how.add_argument("--halt", default="never", metavar="WHEN",
                     help="never (default), now,fail=N / soon,fail=N (or N%%): stop at "
                          "failures; now kills running jobs, soon lets them finish")
    how.add_argument("--resume", action="store_true",
                     help="skip the jobs already in --joblog")
    how.add_argument("--resume-failed", action="store_true",
                     help="skip the jobs --joblog shows succeeded; run the failed ones again")
    how.add_argument("--env", action="append", type=env_pair, default=[],
                     metavar="VAR=VALUE", help="set VAR in every job's environment")
    how.add_argument("--workdir", metavar="DIR", help="run the jobs in DIR")
    how.add_argument("--shell", action="store_true",
                     help="COMMAND is one string for /bin/sh -c; values are shell-quoted")
    add_debug(p)
    p.set_defaults(func=func)
    return p


def split(tokens: list[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(command, sources): sources are (':::', items) or ('::::', files), in order."""
    if tokens[:1] == ["--"]:
        tokens = tokens[1:]
    command, sources = [], []
    for tok in tokens:
        if tok in (":::", "::::"):
            sources.append((tok, []))
        elif sources:
            sources[-1][1].append(tok)
        else:
            command.append(tok)
    if not command:
        raise UsageError("no COMMAND given (see 'batch exec --help')")
    for kind, values in sources:
        if not values:
            raise UsageError(f"'{kind}' needs at least one {'item' if kind == ':::' else 'FILE'}")
    return command, sources
