"""Inputs whose items are lines: a text file read in byte ranges, or a stream.

A text file is cut where lines start (`_lines.boundaries`) and each worker reads its own
range: no line passes through the coordinator, and the plan is a list of byte spans.
stdin and .gz cannot be seeked: the coordinator reads their lines and hands them out in
lists, in chunks sized by measuring the work done, of a fixed number of lines (which a
checkpoint needs to find the same chunks again), or about N equal shares of the input's
bytes where its size is known (--chunks N, _stream_chunks.py).
"""

from __future__ import annotations

import gzip
import os
import sys

from ... import _split
from ...backends._base import Task
from .._exits import UsageError
from . import _lines, _stream_chunks
from ._chunking import STREAM_CHUNK_LINES, Unchanged, over_lines, parts, stat


class TextInput:
    """A seekable text file: workers read their own byte ranges."""

    kind = "lines"
    total = None

    def __init__(self, path: str):
        self.path = path
        self.watch = Unchanged(path)
        self.size = os.path.getsize(path)
        self.label = f"{path}: text, {self.size} bytes"

    def identity(self) -> dict:
        return {"kind": self.kind, **stat(self.path)}

    def plan(self, workers, chunks, chunk_size, fixed=False):
        lines = None
        if chunk_size is not None:  # about chunk_size lines: measure the first MiB
            with open(self.path, "rb") as f:
                head = f.read(1 << 20)
            per_line = len(head) / max(1, head.count(b"\n"))
            lines = max(1, round(self.size / per_line))
        n = parts(lines or 0, workers, chunks, chunk_size, self.size)
        return [list(s) for s in _lines.boundaries(self.path, self.size, max(1, n))]

    def tasks(self, plan, body):
        lines_body = over_lines(body)
        read = lambda span: lines_body(_lines.read_range(*span))  # noqa: E731
        for i, (a, b) in enumerate(plan):
            yield Task(i, None, 0, read, (self.path, a, b))

    def describe(self, span) -> str:
        a, b = span
        return f"bytes {a}-{b - 1}"


class StreamInput:
    """stdin, a .gz file, or a pipe (`<(cmd)`, /dev/fd/N, a FIFO): the coordinator reads
    lines and hands them out in lists.

    A pipe can be read only once, like stdin: it is opened here, once (a FIFO's open waits
    for its writer, as `cat` does), and gzip is told from its first two bytes by peeking,
    which consumes nothing.
    """

    kind = "lines"
    total = None

    def __init__(self, path: str, *, pipe: bool = False):
        self.path = path
        self.once = pipe or path == "-"  # read once: no second pass, no stat identity
        self._pipe = None
        self.watch = None if self.once else Unchanged(path)
        if path == "-":
            self.label = "stdin: lines"
            return
        if pipe:
            self._pipe = open(path, "rb")
            gz = self._pipe.peek(2)[:2] == b"\x1f\x8b"
            self.label = f"{path}: {'gzip-compressed lines' if gz else 'lines'}, from a pipe"
            if gz:
                self._pipe = gzip.GzipFile(fileobj=self._pipe, mode="rb")
            return
        with open(path, "rb") as f:
            if f.read(2) != b"\x1f\x8b":
                raise UsageError(f"{path}: not a gzip file (no gzip magic bytes)")
        self.label = f"{path}: gzip-compressed lines"

    def identity(self) -> dict:
        if self.once:  # checked chunk by chunk instead (see _checkpoint)
            return {"kind": self.kind, "path": self.path}
        return {"kind": self.kind, **stat(self.path)}

    def plan(self, workers, chunks, chunk_size, fixed=False):
        if chunks is not None:
            if self._pipe is not None:
                raise UsageError(f"--chunks N needs the input's size, and {self.path} is a "
                                 f"pipe: give --chunk-size LINES")
            return {"chunk_size": None, "chunks": chunks,
                    "bytes": _stream_chunks.known_size(self.path)}
        return {"chunk_size": chunk_size or (STREAM_CHUNK_LINES if fixed else None)}

    def tasks(self, plan, body):
        if plan.get("chunks"):
            return _split.Source(self._cut(plan["chunks"], plan["bytes"], over_lines(body)),
                                 None)
        # A Source: with no chunk size, its feedback() sizes the next chunks by timing.
        return _split.plan(self._stream(), over_lines(body), workers=1,
                           chunksize=plan["chunk_size"])

    def _cut(self, n, size, body):
        start = 0
        for index, lines in enumerate(self._stream(n, size)):
            yield Task(index, range(start, start + len(lines)), len(lines), body, lines)
            start += len(lines)

    def _stream(self, n=None, size=None):
        """Lines one by one, or (with n) in about n lists of about size/n bytes each."""
        if self.path == "-":
            f = sys.stdin.buffer
            yield from (_lines.stream_lines(f) if n is None else _stream_chunks.cut(f, n, size))
            return
        try:
            if self._pipe is not None:
                with self._pipe:
                    yield from _lines.stream_lines(self._pipe)
                return
            if n is None:
                yield from _lines.file_lines(self.path)
                return
            with _lines.open_binary(self.path) as f:
                yield from _stream_chunks.cut(f, n, size, (f.fileobj, os.path.getsize(self.path)))
        except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
            raise UsageError(f"{self.path}: cannot decompress: {exc}") from None
