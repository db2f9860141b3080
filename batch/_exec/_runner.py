"""The job runner: up to N programs at a time, each with its own pipes and process group.

    jobs (lazy) ─► render argv for a free slot ─► _spawner threads (posix_spawn through
        │               libc, GIL released: spawns overlap; else _spawn.spawn), own group
        │               stdin bytes ─► pipe ─► job ─► stdout/stderr pipes ─┐
        │                                      └─► pidfd (Linux) ──────────┤
        │      one selector: write stdin as the job reads, read outputs     │
        │      into Captures (spool past the Budget), reap at exit  ◄───────┘
        │      timeout: SIGTERM the group, grace, SIGKILL; Ctrl-C: all of them
        ▼
    Done (completion order), failed ones first run again up to `retries` times

A job is done when its process is reaped *and* both its output pipes reached EOF (as
subprocess.communicate: a background grandchild that holds the pipe keeps the job open,
and --timeout still ends it by signalling the whole group). Everything is read through
one selector, so a job printing gigabytes never blocks, and neither does one that reads
its stdin slowly. The coordinator never blocks in waitpid: pidfds wake the selector at
each exit (elsewhere jobs whose pipes closed are polled every 5 ms).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import selectors
import signal
import time

from .. import _platform, _signals
from ._feed import feed_for
from ._job import Done, Job
from ._lifeline import Lifeline
from ._output import Budget, Capture
from ._spawn import _DEFAULTS, NotRunnable, kill_rest_of_group, pidfd, reaped, spawn
from . import _libc_spawn
from ._spawner import Spawner

_SPAWNED = (None, -2)  # the selector key of the spawner's wake-up pipe

# After SIGTERM, how long a job's group has to exit before SIGKILL: time for a program's
# own handler to clean up, short enough that Ctrl-C ends a run well within two seconds.
STOP_GRACE = 1.0

_NOTHING = contextlib.nullcontext()
_READ = 1 << 18     # bytes per read of an output pipe
_WRITE = 1 << 16    # a job's stdin bigger than a default pipe gets an enlarged one


class _Running:
    __slots__ = ("done", "keep", "fds", "pidfd", "stdin_fd", "view", "t0", "deadline",
                 "kill_at", "reaped")

    def __init__(self, done: Done, keep, timeout):
        self.done, self.keep = done, keep
        self.fds: dict[int, int] = {}   # output fd -> 1 or 2
        self.pidfd = self.stdin_fd = -1
        self.view = None
        self.t0 = time.monotonic()
        self.deadline = None if timeout is None else self.t0 + timeout
        self.kill_at = None
        self.reaped = False


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
        self._running: dict[int, _Running] = {}
        self._sel = selectors.DefaultSelector()
        self._free = list(range(self.workers, 0, -1))
        guard = _signals.SigintGuard()
        lifeline = self._lifeline = Lifeline()
        # Spawns on threads (_spawner.py) where they can overlap; a `cwd` job goes
        # through Popen on this thread (a thread's blocked signals would be its mask).
        self._spawner = None
        if self.cwd is None and _libc_spawn.available():
            self._spawner = Spawner(self.env, lifeline, _DEFAULTS,
                                    threads=min(self.workers, 2))
        # SIGINT only sets a flag while jobs are started and waited for (no job can be
        # orphaned between its spawn and its record); it is the caller's own while a
        # result is in the caller's hands, at each yield.
        guard.__enter__()
        try:
            self._sel.register(guard.fd, selectors.EVENT_READ, None)
            if self._spawner is not None:
                self._sel.register(self._spawner.fd, selectors.EVENT_READ, _SPAWNED)
            exhausted = False
            while True:
                while self._launching and len(self._running) + self._pending() < self.workers:
                    job = retry.popleft() if retry else (None if exhausted else next(jobs, None))
                    if job is None:
                        exhausted = True
                        break
                    early = self._start(job)
                    if early is not None:
                        guard.__exit__(None, None, None)
                        yield early
                        guard.__enter__()
                if guard.interrupted:  # (also while the last job was being started)
                    raise KeyboardInterrupt
                if not self._running and not self._pending():
                    break
                finished = self._wait()
                if guard.interrupted:
                    raise KeyboardInterrupt
                for done in finished:
                    if done.returncode != 0 and done.job.attempt <= self.retries \
                            and not done.error:  # could not start: as _start's early ones
                        done.close()
                        retry.append(dataclasses.replace(done.job,
                                                         attempt=done.job.attempt + 1))
                    else:
                        done.job.stdin = None  # a --pipe block waiting behind -k: freed
                        guard.__exit__(None, None, None)
                        yield done
                        guard.__enter__()
        finally:
            guard.__exit__(None, None, None)
            self._stop_all()
            self._sel.close()
            if self._spawner is not None:
                self._spawner.close()
            lifeline.close()
            guard.close()

    # --- starting ------------------------------------------------------------------

    def _start(self, job: Job) -> Done | None:
        slot = self._free.pop()
        argv = self._render(job, slot)
        done = Done(job, argv, slot, started=time.time())
        piped = self.capture or self.stream is not None
        mine, theirs = [], []
        try:
            out_r, out_w = os.pipe() if piped else (-1, None)
            mine.append(out_r), theirs.append(out_w)
            err_r, err_w = os.pipe() if piped else (-1, None)
            mine.append(err_r), theirs.append(err_w)
            in_r, in_w = os.pipe() if job.stdin is not None else (None, -1)
            mine.append(in_w), theirs.append(in_r)
            if self._spawner is not None:
                self._spawner.submit((done, mine, theirs), argv, in_r, out_w, err_w)
                mine = theirs = ()  # the spawn's now: _spawned closes them
                return None
            with _signals.signals_blocked() if self.cwd is None else _NOTHING:
                pid, keep = spawn(argv, stdin=in_r, stdout=out_w, stderr=err_w, env=self.env,
                                  cwd=self.cwd)
                self._lifeline.watch(pid)
                done.pid = pid
                run = self._running[pid] = _Running(done, keep, self.timeout)
        except BaseException as exc:
            for fd in mine:
                if fd is not None and fd >= 0:
                    os.close(fd)
            self._free.append(slot)
            if not isinstance(exc, NotRunnable):
                raise
            done.error = str(exc)
            return done
        finally:
            for fd in theirs:
                if fd is not None:
                    os.close(fd)
        self._watch(run, job, out_r, err_r, in_w)
        return None

    def _pending(self) -> int:
        return 0 if self._spawner is None else self._spawner.pending

    def _spawned(self, results, *, reraise: bool = True) -> list[Done]:
        """Record the spawner's finished spawns (signals held: none may be lost between
        its result and its record); the Done of those that could not start."""
        early, error = [], None
        with _signals.signals_blocked():
            for (done, mine, theirs), pid, exc in results:
                for fd in theirs:
                    if fd is not None:
                        os.close(fd)
                if exc is not None:
                    for fd in mine:
                        if fd is not None and fd >= 0:
                            os.close(fd)
                    self._free.append(done.slot)
                    if isinstance(exc, NotRunnable):
                        done.error = str(exc)
                        early.append(done)
                    else:
                        error = error or exc
                    continue
                done.pid = pid
                run = self._running[pid] = _Running(done, None, self.timeout)
                self._watch(run, done.job, *mine)
        if error is not None and reraise:
            raise error
        return early

    def _watch(self, run: _Running, job: Job, out_r: int, err_r: int, in_w: int) -> None:
        done, pid = run.done, run.done.pid
        if self.capture and self.stream is None:
            done.stdout, done.stderr = Capture(self.budget), Capture(self.budget)
        for fd, which in ((out_r, 1), (err_r, 2)):
            if fd >= 0:
                run.fds[fd] = which
                self._sel.register(fd, selectors.EVENT_READ, (run, which))
        if in_w >= 0:
            if len(job.stdin) > _WRITE:  # a --pipe block: one write, not 16, per MiB
                _platform.enlarge_pipe(in_w)
            os.set_blocking(in_w, False)
            run.stdin_fd, run.view = in_w, feed_for(job.stdin)  # _feed.py: bytes, splice
            self._sel.register(in_w, selectors.EVENT_WRITE, (run, 0))
            if not len(job.stdin):
                self._close_stdin(run)
        run.pidfd = pidfd(pid)
        if run.pidfd >= 0:
            self._sel.register(run.pidfd, selectors.EVENT_READ, (run, -1))

    # --- waiting -------------------------------------------------------------------

    def _wait(self) -> list[Done]:
        now = time.monotonic()
        times = [t for r in self._running.values() for t in (r.deadline, r.kill_at)
                 if t is not None]
        wait = max(0.0, min(times) - now) if times else None
        finished = []
        if any(not r.fds and not r.reaped and r.pidfd < 0 for r in self._running.values()):
            wait = 0.005 if wait is None else min(wait, 0.005)
        for key, _ in self._sel.select(wait):
            if key.data is None:  # the SIGINT guard's pipe: the caller raises
                return []
            run, which = key.data
            if which == -2:
                finished += self._spawned(self._spawner.collect())
            elif which > 0:
                self._read(run, key.fd, which)
            elif which == 0:
                self._feed(run)
            else:
                self._reap(run, os.WNOHANG)
        now = time.monotonic()
        for pid, run in list(self._running.items()):
            if run.deadline is not None and now >= run.deadline and run.kill_at is None:
                run.done.timed_out = True
                _platform.kill_group(pid, signal.SIGTERM)
                run.kill_at = now + self.grace
            elif run.kill_at is not None and now >= run.kill_at:
                _platform.kill_group(pid, signal.SIGKILL)
                run.kill_at = float("inf")
            if not run.reaped and not run.fds and run.pidfd < 0:
                self._reap(run, os.WNOHANG)
            if run.reaped and not run.fds:
                finished.append(self._finish(run))
        return finished

    def _read(self, run: _Running, fd: int, which: int) -> None:
        data = os.read(fd, _READ)
        if not data:
            self._sel.unregister(fd)
            os.close(fd)
            del run.fds[fd]
            return
        if which == 1:
            run.done.received += len(data)
        if self.stream is not None:
            self.stream(run.done, which, data)
        else:
            (run.done.stdout if which == 1 else run.done.stderr).write(data)

    def _feed(self, run: _Running) -> None:
        try:
            n = run.view.send(run.stdin_fd)
        except BlockingIOError:
            return
        except OSError:  # EPIPE: the job stopped reading; what it read is what counts
            self._close_stdin(run)
            return
        run.done.sent += n
        if run.view.finished:
            self._close_stdin(run)

    def _close_stdin(self, run: _Running) -> None:
        if run.stdin_fd >= 0:
            self._sel.unregister(run.stdin_fd)
            os.close(run.stdin_fd)
            run.stdin_fd, run.view = -1, None

    def _reap(self, run: _Running, options: int) -> None:
        pid, status, _ = _platform.wait4(run.done.pid, options)
        if not pid:
            return
        run.reaped = True
        run.done.status = status
        run.done.runtime = time.monotonic() - run.t0
        reaped(run.keep, status)
        self._lifeline.forget(run.done.pid)
        if run.pidfd >= 0:
            self._sel.unregister(run.pidfd)
            os.close(run.pidfd)
            run.pidfd = -1
        self._close_stdin(run)

    def _finish(self, run: _Running) -> Done:
        if run.kill_at is not None:  # stopped: what of its group ignored SIGTERM goes too
            kill_rest_of_group(run.done.pid)
        del self._running[run.done.pid]
        self._free.append(run.done.slot)
        self._free.sort(reverse=True)
        return run.done

    # --- stopping ------------------------------------------------------------------

    def _stop_all(self) -> None:
        if self._spawner is not None:  # every spawn still on its way is stopped too
            for done in self._spawned(self._spawner.drain(), reraise=False):
                done.close()
        running = list(self._running.values())
        for run in running:
            self._close_stdin(run)
        alive = [r.done.pid for r in running if not r.reaped]
        _platform.stop_and_reap(alive, stop=alive, grace=self.grace)
        for pid in alive:
            kill_rest_of_group(pid)
        for run in running:
            if not run.reaped:
                reaped(run.keep, 0)
                self._lifeline.forget(run.done.pid)
            for fd in [*run.fds, run.pidfd]:
                if fd >= 0:
                    os.close(fd)
            run.fds.clear()
            run.done.close()
        self._running.clear()

