"""Exit statuses, and the exceptions that lead to them.

    batch run (and info, bench)
    0    every chunk succeeded, the output is written
    1    chunks failed (after --retries); with --keep-going every failure is listed;
         or the result could not be written (a full disk, a stdout that fails)
    2    usage error or bad input: caught before any work, or before any output is written
    130  interrupted by Ctrl-C (128 + SIGINT)
    143  terminated by SIGTERM (128 + SIGTERM)

    batch exec (GNU parallel's, so that scripts written for it keep working)
    0    every job succeeded
    1-100  that many jobs failed (after --retries)
    101  more than 100 jobs failed
    N    with --halt ...,fail=...: the exit status of the job that made it halt
         (128 + the signal that killed it)
    130, 143  as for run
    255  usage error, or a program that cannot be found or executed: before any job runs
         (2 would read as "two jobs failed"); any other error (GNU's "other error")

A UsageError travels up to `main`, which prints it as one line; a failed chunk arrives as
the engine's BatchError. SIGTERM becomes an exception too, so that every `finally` on the
way out (the coordinator's above all: it stops and reaps the workers) runs.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

OK, FAILED, USAGE, INTERRUPTED, TERMINATED = 0, 1, 2, 130, 143
EXEC_USAGE, EXEC_MANY_FAILED = 255, 101
_USAGE_OF = {"exec": EXEC_USAGE}
_ERROR_OF = {"exec": EXEC_USAGE}


def usage(command) -> int:
    """The exit status of a usage error in this subcommand."""
    return _USAGE_OF.get(command, USAGE)


def error(command) -> int:
    """The exit status of a failure that is not a job's own (a lost cluster, a bug)."""
    return _ERROR_OF.get(command, FAILED)


def jobs_failed(count: int) -> int:
    """batch exec's status when `count` jobs failed: the count itself, up to 100."""
    return count if count <= 100 else EXEC_MANY_FAILED


class UsageError(Exception):
    """A bad command line or bad input, found before any result could be lost."""


def stdin_open(reads: str, instead: str) -> None:
    """A UsageError when the caller closed stdin (`<&-`; Python then sets sys.stdin to
    None) and the command was about to read `reads` from it: an error naming what to give
    `instead`, not an AttributeError, and not an empty input that runs nothing."""
    if sys.stdin is None:
        raise UsageError(f"stdin is closed, so there are no {reads} to read: {instead}")


class ChunksFailed(Exception):
    """--keep-going finished every chunk, and some of them failed."""

    def __init__(self, failures: list, chunks: int):
        super().__init__(f"{len(failures)} of {chunks} chunk{'s' if chunks != 1 else ''} "
                         f"failed")
        self.failures = failures


class OutputFailed(Exception):
    """The result could not be written (a full disk, /dev/full, a closed terminal): exit
    1, not 2, since the input was fine. `.stdout` tells whether stdout is the casualty."""

    def __init__(self, message: str, stdout: bool = False):
        super().__init__(message)
        self.stdout = stdout


def flush_stdout() -> None:
    """Flush stdout (if open at all); a failure is an OutputFailed that names stdout."""
    if sys.stdout is None:
        return
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputFailed(f"cannot write the result to stdout: {exc.strerror or exc}",
                           stdout=True) from exc


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt, so that no `except
    Exception` on the way up (a mapped function's, a library's) can swallow it."""


def _raise_terminated(signum, frame):
    raise Terminated


@contextlib.contextmanager
def sigterm_raises():
    """While inside, SIGTERM raises Terminated in the main thread; the old handler comes back.

    Outside the main thread signal handlers cannot be set, and nothing is changed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
