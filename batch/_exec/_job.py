"""What the runner is given (a Job) and what it gives back (a Done).

A Done keeps the raw wait status and decodes it with batch/_errors.py's one decoder, so
the joblog's Exitval/Signal, the exit status of `batch exec` and the CalledProcessError
of pexec all read one status the same way.

Plain classes with __slots__, not dataclasses: `dataclasses` brings `inspect` (with ast,
dis and tokenize) into every start-up of `batch exec`, about 7 ms of its 0.1 s, and
each dataclass compiles its methods at import.
"""

from __future__ import annotations

import os

from .. import _errors
from ._output import Capture

EXIT_NOT_RUN = 127  # a program that cannot be executed: what a shell says


class Job:
    __slots__ = ("seq", "columns", "stdin", "attempt")

    def __init__(self, seq: int, columns: tuple = (), stdin=None, attempt: int = 1):
        self.seq = seq            # the job number, from 1 ({#}, the joblog's Seq)
        self.columns = columns    # the item's columns
        self.stdin = stdin        # bytes (or a FileRange, a Shared stream) for its stdin
        self.attempt = attempt    # 1, then 2.. for each retry

    def again(self) -> Job:
        """The same job, for its next attempt."""
        return Job(self.seq, self.columns, self.stdin, self.attempt + 1)

    def __repr__(self) -> str:
        return (f"Job(seq={self.seq}, columns={self.columns!r}, stdin={self.stdin!r}, "
                f"attempt={self.attempt})")


class Done:
    __slots__ = ("job", "argv", "slot", "pid", "status", "started", "runtime", "stdout",
                 "stderr", "sent", "received", "timed_out", "error", "host")

    def __init__(self, job: Job, argv: list, slot: int, *, pid: int = 0,
                 status: int | None = None, started: float = 0.0, runtime: float = 0.0,
                 stdout: Capture | None = None, stderr: Capture | None = None,
                 sent: int = 0, received: int = 0, timed_out: bool = False, error: str = "",
                 host: str = ":"):
        self.job, self.argv, self.slot, self.pid = job, argv, slot, pid
        self.status = status      # the raw wait status; None: never started
        self.started = started    # seconds since the epoch
        self.runtime = runtime    # seconds
        self.stdout, self.stderr = stdout, stderr
        self.sent = sent          # bytes written to its stdin
        self.received = received  # bytes it wrote to stdout
        self.timed_out = timed_out
        self.error = error        # why it could not start
        self.host = host          # where it ran: ":" this machine (the joblog's Host)

    def __repr__(self) -> str:
        return (f"Done(seq={self.job.seq}, argv={self.argv!r}, slot={self.slot}, "
                f"pid={self.pid}, status={self.status}, error={self.error!r})")

    @property
    def returncode(self) -> int:
        """subprocess's convention: the exit status, or -N when signal N killed it."""
        if self.status is None:
            return EXIT_NOT_RUN
        return os.waitstatus_to_exitcode(self.status)

    @property
    def exitcode(self) -> int | None:
        return self.returncode if self.status is None else _errors.decode_wait_status(
            self.status)[0]

    @property
    def signal(self) -> int | None:
        return None if self.status is None else _errors.decode_wait_status(self.status)[1]

    def close(self) -> None:
        for cap in (self.stdout, self.stderr):
            if cap is not None:
                cap.close()


