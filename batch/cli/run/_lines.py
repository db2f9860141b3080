"""Lines out of bytes: byte ranges that workers read themselves, and streams.

A big text file is never read by the coordinator: it only finds where chunks start
(`boundaries`: one short read per chunk, forward to the next newline) and each worker
reads its own byte range (`read_range`). Input that cannot be seeked (stdin, gzip) is
read by the coordinator and handed out in lists of lines (`stream_lines`).

Lines come without their line ending ("\\n" or "\\r\\n"), decoded as UTF-8; bytes that
are not UTF-8 become U+FFFD rather than stopping the run.
"""

from __future__ import annotations

import gzip
import io
from typing import BinaryIO, Iterator

# Bytes a worker reads at a time from its range: large enough that a read is a few
# system calls per MiB, small enough that a worker's memory does not grow with the file.
BLOCK = 4 << 20

# Bytes read per step while looking for the newline after a chunk boundary.
SCAN = 64 << 10


def decode(raw: bytes) -> str:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw.decode("utf-8", "replace")


def boundaries(path, size: int, parts: int) -> list[tuple[int, int]]:
    """Byte spans of about size/parts each, every one starting at the start of a line."""
    starts = [0]
    with open(path, "rb") as f:
        for i in range(1, parts):
            target = size * i // parts
            if target <= starts[-1]:
                continue  # a long line already carried the previous start past this one
            start = _line_start_at_or_after(f, target, size)
            if starts[-1] < start < size:
                starts.append(start)
    return [(a, b) for a, b in zip(starts, starts[1:] + [size]) if a < b]


def _line_start_at_or_after(f: BinaryIO, target: int, size: int) -> int:
    f.seek(target - 1)  # the byte before `target` tells whether a line starts at it
    pos = target - 1
    while pos < size:
        block = f.read(SCAN)
        if not block:
            break
        nl = block.find(b"\n")
        if nl >= 0:
            return pos + nl + 1
        pos += len(block)
    return size


def read_range(path, start: int, stop: int) -> Iterator[str]:
    """The lines that start in [start, stop) of a file whose spans came from `boundaries`."""
    with open(path, "rb") as f:
        f.seek(start)
        remaining = stop - start
        tail = b""
        while remaining > 0:
            block = f.read(min(BLOCK, remaining))
            if not block:  # the file shrank since the plan was made
                break
            remaining -= len(block)
            pieces = (tail + block).split(b"\n")
            tail = pieces.pop()
            for raw in pieces:
                yield decode(raw)
        if tail:
            yield decode(tail)


def open_binary(path) -> BinaryIO:
    """A file's bytes; a .gz file's bytes decompressed on the fly."""
    if str(path).endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def stream_lines(f: BinaryIO) -> Iterator[str]:
    reader = f if isinstance(f, io.BufferedIOBase) else io.BufferedReader(f)
    for raw in reader:
        yield decode(raw[:-1] if raw.endswith(b"\n") else raw)


def file_lines(path) -> Iterator[str]:
    """Every line of one file (.gz decompressed), for built-ins that read whole files."""
    with open_binary(path) as f:
        yield from stream_lines(f)
