"""The Dask backend: the same runs on a Dask distributed cluster.

    coordinator (this process)                     Dask workers (any machine)
    ──────────────────────────                     ──────────────────────────
    start(task): what the chunk travels as
      array chunk ──► client.scatter, once ──────► held by one worker (small: Pickled)
      .npy memmap ──► FileRows(path, offset) ────► np.memmap of its own rows
      anything else ► Pickled(chunk) ────────────► unpickled
    client.submit(_dask_worker.run, job, chunk) ─► body(chunk), result pickled there
    wait(): distributed.wait(FIRST_COMPLETED) ◄──── (seconds, pid, result) or Failed
      ──► Outcome, errors translated here, once
    stop(task) / close(): cancel the futures of this run; the cluster stays usable

Where runs go is a `Cluster` (_dask_cluster.py): a Client the caller gives, one connected
to `address`, or a LocalCluster started on first use. A Pool passes its own; a backend
made without one owns one for a single run. The workers need `batch` importable: the
body and its chunk are pickled here, and `_dask_worker.run` is found there by name.

Faults: the chunk's exception is a WorkerError (raised on the worker as `Failed`, so that
Dask's own `retries=` re-runs it on the cluster; its Outcome then counts those attempts,
and the coordinator does not retry it again). A worker that died is Dask's KilledWorker
(after `distributed.scheduler.allowed-failures` re-runs): a WorkerCrashed, which the
coordinator retries like a crash on any backend. A timeout cancels the future, but Dask
cannot interrupt a running task: its worker thread runs on until the body returns.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import pickle
import select
import threading
import time
import traceback
import uuid

import numpy as np

from .. import _errors, _pickling, _remote
from . import _dask_worker
from ._base import Outcome, Task
# Before any import of distributed: without Dask, this raises DaskMissing and its hint.
from ._dask_cluster import Cluster

import cloudpickle  # noqa: E402  (a dependency of distributed)
import distributed  # noqa: E402
from distributed.scheduler import KilledWorker  # noqa: E402

# An array chunk smaller than this travels inside its task instead of being scattered
# first: a scatter is one more round trip through the scheduler (5 ms on a busy 2-core
# machine), which small chunks do not repay; bigger ones would bloat the task messages
# the scheduler holds (Dask warns at 10 MB).
SCATTER_MIN_BYTES = 1 << 20

# How often wait() looks at its wake fd, which Dask cannot watch. The coordinator passes
# none to this backend; 50 ms is well under any chunk worth shipping to a cluster.
WAKE_POLL = 0.05


class DaskBackend:
    name = "dask"
    defer_sigint = False   # Ctrl-C raises in wait(); close() cancels the run's futures
    # The coordinator submits one chunk per worker thread, no more. Between two chunks a
    # worker then waits a round trip through this process (10 ms on a busy 2-core
    # machine). Tried: two per thread, which hid it (2.1 s -> 1.1 s for 64 chunks of
    # 25 ms) but queued chunks on a worker behind a slow one, so a straggler held work
    # that a free worker could have run, and a queued chunk's timeout clock ran while it
    # waited. Bigger chunks are the cure: fewer round trips.

    def __init__(self, *, workers: int, initializer=None, initargs=(), address=None,
                 client=None, cluster: Cluster | None = None, retries: int = 0):
        self._cluster = cluster or Cluster(address=address, client=client, workers=workers)
        self._own_cluster = cluster is None
        self._client = self._cluster.client
        self._setup = (initializer, tuple(initargs))
        self._retries = retries
        self._run = uuid.uuid4().hex[:8]   # names this run's keys on the dashboard
        self._jobs: dict[int, tuple] = {}           # id(body) -> (body, pickled job)
        self._scattered: dict[tuple, object] = {}   # (id(data), span) -> Future
        self._running: dict = {}                    # Future -> (task, started, t0, retries)
        self._stuck: dict[int, set] = {}            # chunk index -> workers it timed out on

    def start(self, task: Task) -> None:
        retries = max(0, self._retries - (task.attempt - 1))
        where = {}
        stuck = self._stuck.pop(task.index, None)
        if stuck:  # that worker's thread still runs the timed-out attempt: go elsewhere
            others = [w for w in self._client.nthreads() if w not in stuck]
            where = {"workers": others, "allow_other_workers": False} if others else {}
        future = self._client.submit(
            _dask_worker.run, self._job(task.body), self._ship(task), retries=retries,
            key=f"batch-{self._run}-{task.index}-{task.attempt}", pure=False, **where)
        self._running[future] = (task, time.time(), time.perf_counter(), retries)

    def _job(self, body) -> _dask_worker.Pickled:
        # Body, initializer and initargs in one pickle, so state they share (a dict both
        # close over) is one object on the worker, as it is in a forked one.
        if id(body) not in self._jobs:
            self._jobs[id(body)] = (body, _pickled((body, *self._setup)))
        return self._jobs[id(body)][1]

    def _ship(self, task: Task):
        """What the chunk travels as; an array chunk is scattered once, retries reuse it."""
        data, span = task.data, task.span
        if isinstance(data, np.ndarray) and span is not None:
            rows = _dask_worker.FileRows.of(data, span)
            if rows is not None:
                return rows
            if data[span[0]:span[1]].nbytes < SCATTER_MIN_BYTES:
                return _pickled(data[span[0]:span[1]])
            key = (id(data), span)
            cached = self._scattered.get(key)
            if cached is None or cached.status != "finished":  # none yet, or lost with a worker
                cached = self._scattered[key] = self._client.scatter(data[span[0]:span[1]],
                                                                     hash=False)
            return cached
        return _pickled(task.chunk())

    def wait(self, timeout: float | None, wake_fd: int | None = None) -> list[Outcome]:
        futures = list(self._running)
        done = [f for f in futures if f.done()]
        deadline = None if timeout is None else time.monotonic() + timeout
        while futures and not done:
            step = None if deadline is None else deadline - time.monotonic()
            if wake_fd is not None:
                step = WAKE_POLL if step is None else min(step, WAKE_POLL)
            if step is not None and step <= 0:
                break
            try:
                with self._client.as_current():  # distributed.wait asks for a default client
                    done = list(distributed.wait(futures, timeout=step,
                                                 return_when="FIRST_COMPLETED").done)
            except distributed.TimeoutError:
                pass
            if wake_fd is not None and _readable(wake_fd):
                break
        return [self._outcome(f) for f in done]

    def _outcome(self, future) -> Outcome:
        task, started, t0, retries = self._running.pop(future)
        out = Outcome(task, started=started, seconds=time.perf_counter() - t0)
        try:
            out.compute, out.pid, out.result = _result(future, task)
        except _Error as failed:
            out.error, out.compute, out.pid = failed.args
            if failed.retried:  # Dask ran it 1 + retries times: the coordinator must not
                out.task = _bump(task, retries)
        else:
            self._scattered.pop((id(task.data), task.span), None)
        return out

    def stop(self, task: Task) -> Outcome:
        for future, (t, started, t0, _) in list(self._running.items()):
            if t is task:
                del self._running[future]
                self._stuck[task.index] = {w for w, keys in self._client.processing().items()
                                           if future.key in keys}
                future.cancel()
                return Outcome(task, started=started, seconds=time.perf_counter() - t0)
        raise KeyError(task.index)

    def finishing(self) -> None:
        pass

    def close(self) -> None:
        """Cancel this run's futures and drop its scattered chunks; the cluster stays up."""
        futures = list(self._running) + list(self._scattered.values())
        self._running.clear()
        self._scattered.clear()
        self._jobs.clear()
        try:
            if futures and self._client.status == "running":
                self._client.cancel(futures)
        finally:
            if self._own_cluster:
                self._cluster.close()


class _Error(Exception):
    """A failed future, translated: args = (BatchError, compute seconds, pid)."""

    def __init__(self, error, seconds=None, pid=None, retried=False):
        super().__init__(error, seconds, pid)
        self.retried = retried


def _result(future, task: Task | None = None):
    """(seconds, pid, result) of a finished future; _Error for any other ending."""
    where = {"chunk": None, "items": None} if task is None else \
        {"chunk": task.index, "items": task.items}
    if future.status == "finished":
        try:
            seconds, pid, payload = future.result()
            return seconds, pid, pickle.loads(payload)
        except Exception as exc:  # its worker died since, or the result's type is unknown here
            raise _Error(_errors.result_error(
                f"the result could not be fetched: {type(exc).__name__}: {exc}", **where)) \
                from exc
    if future.status != "error":
        raise _Error(_errors.WorkerCrashed(
            f"{_errors.where(**where)}: its Dask future was {future.status} outside this run "
            f"(the cluster restarted, or another client cancelled it)", **where))
    exc = future.exception()
    if isinstance(exc, _dask_worker.Failed):
        if exc.info.get("encode"):
            error = _errors.result_error(exc.info["message"], **where)
        else:
            error = _remote.worker_error(exc.info, **where)
        raise _Error(error, exc.seconds, exc.pid, retried=True)
    if isinstance(exc, KilledWorker):
        error = _errors.WorkerCrashed(
            f"the Dask worker running {_errors.where(**where)} died without delivering its "
            f"result: possibly the out-of-memory killer, or a crash in C code (Dask: {exc})",
            **where)
        error.__cause__ = exc
        raise _Error(error)
    # Raised by Dask on the worker. Mostly the task could not be unpickled there, because
    # a module it needs is missing: name that module rather than Dask's generic message.
    tb = "".join(traceback.format_exception(type(exc), exc, future.traceback()))
    missing = exc.__cause__ if isinstance(exc.__cause__, ImportError) else None
    error = _remote.local_worker_error(missing or exc, tb, **where)
    if missing is not None:
        error.message += (" on the Dask worker: every worker needs batch installed, and the "
                          "modules the mapped function uses")
    raise _Error(error, retried=True)


def _bump(task: Task, retries: int) -> Task:
    for _ in range(retries):
        task = task.again()
    return task


def _pickled(obj) -> _dask_worker.Pickled:
    return _dask_worker.Pickled(_pickling.dumps(obj, cloudpickle.Pickler))


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


class Submitter:
    """Pool.submit on Dask: each call a Dask future relayed to a concurrent.futures.Future."""

    def __init__(self, client, defaults: dict):
        self._client = client
        self._setup = (defaults["initializer"], tuple(defaults["initargs"]))
        self._retries = defaults["retries"]
        self._futures: dict = {}   # Dask future -> concurrent.futures.Future
        self._lock = threading.Lock()

    def submit(self, fn, args, kwargs) -> cf.Future:
        outer = cf.Future()
        outer.set_running_or_notify_cancel()
        job = _pickled((functools.partial(_call, fn, args, kwargs), *self._setup))
        inner = self._client.submit(_dask_worker.run, job, None, pure=False,
                                    retries=self._retries,
                                    key=f"batch-submit-{uuid.uuid4().hex[:12]}")
        self._futures[inner] = outer
        inner.add_done_callback(self._relay)   # runs on a Dask callback thread
        return outer

    def _relay(self, inner) -> None:
        # The lock: close() returns only once a relay the callback thread began is done.
        with self._lock:
            outer = self._futures.pop(inner, None)   # whoever pops it, callback or close
            if outer is None:
                return
            if inner.status == "cancelled":  # by close(cancel=True), or a cluster restart
                outer.set_exception(cf.CancelledError("the call was cancelled"))
                return
            try:
                outer.set_result(_result(inner)[2])
            except _Error as failed:
                outer.set_exception(failed.args[0])
            except Exception as exc:  # the client closed under us
                outer.set_exception(exc)

    def close(self, cancel: bool) -> None:
        pending = list(self._futures)
        if pending and cancel:
            self._client.cancel(pending)
        elif pending:
            with self._client.as_current():
                distributed.wait(pending)
        for inner in pending:  # not left to the callback thread: close() returns settled
            self._relay(inner)


def _call(fn, args, kwargs, _chunk):
    return fn(*args, **kwargs)
