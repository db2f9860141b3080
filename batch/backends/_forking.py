"""Forking one worker: its pipes, the fork itself, and what makes a fork hazardous.

    flush stdio ─► fork lock ─► pipe() ─► signals blocked, heap frozen ─► fork()
                                                                            │
      child: _worker.main (never returns) ◄─────────────────────────────────┤
      parent: close the worker's ends, hide its own from later forks ◄──────┘
              (_hidden_fds), register it: the lock is released only then

The only caller of os.fork in batch's runs (batch/_bench's harness forks pipe writers
of its own). The backend's loop (fork.py) decides when a worker starts; this module is
how, with what is done about each hazard of forking:
- another thread's fork between a worker's pipe() and its registration would give that
  child this worker's pipe ends: the fork lock;
- a thread holding a lock at the fork leaves it locked for ever in the child: a warning
  once, with advice for this build, in place of CPython 3.12+'s DeprecationWarning;
- the child's collector dirtying the pages it shares with the coordinator: gc.freeze(),
  where it is worth its cost;
- a limit reached (EMFILE, EAGAIN): a WorkerStartError that names it, and no fd left.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
import warnings

from .. import _errors, _hidden_fds, _platform, _signals
from ._base import Task

_warned_threads = False

# Held from a worker's new pipes to their registration in _hidden_fds: another thread's
# fork in between (batch.Executor forks from its dispatcher thread) would give its child
# this worker's pipe ends, and a result pipe's write end held there hides this worker's
# end of file. A child gets a fresh lock: it may fork workers of its own.
_FORK_LOCK = threading.Lock()


def _fresh_fork_lock() -> None:
    global _FORK_LOCK
    _FORK_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_fork_lock)

# gc.freeze() before every fork and gc.unfreeze() after it cost nothing with the GIL
# (two list splices), so the parent's collector is back to normal between forks. In the
# free-threaded build (3.13t) there are no generation lists: both walk the whole heap
# and write every object's header, and the unfreeze, done while the new child shares
# those pages, takes a copy-on-write fault on each. Measured on 3.13.15t with 690,000
# objects (pytest and distributed imported): freeze 31 ms, unfreeze 24 ms, and a 2-item
# fork pmap 189 ms against 29 ms on 3.13.15 with the GIL. There the heap is frozen once
# per run, at its first fork, and unfrozen in close(), after every worker is reaped.
FREEZE_PER_RUN = _platform.FREE_THREADED_BUILD

# ...and on the free-threaded build only for a run of more than this many items. What
# the freeze buys is a child whose collector leaves the shared pages alone; a child
# collects only once it holds max(2000, heap/4) new container objects (3.13t scales
# the threshold with the heap), which a small run's chunks rarely reach. Measured on
# 3.13.15t, 690,000 objects, CPU per call over 200 calls of pmap(operator.neg,
# [i, i + 1], workers=2, backend="fork") (os.times()): frozen per run, parent 27.8 +
# 16.0 sys ms, children 3.1 + 6.4; not frozen, parent 2.0 + 6.8, children 3.5 + 5.7:
# the freeze was 75% of the cost (3.13.15 with the GIL, frozen: 1.3 + 3.8, 2.9 + 3.1).
# Against it, a child's first collection without the freeze took 115 ms of CPU and
# copied 64 MB (16,500 faults), with it 28 ms and nothing copied: worth it when a
# child may collect, i.e. in a run long enough to allocate that much, where 40 ms once
# is lost in the run. An input of unknown size (a generator, submitted calls) is
# frozen, as before.
FT_FREEZE_MIN_ITEMS = 64


def worth_freezing(task: Task) -> bool:
    if not FREEZE_PER_RUN or not task.shared:
        return True
    try:
        return len(task.data) > FT_FREEZE_MIN_ITEMS
    except TypeError:
        return True


@contextlib.contextmanager
def forked(child, *, persistent: bool, freeze: bool, running: int):
    """Fork a worker that runs child(result_w, task_r, fds_to_close), which never returns.

    In the parent, yields (pid, result_r, task_w) with the fork lock still held, so that
    the caller registers the worker before another thread can fork; task_w is -1 unless
    `persistent` (a task pipe too). `freeze`: gc.freeze() for this fork, left frozen when
    FREEZE_PER_RUN for the caller to undo. `running`: how many workers run already, for
    the error if this start fails. A failed start, or the caller's block raising,
    leaves no fd of this worker open.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # closed or replaced streams
            pass
    fds = [-1] * 4  # result r, w, task tr, tw: inside `try`, so a failed pipe leaks none
    _FORK_LOCK.acquire()  # pipes, fork and registration: one step for other threads
    try:
        fds[0:2] = _starting(os.pipe, "its result pipe", running)
        if persistent:
            fds[2:4] = _starting(os.pipe, "its task pipe", running)
        r, w, tr, tw = fds
        _platform.enlarge_pipe(w)
        inherited = _hidden_fds.current()  # listed here: the child takes no lock
        with _signals.signals_blocked():
            if freeze:
                gc.freeze()  # the child's collector then leaves the shared pages alone
            try:
                pid = _starting(_fork_quietly, "the process", running)
            except BaseException:
                if freeze:
                    gc.unfreeze()
                raise
            if pid == 0:
                child(w, tr, [r, tw, *inherited])  # never returns
            if freeze and not FREEZE_PER_RUN:
                gc.unfreeze()
            for i in (1, 2):  # the worker's ends: closed here at once
                if fds[i] >= 0:
                    os.close(fds[i])
                fds[i] = -1
            os.set_blocking(r, False)
            _hidden_fds.add(r, tw)  # not for the next worker, of this run or another
            yield pid, r, tw
            fds = []
    finally:
        _FORK_LOCK.release()
        for fd in fds:
            if fd >= 0:
                os.close(fd)


def _starting(call, what: str, running: int):
    """call(); an OSError from it (a limit reached) becomes a WorkerStartError."""
    try:
        return call()
    except OSError as exc:
        raise _errors.WorkerStartError(
            f"could not start a worker: creating {what} failed ({exc.strerror or exc}) "
            f"with {running} worker{'s' if running != 1 else ''} running; "
            f"{_platform.start_limit(exc.errno)} is probably reached: raise it, or "
            f"use fewer workers", errno=exc.errno, running=running) from exc


def warn_if_threads(expected: int = 1) -> None:
    global _warned_threads
    if _warned_threads or threading.active_count() <= expected:
        return
    _warned_threads = True
    if _platform.FREE_THREADED_BUILD and not _platform.gil_enabled():
        advice = ("On this free-threaded build backend='thread' runs Python on every core "
                  "without forking (backend=None picks it unless a timeout is set).")
    else:
        advice = ("Start threads after the run, or use backend='thread' for work that "
                  "releases the GIL (numpy, I/O).")
    if sys.version_info >= (3, 12):
        advice += (" (CPython 3.12+ deprecates fork with threads alive for this reason; "
                   "batch silences its DeprecationWarning in favour of this one.)")
    warnings.warn(
        f"batch is forking while {threading.active_count() - 1} other thread(s) are alive; "
        "a lock one of them holds stays locked forever in the child and can hang it. "
        + advice, RuntimeWarning, stacklevel=6)


def _fork_quietly() -> int:
    """os.fork(), without CPython's DeprecationWarning about threads (3.12+): with Python
    threads alive batch has just given its own warning, with what to do; OS threads
    alone (a BLAS pool) are safe, as the BLAS libraries reset their pool after a fork.

    CPython counts the OS's threads, so the filter is needed for every fork, not only
    when threading knows of other threads. catch_warnings swaps the process-wide filter
    list for the length of the fork call: a filter another thread adds in that instant
    is lost (3.14's context-aware warnings make it per thread).
    """
    if sys.version_info < (3, 12):
        return os.fork()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"This process \(pid=\d+\) is multi-threaded",
                                DeprecationWarning)
        return os.fork()
