"""Ctrl-C, SIGCHLD and friends: process-global state changed only inside a context manager.

The coordinator of the fork backend must never be interrupted between forking a worker
and recording its pid, or that worker would be orphaned. So while a run waits, SIGINT
only sets a flag and wakes the selector through a pipe; the loop then stops every worker
at a safe point and raises KeyboardInterrupt itself. Around each fork both SIGINT and
SIGTERM are blocked rather than ignored, so one that arrives in that window is delivered
afterwards instead of lost.
"""

from __future__ import annotations

import _signal
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
        self._previous = self._bound = None
        self._installed = self._lent = False

    @property
    def fd(self) -> int:
        return self._read

    def _handler(self, signum, frame):
        if self._lent:  # the caller's own turn (lend): its handler decides
            return self._pass_on(signum, frame)
        self.interrupted = True
        try:
            os.write(self._write, b"\0")
        except OSError:  # pipe full: already woken
            pass

    def __enter__(self):
        self._lent = False
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is not signal.SIG_IGN and previous is not None:
                self._previous = previous
                self._bound = self._handler
                signal.signal(signal.SIGINT, self._bound)
                self._installed = True
        return self

    def __exit__(self, *exc):
        self._lent = False
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
            self._previous = self._bound = None
        return False

    # Lending: what a `with` block's exit and re-entry do, without two signal.signal
    # calls (13.7 us a pair, measured; the exec runner hands a result to its caller per
    # job, 2,000 times a run): the handler stays installed and, while lent, calls the
    # handler it replaced, so SIGINT means to the caller what it meant before.

    def lend(self) -> None:
        """SIGINT is the caller's own until take_back()."""
        self._lent = True

    def take_back(self) -> None:
        self._lent = False
        if self._installed and _signal.getsignal(signal.SIGINT) is not self._bound:
            # The caller installed a handler of its own meanwhile: that one is the
            # previous handler now (and is put back at the end), as with a re-entry.
            self._installed = False
            self.__enter__()

    def _pass_on(self, signum, frame):
        previous = self._previous
        if callable(previous):
            return previous(signum, frame)
        # SIG_DFL: die of the signal, as the default would have had it.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        signal.signal(signum, self._bound)  # (a default that does not kill: SIGINT blocked)

    def close(self):
        _hidden_fds.discard(self._read, self._write)  # before the numbers can be reused
        for fd in (self._read, self._write):
            if fd >= 0:
                os.close(fd)
        self._read = self._write = -1


# signal.pthread_sigmask turns every mask into a set of Signals enums; _signal's own
# returns ints: a block-and-restore pair cost 2.4 us against 0.8 us (measured, CPython
# 3.11), paid for every job `batch exec` starts.
_sigmask = getattr(_signal, "pthread_sigmask", None)
_BLOCKED_NUMS = {int(s) for s in _BLOCKED}


class _Held:
    __slots__ = ("_old",)

    def __enter__(self):
        self._old = _sigmask(signal.SIG_BLOCK, _BLOCKED_NUMS)
        return self

    def __exit__(self, *exc):
        _sigmask(signal.SIG_SETMASK, self._old)
        return False


def signals_blocked():
    """Hold SIGINT and SIGTERM pending (not dropped) across a fork or a spawn (a class,
    not a generator: cheaper per job)."""
    return _Held() if _sigmask is not None else contextlib.nullcontext()


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
