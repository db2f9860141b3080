"""What a job's stdin pipe is fed from: bytes, a byte range of a file, or a shared stream.

    Job.stdin ──► feed_for() ──► a Feed: send(fd) when the selector says fd is writable
        bytes / bytearray   os.write of memoryview slices (no copy of the block)
        FileRange           os.splice file -> pipe at its offset (no byte through Python)
        Shared              one long-lived job's stdin (--round-robin): the next block
                            of a stream shared by every slot, each time the last is sent

Why splice: `batch exec --pipe wc -l < big.txt` (stdin a regular file) is GNU parallel's
--pipepart done automatically. The coordinator finds each cut by reading a few KiB near
it (file_ranges) and never reads the blocks: splice(2) moves page-cache pages into the
job's pipe, so the coordinator costs one system call per pipe-full and its memory stays
the same whatever --block is. A pipe (`cat big | ...`) cannot be cut without reading
it, so those blocks come through Python (batch/cli/exec/_blocks.py).

A Feed raises what the system call raises: BlockingIOError when the pipe is full (the
runner waits for the next writable event), BrokenPipeError when the job stopped reading
(the runner closes its stdin; the job's exit status is what counts, as in GNU parallel).
`finished` turns true once everything was sent.
"""

from __future__ import annotations

import os

_WRITE = 1 << 20   # bytes per write or splice: an enlarged pipe (_platform.PIPE_SIZE)
# splice(2) flags: never block on the pipe even if O_NONBLOCK were lost; MOVE is a hint.
_SPLICE_FLAGS = getattr(os, "SPLICE_F_NONBLOCK", 0) | getattr(os, "SPLICE_F_MOVE", 0)
HAS_SPLICE = hasattr(os, "splice")


class FileRange:
    """Bytes [offset, offset + length) of the open regular file `fd` (not owned)."""
    __slots__ = ("fd", "offset", "length")

    def __init__(self, fd: int, offset: int, length: int):
        self.fd, self.offset, self.length = fd, offset, length

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"FileRange(fd={self.fd}, offset={self.offset}, length={self.length})"


class _BytesFeed:
    __slots__ = ("view", "size")

    def __init__(self, data):
        self.view = memoryview(data)
        self.size = len(self.view)

    @property
    def finished(self) -> bool:
        return not self.view

    def send(self, fd: int) -> int:
        n = os.write(fd, self.view[:_WRITE])
        self.view = self.view[n:]
        return n


class _RangeFeed:
    __slots__ = ("fd", "pos", "left", "size")

    def __init__(self, r: FileRange):
        self.fd, self.pos, self.left = r.fd, r.offset, r.length
        self.size = r.length

    @property
    def finished(self) -> bool:
        return self.left <= 0

    def send(self, fd: int) -> int:
        count = min(self.left, _WRITE)
        if HAS_SPLICE:
            n = os.splice(self.fd, fd, count, offset_src=self.pos, flags=_SPLICE_FLAGS)
        else:  # no splice (not Linux): through a buffer, still without moving the offset
            n = os.write(fd, os.pread(self.fd, count, self.pos))
        if n == 0:  # the file shrank since it was cut: what is there is all there is
            self.left = 0
        self.pos += n
        self.left -= n
        return n


class Shared:
    """The stdin of one of several long-lived jobs (--round-robin): each takes the next
    block of `blocks` (one iterator shared by all) whenever it has sent its last one, so
    a job whose stdin drains faster gets more blocks. A job that stops reading leaves
    its current block unsent, as with GNU parallel."""

    def __init__(self, blocks):
        self._blocks = blocks

    def __len__(self) -> int:  # unknown; big enough that the runner enlarges the pipe
        return 1 << 62


class _SharedFeed:
    __slots__ = ("blocks", "current", "size", "finished")

    def __init__(self, shared: Shared):
        self.blocks, self.current, self.size = shared._blocks, None, len(shared)
        self.finished = False

    def send(self, fd: int) -> int:
        while self.current is None or self.current.finished:
            block = next(self.blocks, None)
            if block is None:
                self.finished = True
                return 0
            self.current = feed_for(block)
        n = self.current.send(fd)
        if self.current.finished:
            self.current = None
        return n


def feed_for(stdin):
    """The Feed of a Job's stdin (bytes-like, FileRange or Shared)."""
    if isinstance(stdin, FileRange):
        return _RangeFeed(stdin)
    if isinstance(stdin, Shared):
        return _SharedFeed(stdin)
    return _BytesFeed(stdin)
