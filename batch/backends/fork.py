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

This module is the backend's loop: which worker runs what, reading, reaping, stopping.
Forking one worker (its pipes, the fork lock, gc.freeze, the thread warning) is
_forking.py; one worker's fds and what its message and exit mean, _worker_handle.py.
"""

from __future__ import annotations

import contextlib
import gc
import os
import selectors
import signal
import time

from .. import _cpus, _hidden_fds, _platform, _signals, _wire
from . import _forking, _worker
from ._base import Outcome, Task
from ._worker_handle import WorkerHandle

# Time a stopped worker gets to exit after SIGTERM before SIGKILL: long enough for a
# mapped function's own SIGTERM handler to clean up, short enough that Ctrl-C finishes
# well inside two seconds.
STOP_GRACE = 0.5


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
        self._workers: dict[int, WorkerHandle] = {}   # pid -> every worker not yet reaped
        self._busy: dict[int, WorkerHandle] = {}      # task index -> worker running it
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
                        worker.let_go()  # read; wait() reaps it. Another one runs this.
                        continue
                    worker.assign(task)
                    self._busy[task.index] = worker
                    return
        self._fork(task, persistent)

    def _fork(self, task: Task, persistent: bool) -> None:
        _forking.warn_if_threads(self.expected_threads)
        if self._restore_blas is None:
            _platform.prepare_fork()  # nothing to do unless modules were imported since
            self._restore_blas = _cpus.limit_blas_threads(self._blas_threads)
            self._sigchld.enter_context(_signals.sigchld_default())
        froze = not self._frozen and _forking.worth_freezing(task)

        def child(w: int, tr: int, close_fds: list[int]) -> None:
            _worker.main(task, w, tr, close_fds, os.getppid(), self._initializer,
                         self._initargs)  # never returns

        with _forking.forked(child, persistent=persistent, freeze=froze,
                             running=len(self._workers)) as (pid, r, tw):
            if froze:
                self._frozen = _forking.FREEZE_PER_RUN  # then unfrozen in close()
            worker = WorkerHandle(pid, r, tw, task)
            self._workers[pid] = worker
            self._busy[task.index] = worker
            self._sel.register(r, selectors.EVENT_READ, worker)

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

    def _unpulled(self, worker: WorkerHandle, exc: _wire.PullError) -> Outcome | None:
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

    def _delivered(self, worker: WorkerHandle) -> Outcome:
        """A persistent worker finished a chunk and waits for the next one."""
        task = worker.task
        out = Outcome(task, pid=worker.pid, started=worker.started,
                      seconds=time.perf_counter() - worker.t0,
                      maxrss=_platform.peak_rss(worker.pid))
        worker.read_message(out)
        del self._busy[task.index]
        worker.assign(None)
        if self._finishing:
            worker.let_go()
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
                worker.let_go()

    def _end(self, worker: WorkerHandle, problem: str | None = None,
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
        return worker.ended(status, maxrss, problem=problem, lost=lost)

    def _release(self, worker: WorkerHandle) -> None:
        """Forget a worker and close its fds; it still has to be reaped."""
        self._workers.pop(worker.pid, None)
        if worker.task is not None:
            self._busy.pop(worker.task.index, None)
        worker.close(self._sel)

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
