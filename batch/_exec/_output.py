"""A job's captured stdout or stderr: in memory up to a shared budget, then a temporary file.

Output is printed whole per job (never interleaved mid-line), so it must be held until
the job ends, and with --keep-order until every job before it has ended too. One Budget
per run bounds the bytes held in memory by all captures together; a capture that would
pass it moves to an unnamed temporary file (tempfile.TemporaryFile: nothing to clean up
even after SIGKILL) and appends there. A job printing gigabytes therefore costs disk,
not memory, and the pipes are always drained, so no job ever blocks on a full pipe.
"""

from __future__ import annotations

import os

# Bytes of captured output held in memory by a whole run before captures spool to disk:
# larger keeps more small outputs off the disk, smaller bounds the coordinator's memory.
DEFAULT_BUDGET = 64 << 20

_COPY = 1 << 20


class Budget:
    def __init__(self, limit: int = DEFAULT_BUDGET):
        self.left = limit


class Capture:
    __slots__ = ("_parts", "_size", "_file", "_budget", "received")

    def __init__(self, budget: Budget):
        self._parts: list[bytes] = []
        self._size = 0
        self._file = None
        self._budget = budget
        self.received = 0

    def write(self, data: bytes) -> None:
        self.received += len(data)
        if self._file is None:
            if len(data) <= self._budget.left:
                self._budget.left -= len(data)
                self._parts.append(data)
                self._size += len(data)
                return
            import tempfile  # only for a capture past the budget: 3-5 ms of every start
            self._file = tempfile.TemporaryFile(prefix="batch-exec-")
            self._file.write(b"".join(self._parts))
            self._release()
        self._file.write(data)

    def _release(self) -> None:
        self._budget.left += self._size
        self._parts, self._size = [], 0

    @property
    def spooled(self) -> bool:
        return self._file is not None

    def getvalue(self) -> bytes:
        if self._file is None:
            return b"".join(self._parts)
        self._file.seek(0)
        return self._file.read()

    def chunks(self):
        """The bytes, in pieces of at most about 1 MiB (a spooled capture is not read whole)."""
        if self._file is None:
            yield from self._parts
            return
        self._file.flush()
        self._file.seek(0)
        while True:
            piece = self._file.read(_COPY)
            if not piece:
                return
            yield piece

    def close(self) -> None:
        self._release()
        if self._file is not None:
            self._file.close()
            self._file = None


def write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
