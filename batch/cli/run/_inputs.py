"""INPUT to Tasks: what each kind of input is, how it is cut, and who reads the bytes.

    kind     INPUT                      a chunk is                   read by
    array    .npy, .npz                 rows [a, b) of a memmap      the worker (page faults)
    lines    a text file                lines in bytes [a, b)        the worker (read_range)
    lines    -, .gz                     a list of lines              the coordinator, streamed
    files    folder, glob, --null       paths [a, b) of a list       the worker

Each kind is one class with the same calls: identity() (for --checkpoint), plan(...)
(the chunks, as data that a checkpoint records), tasks(plan, body), and describe(span)
for --dry-run (a stream has no spans to describe). Arrays and files are here; the two
inputs of lines are in _line_inputs.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import stat as stat_module
import sys


from ... import _data, _split
from ...backends._base import Task
from .._exits import UsageError, stdin_open
from . import _npy
from ._chunking import Unchanged, over_rows, parts, stat
from ._line_inputs import StreamInput, TextInput


class ArrayInput:
    kind = "array"

    def __init__(self, path: str, key: str | None):
        self.path, self.key = path, key
        self.watch = Unchanged(path)  # pages are read by workers as the run goes on
        self.array = _npy.load_npz(path, key) if path.endswith(".npz") else _npy.load_npy(path)
        self.total = len(self.array)
        a = self.array
        self.label = f"{path}: {a.dtype} array, shape {a.shape}"

    def identity(self) -> dict:
        return {"kind": self.kind, **stat(self.path), "key": self.key}

    def plan(self, workers, chunks, chunk_size, fixed=False):
        return _split.ranges(self.total, parts(self.total, workers, chunks, chunk_size,
                                                self.array.nbytes))

    def tasks(self, plan, body):
        wrapped = over_rows(body)
        for i, (a, b) in enumerate(plan):
            yield Task(i, range(a, b), b - a, wrapped, self.array, (a, b), shared=True)

    def describe(self, span) -> str:
        a, b = span
        return f"rows {a}-{b - 1}"


class FilesInput:
    """Files as items: a folder (recursively), a glob, or NUL-separated names on stdin.

    Every path that cannot be read (a folder os.walk cannot list, a file that cannot be
    stat'ed or opened for reading) is found before the run and named in full: the run
    fails on them, or, with --keep-going, skips them and says so (`unreadable`).
    """

    kind = "files"
    watch = None  # each file is read whole by one worker: a change is not a mix of two

    def __init__(self, paths: list[str], label: str, *, keep_going: bool = False,
                 unreadable=()):
        found, unreadable = _readable(paths, list(unreadable))
        if unreadable and not keep_going:
            raise UsageError(f"{label}: {len(unreadable)} unreadable path"
                             f"{'s' if len(unreadable) != 1 else ''} (--keep-going skips "
                             f"them): " + "; ".join(f"{p}: {why}" for p, why in unreadable))
        for p, why in unreadable:
            print(f"batch: warning: skipped {p}: {why}", file=sys.stderr)
        if not found:
            raise UsageError(f"{label}: no files")
        self.paths = found
        self.total = len(found)
        self.label = f"{label}: {len(found)} files"

    @classmethod
    def folder(cls, path, keep_going: bool = False):
        unreadable = []
        found = sorted(os.path.join(root, name) for root, _, names
                       in os.walk(path, onerror=lambda exc: unreadable.append(_why(exc)))
                       for name in names)
        return cls(found, path, keep_going=keep_going, unreadable=unreadable)

    @classmethod
    def pattern(cls, pattern, keep_going: bool = False):
        found = sorted(glob.glob(pattern, recursive=True))
        found = [p for p in found if not os.path.isdir(p)]
        unlistable = _unlistable(pattern)
        if not found and not unlistable:
            raise UsageError(f"{pattern}: no files match")
        return cls(found, pattern, keep_going=keep_going, unreadable=unlistable)

    @classmethod
    def null_separated(cls, stream, keep_going: bool = False):
        names = [n.decode("utf-8", "surrogateescape") for n in stream.read().split(b"\0") if n]
        missing = [n for n in names if not os.path.exists(n)]
        if missing:
            raise UsageError(f"{missing[0]}: no such file (one of {len(missing)} names "
                             f"from stdin that do not exist)")
        return cls([n for n in names if not os.path.isdir(n)], "stdin (--null)",
                   keep_going=keep_going)

    def identity(self) -> dict:
        h = hashlib.sha256()
        for p in self.paths:
            h.update(repr(sorted(stat(p).items())).encode())
        return {"kind": self.kind, "files": len(self.paths), "digest": h.hexdigest()}

    def plan(self, workers, chunks, chunk_size, fixed=False):
        return _split.ranges(self.total, parts(self.total, workers, chunks, chunk_size, 0))

    def tasks(self, plan, body):
        wrapped = over_rows(body)
        for i, (a, b) in enumerate(plan):
            yield Task(i, range(a, b), b - a, wrapped, self.paths, (a, b), shared=True)

    def describe(self, span) -> str:
        a, b = span
        return self.paths[a] if b - a == 1 else f"{self.paths[a]} .. {self.paths[b - 1]}"


def _unlistable(pattern: str) -> list[tuple[str, str]]:
    """The folders `pattern` needs that cannot be listed or searched: glob passes over
    them without a word, which would lose their files in silence. Where glob lists a
    folder (for a component with a wildcard, or **) the folder must open; where it looks
    up a plain name in the folders a wildcard matched, they must be searchable."""
    parts = pattern.split(os.sep)
    root = os.sep if pattern.startswith(os.sep) else os.curdir
    unlistable, seen = [], set()

    def check(folder: str, look) -> None:
        folder = folder.rstrip(os.sep) or os.sep
        if folder in seen or not os.path.isdir(folder):
            return
        seen.add(folder)
        try:
            look(folder)
        except OSError as exc:
            unlistable.append((folder, exc.strerror or str(exc)))

    def listing(folder: str) -> None:
        with os.scandir(folder):
            pass

    def searching(folder: str) -> None:
        os.stat(os.path.join(folder, os.curdir))

    for i, part in enumerate(parts):
        if not glob.has_magic(part):
            continue
        prefix = os.sep.join(parts[:i]) or root
        if part == "**":  # every folder below the prefix, as glob's recursion finds them
            listed = glob.glob(os.path.join(prefix, "**", ""), recursive=True)
        elif i and parts[i - 1] == "**":
            listed = []  # the folders the ** before it found: checked there already
        else:
            listed = glob.glob(prefix, recursive=True) if glob.has_magic(prefix) else [prefix]
        for folder in listed:
            check(folder, listing)
        if i + 1 < len(parts) and not glob.has_magic(parts[i + 1]):
            for folder in glob.glob(os.sep.join(parts[:i + 1]), recursive=True):
                check(folder, searching)
    return unlistable


def _why(exc: OSError) -> tuple[str, str]:
    return exc.filename, exc.strerror or str(exc)


def _readable(paths, unreadable: list) -> tuple[list[str], list]:
    """(the regular files among `paths` this process may read, every path it may not).

    Other kinds of file (FIFOs, devices, sockets) are left out, as before: a worker
    reading a FIFO would wait for its writer.
    """
    found = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError as exc:  # a folder without search permission; a dangling link
            unreadable.append(_why(exc))
            continue
        if not stat_module.S_ISREG(st.st_mode):
            continue
        if not os.access(p, os.R_OK):
            unreadable.append((p, os.strerror(errno.EACCES)))
            continue
        found.append(p)
    return found, sorted(unreadable)


def _not_regular(path: str) -> str | None:
    """What `path` is when it is not a regular file ('a pipe', ...), else None.

    Seen as a text file, a pipe had size 0: `batch run <(seq 1000)` counted 0 lines and
    exited 0, and a named FIFO was opened again by the planner and hung.
    """
    mode = os.stat(path).st_mode
    if stat_module.S_ISREG(mode):
        return None
    if stat_module.S_ISFIFO(mode):
        return "a pipe"
    if stat_module.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def open_input(args, sample_kind: str):
    """The input named on the command line, or the sample data fitting the mapper."""
    path = args.input
    try:
        if args.null:
            if path not in (None, "-"):
                raise UsageError("--null reads file names from stdin: give no INPUT")
            stdin_open("file names", "give them on stdin, or a folder or glob as INPUT")
            return FilesInput.null_separated(sys.stdin.buffer, args.keep_going)
        if path is None:
            return _sample(sample_kind, args)
        if path == "-":
            stdin_open("lines", "give them on stdin, or a file as INPUT")
            return StreamInput(path)
        if os.path.isdir(path):
            return FilesInput.folder(path, args.keep_going)
        if not os.path.exists(path):
            if glob.has_magic(path):
                return FilesInput.pattern(path, args.keep_going)
            raise UsageError(f"{path}: no such file or folder")
        kind = _not_regular(path)
        if kind is not None:  # <(cmd), /dev/fd/N, a FIFO: read once, as stdin is
            if path.endswith((".npy", ".npz")):
                raise UsageError(f"{path}: is {kind}, and an array input is memory-mapped: "
                                 f"save it to a file first")
            return StreamInput(path, pipe=True)
        if path.endswith((".npy", ".npz")):
            return ArrayInput(path, args.key)
        if path.endswith(".gz"):
            return StreamInput(path)
        with open(path, "rb"):  # unreadable: say so now, not in every worker
            return TextInput(path)
    except OSError as exc:
        raise UsageError(f"{exc.filename or path}: {exc.strerror or exc}") from None


def _sample(kind: str, args):
    if kind == "lines":
        args.input = str(_data.sample("corpus.txt"))
        return TextInput(args.input)
    if kind == "files":
        args.input = str(_data.sample_dir())
        return FilesInput.folder(args.input)
    args.input = str(_data.sample("numbers.npy"))
    return ArrayInput(args.input, None)
