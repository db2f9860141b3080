"""batch.Executor: concurrent.futures' Executor on batch's engine; adopting batch is one import.

    from concurrent.futures import ProcessPoolExecutor as Executor   # before
    from batch import Executor                                       # after

`submit` and `map` queue jobs for a Dispatcher (batch/_dispatch.py), whose thread forks
the workers and settles the futures; `map` cuts its input into `chunksize` spans of one
list that existed before the workers were forked, so they read it through copy-on-write
and run its chunks over their task pipes. Errors are the stdlib's (_executor_errors.py).
backend="thread" is a real ThreadPoolExecutor (asyncio's set_default_executor insists on
one) with batch's map; "serial" runs every call on the dispatcher thread, one at a time.
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures as cf
import functools
import itertools
import os
import threading
import time
import weakref
from concurrent.futures.process import BrokenProcessPool

from . import _cpus, _executor_errors, _platform, _pool, backends
from ._dispatch import Dispatcher
from ._jobs import Future, Job, task_ids
from .backends._base import Task

_live: "weakref.WeakSet[Executor]" = weakref.WeakSet()


class Executor(cf.Executor):
    """A concurrent.futures.Executor whose workers are forked processes (see the module).

    max_workers, initializer, initargs and max_tasks_per_child mean what they mean for
    ProcessPoolExecutor; mp_context may be None or a fork context. backend is "fork"
    (default), "thread" or "serial"; timeout stops (kills) a call that runs longer;
    retries runs a failed call again, in a fresh worker, that many times.
    """

    def __new__(cls, *args, backend=None, **kwargs):
        if cls is Executor and backends.resolve(backend) == "thread":
            cls = _ThreadExecutor
        return super().__new__(cls)

    def __init__(self, max_workers=None, mp_context=None, initializer=None, initargs=(), *,
                 max_tasks_per_child=None, backend=None, timeout=None, retries=0):
        name = backends.resolve(backend)
        if name == "dask":
            raise ValueError("batch.Executor runs on this machine: backend 'fork', 'thread' "
                             "or 'serial' (a Dask cluster has its own futures)")
        workers = _check(max_workers, mp_context, initializer, max_tasks_per_child)
        if _platform.IN_WORKER:  # inside a forked worker, as a nested pmap: no second generation
            name = "serial"
        opts = _pool._options({"timeout": timeout, "retries": retries}, dict(_pool._OPTIONS))
        if initializer is not None:
            initializer = functools.partial(_executor_errors.run_initializer, initializer)
        self._max_workers = 1 if name == "serial" else workers or _cpus.usable_cpus()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._shutdown = False
        self._broken: BaseException | None = None
        self._one_shot = max_tasks_per_child is not None  # a process per task: at most 1
        self._dispatcher = Dispatcher(name, self._max_workers, initializer=initializer,
                                      initargs=tuple(initargs), timeout=opts["timeout"],
                                      retries=opts["retries"],
                                      one_shot=self._one_shot,
                                      settle=self._settle)
        ref = weakref.ref(self)
        self._on_interrupt = lambda: (ex := ref()) is not None and ex.terminate_workers()
        _live.add(self)

    def __repr__(self) -> str:
        return f"<batch.Executor max_workers={self._max_workers}>"

    # --- the Executor API ---------------------------------------------------------------

    def submit(self, fn, /, *args, **kwargs) -> cf.Future:
        with self._lock:
            self._check_open()
            future = Future(self._on_interrupt)
            self._dispatcher.add_call(Job(future, call=(fn, args, kwargs)))
        return future

    def map(self, fn, *iterables, timeout=None, chunksize=1, buffersize=None):
        """The stdlib's map (3.14's buffersize included); chunksize items per task."""
        if not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if buffersize is not None and not isinstance(buffersize, int):
            raise TypeError("buffersize must be an integer or None")
        if buffersize is not None and buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
        end = None if timeout is None else time.monotonic() + timeout
        star = len(iterables) != 1
        body = functools.partial(_star_chunk if star else _plain_chunk, fn)
        inputs = zip(*iterables) if star else iter(iterables[0])
        if buffersize is None:  # collected at once, as the stdlib does
            items = list(inputs)
            spans = [(a, min(a + chunksize, len(items))) for a in range(0, len(items), chunksize)]
            return _results(collections.deque(self._submit_chunks(fn, body, items, spans)),
                            end, None, self._on_interrupt)
        chunks = iter(lambda: list(itertools.islice(inputs, chunksize)), [])
        ref = weakref.ref(self)

        def refill(futures):
            executor = ref()
            chunk = next(chunks, None) if executor is not None else None
            if chunk is not None:
                futures.extend(executor._submit_chunks(fn, body, chunk, [(0, len(chunk))],
                                                       shared=False))

        first = list(itertools.islice(chunks, buffersize))
        futures = collections.deque(f for chunk in first for f in
                                    self._submit_chunks(fn, body, chunk, [(0, len(chunk))],
                                                        shared=False))
        return _results(futures, end, refill, self._on_interrupt)

    def shutdown(self, wait=True, *, cancel_futures=False) -> None:
        with self._lock:
            self._shutdown = True
        if cancel_futures:
            self._dispatcher.cancel_pending()
        if wait:
            try:
                self._dispatcher.join()
            except KeyboardInterrupt:
                self.terminate_workers()
                raise

    def terminate_workers(self) -> None:
        """Stop every worker now (SIGTERM, SIGKILL after 0.5 s) and reap it; queued calls
        are cancelled, running ones fail with BrokenProcessPool. Idempotent."""
        self._stop_workers(kill=False)

    def kill_workers(self) -> None:
        """terminate_workers() with SIGKILL at once: no grace for a SIGTERM handler."""
        self._stop_workers(kill=True)

    def _stop_workers(self, kill: bool) -> None:
        self.shutdown(wait=False, cancel_futures=True)
        self._dispatcher.stop(kill=kill)
        self._dispatcher.join()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self.terminate_workers()  # Ctrl-C: stop now, as a batch run does
        else:
            self.shutdown(wait=True)
        return False

    # --- plumbing ---------------------------------------------------------------------

    def _check_open(self) -> None:
        if os.getpid() != self._pid:  # a forked worker sees this object but not its thread
            raise RuntimeError("a batch.Executor can be used only in the process that made "
                               "it, not inside one of its workers")
        if self._broken is not None:
            raise BrokenProcessPool(str(self._broken))
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def _submit_chunks(self, fn, body, items, spans, shared=True) -> list[cf.Future]:
        with self._lock:
            self._check_open()
            jobs = [Job(Future(self._on_interrupt),
                         Task(next(task_ids), range(a, b), b - a, body, items, (a, b),
                              shared=shared and not self._one_shot), fn=fn)
                    for a, b in spans]
            self._dispatcher.add_tasks(jobs)
        return [job.future for job in jobs]

    def _settle(self, job: Job, out) -> None:
        """Called by the dispatcher thread: the outcome into the future."""
        if out is not None and out.error is None:
            job.future.set_result(out.result)
            return
        label = (_executor_errors.call_label(job.call) if job.call is not None
                 else _executor_errors.chunk_label(job.fn, job.task.items))
        exc = _executor_errors.translate(out, label)
        if isinstance(exc, BrokenProcessPool) and \
                not isinstance(exc, _executor_errors.BrokenWorker):  # the initializer
            with self._lock:
                self._broken = exc
            self._dispatcher.stop(exc)
        job.future.set_exception(exc)


class _ThreadExecutor(cf.ThreadPoolExecutor, Executor):
    """Executor(backend="thread"): a ThreadPoolExecutor (asyncio wants exactly that) with
    batch's checks and map. Threads cannot be stopped, so timeout= and retries= are
    refused, and terminate_workers() only cancels what has not started."""

    def __init__(self, max_workers=None, mp_context=None, initializer=None, initargs=(), *,
                 max_tasks_per_child=None, backend=None, timeout=None, retries=0):
        workers = _check(max_workers, mp_context, initializer, max_tasks_per_child)
        if timeout is not None or retries:
            raise ValueError("backend='thread' cannot stop or rerun a call in a thread: "
                             "timeout= and retries= need backend 'fork'")
        cf.ThreadPoolExecutor.__init__(self, workers, thread_name_prefix="batch",
                                       initializer=initializer, initargs=initargs)
        ref = weakref.ref(self)
        self._on_interrupt = lambda: (ex := ref()) is not None and ex.terminate_workers()

    map = Executor.map
    __exit__ = Executor.__exit__
    __repr__ = Executor.__repr__

    def terminate_workers(self) -> None:
        self.shutdown(wait=False, cancel_futures=True)

    kill_workers = terminate_workers

    def _submit_chunks(self, fn, body, items, spans, shared=True) -> list[cf.Future]:
        return [cf.ThreadPoolExecutor.submit(self, _span, body, items, a, b) for a, b in spans]


def _check(max_workers, mp_context, initializer, max_tasks_per_child):
    """The stdlib's argument checks, with its exception types and messages."""
    if max_workers is not None and max_workers <= 0:
        raise ValueError("max_workers must be greater than 0")
    if mp_context is not None and mp_context.get_start_method() != "fork":
        raise ValueError(f"batch.Executor forks its workers (that is how they see your "
                         f"data without pickling it): mp_context must be None or "
                         f"multiprocessing.get_context('fork'), not "
                         f"{mp_context.get_start_method()!r}")
    if initializer is not None and not callable(initializer):
        raise TypeError("initializer must be a callable")
    if max_tasks_per_child is not None:
        if not isinstance(max_tasks_per_child, int):
            raise TypeError("max_tasks_per_child must be an integer")
        if max_tasks_per_child <= 0:
            raise ValueError("max_tasks_per_child must be >= 1")
    return max_workers


def _plain_chunk(fn, chunk):
    return [fn(x) for x in chunk]


def _star_chunk(fn, chunk):
    return [fn(*args) for args in chunk]


def _span(body, items, a, b):
    return body(items[a:b])


def _results(futures, end, refill, on_interrupt):
    """Results in input order; the stdlib's result_iterator, a chunk at a time."""
    try:
        while futures:
            if refill is not None:
                refill(futures)
            future = futures.popleft()
            try:
                chunk = future.result(None if end is None else end - time.monotonic())
            except KeyboardInterrupt:
                on_interrupt()
                raise
            finally:
                future.cancel()
                future = None  # no reference left here to a result once it is yielded
            chunk.reverse()
            while chunk:
                yield chunk.pop()
    finally:
        for future in futures:
            future.cancel()


@atexit.register
def _at_exit() -> None:
    # As the stdlib's executors do: the program ends when submitted work has.
    for executor in list(_live):
        executor.shutdown(wait=True)
