"""What the coordinator hands a backend (Task) and gets back (Outcome).

A backend runs tasks; the coordinator decides which, when, and what a failure means.
Every backend offers the same four calls:

    start(task)              begin running a task (never blocks for long)
    wait(timeout, wake_fd)   block until some task finishes, `wake_fd` is readable or
                             the timeout passes; return the Outcomes of finished tasks
    stop(task)               stop a running task (it ran out of time): its Outcome
    finishing()              no new task will come, only retries: idle workers may go
    close()                  stop everything still running and release every resource
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable


@dataclasses.dataclass
class Task:
    """One chunk: `body(chunk)` where chunk is `data[span[0]:span[1]]`, or `data` itself.

    The slice is taken by `work()`, in the worker: for an array it is a view of memory the
    worker inherited. A backend that ships tasks elsewhere (Dask) looks at `data` and
    `span` to send each chunk once, or only a path and a range.
    """

    index: int                       # chunk index, 0-based, in input order
    items: range | int | None        # item positions in the input (or a count)
    count: int                       # how many items: what a progress bar counts
    body: Callable[[Any], Any]       # the chunk's computation
    data: Any = None                 # the whole sliceable input, or this chunk's items
    span: tuple[int, int] | None = None
    attempt: int = 1
    # True when `data` is the run's own input, which existed before the run began: a
    # worker forked for an earlier chunk of the run can then run this one too.
    shared: bool = False

    def chunk(self):
        return self.data if self.span is None else self.data[self.span[0]:self.span[1]]

    def work(self):
        return self.body(self.chunk())

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
    # Buffers of `result` hidden from later forks (fork backend): the coordinator's
    # caller makes them inheritable again before user code can reach the result.
    private: list = dataclasses.field(default_factory=list)
