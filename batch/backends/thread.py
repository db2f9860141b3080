"""The thread backend: chunks run on a pool of threads in this process.

It exists for platforms without fork, for work that releases the GIL (numpy, I/O), and
as the other side of every fork-versus-threads benchmark. Results need no encoding; errors
go through the same description as a forked worker's, so they have the same types.

A thread cannot be stopped from outside: a chunk past its timeout is reported as
TaskTimeout at once and its thread is abandoned to finish on its own, and Ctrl-C cancels
the chunks not yet started while the running ones run out.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
import traceback

from .. import _errors, _platform, _remote
from ._base import Outcome, Task


class ThreadBackend:
    name = "thread"
    defer_sigint = False

    def __init__(self, *, workers: int, initializer=None, initargs=()):
        self._pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch",
                                           initializer=initializer, initargs=initargs)
        self._running: dict[cf.Future, tuple[Task, float, float]] = {}

    def start(self, task: Task) -> None:
        try:
            future = self._pool.submit(_run, task)
        except RuntimeError as exc:  # "can't start new thread": a process/thread limit
            running = len(self._running)
            raise _errors.WorkerStartError(
                f"could not start a worker thread ({exc}) with {running} running; "
                f"{_platform.start_limit(None)} is probably reached: raise it, or use "
                f"fewer workers", running=running) from exc
        self._running[future] = (task, time.time(), time.perf_counter())

    def wait(self, timeout: float | None, wake_fd: int | None = None) -> list[Outcome]:
        done, _ = cf.wait(list(self._running), timeout=timeout,
                          return_when=cf.FIRST_COMPLETED)
        outcomes = []
        for future in done:
            task, started, t0 = self._running.pop(future)
            out = Outcome(task, started=started, seconds=time.perf_counter() - t0)
            try:
                out.result, out.compute = future.result()
            except cf.BrokenExecutor as exc:  # the initializer raised
                out.error = _remote.local_worker_error(exc, "", chunk=task.index,
                                                       items=task.items)
            except _Failed as failed:
                out.error, out.compute = failed.error, failed.seconds
            outcomes.append(out)
        return outcomes

    def stop(self, task: Task) -> Outcome:
        for future, (t, started, t0) in list(self._running.items()):
            if t is task:
                future.cancel()
                del self._running[future]
                return Outcome(task, started=started,
                               seconds=time.perf_counter() - t0)
        raise KeyError(task.index)

    def finishing(self) -> None:
        pass

    def close(self, cancel: bool = True) -> None:
        abandoned = [f for f in self._running if not f.cancel() and not f.done()]
        self._running.clear()
        # Join idle threads, so that a fork right after this run finds none alive; a
        # thread still running a chunk cannot be stopped and is left to finish.
        self._pool.shutdown(wait=not abandoned, cancel_futures=True)

    def submit(self, fn, args, kwargs) -> cf.Future:
        """A Future for one call, with errors translated as for a chunk (Pool.submit)."""
        outer = cf.Future()
        inner = self._pool.submit(fn, *args, **kwargs)

        def relay(f):
            if f.cancelled():
                outer.cancel()
            elif f.exception() is not None:
                exc = f.exception()
                outer.set_exception(_remote.local_worker_error(
                    exc, "".join(traceback.format_exception(exc))))
            else:
                outer.set_result(f.result())

        outer.set_running_or_notify_cancel()
        inner.add_done_callback(relay)
        return outer


class _Failed(Exception):
    def __init__(self, error, seconds):
        self.error, self.seconds = error, seconds


def _run(task: Task):
    t0 = time.perf_counter()
    try:
        result = task.work()
    except BaseException as exc:  # SystemExit too, exactly as in a forked worker
        error = _remote.local_worker_error(exc, traceback.format_exc(), chunk=task.index,
                                           items=task.items)
        raise _Failed(error, time.perf_counter() - t0) from None
    return result, time.perf_counter() - t0
