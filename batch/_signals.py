"""Ctrl-C, SIGCHLD and friends: process-global state changed only inside a context manager.

The coordinator of the fork backend must never be interrupted between forking a worker
and recording its pid, or that worker would be orphaned. So while a run waits, SIGINT
only sets a flag and wakes the selector through a pipe; the loop then stops every worker
at a safe point and raises KeyboardInterrupt itself. Around each fork both SIGINT and
SIGTERM are blocked rather than ignored, so one that arrives in that window is delivered
afterwards instead of lost.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

from . import _hidden_fds

_BLOCKED = {signal.SIGINT, signal.SIGTERM}


class SigintGuard:
    """Install a deferring SIGINT handler for the duration of a `with` block.

    `.fd` becomes readable when SIGINT arrives; `.interrupted` tells it happened. Outside
    the main thread, or when SIGINT is ignored (a background job), it installs nothing.
    The previous handler, whatever object it was, is put back in `finally`.
    """

    def __init__(self):
        self.interrupted = False
        self._read, self._write = os.pipe()
        _hidden_fds.add(self._read, self._write)
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._previous = None
        self._installed = False

    @property
    def fd(self) -> int:
        return self._read

    def _handler(self, signum, frame):
        self.interrupted = True
        try:
            os.write(self._write, b"\0")
        except OSError:  # pipe full: already woken
            pass

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is not signal.SIG_IGN and previous is not None:
                self._previous = previous
                signal.signal(signal.SIGINT, self._handler)
                self._installed = True
        return self

    def __exit__(self, *exc):
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
            self._previous = None
        return False

    def close(self):
        _hidden_fds.discard(self._read, self._write)  # before the numbers can be reused
        for fd in (self._read, self._write):
            if fd >= 0:
                os.close(fd)
        self._read = self._write = -1


@contextlib.contextmanager
def signals_blocked():
    """Hold SIGINT and SIGTERM pending (not dropped) across a fork."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def sigchld_default():
    """While inside, SIGCHLD is at its default if the caller had it ignored (SIG_IGN).

    With SIG_IGN (daemons and some shells set it, and it survives exec) the kernel reaps
    every child the moment it exits, so wait4 finds nothing (ECHILD) and a worker's exit
    status, the only witness of a crash, is gone. Only SIG_IGN is changed: a handler of
    the caller's stays, and a default stays default. The previous disposition, whatever
    object it was, is put back in `finally`; then the caller's own children that exited
    meanwhile are reaped, as SIG_IGN would have done (batch's workers are all reaped by
    then). Outside the main thread a handler cannot be set, and nothing changes: the fork
    backend then reports a worker it finds already reaped as a crash of unknown status
    when its result is incomplete, and as delivered when it is whole.
    """
    sigchld = getattr(signal, "SIGCHLD", None)
    if sigchld is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(sigchld)
    if previous is not signal.SIG_IGN:
        yield
        return
    signal.signal(sigchld, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(sigchld, previous)
        _reap_exited_children()


def _reap_exited_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def reset_in_worker() -> None:
    """In a freshly forked worker, before SIGINT/SIGTERM are unblocked.

    Ctrl-C at a terminal reaches the whole foreground process group; workers ignore it
    and leave the decision to the coordinator. SIGTERM goes back to its default so that
    the coordinator's stop request always works, whatever handler the caller had.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _BLOCKED)
