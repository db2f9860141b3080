"""What batch.Executor's futures raise: the stdlib's exceptions, with batch's details.

    the call raised X          X itself, of its exact type, the worker's traceback
                               chained as __cause__ (ProcessPoolExecutor's _RemoteTraceback)
    X cannot be rebuilt        batch.WorkerError, with X's type name and traceback text
    the worker died            WorkerCrashed that is also a BrokenProcessPool; only this
                               future fails, the executor stays usable
    the initializer raised     BrokenProcessPool, from the initializer's exception; the
                               executor is broken, as the stdlib's is
    timeout=, unencodable      batch.TaskTimeout, batch.ResultError

Every one of them carries `batch_pid` (the worker's pid, or None) and `batch_call` (the
call, as text); a crash also has `.pid`, `.signal`, `.exitcode` and `.maxrss`.
"""

from __future__ import annotations

import reprlib
from concurrent.futures.process import BrokenProcessPool

from ._errors import BatchError, WorkerCrashed, WorkerError, where
from ._remote import _RemoteTraceback


class BrokenWorker(WorkerCrashed, BrokenProcessPool):
    """A worker died: batch's WorkerCrashed, and what ProcessPoolExecutor code catches."""


def run_initializer(initializer, *initargs) -> None:
    """The executor's initializer, with its exception marked so that the caller can tell
    it from a call's (an exception's __dict__ travels in its pickle)."""
    try:
        initializer(*initargs)
    except BaseException as exc:
        try:
            exc.batch_in_initializer = True
        except (AttributeError, TypeError):
            pass  # the traceback still names run_initializer
        raise


def _in_initializer(err: WorkerError, cause) -> bool:
    return getattr(cause, "batch_in_initializer", False) or \
        f"in {run_initializer.__name__}\n" in err.remote_traceback


_repr = reprlib.Repr()
_repr.maxstring, _repr.maxother = 40, 40


def call_label(call) -> str:
    fn, args, kwargs = call
    parts = [_repr.repr(a) for a in args] + [f"{k}={_repr.repr(v)}" for k, v in kwargs.items()]
    return f"{_name(fn)}({', '.join(parts)})"


def chunk_label(fn, items) -> str:
    if isinstance(items, range) and len(items) == 1:
        return f"map({_name(fn)}) item {items.start}"
    if isinstance(items, range):
        return f"map({_name(fn)}) items {items.start}-{items.stop - 1}"
    return f"map({_name(fn)})"


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def translate(out, label: str) -> BaseException:
    """The exception a future gets for a failed Outcome (None: stopped by the executor)."""
    if out is None:
        exc = BrokenWorker(f"{label}: its worker was stopped by terminate_workers(), "
                           "kill_workers() or Ctrl-C before it finished")
        return _details(exc, None, label)
    err = out.error
    if isinstance(err, WorkerError):
        cause = err.__cause__
        if _in_initializer(err, cause):
            what = f"{type(cause).__name__}: {cause}" if cause is not None else err.message
            broken = BrokenProcessPool(f"the executor's initializer raised {what} in a "
                                       "worker: the executor is broken and runs no call")
            broken.__cause__ = cause if cause is not None else err
            return _details(broken, out.pid, label)
        if isinstance(cause, BaseException) and not isinstance(cause, _RemoteTraceback):
            return _details(cause, out.pid, label)
        return _details(_relabel(err, out.task, label), out.pid, label)
    if isinstance(err, WorkerCrashed):
        crash = BrokenWorker(_relabel(err, out.task, label).message, pid=err.pid,
                             exitcode=err.exitcode, signal=err.signal, maxrss=err.maxrss)
        return _details(crash, err.pid, label)
    if isinstance(err, BatchError):
        return _details(_relabel(err, out.task, label), out.pid, label)
    return err


def _relabel(err: BatchError, task, label: str) -> BatchError:
    """'chunk 7 (items 0-9)' in batch's message becomes the call, e.g. 'square(3)'."""
    err.message = err.message.replace(f"for {where(task.index, task.items)}", f"for {label}", 1)
    err.message = err.message.replace(where(task.index, task.items), label, 1)
    err.args = (err.message,)
    err.chunk = err.items = None
    return err


def _details(exc: BaseException, pid, label: str) -> BaseException:
    try:
        exc.batch_pid, exc.batch_call = pid, label
    except (AttributeError, TypeError):  # __slots__ or a read-only type: details dropped
        pass
    return exc
