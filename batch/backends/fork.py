"""The fork backend: forked workers read chunks through copy-on-write, results come back
over pipes.

    coordinator                                     worker (backends/_worker.py)
    ───────────                                     ────────────────────────────
    input in memory ─► pipe() ─► fork() ──────────► sees the input through copy-on-write
    close the worker's ends, register the           close the coordinator's ends,
    result pipe in the selector                     ignore SIGINT, run the first task
          ▲                                         encode (msgpack, raw arrays), write
          └────────── message on the result pipe ◄──┘
    read as data arrives; arrays >= 1 MiB:          keeps those arrays until they are read
    persistent: their addresses ─► task pipe ─────► process_vm_writev's them here, ACK
    one-shot: process_vm_readv'd ─► Outcome         persistent: wait on the task pipe
    persistent: next span ─► task pipe ───────────► for (index, start, stop), run it
    one-shot, or end of run: EOF / wait4 ◄───────── os._exit()

Two kinds of worker, and why:
- A chunk of the run's own input (an array or sequence that existed before the run, cut
  by span) goes to a persistent worker: forked once per run and core, it then pulls
  spans over its task pipe. A fork here costs about 1.5 ms of coordinator CPU and 2 ms of
  worker CPU (page tables, copy-on-write faults, exit), and with a process per chunk,
  64 chunks of 16 MB results were fork-bound; persistent workers pay it once per core.
- Any other chunk (items of a generator gathered after the run began, a retry, a
  submitted call) gets a one-shot worker forked for it: a process forked earlier cannot
  see memory created after it, and the input is never serialized, not even for lazy
  input. A retry also gets a fresh process, so nothing a failed attempt left behind in
  its process carries over.
Either way a worker runs one chunk at a time and the coordinator hands out the next one
to whichever core frees first, so a straggler never holds queued work.

When a pipe or the fork fails (EMFILE past the open-files limit, EAGAIN past a process
limit or a pids cgroup), the start raises WorkerStartError, an OSError too, and leaves no
fd behind. If other workers already run, the coordinator carries on with those (and
warns) instead of failing: the same work gets done with less parallelism, which is what a
user under a limit would ask for. With no worker running, the error goes up.
"""

from __future__ import annotations

import contextlib
import gc
import os
import selectors
import signal
import sys
import threading
import time
import warnings

from .. import _cpus, _errors, _frames, _hidden_fds, _platform, _remote, _signals, _wire
from . import _worker
from ._base import Outcome, Task

# Time a stopped worker gets to exit after SIGTERM before SIGKILL: long enough for a
# mapped function's own SIGTERM handler to clean up, short enough that Ctrl-C finishes
# well inside two seconds.
STOP_GRACE = 0.5

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
_FREEZE_PER_RUN = _platform.FREE_THREADED_BUILD

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
_FT_FREEZE_MIN_ITEMS = 64


def _worth_freezing(task: Task) -> bool:
    if not _FREEZE_PER_RUN or not task.shared:
        return True
    try:
        return len(task.data) > _FT_FREEZE_MIN_ITEMS
    except TypeError:
        return True


class _Worker:
    __slots__ = ("pid", "fd", "task_fd", "task", "first", "reader", "started", "t0")

    def __init__(self, pid: int, fd: int, task_fd: int, task: Task):
        self.pid = pid
        self.fd = fd            # read end of the result pipe; -1 once closed
        self.task_fd = task_fd  # write end of the task pipe; -1 for a one-shot worker
        self.first = task       # what it was forked with: its body and input
        self.assign(task)

    def assign(self, task: Task | None) -> None:
        self.task = task
        # A persistent worker waits on its task pipe after each message: it can be asked
        # there to push its big arrays into this process (_frames.py says why).
        self.reader = _frames.Reader(self.pid, may_push=self.task_fd >= 0)
        self.started = time.time()
        self.t0 = time.perf_counter()

    def push(self, remote) -> None:
        """Ask the worker to write its result's arrays here: remote is [(the array's
        address in the worker, the array here)]."""
        try:
            os.write(self.task_fd, _worker.TASK.pack(_worker.PUSH, len(remote), 0) + b"".join(
                _worker.COPY.pack(address, a.ctypes.data, a.nbytes) for address, a in remote))
        except BrokenPipeError:
            raise _wire.PullError("the worker died before its result was read",
                                  lost=True) from None

    def can_run(self, task: Task) -> bool:
        return (self.task is None and self.task_fd >= 0 and task.body is self.first.body
                and task.data is self.first.data)


class ForkBackend:
    name = "fork"
    defer_sigint = True
    retry_start = True  # a start that raised WorkerStartError left no trace: try it later

    def __init__(self, *, workers: int, initializer=None, initargs=()):
        if not _platform.HAS_FORK:
            raise ValueError("backend 'fork' needs os.fork, which this platform lacks; "
                             "use backend='thread'")
        self._initializer = initializer
        self._initargs = initargs
        self._sel = selectors.DefaultSelector()
        self._sel_fd = self._sel.fileno()
        _hidden_fds.add(self._sel_fd)
        self._workers: dict[int, _Worker] = {}   # pid -> every worker not yet reaped
        self._busy: dict[int, _Worker] = {}      # task index -> worker running it
        self._wake_fd = -1
        self._finishing = False  # no new chunk will come: idle workers are let go
        self._blas_threads = max(1, _cpus.usable_cpus() // max(1, workers))
        self._restore_blas = None  # set at the first fork: an unused backend changes nothing
        self._sigchld = contextlib.ExitStack()  # SIGCHLD from SIG_IGN to default, till close
        # Threads known to be alive at every fork: batch.Executor forks from its dispatcher
        # thread while the caller's thread runs (batch/_dispatch.py says why); any others
        # are warned about.
        self.expected_threads = 1
        self._frozen = False  # gc.freeze() in force until close() (free-threaded build)

    # --- starting ---------------------------------------------------------------------

    def start(self, task: Task) -> None:
        persistent = task.shared and task.attempt == 1
        if persistent:
            for worker in list(self._workers.values()):
                if worker.can_run(task):
                    start, stop = task.span
                    try:
                        os.write(worker.task_fd, _worker.TASK.pack(task.index, start, stop))
                    except BrokenPipeError:  # it died idle, after its last result was
                        self._let_go(worker)  # read; wait() reaps it. Another one runs this.
                        continue
                    worker.assign(task)
                    self._busy[task.index] = worker
                    return
        self._fork(task, persistent)

    def _fork(self, task: Task, persistent: bool) -> None:
        _warn_if_threads(self.expected_threads)
        if self._restore_blas is None:
            _platform.prepare_fork()  # nothing to do unless modules were imported since
            self._restore_blas = _cpus.limit_blas_threads(self._blas_threads)
            self._sigchld.enter_context(_signals.sigchld_default())
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # closed or replaced streams
                pass
        fds = [-1] * 4  # result r, w, task tr, tw: inside `try`, so a failed pipe leaks none
        _FORK_LOCK.acquire()  # pipes, fork and registration: one step for other threads
        try:
            fds[0:2] = self._starting(os.pipe, "its result pipe")
            if persistent:
                fds[2:4] = self._starting(os.pipe, "its task pipe")
            r, w, tr, tw = fds
            _platform.enlarge_pipe(w)
            inherited = _hidden_fds.current()  # listed here: the child takes no lock
            with _signals.signals_blocked():
                froze = not self._frozen and _worth_freezing(task)
                if froze:
                    gc.freeze()  # the child's collector then leaves the shared pages alone
                    self._frozen = _FREEZE_PER_RUN
                try:
                    pid = self._starting(_fork_quietly, "the process")
                except BaseException:
                    if froze:
                        gc.unfreeze()
                        self._frozen = False
                    raise
                if pid == 0:
                    _worker.main(task, w, tr, [r, tw, *inherited], os.getppid(),
                                 self._initializer, self._initargs)  # never returns
                if froze and not _FREEZE_PER_RUN:
                    gc.unfreeze()
                for i in (1, 2):  # the worker's ends: closed here at once
                    if fds[i] >= 0:
                        os.close(fds[i])
                    fds[i] = -1
                os.set_blocking(r, False)
                _hidden_fds.add(r, tw)  # not for the next worker, of this run or another
                worker = _Worker(pid, r, tw, task)
                self._workers[pid] = worker
                self._busy[task.index] = worker
                self._sel.register(r, selectors.EVENT_READ, worker)
                fds = []
        finally:
            _FORK_LOCK.release()
            for fd in fds:
                if fd >= 0:
                    os.close(fd)

    def _starting(self, call, what: str):
        """call(); an OSError from it (a limit reached) becomes a WorkerStartError."""
        try:
            return call()
        except OSError as exc:
            running = len(self._workers)
            raise _errors.WorkerStartError(
                f"could not start a worker: creating {what} failed ({exc.strerror or exc}) "
                f"with {running} worker{'s' if running != 1 else ''} running; "
                f"{_platform.start_limit(exc.errno)} is probably reached: raise it, or "
                f"use fewer workers", errno=exc.errno, running=running) from exc

    def _unfreeze(self) -> None:
        if self._frozen:
            self._frozen = False
            gc.unfreeze()

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
                if worker.reader.to_push:
                    remote, worker.reader.to_push = worker.reader.to_push, []
                    worker.push(remote)
            except _wire.PullError as exc:
                out = self._unpulled(worker, exc)
                if out is not None:
                    outcomes.append(out)
                continue
            except _wire.DecodeError as exc:
                out = self._end(worker, problem=str(exc))
                if out is not None:
                    outcomes.append(out)
                continue
            if worker.task is None:
                if eof:  # an idle worker left (killed from outside): no chunk lost
                    self._end(worker)
            elif worker.reader.complete and worker.task_fd >= 0 and not eof:
                outcomes.append(self._delivered(worker))
            elif eof or worker.reader.complete:
                # A one-shot worker's complete message is enough: a grandchild holding
                # the pipe open must not delay the result until it exits.
                outcomes.append(self._end(worker))
        return outcomes

    def _unpulled(self, worker: _Worker, exc: _wire.PullError) -> Outcome | None:
        """A result's arrays could not be read from the worker's memory.

        Denied (a ptrace rule the probe could not see): big results take the pipe from
        now on, and the chunk runs again on a new worker, which inherits that decision;
        the attempt is not counted, because nothing failed but the transport. Lost (the
        worker died before the read): its exit status says why, as for any crash.
        """
        if exc.denied:
            task = worker.task
            _platform.pull_denied()
            self._release(worker)
            _platform.stop_and_reap([worker.pid], stop=[worker.pid], grace=0)
            self._fork(task, persistent=False)
            return None
        if exc.lost:
            return self._end(worker, lost=str(exc))
        return self._end(worker, problem=str(exc))

    def _delivered(self, worker: _Worker) -> Outcome:
        """A persistent worker finished a chunk and waits for the next one."""
        task = worker.task
        out = Outcome(task, pid=worker.pid, started=worker.started,
                      seconds=time.perf_counter() - worker.t0,
                      maxrss=_platform.peak_rss(worker.pid))
        self._read_message(worker, out)
        del self._busy[task.index]
        worker.assign(None)
        if self._finishing:
            self._let_go(worker)
        return out

    def finishing(self) -> None:
        """The input is exhausted: idle workers start exiting now, while the last chunks
        still run, instead of at close(); that took about 3 ms at the end of a run."""
        self._finishing = True
        self.let_go_idle()

    def let_go_idle(self, wanted=()) -> None:
        """Let idle workers exit, except those forked over an input whose id() is in
        `wanted`: batch.Executor's calls and maps come one input after another, and an
        idle worker of a finished one would otherwise wait on its task pipe until close()."""
        for worker in list(self._workers.values()):
            if worker.task is None and id(worker.first.data) not in wanted:
                self._let_go(worker)

    def _let_go(self, worker: _Worker) -> None:
        # End of file on its task pipe: the worker exits; its result pipe then reports
        # end of file, and wait() reaps it.
        if worker.task_fd >= 0:
            _hidden_fds.discard(worker.task_fd)
            os.close(worker.task_fd)
            worker.task_fd = -1

    def _end(self, worker: _Worker, problem: str | None = None,
             lost: str | None = None) -> Outcome | None:
        """Reap a worker whose message is complete, cut short or garbled, or that left
        (`lost`: after sending a message whose arrays could not be read)."""
        if problem is not None:
            _platform.kill_group(worker.pid, signal.SIGKILL)
        self._release(worker)
        try:
            _, status, maxrss = _platform.wait4(worker.pid)
        except ChildProcessError:  # reaped by the system: SIGCHLD ignored where batch
            status = maxrss = None  # could not change it (see _signals.sigchld_default)
        task, reader = worker.task, worker.reader
        if task is None:
            return None
        exitcode, signum = _errors.decode_wait_status(status)
        out = Outcome(task, pid=worker.pid, started=worker.started,
                      seconds=time.perf_counter() - worker.t0,
                      exitcode=exitcode, signal=signum, maxrss=maxrss)
        where = {"chunk": task.index, "items": task.items}
        if problem is not None:
            out.error = _errors.result_error(f"garbled result from the worker: {problem}", **where)
        elif lost is not None or reader.pushing:
            out.error = _errors.crashed(status, pid=worker.pid, maxrss=maxrss,
                                        detail="before its result was read", **where)
        elif reader.complete:
            self._read_message(worker, out)
        elif reader.received and exitcode == 0 and status is not None:
            out.error = _errors.result_error(
                f"the worker exited after sending only {reader.received} bytes of its result",
                **where)
        else:
            detail = f"after sending {reader.received} bytes" if reader.received else ""
            out.error = _errors.crashed(status, pid=worker.pid, maxrss=maxrss, detail=detail,
                                        **where)
        return out

    def _read_message(self, worker: _Worker, out: Outcome) -> None:
        reader, task = worker.reader, worker.task
        where = {"chunk": task.index, "items": task.items}
        if reader.extra:
            out.error = _errors.result_error(
                f"{reader.extra} stray bytes after the result in the worker's pipe", **where)
        elif reader.kind == _wire.RESULT:
            out.compute, out.result = reader.payload
            out.private = reader.private
        else:
            info = reader.payload
            out.compute = info.get("seconds")
            if info.get("encode"):
                out.error = _errors.result_error(info["message"], **where)
            else:
                out.error = _remote.worker_error(info, **where)

    def _release(self, worker: _Worker) -> None:
        """Forget a worker and close its fds; it still has to be reaped."""
        self._workers.pop(worker.pid, None)
        if worker.task is not None:
            self._busy.pop(worker.task.index, None)
        _hidden_fds.discard(worker.fd, worker.task_fd)  # before the numbers can be reused
        if worker.fd >= 0:
            self._sel.unregister(worker.fd)
            os.close(worker.fd)
            worker.fd = -1
        if worker.task_fd >= 0:
            os.close(worker.task_fd)
            worker.task_fd = -1

    # --- stopping ---------------------------------------------------------------------

    def stop(self, task: Task) -> Outcome:
        worker = self._busy[task.index]
        out = Outcome(task, pid=worker.pid, started=worker.started,
                      seconds=time.perf_counter() - worker.t0)
        self._release(worker)
        _platform.stop_and_reap([worker.pid], stop=[worker.pid], grace=STOP_GRACE)
        return out

    def close(self, grace: float = STOP_GRACE) -> None:
        """Stop and reap every worker; close every fd. Idempotent.

        Idle persistent workers leave by themselves when their task pipe closes; busy
        ones are stopped with SIGTERM, then SIGKILL after `grace` seconds (0: at once,
        for batch.Executor.kill_workers).
        """
        workers = list(self._workers.values())
        busy = [w.pid for w in workers if w.task is not None]
        try:
            for worker in workers:
                self._release(worker)
            _platform.stop_and_reap([w.pid for w in workers], stop=busy, grace=grace)
        finally:
            if self._wake_fd >= 0:
                self._sel.unregister(self._wake_fd)
                self._wake_fd = -1
            if self._sel_fd >= 0:
                _hidden_fds.discard(self._sel_fd)
                self._sel_fd = -1
            self._sel.close()
            self._unfreeze()
            if self._restore_blas is not None:
                self._restore_blas()
                self._restore_blas = None
            self._sigchld.close()  # every worker is reaped by now


def _warn_if_threads(expected: int = 1) -> None:
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
