"""The one loop that runs a job. Everything else prepares its input or shapes its output.

    input ─► _split.plan ─► tasks (chunk index, item range, work)
                              │  pulled only while a worker is free and the chunk is
                              ▼  within `window` of the oldest unfinished chunk
             backend.start(task) ── fork / thread / serial
                              │
             backend.wait() ◄─┘  results, errors and crashes as Outcomes; SIGINT wakes it
                              │
             timeouts: backend.stop(task)       retries: the task again, on a new worker
                              ▼
             Outcomes in completion order ─► _combine (order, fold) ─► caller

The loop runs in the caller's thread: there is no helper thread to deadlock a fork. The
SIGINT guard is installed only while the loop blocks, never across a `yield`, so Ctrl-C
in the caller's own loop body behaves as it always does. Whatever ends the loop (the
last outcome, an error, KeyboardInterrupt, the caller dropping the generator), `finally`
closes the backend, which stops and reaps every worker still running.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections import deque
from typing import Iterator

from . import _errors, _platform
from ._signals import SigintGuard
from .backends._base import Outcome, Task


def run(backend, tasks, *, workers: int, timeout: float | None = None, retries: int = 0,
        window: int | None = None) -> Iterator[Outcome]:
    """Run `tasks` on `backend`, yielding one Outcome per chunk, in completion order.

    A failed chunk is tried again up to `retries` times; after that its Outcome carries
    the error and the caller decides (raise, or keep going). With `window`, chunk i is
    not started before chunk i - window has finished, which bounds what an in-order
    consumer has to hold.
    """
    guard = None
    if hasattr(backend, "timeout"):  # serial: only the backend knows when a chunk starts
        backend.timeout, timeout = timeout, None
    again: deque[Task] = deque()
    running: dict[int, tuple[Task, float | None]] = {}
    ahead: Task | None = None   # pulled from `tasks`, waiting for the window to move
    exhausted = False
    tasks = iter(tasks)
    try:
        guard = _guard(backend)
        while True:
            with guard if guard is not None else contextlib.nullcontext():
                while len(running) < workers and not _interrupted(guard):
                    if again:
                        task = again.popleft()
                    else:
                        if ahead is None and not exhausted:
                            ahead = next(tasks, None)
                            exhausted = ahead is None
                            if exhausted:
                                backend.finishing()
                        if ahead is None or _beyond(ahead, window, running, again):
                            break
                        task, ahead = ahead, None
                    if not _started(backend, task, running, again):
                        workers = len(running)  # a limit is reached: carry on with fewer
                        break
                    running[task.index] = (task, None if timeout is None
                                           else time.monotonic() + timeout)
                if _interrupted(guard):
                    raise KeyboardInterrupt
                if not running:
                    return
                wake_fd = guard.fd if guard is not None else None
                asked = _until_next_deadline(running)
                waited = time.monotonic()
                outcomes = backend.wait(asked, wake_fd)
                if _interrupted(guard):
                    raise KeyboardInterrupt
                if asked is not None and _was_stopped(waited, asked, running):
                    outcomes += backend.wait(0, wake_fd)
                outcomes += _expire(backend, running, outcomes, timeout)
            for out in outcomes:
                running.pop(out.task.index, None)
                if out.error is not None and out.task.attempt <= retries:
                    again.append(out.task.again())
                    continue
                yield out
    finally:
        try:
            backend.close()
        finally:
            if guard is not None:
                guard.close()


def _guard(backend) -> SigintGuard | None:
    if not backend.defer_sigint:
        return None
    try:
        return SigintGuard()  # a pipe: under the open-files limit, like the workers'
    except OSError as exc:
        raise _errors.WorkerStartError(
            f"could not start the run: its wake-up pipe failed ({exc.strerror}); "
            f"{_platform.start_limit(exc.errno)} is probably reached",
            errno=exc.errno) from exc


def _started(backend, task: Task, running, again) -> bool:
    """Start `task`; False if a limit stopped it while other workers run.

    Carrying on with the workers already running, rather than failing the run, is the
    choice made for a process or open-files limit (issue 12): the work still gets done,
    just with less parallelism, and a warning says so. With no worker running there is
    nothing to carry on with, and the WorkerStartError goes up. Only a backend whose
    failed start leaves nothing behind (`retry_start`) can have the task tried later: the
    thread pool has already queued it when a thread fails to start.
    """
    try:
        backend.start(task)
    except _errors.WorkerStartError as exc:
        if not running or not getattr(backend, "retry_start", False):
            raise
        again.appendleft(task)
        warnings.warn(f"batch: carrying on with {len(running)} worker(s): {exc}",
                      RuntimeWarning, stacklevel=2)
        return False
    return True


def _beyond(task: Task, window, running, again) -> bool:
    """Whether `task` is `window` or more chunks past the oldest unfinished one.

    Chunk indices need not start at 0 or be contiguous (a resumed run skips the chunks it
    already has): only the chunks in flight count.
    """
    if window is None or not (running or again):
        return False
    oldest = min(min(running, default=task.index), min((t.index for t in again),
                                                       default=task.index))
    return task.index >= oldest + window


# A wait that overshoots its timeout by more than this means this process was stopped
# (SIGSTOP, a debugger, a suspended laptop) or starved of CPU for that long: a scheduling
# delay on a loaded machine is milliseconds; a little more only delays a timeout.
STOPPED_SLACK = 0.25


def _was_stopped(waited: float, asked: float, running) -> bool:
    """Whether the wait that began at `waited` was held up past its timeout; if so, move
    every running chunk's deadline on by the whole wait.

    Time this process could not watch its chunks does not count against them: the chunks
    finished meanwhile, and a thread held up with this process has yet to run. When in
    the wait the stop began is unknown, so all of it is given back, not only the
    overshoot: giving back the overshoot alone left a thread stopped with the process
    exactly at its deadline on SIGCONT, and it was timed out before it could run the
    instant it had left (seen on CI). A timeout can so stretch by one wait per stop.
    And after SIGCONT, epoll_wait returns EINTR; Python retries it (PEP 475) only while
    its timeout is not spent, so a stop past the deadline returns no events even though
    results wait in the pipes: the caller polls once more, with no timeout, before
    judging deadlines.
    """
    held = time.monotonic() - waited
    if held - asked <= STOPPED_SLACK:
        return False
    for index, (task, deadline) in running.items():
        if deadline is not None:
            running[index] = (task, deadline + held)
    return True


def _interrupted(guard) -> bool:
    return guard is not None and guard.interrupted


def _until_next_deadline(running) -> float | None:
    deadlines = [d for _, d in running.values() if d is not None]
    if not deadlines:
        return None
    return max(0.0, min(deadlines) - time.monotonic())


def _expire(backend, running, outcomes, timeout) -> list[Outcome]:
    """Stop the chunks whose deadline passed and that did not just finish."""
    now = time.monotonic()
    done = {out.task.index for out in outcomes}
    expired = []
    for index, (task, deadline) in list(running.items()):
        if deadline is not None and deadline <= now and index not in done:
            out = backend.stop(task)
            out.error = _errors.timed_out(timeout, chunk=task.index, items=task.items,
                                          pid=out.pid)
            expired.append(out)
    return expired
