"""--chunks N for a stream (stdin, .gz): about N chunks of equal bytes, read as they come.

A stream cannot be cut where lines start ahead of time, so the coordinator counts the
bytes of the lines it reads and ends a chunk when it has read its share of the input's
size. That size is known for
- stdin redirected from a regular file (`< FILE`): the file's size from fstat, less
  what was already read from it;
- a .gz file: the ISIZE field of its last 4 bytes, the uncompressed size modulo 4 GiB
  of its *last* member (RFC 1952, 2.3.1). For a single member under 4 GiB that is the
  size. It never overstates the size, so a stream that runs past it is one of several
  members or of 4 GiB or more: from there the rest is estimated from the compression
  ratio so far (compressed bytes read against the file's size), and the N-th chunk takes
  whatever is left, so there are never more than N chunks.
A pipe's size is not known at all: --chunks is refused with what to use instead, never
ignored.
"""

from __future__ import annotations

import math
import os
import stat
import sys

from .._exits import UsageError
from ._lines import decode


def known_size(path: str) -> int:
    """The bytes of lines the stream will yield (a lower bound for a .gz, see above)."""
    if path == "-":
        fd = sys.stdin.fileno()
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError("--chunks N needs the input's size, and stdin is a pipe or "
                             "terminal: give --chunk-size LINES, or the file itself "
                             "(batch run FILE or batch run - < FILE)")
        return max(0, st.st_size - os.lseek(fd, 0, os.SEEK_CUR))
    with open(path, "rb") as f:
        if f.seek(0, os.SEEK_END) < 18:  # a gzip header and trailer take 18 bytes
            raise UsageError(f"{path}: too short to be a gzip file")
        f.seek(-4, os.SEEK_END)
        return int.from_bytes(f.read(4), "little")


def cut(f, n: int, size: int, compressed=None):
    """Lists of the decoded lines of binary stream `f`, about size/n bytes each, at most n.

    `compressed` is (raw file, its size) for a .gz: where the estimate is exceeded, the
    ratio of bytes read to compressed bytes consumed gives a new one.
    """
    chunk, done, index = [], 0, 0
    boundary = size / n
    for raw in f:
        chunk.append(decode(raw[:-1] if raw.endswith(b"\n") else raw))
        done += len(raw)
        if done >= boundary and index < n - 1:
            yield chunk
            chunk, index = [], index + 1
            left = _estimate(done, size, compressed) - done
            boundary = done + left / (n - index) if left > 0 else math.inf
    if chunk:
        yield chunk


def _estimate(done: int, size: int, compressed) -> float:
    if done < size or compressed is None:
        return size
    raw, total = compressed
    consumed = raw.tell()  # read ahead by gzip's buffer: an estimate, as it says
    return done * total / consumed if consumed < total else done
