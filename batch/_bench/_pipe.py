"""Raw pipe bandwidth: the ceiling for moving results from a forked worker.

One forked writer sends `total` bytes from a 16 MiB buffer; the parent `readv`s them
into one reused 16 MiB buffer. The pipe is enlarged exactly as batch enlarges its own,
so big_results can be reported as a fraction of what the same kernel, on the same
machine, in the same run, can move at all. Reading into a reused (cache-warm, already
faulted-in) buffer makes this an upper bound: real results need fresh memory.
"""

from __future__ import annotations

import os

import numpy as np

from .._platform import enlarge_pipe

BUFFER = 16 << 20  # bytes per write and per read: the size of one big_results result


def bandwidth(total: int) -> int:
    """Move `total` bytes through a pipe from a forked child; return the bytes received."""
    r, w = os.pipe()
    enlarge_pipe(w)
    pid = os.fork()
    if pid == 0:  # the writer
        code = 1
        try:
            os.close(r)
            view = memoryview(np.ones(BUFFER, dtype=np.uint8))
            left = total
            while left:
                left -= os.write(w, view[:min(left, BUFFER)])
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    target = memoryview(np.empty(BUFFER, dtype=np.uint8))
    received = 0
    try:
        while True:
            n = os.readv(r, [target])
            if not n:
                break
            received += n
    finally:
        os.close(r)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:  # SIGCHLD ignored: the system reaped it (status unused)
            pass
    return received
