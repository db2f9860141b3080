"""What the coordinator hands a backend (Task) and gets back (Outcome).

A backend runs tasks; the coordinator decides which, when, and what a failure means.
Every backend offers the same four calls:

    start(task)              begin running a task (never blocks for long)
    wait(timeout, wake_fd)   block until some task finishes, `wake_fd` is readable or
                             the timeout passes; return the Outcomes of finished tasks
    stop(task)               stop a running task (it ran out of time): its Outcome
    close()                  stop everything still running and release every resource
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable


@dataclasses.dataclass
class Task:
    index: int                       # chunk index, 0-based, in input order
    items: range | int | None        # item positions in the input (or a count)
    count: int                       # how many items: what a progress bar counts
    work: Callable[[], Any]          # runs in the worker and returns the chunk's result
    attempt: int = 1

    def again(self) -> "Task":
        return dataclasses.replace(self, attempt=self.attempt + 1)


@dataclasses.dataclass
class Outcome:
    task: Task
    result: Any = None
    error: BaseException | None = None
    pid: int | None = None
    started: float = 0.0             # time.time() when the task started
    seconds: float = 0.0             # wall time, start to finish, seen by the coordinator
    compute: float | None = None     # time inside the worker running the work
    exitcode: int | None = None
    signal: int | None = None
    maxrss: int | None = None        # peak resident bytes of the worker, where known
