"""Pool.submit: single calls as concurrent.futures.Futures.

Futures complete on their own (so `as_completed` and `wait` work), which needs a thread
that reads the workers' pipes. A thread alive during a fork can leave a lock held in the
child, so this collector thread is stopped and joined before every fork and started
again after it: the process never forks while it runs. The thread backend hands calls to
its own executor, and the serial backend runs them at once.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import itertools
import os
import threading

from . import backends
from .backends._base import Task


def submitter(backend: str, workers: int, defaults: dict):
    engine = backends.create(backend, workers=workers, initializer=defaults["initializer"],
                             initargs=defaults["initargs"])
    if backend == "thread":
        return engine  # ThreadBackend.submit / close
    return _Collected(engine, workers, inline=backend == "serial")


class _Collected:
    def __init__(self, engine, workers: int, inline: bool):
        self._engine = engine
        self._workers = workers
        self._inline = inline
        self._futures: dict[int, cf.Future] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()       # one submit or close at a time
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)

    def submit(self, fn, args, kwargs) -> cf.Future:
        with self._lock:
            self._pause()
            try:
                while len(self._futures) >= self._workers:
                    self._collect(None)
                task = Task(next(self._ids), None, 1, functools.partial(_call, fn, args, kwargs))
                future = cf.Future()
                future.set_running_or_notify_cancel()
                self._futures[task.index] = future
                self._engine.start(task)
                if self._inline:
                    self._collect(None)
            finally:
                self._resume()
        return future

    def _collect(self, timeout) -> None:
        for out in self._engine.wait(timeout, self._wake_r):
            future = self._futures.pop(out.task.index)
            if out.error is not None:
                future.set_exception(out.error)
            else:
                future.set_result(out.result)

    def _run(self) -> None:
        while self._futures and not self._stopping:
            self._collect(None)

    def _pause(self) -> None:
        if self._thread is None:
            return
        self._stopping = True
        os.write(self._wake_w, b"\0")
        self._thread.join()
        self._thread = None
        self._stopping = False
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _resume(self) -> None:
        if self._futures and not self._inline:
            self._thread = threading.Thread(target=self._run, name="batch-submit", daemon=True)
            self._thread.start()

    def close(self, cancel: bool) -> None:
        with self._lock:
            self._pause()
            try:
                if not cancel:
                    while self._futures:
                        self._collect(None)
            finally:
                self._engine.close()
                for future in self._futures.values():
                    future.set_exception(cf.CancelledError("the pool was closed"))
                self._futures.clear()
                for fd in (self._wake_r, self._wake_w):
                    os.close(fd)


def _call(fn, args, kwargs, _chunk):
    return fn(*args, **kwargs)
