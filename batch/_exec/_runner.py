"""The job runner: up to N programs at a time, each with its own pipes and process group.

    jobs (lazy) ─► render argv for a free slot; pipes made, registered (_inflight.py)
        │          ─► _Spawner: 2 threads, posix_spawn (own group; ctypes, the GIL
        │             released), pid recorded and lifeline "+pid", then the child's
        │             pipe ends closed: one hand-off a job, nothing comes back
        │               stdin bytes ─► pipe ─► job ─► stdout/stderr pipes ─┐
        │      InFlight: one poll object (epoll); stdin written as the job  │
        │      reads, outputs read into Captures, reaped after EOF  ◄───────┘
        │      timeout: SIGTERM the group, grace, SIGKILL; Ctrl-C: all of them
        ▼
    Done (completion order), failed ones first run again up to `retries` times; the
    jobs that take the freed slots start before a success is handed to the caller

This module decides what runs next and hands results over; _inflight.py watches the
jobs that run. Jobs without output pipes, and jobs with a cwd (Popen), are spawned on
this thread.

Why this shape: the cost per job. A 2,000-job run of `true` is all spawning and waiting,
and `batch exec` must come near xargs there (issue 10). A spawn blocks its caller until
the child's execve (CLONE_VFORK): 0.26-0.28 ms on a quiet machine, 0.9-1.4 ms at load 4
(timed around each call). The design before spawned on 2 threads too, but each job
crossed threads twice (a queue there, a wake-up pipe and a results deque back): 15 futex
calls a job under `strace -c -f`, and its coordinator cost 0.26-0.43 ms of CPU a job
(RUSAGE_SELF of a Runner over 2,000 `true`, 2 workers, load-dependent). Also gone: two
signal.signal calls per job handed to the caller (SigintGuard.lend, 13.7 us a pair),
and what _inflight.py lists.

The spawning's figures, and what was tried and dropped: _spawner.py.
"""

from __future__ import annotations

import collections
import os
import time

from .. import _signals
from ._inflight import InFlight
from ._job import Done, Job
from ._lifeline import Lifeline
from ._output import Budget
from ._spawn import Launch, NotRunnable, spawn_in
from ._spawner import THREADS, Spawner

# After SIGTERM, how long a job's group has to exit before SIGKILL: time for a program's
# own handler to clean up, short enough that Ctrl-C ends a run well within two seconds.
STOP_GRACE = 1.0

class Runner:
    """Run jobs; `render(job, slot) -> argv`. See `run`.

    capture: stdout/stderr into Captures (else the caller's own); `stream(done, which,
    data)`, when given, gets output as it arrives instead (for --line-buffer).
    """

    def __init__(self, render, *, workers: int, timeout=None, retries: int = 0,
                 capture: bool = True, stream=None, env=None, cwd=None, budget=None,
                 grace: float = STOP_GRACE):
        self._render, self.workers, self.timeout = render, workers, timeout
        self.retries, self.capture, self.stream = retries, capture, stream
        # A plain dict, once: posix_spawn would iterate (and decode) os.environ per job.
        self.env = dict(os.environ) if env is None else env
        self.cwd, self.grace = cwd, grace
        self.budget = budget or Budget()
        self._launching = True

    def stop_launching(self) -> None:
        """Start no more jobs; the running ones finish (--halt soon)."""
        self._launching = False

    def run(self, jobs):
        """Yield a Done per job, in completion order; on exit (the end, an exception,
        Ctrl-C, close()) every job still running is stopped and reaped."""
        jobs, retry = iter(jobs), collections.deque()
        ready: collections.deque[Done] = collections.deque()  # reaped, for the caller
        self._piped = self.capture or self.stream is not None
        self._launch = Launch(self.env) if self.cwd is None else None
        self._spawner = None
        if self._launch is not None and self._piped:
            self._spawner = Spawner(self._launch, min(self.workers, THREADS))
        guard = _signals.SigintGuard()
        lifeline = self._lifeline = Lifeline()
        try:
            flight = self._flight = InFlight(self.workers, timeout=self.timeout,
                                             grace=self.grace, stream=self.stream,
                                             budget=self.budget, lifeline=lifeline)
        except BaseException:  # no poll object (EMFILE): the watchdog must not stay
            lifeline.close()
            raise
        if self._spawner is not None:
            self._spawner.start(lifeline)
        # SIGINT only sets a flag while jobs are started and waited for (no job can be
        # orphaned between its spawn and its record); it is the caller's own while a
        # result is in the caller's hands, at each yield.
        guard.__enter__()
        exhausted = False

        def launch():
            """Fill the free slots; yield each job that could not start."""
            nonlocal exhausted
            while self._launching and len(flight.running) < self.workers:
                job = retry.popleft() if retry else (None if exhausted else next(jobs, None))
                if job is None:
                    exhausted = True
                    return
                early = self._start(job)
                if early is not None:
                    guard.lend()
                    yield early
                    guard.take_back()

        try:
            flight.wake_on(guard.fd)
            while True:
                yield from launch()
                if guard.interrupted:  # (also while the last job was being started)
                    raise KeyboardInterrupt
                if not flight.running:
                    break
                finished = flight.wait()
                if guard.interrupted:
                    raise KeyboardInterrupt
                for done in finished:
                    if done.returncode != 0 and done.job.attempt <= self.retries \
                            and not done.error:  # could not start: as _start's early ones
                        done.close()
                        retry.append(done.job.again())
                    else:
                        done.job.stdin = None  # a --pipe block waiting behind -k: freed
                        ready.append(done)
                # The jobs that take the freed slots start before the results go to the
                # caller, who may hold one for long (iexec): the slots work meanwhile.
                # Not past a failure: it may stop the launching (--halt soon, check=True).
                if all(done.returncode == 0 for done in ready):
                    yield from launch()
                    if guard.interrupted:
                        raise KeyboardInterrupt
                while ready:
                    done = ready.popleft()
                    guard.lend()
                    yield done
                    guard.take_back()
        finally:
            guard.__exit__(None, None, None)
            if self._spawner is not None:  # no spawn still on its way: each has its pid
                self._spawner.join()
            flight.stop_all()
            for done in ready:  # reaped, never handed over (an exception between)
                done.close()
            flight.close()
            if self._launch is not None:
                self._launch.close()
            lifeline.close()
            guard.close()

    # --- starting ------------------------------------------------------------------

    def _start(self, job: Job) -> Done | None:
        flight = self._flight
        slot = flight.take_slot()
        argv = self._render(job, slot)
        done = Done(job, argv, slot, started=time.time())
        mine, theirs = [], []
        try:
            if self._piped:
                out_r, out_w = os.pipe()
                mine.append(out_r), theirs.append(out_w)
                err_r, err_w = os.pipe()
                mine.append(err_r), theirs.append(err_w)
            else:
                out_r = out_w = err_r = err_w = None
            in_r = in_w = None
            if job.stdin is not None:
                in_r, in_w = os.pipe()
                mine.append(in_w), theirs.append(in_r)
            if self._spawner is not None:
                # Held: no SIGTERM handler may raise between registering the fds (the
                # run's now) and handing the child's ends over (the spawner's now).
                with _signals.signals_blocked():
                    run = flight.add(slot, done)
                    flight.watch(run, job, out_r, err_r, in_w)
                    mine = []  # registered: closed at EOF, or by stop_all
                    self._spawner.submit(run, argv, in_r, out_w, err_w)
                    theirs = []  # the spawner closes them, after the spawn
                return None
            if self._launch is not None:
                # Held, not dropped: no SIGTERM handler (sigterm_raises) may run between
                # the spawn and the record, or the job would be orphaned.
                with _signals.signals_blocked():
                    pid = self._launch(argv, in_r, out_w, err_w)
                    self._lifeline.watch(pid)
                    run = flight.add(slot, done)
            else:  # a cwd: Popen, whose child would inherit a blocked mask
                pid, keep = spawn_in(argv, stdin=in_r, stdout=out_w, stderr=err_w,
                                     env=self.env, cwd=self.cwd)
                self._lifeline.watch(pid)
                run = flight.add(slot, done, keep)
            done.pid = pid
        except BaseException as exc:
            for fd in mine:
                os.close(fd)
            flight.give_back(slot)
            if not isinstance(exc, NotRunnable):
                raise
            done.error = str(exc)
            return done
        finally:
            for fd in theirs:
                os.close(fd)
        flight.watch(run, job, out_r, err_r, in_w)
        return None
