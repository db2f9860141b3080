"""The fork backend: one forked process per chunk, results back over a pipe.

    coordinator                                   worker (forked per chunk)
    ───────────                                   ────────────────────────
    chunk in memory ──► pipe() ──► fork() ──────► sees the chunk through copy-on-write
    close write end                               close read end, ignore SIGINT
    register read end in the selector             run initializer, work()
          ▲                                       encode result (msgpack, raw arrays)
          └──────────── frames over the pipe ◄─── write, flush stdio, os._exit()
    read as data arrives ─► EOF ─► wait4 ─► Outcome

Why a process per chunk, not long-lived workers that pull chunk indices: forking costs
about 1.8 ms here (5 ms from a parent holding 2 GiB), and a per-chunk process
- sees every chunk through copy-on-write, including chunks of a generator that did not
  exist yet when the run began: the input is never serialized, not even for lazy input;
- cannot carry state (leaked memory, a wedged C library, a changed cwd) from one chunk to
  the next, and a crash, timeout or retry concerns exactly one chunk;
- needs no task protocol, so a straggler never holds queued work: the next chunk is
  forked on whichever core frees first.
Pulling workers would save the fork per chunk; the chunkers keep chunks big enough
(tens of milliseconds of work) that this costs a few percent, which the benchmarks show.
"""

from __future__ import annotations

import gc
import os
import selectors
import sys
import threading
import time
import traceback
import warnings

from .. import _errors, _platform, _signals, _wire
from ._base import Outcome, Task

# Time a stopped worker gets to exit after SIGTERM before SIGKILL: long enough for a
# mapped function's own SIGTERM handler to clean up, short enough that Ctrl-C finishes
# well inside two seconds.
STOP_GRACE = 0.5

_warned_threads = False


class _Worker:
    __slots__ = ("pid", "fd", "task", "reader", "started", "t0")

    def __init__(self, pid, fd, task):
        self.pid = pid
        self.fd = fd           # read end of the worker's pipe; -1 once closed
        self.task = task
        self.reader = _wire.Reader()
        self.started = time.time()
        self.t0 = time.perf_counter()


class ForkBackend:
    name = "fork"
    defer_sigint = True

    def __init__(self, *, workers: int, initializer=None, initargs=()):
        if not _platform.HAS_FORK:
            raise ValueError("backend 'fork' needs os.fork, which this platform lacks; "
                             "use backend='thread'")
        self._initializer = initializer
        self._initargs = initargs
        self._sel = selectors.DefaultSelector()
        self._workers: dict[int, _Worker] = {}   # task index -> worker
        self._wake_fd = -1
        _platform.prepare_fork()
        self._restore_blas = _platform.limit_blas_threads(
            max(1, _platform.usable_cpus() // max(1, workers)))

    # --- starting ---------------------------------------------------------------------

    def start(self, task: Task) -> None:
        _warn_if_threads()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # closed or replaced streams
                pass
        r, w = os.pipe()
        registered = False
        try:
            _platform.enlarge_pipe(w)
            with _signals.signals_blocked():
                gc.freeze()  # the child's collector then leaves the shared pages alone
                try:
                    pid = os.fork()
                except BaseException:
                    gc.unfreeze()
                    raise
                if pid == 0:
                    self._child(task, r, w)  # never returns
                gc.unfreeze()
                os.close(w)
                w = -1
                os.set_blocking(r, False)
                worker = _Worker(pid, r, task)
                self._workers[task.index] = worker
                self._sel.register(r, selectors.EVENT_READ, worker)
                registered = True
        finally:
            if w >= 0:
                os.close(w)
            if not registered:
                os.close(r)

    def _child(self, task: Task, r: int, w: int) -> None:
        code = 1
        try:
            _signals.reset_in_worker()
            _platform.die_with_parent(os.getppid())
            _platform.new_process_group()
            os.close(r)
            for fd in self._inherited_fds():
                try:
                    os.close(fd)
                except OSError:
                    pass
            _platform.IN_WORKER = True
            message = _run_in_worker(task, self._initializer, self._initargs)
            _wire.write_all(w, message)
            code = 0
        except BaseException:
            code = 1
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except BaseException:
                    pass
            os._exit(code)

    def _inherited_fds(self):
        yield from (w.fd for w in self._workers.values())
        try:
            yield self._sel.fileno()
        except (AttributeError, ValueError):
            pass

    # --- waiting ----------------------------------------------------------------------

    def wait(self, timeout: float | None, wake_fd: int | None = None) -> list[Outcome]:
        if wake_fd is not None and wake_fd != self._wake_fd:
            self._sel.register(wake_fd, selectors.EVENT_READ, None)
            self._wake_fd = wake_fd
        outcomes = []
        for key, _ in self._sel.select(timeout):
            worker = key.data
            if worker is None:
                continue  # woken by a signal: the coordinator looks at its flag
            try:
                eof = worker.reader.feed(worker.fd)
            except _wire.DecodeError as exc:
                outcomes.append(self._finish(worker, problem=str(exc)))
                continue
            # A complete message is enough: a grandchild holding the pipe open must not
            # delay the result until it exits.
            if eof or worker.reader.complete:
                outcomes.append(self._finish(worker))
        return outcomes

    def _finish(self, worker: _Worker, problem: str | None = None) -> Outcome:
        """Reap a worker whose message is complete, cut short, or garbled."""
        if problem is not None:
            _platform.kill_group(worker.pid, 9)
        self._release(worker)
        _, status, maxrss = _platform.wait4(worker.pid)
        exitcode, signum = _errors.decode_wait_status(status)
        task, reader = worker.task, worker.reader
        out = Outcome(task, pid=worker.pid, started=worker.started,
                      seconds=time.perf_counter() - worker.t0,
                      exitcode=exitcode, signal=signum, maxrss=maxrss)
        where = {"chunk": task.index, "items": task.items}
        if problem is not None:
            out.error = _errors.result_error(f"garbled result from the worker: {problem}", **where)
        elif reader.complete and reader.extra:
            out.error = _errors.result_error(
                f"{reader.extra} stray bytes after the result in the worker's pipe", **where)
        elif reader.complete and reader.kind == _wire.RESULT:
            out.compute, out.result = reader.payload
            out.private = reader.private
        elif reader.complete:
            info = reader.payload
            out.compute = info.get("seconds")
            if info.get("encode"):
                out.error = _errors.result_error(info["message"], **where)
            else:
                out.error = _errors.worker_error(info, **where)
        elif reader.received and exitcode == 0:
            out.error = _errors.result_error(
                f"the worker exited after sending only {reader.received} bytes of its result",
                **where)
        else:
            detail = f"after sending {reader.received} bytes" if reader.received else ""
            out.error = _errors.crashed(status, pid=worker.pid, maxrss=maxrss, detail=detail,
                                        **where)
        return out

    def _release(self, worker: _Worker) -> None:
        self._workers.pop(worker.task.index, None)
        if worker.fd >= 0:
            self._sel.unregister(worker.fd)
            os.close(worker.fd)
            worker.fd = -1

    # --- stopping ---------------------------------------------------------------------

    def stop(self, task: Task) -> Outcome:
        worker = self._workers[task.index]
        _stop_all([worker])
        out = Outcome(task, pid=worker.pid, started=worker.started,
                      seconds=time.perf_counter() - worker.t0)
        self._release(worker)
        return out

    def close(self) -> None:
        """Stop and reap every worker still running; close every fd. Idempotent."""
        workers = list(self._workers.values())
        try:
            _stop_all(workers)
        finally:
            for worker in workers:
                self._release(worker)
            if self._wake_fd >= 0:
                self._sel.unregister(self._wake_fd)
                self._wake_fd = -1
            self._sel.close()
            self._restore_blas()


def _stop_all(workers) -> None:
    """SIGTERM each worker's process group, wait STOP_GRACE, SIGKILL, reap them all."""
    alive = {w.pid for w in workers}
    for pid in alive:
        _platform.kill_group(pid, 15)
    deadline = time.monotonic() + STOP_GRACE
    while alive:
        for pid in list(alive):
            try:
                got, _, _ = _platform.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                got = pid
            if got:
                alive.discard(pid)
        if not alive:
            return
        if time.monotonic() >= deadline:
            for pid in alive:
                _platform.kill_group(pid, 9)
            for pid in alive:
                try:
                    _platform.wait4(pid)
                except ChildProcessError:
                    pass
            return
        time.sleep(0.005)


def _run_in_worker(task: Task, initializer, initargs) -> list:
    """The message a worker sends: its result, or what went wrong, as data."""
    t0 = time.perf_counter()
    try:
        if initializer is not None:
            initializer(*initargs)
        result = task.work()
    except BaseException as exc:  # SystemExit too: it must never end the coordinator
        info = _errors.describe_exception(exc, traceback.format_exc())
        info["seconds"] = time.perf_counter() - t0
        return _wire.encode(_wire.ERROR, info)
    seconds = time.perf_counter() - t0
    try:
        return _wire.encode(_wire.RESULT, [seconds, result])
    except _wire.EncodeError as exc:
        return _wire.encode(_wire.ERROR, {"encode": True, "message": str(exc),
                                          "seconds": seconds})


def _warn_if_threads() -> None:
    global _warned_threads
    if _warned_threads or threading.active_count() <= 1:
        return
    _warned_threads = True
    warnings.warn(
        f"batch is forking while {threading.active_count() - 1} other thread(s) are alive; "
        "a lock one of them holds stays locked forever in the child and can hang it. "
        "Start threads after the run, or use backend='thread'.",
        RuntimeWarning, stacklevel=4)
