"""batch.Executor's engine: a queue of calls and map chunks, fed to a backend by one thread.

    submit / map (caller's thread) ─► Job(future, task) ─► queue ─► wake pipe
                                                              │
    dispatcher thread (one per busy period) ◄─────────────────┘
      queued calls become one batch: a list the next workers are forked over
      start(task) while a worker is free ── fork: persistent workers, spans by task pipe
      backend.wait(next deadline, wake pipe) ─► Outcomes
      timeouts: stop the worker (_coordinator._expire); retries: the task again
      ─► future.set_result / set_exception (the stdlib's errors: _executor_errors.py)
    queue and running both empty: close the backend (reap every worker), the thread ends

Why a thread forks here. A concurrent.futures caller blocks in `wait`, `as_completed` or
`result()`, never calling back into batch, so whoever starts the call queued behind a
busy worker must be a thread of ours; and a call's function and arguments reach the
worker through fork, never pickled, so starting it means forking. The fork then happens
while the caller's thread is alive (CPython 3.12 warns about the same in
ProcessPoolExecutor's fork context); ProcessPoolExecutor refuses max_tasks_per_child
with fork for this reason. Forks are made rare instead: the calls queued while every
worker was busy become one list, and up to `workers` persistent workers forked over it
run all of them, a span of one call per round trip over the task pipe. The thread
lives only while there is work, so an idle Executor leaves no thread for a later pmap's
fork to warn about.
"""

from __future__ import annotations

import collections
import os
import select
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool

from . import _coordinator, _hidden_fds, _platform, backends
from ._jobs import Job, run_call, task_ids
from .backends._base import Task

class Dispatcher:
    """The queue and the thread; `settle(job, out)` (the Executor's) turns an Outcome into
    the future's result or exception."""

    def __init__(self, backend: str, workers: int, *, initializer, initargs, timeout,
                 retries: int, one_shot: bool, settle):
        self._name, self.workers = backend, workers
        self._initializer, self._initargs = initializer, initargs
        self._timeout, self._retries, self._one_shot = timeout, retries, one_shot
        self._settle = settle
        self._lock = threading.Lock()
        self._queue: collections.deque[Job] = collections.deque()
        self._calls: list[Job] = []           # submitted, not yet in a batch
        self._pending = collections.Counter()  # id(task.data) -> queued tasks over it
        self._running: dict[int, Job] = {}
        self._thread: threading.Thread | None = None
        self._wake_w = -1                      # the running thread's wake pipe
        self._ended: threading.Thread | None = None  # the last thread that ended idle
        # Set by stop(): None to finish the work, True to stop it, or an exception that
        # every unfinished future gets (a broken executor).
        self._killing = None
        self._kill = False

    # --- the caller's side ------------------------------------------------------------

    def add_call(self, job: Job) -> None:
        with self._lock:
            self._calls.append(job)
            self._queue.append(job)
            # With every worker busy the thread looks at the queue when one finishes:
            # a wake-up per submit cost more than the call (2,400 calls/s, not 6,700).
            if self._thread is None or len(self._running) < self.workers:
                self._wake()

    def add_tasks(self, jobs) -> None:
        with self._lock:
            for job in jobs:
                self._pending[id(job.task.data)] += 1
                self._queue.append(job)
            self._wake()

    def cancel_pending(self) -> None:
        with self._lock:
            for job in self._queue:
                job.future.cancel()

    def stop(self, error: BaseException | None = None, *, kill: bool = False) -> None:
        """Stop the running workers at once (SIGTERM, then SIGKILL after the fork
        backend's grace, or at once with `kill`); queued work is cancelled, or with
        `error` fails with it (as every running call does)."""
        with self._lock:
            if self._killing is not None:
                return
            self._kill = kill
            self._killing = error if error is not None else True
            if error is None:
                for job in self._queue:
                    job.future.cancel()
            if self._thread is not None:
                self._wake()

    def join(self) -> None:
        """Wait until the queue is empty, every worker reaped and the thread gone."""
        while True:
            with self._lock:
                thread = self._thread or self._ended
                last = self._thread is None
            if thread is threading.current_thread():
                return  # shutdown(wait=True) from a done-callback: cannot wait for itself
            if thread is not None:
                thread.join()
            if last:
                return

    def _wake(self) -> None:
        """Wake the thread, or start one (under the lock)."""
        if self._thread is None:
            wake = os.pipe()
            _hidden_fds.add(*wake)  # not for the workers this thread forks
            for fd in wake:
                os.set_blocking(fd, False)
            self._wake_w = wake[1]
            self._thread = threading.Thread(target=self._run, args=(*wake, self._ended),
                                            name="batch-executor", daemon=True)
            self._thread.start()
            return
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:  # the pipe is full: the thread is awake anyway
            pass

    # --- the dispatcher thread ----------------------------------------------------------

    def _run(self, wake_r: int, wake_w: int, previous) -> None:
        if previous is not None:
            previous.join()  # its last moments: no fork while it is still alive
        engine = None
        deadlines: dict[int, tuple[Task, float | None]] = {}
        # serial judges a call's time itself, when it returns: no deadline to wait for
        timeout = None if self._name == "serial" else self._timeout
        failed: list[Job] = []
        try:
            engine = backends.create(self._name, workers=self.workers,
                                     initializer=self._initializer, initargs=self._initargs)
            if hasattr(engine, "expected_threads"):
                engine.expected_threads = 2
            if hasattr(engine, "timeout"):
                engine.timeout = self._timeout
            while True:
                with self._lock:
                    if self._killing is not None:
                        break
                    failed += self._start_ready(engine, deadlines, timeout)
                    if not self._running and not self._queue:
                        engine.close()  # reaps the idle workers, under the lock
                        engine = None
                        self._thread = None  # a later submit starts a new thread
                        self._ended = threading.current_thread()
                        break
                for job, exc in failed:
                    job.future.set_exception(exc)
                failed.clear()
                if self._running or self._name == "fork":
                    outcomes = engine.wait(_coordinator._until_next_deadline(deadlines), wake_r)
                else:
                    select.select([wake_r], [], [])
                    outcomes = []
                _drain(wake_r)
                outcomes += _coordinator._expire(engine, deadlines, outcomes, timeout)
                for out in outcomes:
                    deadlines.pop(out.task.index, None)
                    self._finish(out)
        except BaseException as exc:  # a bug here: every waiting future hears of it
            with self._lock:
                if self._killing is None:
                    self._killing = BrokenProcessPool(f"batch.Executor's dispatcher thread "
                                                      f"failed: {exc!r}")
                    self._killing.__cause__ = exc
            raise
        finally:
            with self._lock:
                try:
                    if engine is not None:  # stops and reaps every worker still running
                        engine.close(**({"grace": 0.0} if self._kill and self._name == "fork"
                                        else {}))
                finally:
                    _hidden_fds.discard(wake_r, wake_w)
                    os.close(wake_r)
                    os.close(wake_w)
                    left = []
                    if self._thread is threading.current_thread():  # stopped, or a bug
                        self._thread = None
                        self._ended = threading.current_thread()
                        left = self._unfinished()
            for job, exc in failed:
                job.future.set_exception(exc)
            for job in left:
                if isinstance(self._killing, BaseException):  # broken: shared, as the stdlib does
                    job.future.set_exception(self._killing)
                else:
                    self._settle(job, None)

    def _start_ready(self, engine, deadlines, timeout) -> list:
        """Start queued jobs while a worker is free (under the lock); the (job, error)
        of those that could not start (fork failed), to be set outside the lock."""
        failed = []
        while self._queue and len(self._running) < self.workers:
            if self._queue[0].task is None:
                self._batch()  # only now, so that the batch has every call queued so far
            job = self._queue.popleft()
            self._forget_pending(job.task)
            # a retry is running already; anything else may have been cancelled meanwhile
            if job.task.attempt == 1 and not job.future.set_running_or_notify_cancel():
                continue
            try:
                engine.start(job.task)
            except Exception as exc:  # EAGAIN, ENOMEM, EMFILE from fork or pipe
                _say_if_shutdown(exc)
                failed.append((job, exc))
                continue
            self._running[job.task.index] = job
            deadlines[job.task.index] = (job.task, None if timeout is None
                                         else time.monotonic() + timeout)
        if hasattr(engine, "let_go_idle"):
            engine.let_go_idle(self._pending)
        return failed

    def _batch(self) -> None:
        """The calls submitted since the last batch become one list, forked over once
        (per worker). Made when the first of them is about to start: the longer the
        workers were busy, the more calls share the forks."""
        calls, self._calls = self._calls, []
        data = [job.call for job in calls]
        for i, job in enumerate(calls):
            job.task = Task(next(task_ids), None, 1, run_call, data, (i, i + 1),
                            shared=not self._one_shot)
            self._pending[id(data)] += 1

    def _forget_pending(self, task) -> None:
        key = id(task.data)
        self._pending[key] -= 1
        if self._pending[key] <= 0:
            del self._pending[key]

    def _finish(self, out) -> None:
        job = self._running.pop(out.task.index)
        if out.error is not None and out.task.attempt <= self._retries and not self._killing:
            with self._lock:
                job.task = out.task.again()
                self._pending[id(job.task.data)] += 1
                self._queue.appendleft(job)
            return
        if out.error is None:
            _platform.inheritable(out.private)
        if job.call is not None:  # the batch list holds a finished call no longer
            job.task.data[job.task.span[0]] = None
        self._settle(job, out)

    def _unfinished(self) -> list[Job]:
        """After stop() (or a failure of the thread itself) nothing runs any more: the
        jobs whose futures still need an outcome (under the lock)."""
        left = list(self._running.values())
        self._running.clear()
        broken = isinstance(self._killing, BaseException)
        for job in self._queue:
            if job.future.running():  # a retry, waiting for a worker
                left.append(job)
            elif broken and job.future.set_running_or_notify_cancel():
                left.append(job)
            else:
                job.future.cancel()
        self._queue.clear()
        self._calls.clear()
        self._pending.clear()
        return left


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


_told_shutdown = False


def _say_if_shutdown(exc: Exception) -> None:
    """CPython 3.12.0 to 3.12.2 refuse os.fork() once the program is ending (gh-113964,
    fixed in 3.12.3), even before the atexit handler that waits for submitted work: a
    call submitted just before the end then cannot start, and nobody is left to look at
    its future. Say so on stderr, once, rather than end as if it had run."""
    global _told_shutdown
    if _told_shutdown or not isinstance(exc, RuntimeError) or "shutdown" not in str(exc):
        return
    _told_shutdown = True
    print(f"batch.Executor: calls submitted as the program ended could not start: {exc} "
          f"(Python {sys.version.split()[0]}; CPython gh-113964, fixed in 3.12.3). Wait for "
          f"their futures, or use `with batch.Executor() as ex:`.", file=sys.stderr)
