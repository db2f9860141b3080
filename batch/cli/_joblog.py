"""--joblog FILE: one tab-separated row per chunk (`batch run`) or job (`batch exec`),
written as each one finishes; and the reader that `batch exec --resume` uses.

Like GNU parallel's, it is a log rather than an output: rows appear while the run goes
on, so an interrupted run still says what it did. A chunk or job that was retried has one
row, for its last attempt. Columns the two subcommands share have GNU parallel's names and
meanings, so one script reads both:

    Seq          batch exec: the job number, from 1 ({#}); batch run: the chunk's index,
                 from 0, as its error messages name chunks
    Starttime    when the (last attempt of the) job started: seconds since the epoch, ms
    JobRuntime   its wall time, seconds (ms)
    Exitval      the exit status; 0 when killed by a signal, -1 when it timed out (both
                 as GNU parallel); batch run: 0 for a chunk that succeeded, -1 for one
                 that failed without an exit status (the function raised, a timeout)
    Signal       the number of the signal that killed it, 0 if none

`batch exec` writes exactly GNU parallel's columns: Seq Host Starttime JobRuntime Send
Receive Exitval Signal Command, where Host is ":" (this machine) or the Dask worker,
Send the bytes written to the job's stdin (--pipe), Receive the bytes it wrote to stdout,
and Command the argv, shell-quoted. `batch run` adds: items (how many items the chunk
held), first and last (the positions of its first and last item, from 0; empty when a
text file is read by byte ranges and positions are not known in advance), pid (the
worker, empty on the thread and serial backends), peak_memory (the worker's peak resident
memory, bytes), attempt (1, or more after --retries), error (what went wrong, one line).

A tab or newline inside a cell is written as \\t or \\n, so a row is always one line;
bytes that are not UTF-8 (file names) are written as they are.
"""

from __future__ import annotations

import os

from ._exits import OutputFailed, UsageError

EXEC = ("Seq", "Host", "Starttime", "JobRuntime", "Send", "Receive", "Exitval", "Signal",
        "Command")
RUN = ("Seq", "items", "first", "last", "pid", "Starttime", "JobRuntime", "Exitval",
       "Signal", "peak_memory", "attempt", "error")


class JobLog:
    """The writer. append=True (a resumed run) keeps the rows already there."""

    def __init__(self, path: str, columns: tuple, *, append: bool = False):
        self.columns = columns
        keep = append and os.path.exists(path) and os.path.getsize(path) > 0
        if keep:
            header = read_header(path)
            if header != list(columns):
                raise UsageError(f"--joblog {path}: not a joblog of this kind (its columns "
                                 f"are {' '.join(header)})")
        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if keep else os.O_TRUNC)
        try:
            self._fd = os.open(path, flags, 0o666)
        except OSError as exc:
            raise UsageError(f"--joblog {path}: {exc.strerror or exc}") from None
        if not keep:
            self._line(columns)

    def write(self, *cells) -> None:
        self._line(_cell(c) for c in cells)

    def _line(self, cells) -> None:
        """One os.write per row: no buffer that a full disk could leave for close (or the
        garbage collector) to fail on again, and a reader never sees half a row from us."""
        row = ("\t".join(cells) + "\n").encode("utf-8", "surrogateescape")
        try:
            while row:
                row = row[os.write(self._fd, row):]
        except OSError as exc:  # ENOSPC: stop here; a checkpoint keeps what is done
            raise OutputFailed(f"--joblog {self.path}: cannot write: "
                               f"{exc.strerror or exc}") from exc

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


def _cell(value) -> str:
    if value is None:
        return ""
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def starttime(t: float) -> str:
    return f"{t:.3f}"


def runtime(seconds: float) -> str:
    return f"{seconds:.3f}"


def read_header(path: str) -> list[str]:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return f.readline().rstrip("\n").split("\t")


def read(path: str) -> list[dict]:
    """The rows of a joblog, as {column: text}; a row cut short by a crash is dropped."""
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        header = f.readline().rstrip("\n").split("\t")
        rows = []
        for line in f:
            if not line.endswith("\n"):
                break  # the last row of a run killed while writing it
            cells = line[:-1].split("\t")
            if len(cells) == len(header):
                rows.append(dict(zip(header, cells)))
        return rows


def finished(path: str, *, failed_too: bool) -> set[int]:
    """The Seq numbers --resume skips: every job in the log (--resume), or only those
    that succeeded (--resume-failed, which runs the failed ones again)."""
    if not os.path.exists(path):
        return set()
    try:
        rows = read(path)
    except (OSError, UnicodeError) as exc:
        raise UsageError(f"--joblog {path}: cannot be read for --resume: {exc}") from None
    if read_header(path)[:1] != ["Seq"]:
        raise UsageError(f"--joblog {path}: not a joblog (no Seq column)")
    done = set()
    for row in rows:
        try:
            ok = row.get("Exitval") == "0" and row.get("Signal") in ("0", None)
            if failed_too or ok:
                done.add(int(row["Seq"]))
        except (KeyError, ValueError):
            continue
    return done
