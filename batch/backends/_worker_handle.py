"""One forked worker as the coordinator sees it: its pid, the fds it owns, the chunk it
runs, and what its message and exit status mean once it ends.

The worker's own side is _worker.py; the loop over many handles is fork.py. A handle
owns its two fds (the result pipe's read end, a persistent worker's task pipe's write
end) and sets each to -1 when it closes it.
"""

from __future__ import annotations

import os
import time

from .. import _errors, _frames, _hidden_fds, _remote, _wire
from . import _worker
from ._base import Outcome, Task


class WorkerHandle:
    __slots__ = ("pid", "fd", "task_fd", "task", "first", "reader", "started", "t0")

    def __init__(self, pid: int, fd: int, task_fd: int, task: Task):
        self.pid = pid
        self.fd = fd            # read end of the result pipe; -1 once closed
        self.task_fd = task_fd  # write end of the task pipe; -1 for a one-shot worker
        self.first = task       # what it was forked with: its body and input
        self.assign(task)

    def assign(self, task: Task | None) -> None:
        self.task = task
        # A persistent worker waits on its task pipe after each message: it can be asked
        # there to push its big arrays into this process (_frames.py says why).
        self.reader = _frames.Reader(self.pid, may_push=self.task_fd >= 0)
        self.started = time.time()
        self.t0 = time.perf_counter()

    def push(self, remote) -> None:
        """Ask the worker to write its result's arrays here: remote is [(the array's
        address in the worker, the array here)]."""
        try:
            os.write(self.task_fd, _worker.TASK.pack(_worker.PUSH, len(remote), 0) + b"".join(
                _worker.COPY.pack(address, a.ctypes.data, a.nbytes) for address, a in remote))
        except BrokenPipeError:
            raise _wire.PullError("the worker died before its result was read",
                                  lost=True) from None

    def can_run(self, task: Task) -> bool:
        return (self.task is None and self.task_fd >= 0 and task.body is self.first.body
                and task.data is self.first.data)

    def let_go(self) -> None:
        # End of file on its task pipe: the worker exits; its result pipe then reports
        # end of file, and wait() reaps it.
        if self.task_fd >= 0:
            _hidden_fds.discard(self.task_fd)
            os.close(self.task_fd)
            self.task_fd = -1

    def close(self, sel) -> None:
        """Close both fds, the result pipe's first taken out of selector `sel`."""
        _hidden_fds.discard(self.fd, self.task_fd)  # before the numbers can be reused
        if self.fd >= 0:
            sel.unregister(self.fd)
            os.close(self.fd)
            self.fd = -1
        if self.task_fd >= 0:
            os.close(self.task_fd)
            self.task_fd = -1

    def ended(self, status: int | None, maxrss: int | None, problem: str | None = None,
              lost: str | None = None) -> Outcome | None:
        """The Outcome of the chunk this reaped worker ran (None if it was idle), given
        its wait status; `problem`: its message was garbled; `lost`: it left after
        sending a message whose arrays could not be read."""
        task, reader = self.task, self.reader
        if task is None:
            return None
        exitcode, signum = _errors.decode_wait_status(status)
        out = Outcome(task, pid=self.pid, started=self.started,
                      seconds=time.perf_counter() - self.t0,
                      exitcode=exitcode, signal=signum, maxrss=maxrss)
        where = {"chunk": task.index, "items": task.items}
        if problem is not None:
            out.error = _errors.result_error(f"garbled result from the worker: {problem}", **where)
        elif lost is not None or reader.pushing:
            out.error = _errors.crashed(status, pid=self.pid, maxrss=maxrss,
                                        detail="before its result was read", **where)
        elif reader.complete:
            self.read_message(out)
        elif reader.received and exitcode == 0 and status is not None:
            out.error = _errors.result_error(
                f"the worker exited after sending only {reader.received} bytes of its result",
                **where)
        else:
            detail = f"after sending {reader.received} bytes" if reader.received else ""
            out.error = _errors.crashed(status, pid=self.pid, maxrss=maxrss, detail=detail,
                                        **where)
        return out

    def read_message(self, out: Outcome) -> None:
        """Fill `out` from the complete message read off the result pipe."""
        reader, task = self.reader, self.task
        where = {"chunk": task.index, "items": task.items}
        if reader.extra:
            out.error = _errors.result_error(
                f"{reader.extra} stray bytes after the result in the worker's pipe", **where)
        elif reader.kind == _wire.RESULT:
            out.compute, out.result = reader.payload
            out.private = reader.private
        else:
            info = reader.payload
            out.compute = info.get("seconds")
            if info.get("encode"):
                out.error = _errors.result_error(info["message"], **where)
            else:
                out.error = _remote.worker_error(info, **where)
