"""--joblog FILE: one tab-separated row per chunk, written as each chunk finishes.

Like GNU parallel's joblog, it is a log rather than an output: rows appear while the run
goes on, so an interrupted run still says what it did. A chunk that was retried has one
row, for its last attempt.

    chunk        the chunk's index
    items        item positions "first-last", or the item count where positions are
                 not known in advance (byte ranges of a text file)
    pid          the worker process (empty on the thread and serial backends)
    start        when the last attempt started, seconds since the epoch
    seconds      its wall time
    exit_status  the worker's exit status, or 0 for a chunk that succeeded in a worker
                 which went on to its next chunk; signal: the signal that killed it
    peak_memory  the worker's peak resident memory, bytes
    attempt      1, or more after --retries
    error        what went wrong, one line; empty on success
"""

from __future__ import annotations

from .. import _errors
from ._exits import OutputFailed, UsageError

COLUMNS = ("chunk", "items", "pid", "start", "seconds", "exit_status", "signal",
           "peak_memory", "attempt", "error")


class JobLog:
    def __init__(self, path: str):
        try:
            self._f = open(path, "w", buffering=1, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--joblog {path}: {exc.strerror or exc}") from None
        self._line(COLUMNS)

    def row(self, out, envelope) -> None:
        task = out.task
        if isinstance(task.items, range) and len(task.items):
            items = f"{task.items.start}-{task.items.stop - 1}"
        elif envelope is not None:
            items = str(envelope[0])
        else:
            items = ""
        error = "" if out.error is None else " ".join(str(out.error).split())
        cells = (task.index, items, _blank(out.pid), f"{out.started:.3f}", f"{out.seconds:.3f}",
                 _blank(0 if out.exitcode is None and out.error is None else out.exitcode),
                 "" if out.signal is None else _errors.signal_name(out.signal),
                 _blank(out.maxrss), task.attempt, error)
        self._line(cells)

    def _line(self, cells) -> None:
        try:
            self._f.write("\t".join(map(str, cells)) + "\n")
        except OSError as exc:  # ENOSPC: stop here; a checkpoint keeps what is done
            raise OutputFailed(f"--joblog {self._f.name}: cannot write: "
                               f"{exc.strerror or exc}") from exc

    def close(self) -> None:
        try:
            self._f.close()
        except OSError:  # already reported by row(), or nothing was left to write
            pass


def _blank(value) -> str:
    return "" if value is None else str(value)
