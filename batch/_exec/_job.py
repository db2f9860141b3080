"""What the runner is given (a Job) and what it gives back (a Done).

A Done keeps the raw wait status and decodes it with batch/_errors.py's one decoder, so
the joblog's Exitval/Signal, the exit status of `batch exec` and the CalledProcessError
of pexec all read one status the same way.
"""

from __future__ import annotations

import dataclasses
import os

from .. import _errors
from ._output import Capture

EXIT_NOT_RUN = 127  # a program that cannot be executed: what a shell says


@dataclasses.dataclass
class Job:
    seq: int                      # the job number, from 1 ({#}, the joblog's Seq)
    columns: tuple = ()           # the item's columns
    stdin: bytes | None = None    # fed through a pipe; None: /dev/null
    attempt: int = 1


@dataclasses.dataclass(eq=False)
class Done:
    job: Job
    argv: list
    slot: int
    pid: int = 0
    status: int | None = None     # the raw wait status; None: never started
    started: float = 0.0          # seconds since the epoch
    runtime: float = 0.0          # seconds
    stdout: Capture | None = None
    stderr: Capture | None = None
    sent: int = 0                 # bytes written to its stdin
    received: int = 0             # bytes it wrote to stdout
    timed_out: bool = False
    error: str = ""               # why it could not start
    host: str = ":"               # where it ran: ":" this machine (the joblog's Host)

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


