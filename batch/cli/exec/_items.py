"""Where `batch exec`'s items come from: ::: groups, :::: FILE / -a FILE, or stdin.

Several sources give their cross product, the last varying fastest (GNU parallel's
order). A file is read as bytes and decoded with os.fsdecode, so a name that is not
UTF-8 reaches the program as the same bytes. A single source is read lazily (a million
lines of stdin are never all in memory); a cross product needs every source but the
first in memory.
"""

from __future__ import annotations

import itertools
import os
import re
import sys

from .._exits import UsageError, stdin_open


def _records(stream, sep: bytes):
    rest = b""
    while True:
        data = stream.read(1 << 16)
        if not data:
            break
        *lines, rest = (rest + data).split(sep)
        for line in lines:
            yield os.fsdecode(line)
    if rest:
        yield os.fsdecode(rest)


def _file(path: str, sep: bytes):
    if path == "-":
        stdin_open("items", "give them with ::: ITEM..., :::: FILE or -a FILE")
        yield from _records(sys.stdin.buffer, sep)
        return
    with open(path, "rb") as f:
        yield from _records(f, sep)


def sources(args, groups) -> list:
    """One iterable of values per source, checked (files exist) before any job runs."""
    sep = b"\0" if args.null else b"\n"
    out = []
    for kind, values in groups:
        if kind == ":::":
            out.append(values)
        else:
            out.extend(values_of(path, sep) for path in values)
    out.extend(values_of(path, sep) for path in args.arg_file)
    if not out:
        out.append(_file("-", sep))
    return out


def values_of(path: str, sep: bytes):
    if path != "-" and not os.path.isfile(path):
        raise UsageError(f"{path}: no such file" if not os.path.exists(path)
                         else f"{path}: not a file")
    return _file(path, sep)


def items(srcs, colsep: str | None):
    """Tuples of columns, lazily; (total or None)."""
    if len(srcs) == 1:
        rows = ((v,) for v in srcs[0])
        total = len(srcs[0]) if isinstance(srcs[0], list) else None
    else:
        rest = [list(s) for s in srcs[1:]]
        first = list(srcs[0])
        rows = itertools.product(first, *rest)
        total = len(first)
        for r in rest:
            total *= len(r)
    if colsep is None:
        return rows, total
    try:
        pattern = re.compile(colsep)
    except re.error as exc:
        raise UsageError(f"--colsep {colsep!r}: {exc}") from None
    return (tuple(c for v in row for c in pattern.split(v)) for row in rows), total
