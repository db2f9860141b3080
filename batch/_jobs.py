"""What batch.Executor queues: a Job per future, and the future that hears Ctrl-C.

A Job is made by the caller's thread (batch/_executor.py) and settled by the dispatcher
thread (batch/_dispatch.py); the Future is a concurrent.futures.Future whose waits stop
the executor's workers when Ctrl-C interrupts them, since nobody else would.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools

# Task indices, unique in the process: a backend keys the tasks it runs by them.
task_ids = itertools.count()


class Future(cf.Future):
    """A concurrent.futures.Future whose waits stop the executor's workers on Ctrl-C."""

    def __init__(self, on_interrupt):
        super().__init__()
        self._on_interrupt = on_interrupt

    def result(self, timeout=None):
        try:
            return super().result(timeout)
        except KeyboardInterrupt:
            self._on_interrupt()
            raise

    def exception(self, timeout=None):
        try:
            return super().exception(timeout)
        except KeyboardInterrupt:
            self._on_interrupt()
            raise


class Job:
    """A future and what settles it: a submitted call (fn, args, kwargs), which gets its
    task when its batch is made, or a map chunk's task and the mapped fn (for messages)."""

    __slots__ = ("future", "task", "call", "fn")

    def __init__(self, future, task=None, call=None, fn=None):
        self.future, self.task, self.call, self.fn = future, task, call, fn


def run_call(chunk):
    """A batch's task body: its span of the batch list is one call."""
    fn, args, kwargs = chunk[0]
    return fn(*args, **kwargs)
