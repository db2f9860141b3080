"""Replacement strings: an item's columns, its job number and slot, into a command.

    {}    the item (the columns of a ::: cross product or --colsep, joined by a space)
    {.}   without its extension          a/b.tar.gz -> a/b.tar
    {/}   basename                       a/b.tar.gz -> b.tar.gz
    {//}  dirname                        a/b.tar.gz -> a        (b -> .)
    {/.}  basename without extension     a/b.tar.gz -> b.tar
    {#}   job number, from 1             {%}  slot, 1..workers
    {N}   column N (also {N.} {N/} {N//} {N/.})

The meanings are GNU parallel's, checked against it (tests/test_exec_replace.py). A
replacement string inside a longer argument (`--out={.}.txt`) substitutes in place: an
argument is never split, so a value with spaces, quotes or `$(...)` stays one argument and
no shell ever parses it. With `shell=True` the command is one string for `sh -c` and
every value is quoted with shlex.quote first. With no replacement string at all the
columns are appended as the last arguments, as GNU parallel does.

Values are `str`; bytes that are not UTF-8 travel as surrogate escapes (os.fsdecode) and
become the same bytes again in the program's argv (posix_spawn encodes with fsencode).
"""

from __future__ import annotations

import os
import re
import shlex

_TOKEN = re.compile(r"\{(#|%|(\d*)(\.|//|/\.|/)?)\}")
_EXTENSION = re.compile(r"\.[^/.]*$")


def _dirname(value: str) -> str:
    # Perl's File::Basename::dirname, which GNU parallel uses: "f/" -> ".", "/x" -> "/".
    head = os.path.dirname(value.rstrip("/") or value)
    return head or "."


_TRANSFORMS = {
    None: lambda v: v,
    ".": lambda v: _EXTENSION.sub("", v),
    "/": lambda v: v.rsplit("/", 1)[-1],
    "//": _dirname,
    "/.": lambda v: _EXTENSION.sub("", v.rsplit("/", 1)[-1]),
}


def text(value) -> str:
    """An item as command-line text: bytes and paths through os.fsdecode, else str()."""
    if isinstance(value, (bytes, os.PathLike)):
        return os.fsdecode(value)
    return value if isinstance(value, str) else str(value)


class Template:
    """A command with replacement strings; `render` makes one job's argv."""

    def __init__(self, command, *, shell: bool = False):
        if shell:
            if isinstance(command, (list, tuple)):
                if len(command) != 1:
                    raise ValueError("with a shell the command is one string "
                                     f"(got {len(command)} arguments)")
                command = command[0]
            self.parts = [text(command)]
        else:
            if isinstance(command, (str, bytes, os.PathLike)):
                raise ValueError("the command is a list of arguments (a single string "
                                 "needs shell=True)")
            self.parts = [text(a) for a in command]
        if not self.parts or not self.parts[0]:
            raise ValueError("no command given")
        self.shell = shell
        self.columns_used = max((int(m.group(2)) for p in self.parts
                                 for m in _TOKEN.finditer(p) if m.group(2)), default=0)
        self.replaces = any(_TOKEN.search(p) for p in self.parts)

    @property
    def program(self) -> str | None:
        """The program to run, when it is fixed (no replacement string in it)."""
        if self.shell:
            return "/bin/sh"
        return None if _TOKEN.search(self.parts[0]) else self.parts[0]

    def render(self, columns, seq: int, slot: int) -> list[str]:
        columns = [text(c) for c in columns]
        if not self.replaces and not self.shell:  # `batch exec true`: once a job, cheap
            return [*self.parts, *columns]
        quote = shlex.quote if self.shell else (lambda v: v)

        def value(m):
            what = m.group(1)
            if what == "#":
                return str(seq)
            if what == "%":
                return str(slot)
            if m.group(2):
                n = int(m.group(2))
                if n > len(columns):
                    return ""  # as GNU parallel: a column the item lacks is empty
                v = columns[n - 1]
            else:
                v = " ".join(columns)
            return quote(_TRANSFORMS[m.group(3)](v))

        args = [_TOKEN.sub(value, p) for p in self.parts]
        if self.shell:
            line = args[0] if self.replaces else " ".join([args[0], *map(shlex.quote, columns)])
            return ["/bin/sh", "-c", line]
        return args if self.replaces else args + columns


def shell_line(argv) -> str:
    """argv as one line a shell would run as the same argv (for --dry-run)."""
    return " ".join(shlex.quote(a) for a in argv)
