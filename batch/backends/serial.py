"""The serial backend: each chunk runs in the calling thread, one after another.

It is the reference the other backends are tested against, and what a pmap called inside
a forked worker falls back to. A timeout cannot interrupt a chunk here: a chunk that took
longer than its timeout is reported as TaskTimeout when it returns, so the contract the
tests check is the same on every backend.
"""

from __future__ import annotations

import time
import traceback
from collections import deque

from .. import _errors, _remote
from ._base import Outcome, Task


class SerialBackend:
    name = "serial"
    defer_sigint = False

    def __init__(self, *, workers: int = 1, initializer=None, initargs=()):
        self._initializer = initializer
        self._initargs = initargs
        self._queue: deque[Task] = deque()
        self.timeout = None  # set by the coordinator

    def start(self, task: Task) -> None:
        self._queue.append(task)

    def wait(self, timeout: float | None, wake_fd: int | None = None) -> list[Outcome]:
        if not self._queue:
            return []
        task = self._queue.popleft()
        started, t0 = time.time(), time.perf_counter()
        out = Outcome(task, started=started)
        try:
            if self._initializer is not None:
                self._initializer(*self._initargs)
                self._initializer = None  # once per run, as once per thread or process
            out.result = task.work()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            out.error = _remote.local_worker_error(exc, traceback.format_exc(),
                                                   chunk=task.index, items=task.items)
        out.seconds = out.compute = time.perf_counter() - t0
        if self.timeout is not None and out.error is None and out.seconds > self.timeout:
            out.result = None
            out.error = _errors.timed_out(self.timeout, chunk=task.index, items=task.items)
        return [out]

    def stop(self, task: Task) -> Outcome:
        self._queue.remove(task)
        return Outcome(task)

    def finishing(self) -> None:
        pass

    def close(self) -> None:
        self._queue.clear()
