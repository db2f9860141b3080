"""What every input shares: the envelope a chunk's body returns, and chunk counts.

A task's body returns an envelope, (items, partial), or (items,) when the chunk had
nothing to reduce (a byte range holding no line, a run of blank lines). The item count
is what the progress bar counts, and what turns a chunk's own line numbers into
positions in the whole input (grep) once the chunks before it are folded.
"""

from __future__ import annotations

import math
import os

from ... import _split
from ..._combine import NOTHING
from .._exits import UsageError

# Arrays and text files are cut into chunks of at most this many bytes, whatever the
# worker count: a worker's memory (the pages of its chunk) stays bounded for a file of
# any size, and 64 MiB is still about 30 ms of summing, far above the 2 ms fork.
MAX_CHUNK_BYTES = 64 << 20

# Lines per chunk read from stdin or .gz when the chunk size must not change between
# runs (--checkpoint). Without a checkpoint the size adapts to the measured work.
STREAM_CHUNK_LINES = 10_000


def envelope(count: int, partial) -> tuple:
    return (count,) if partial is NOTHING else (count, partial)


def over_rows(body):
    return lambda chunk: envelope(len(chunk), body(chunk))


def over_lines(body):
    def run(lines):
        n = 0

        def counted():
            nonlocal n
            for line in lines:
                n += 1
                yield line

        it = counted()
        partial = body(it)
        for _ in it:  # lines the body did not read still count
            pass
        return envelope(n, partial)
    return run


def parts(n_items, workers, chunks, chunk_size, nbytes):
    if chunks is not None:
        return chunks
    if chunk_size is not None:
        return math.ceil(n_items / chunk_size)
    return max(workers * _split.CHUNKS_PER_WORKER, math.ceil(nbytes / MAX_CHUNK_BYTES))


def stat(path) -> dict:
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class Unchanged:
    """A file's identity when the run began, to be checked when its chunks are all read.

    Workers read a text file's byte ranges, or an array's pages, while the run goes on:
    a file truncated or rewritten meanwhile gave exit 0 and an answer mixing old and new
    contents (or missing the lost part). Device, inode, size and mtime together tell a
    truncation, an append, a rewrite in place and a file replaced by rename.
    """

    def __init__(self, path):
        self.path = path
        self.seen = self._now()

    def _now(self):
        st = os.stat(self.path)
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns

    def check(self) -> None:
        try:
            now = self._now()
        except OSError as exc:
            now, why = None, f"it is gone: {exc.strerror}"
        if now == self.seen:
            return
        if now is not None:
            if now[:2] != self.seen[:2]:
                why = "another file was put in its place"
            elif now[2] != self.seen[2]:
                why = f"its size went from {self.seen[2]} to {now[2]} bytes"
            else:
                why = "it was rewritten (its modification time moved)"
        raise UsageError(f"{self.path} changed while batch read it ({why}): the result "
                         f"would mix old and new contents, so none is written; run again "
                         f"once the file is complete")
