"""The exception tree, and the one place a wait status is decoded.

    BatchError                  a run failed; every error batch raises for a failed run
     ├── WorkerError            the mapped function raised (and is, where the type allows,
     │                          also an instance of the original exception's type)
     ├── WorkerCrashed          a worker died without delivering its result
     ├── TaskTimeout            a chunk ran longer than `timeout` seconds
     ├── ResultError            a result could not be encoded, or its frame arrived
     │                          truncated or garbled
     └── WorkerStartError       no worker could be started (fork, pipe or thread creation
                                failed: a process or open-files limit); also an OSError

Every error carries `.chunk` (the chunk index) and `.items` (a `range` of item positions
when the input had positions, else the item count, else None), so a person can find the
input that failed. An error travels from a worker as data (type name, message, traceback
text, and a pickle of the exception when it has one), so an exception that cannot be
rebuilt still arrives as a WorkerError instead of hanging the run.
"""

from __future__ import annotations

import os
import signal

__all__ = [
    "BatchError",
    "ResultError",
    "TaskTimeout",
    "WorkerCrashed",
    "WorkerError",
    "WorkerStartError",
]


def where(chunk, items) -> str:
    """'chunk 3 (items 30-39)': how every message names the input that failed."""
    if chunk is None:
        return "the task"
    if isinstance(items, range):
        if len(items) == 1:
            return f"chunk {chunk} (item {items.start})"
        return f"chunk {chunk} (items {items.start}-{items.stop - 1})"
    if isinstance(items, int):
        return f"chunk {chunk} ({items} item{'s' if items != 1 else ''})"
    return f"chunk {chunk}"


class BatchError(Exception):
    """Root of the errors raised for a failed run."""

    def __init__(self, message: str, *, chunk=None, items=None):
        super().__init__(message)
        self.message = message
        self.chunk = chunk
        self.items = items

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        # Keyword-only constructors do not survive the default exception pickling.
        return _rebuild, (type(self), self.__dict__.copy())


def _rebuild(cls, state):
    err = Exception.__new__(cls)
    err.__dict__.update(state)
    err.args = (state.get("message", ""),)
    return err


class WorkerError(BatchError):
    """The mapped function raised.

    `.type_name` and `.remote_traceback` are always there; `__cause__` is the original
    exception rebuilt from the worker when it could be, with the worker's traceback text
    chained below it (as concurrent.futures does) so that a printed error shows both.
    """

    type_name: str = ""
    remote_traceback: str = ""


class WorkerCrashed(BatchError):
    """A worker process ended without delivering its result.

    `.pid`, `.exitcode` (None when killed by a signal), `.signal` (the number, or None)
    and `.maxrss` (peak resident memory in bytes, from os.wait4, or None).
    """

    def __init__(self, message, *, chunk=None, items=None, pid=None, exitcode=None,
                 signal=None, maxrss=None):
        super().__init__(message, chunk=chunk, items=items)
        self.pid = pid
        self.exitcode = exitcode
        self.signal = signal
        self.maxrss = maxrss


class TaskTimeout(BatchError):
    """A chunk ran longer than the `timeout` it was given; `.timeout`, `.pid`."""

    def __init__(self, message, *, chunk=None, items=None, timeout=None, pid=None):
        super().__init__(message, chunk=chunk, items=items)
        self.timeout = timeout
        self.pid = pid


class ResultError(BatchError):
    """A result could not be encoded in the worker, or did not arrive whole."""


class WorkerStartError(BatchError, OSError):
    """A worker could not be started: fork, pipe or thread creation failed.

    Also an OSError, with the original `.errno` (EAGAIN for a process limit, EMFILE for
    the open-files limit, ENOMEM), so an `except OSError:` written for the bare error
    still catches it; `.running` is how many workers were running at that moment.
    """

    def __new__(cls, message, *, errno=None, running=0):
        if errno is None:
            return OSError.__new__(cls, message)
        return OSError.__new__(cls, errno, os.strerror(errno))

    def __init__(self, message, *, errno=None, running=0):
        super().__init__(message)
        self.running = running

    def __reduce__(self):
        return _rebuild_start_error, (self.message, self.errno, self.running)


def _rebuild_start_error(message, errno, running):
    return WorkerStartError(message, errno=errno, running=running)


# --- wait statuses --------------------------------------------------------------------

_SIGNAL_HINTS = {
    "SIGKILL": "possibly the out-of-memory killer, or killed from outside",
    "SIGSEGV": "a segmentation fault in the mapped function or a C extension it called",
    "SIGBUS": "a bus error: often a memory-mapped file that shrank under the worker",
    "SIGABRT": "aborted: a failed assertion in C code, or os.abort()",
    "SIGTERM": "terminated from outside",
    "SIGFPE": "a floating-point exception in C code",
}


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def format_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def decode_wait_status(status: int | None) -> tuple[int | None, int | None]:
    """(exitcode, signal) from an os.wait* status; exactly one of them is not None,
    unless the status is None (lost: the child was reaped by the system), and both are."""
    if status is None:
        return None, None
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return None, -code
    return code, None


def crashed(status: int, *, pid, chunk=None, items=None, maxrss=None,
            detail: str = "") -> WorkerCrashed:
    exitcode, signum = decode_wait_status(status)
    hint = None
    if signum is not None:
        name = signal_name(signum)
        how = f"was killed by {name} ({signum})"
        hint = _SIGNAL_HINTS.get(name)
    elif status is None:
        how = ("ended (its exit status is lost: SIGCHLD is ignored in this process, so "
               "the system reaped it)")
    else:
        how = f"exited with status {exitcode}"
    message = f"the worker for {where(chunk, items)} (pid {pid}) {how} without delivering " \
              f"its result"
    if detail:
        message += f" ({detail})"
    if hint:
        message += f": {hint}"
    if maxrss:
        message += f"; peak memory {format_bytes(maxrss)}"
    return WorkerCrashed(message, chunk=chunk, items=items, pid=pid, exitcode=exitcode,
                         signal=signum, maxrss=maxrss)


def timed_out(timeout: float, *, chunk=None, items=None, pid=None) -> TaskTimeout:
    """`pid` is the stopped worker's; without one the backend could not stop the chunk."""
    if pid is not None:
        what = f"its worker (pid {pid}) was stopped"
    else:
        what = "this backend cannot interrupt a running chunk, so it ran on to its end"
    return TaskTimeout(f"{where(chunk, items)} ran longer than the {timeout:g} s timeout; "
                       f"{what}", chunk=chunk, items=items, timeout=timeout, pid=pid)


def result_error(problem: str, *, chunk=None, items=None) -> ResultError:
    return ResultError(f"{where(chunk, items)}: {problem}", chunk=chunk, items=items)
