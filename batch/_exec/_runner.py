"""The job runner: up to N programs at a time, each with its own pipes and process group.

    jobs (lazy) ─► render argv for a free slot; pipes made and registered here
        │          ─► _Spawner: 2 threads, posix_spawn (own group; ctypes, the GIL
        │             released), pid recorded and lifeline "+pid", then the child's
        │             pipe ends closed: one hand-off a job, nothing comes back
        │               stdin bytes ─► pipe ─► job ─► stdout/stderr pipes ─┐
        │      one poll object (epoll): write stdin as the job reads, read  │
        │      outputs into Captures (spool past the Budget)  ◄─────────────┘
        │      both outputs at EOF ─► wait4(WNOHANG): reaped (a pidfd only if not yet)
        │      timeout: SIGTERM the group, grace, SIGKILL; Ctrl-C: all of them
        ▼
    Done (completion order), failed ones first run again up to `retries` times

A job is done when its process is reaped *and* both its output pipes reached EOF (as
subprocess.communicate: a background grandchild that holds the pipe keeps the job open,
and --timeout still ends it by signalling the whole group). Everything is read through
one poll object, so a job printing gigabytes never blocks, and neither does one that
reads its stdin slowly. The coordinator never blocks in waitpid. The EOF also tells the
spawn is over: the spawner closes its copies of the child's ends only after recording
the pid (or why the program could not start), so no message from the threads is needed.
Jobs without output pipes, and jobs with a cwd (Popen), are spawned on this thread.

Why this shape: the cost per job. A 2,000-job run of `true` is all spawning and waiting,
and `batch exec` must come near xargs there (issue 10). A spawn blocks its caller until
the child's execve (CLONE_VFORK): 0.26-0.28 ms on a quiet machine, 0.9-1.4 ms at load 4
(timed around each call). The design before spawned on 2 threads too, but each job
crossed threads twice (a queue there, a wake-up pipe and a results deque back): 15 futex
calls a job under `strace -c -f`, and its coordinator cost 0.26-0.43 ms of CPU a job
(RUSAGE_SELF of a Runner over 2,000 `true`, 2 workers, load-dependent). Also gone:

- a pidfd per job (pidfd_open, two epoll_ctl, close): a job's pipes reach EOF when it
  exits, so wait4(WNOHANG) then nearly always reaps it (all but 37 of 2,000, counted);
  only a job that is not yet a zombie then (that race, or one that closed its outputs
  and runs on) gets a pidfd, and jobs without pipes get one at once. Without pidfds (not
  Linux) those are polled every 5 ms.
- selectors' SelectorKey bookkeeping (3.6 us a register/unregister pair against 1.3 for
  epoll's own); a scan of every running job per wake-up (only with --timeout now); two
  signal.signal calls per job handed to the caller (SigintGuard.lend, 13.7 us a pair).

The spawning's figures, and what was tried and dropped: _spawner.py.
"""

from __future__ import annotations

import collections
import os
import signal
import time

from .. import _platform, _signals
from ._feed import feed_for
from ._job import Done, Job
from ._lifeline import Lifeline
from ._output import Budget, Capture
from ._spawn import Launch, NotRunnable, kill_rest_of_group, pidfd, reaped, spawn_in
from ._spawner import THREADS, Spawner

# After SIGTERM, how long a job's group has to exit before SIGKILL: time for a program's
# own handler to clean up, short enough that Ctrl-C ends a run well within two seconds.
STOP_GRACE = 1.0

_READ = 1 << 18     # bytes per read of an output pipe
_WRITE = 1 << 16    # a job's stdin bigger than a default pipe gets an enlarged one
_POLL = 0.005       # seconds between wait4 polls of exited-looking jobs without a pidfd
_IN, _OUT = _platform.POLL_IN, _platform.POLL_OUT


class _Running:
    __slots__ = ("done", "keep", "fds", "pidfd", "stdin_fd", "view", "t0", "deadline",
                 "kill_at", "reaped", "failure")

    def __init__(self, done: Done, keep, t0, timeout):
        self.done, self.keep = done, keep
        self.fds: list[int] = []   # its open output pipes
        self.pidfd = self.stdin_fd = -1
        self.view = None
        self.t0 = t0
        self.deadline = None if timeout is None else t0 + timeout
        self.kill_at = None
        self.reaped = False
        self.failure = None  # what the spawner thread could not do (raised by the runner)


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
        self._keys: dict = {}             # fd -> (run, 1 | 2 output, 0 stdin, -1 pidfd)
        self._polled: set = set()         # runs awaiting their exit without a pidfd
        self._finished: list[Done] = []
        self._ready: collections.deque = collections.deque()  # reaped, for the caller
        self._poll, self._unit = _platform.poller()
        self._free = list(range(self.workers, 0, -1))
        self._piped = self.capture or self.stream is not None
        self._launch = Launch(self.env) if self.cwd is None else None
        self._spawner = None
        if self._launch is not None and self._piped:
            self._spawner = Spawner(self._launch, min(self.workers, THREADS))
        guard = _signals.SigintGuard()
        lifeline = self._lifeline = Lifeline()
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
            while self._launching and len(self._running) < self.workers:
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
            self._poll.register(guard.fd, _IN)
            self._keys[guard.fd] = None
            while True:
                yield from launch()
                if guard.interrupted:  # (also while the last job was being started)
                    raise KeyboardInterrupt
                if not self._running:
                    break
                finished = self._wait()
                if guard.interrupted:
                    raise KeyboardInterrupt
                ready = self._ready
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
            self._stop_all()
            self._poll.close()
            if self._spawner is not None:
                self._spawner.join()
            if self._launch is not None:
                self._launch.close()
            lifeline.close()
            guard.close()

    # --- starting ------------------------------------------------------------------

    def _start(self, job: Job) -> Done | None:
        slot = self._free.pop()
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
                    run = self._running[slot] = _Running(done, None, time.monotonic(),
                                                         self.timeout)
                    self._watch(run, job, out_r, err_r, in_w)
                    mine = []  # registered: closed at EOF, or by _stop_all
                    self._spawner.submit(run, argv, in_r, out_w, err_w)
                    theirs = []  # the spawner closes them, after the spawn
                return None
            if self._launch is not None:
                # Held, not dropped: no SIGTERM handler (sigterm_raises) may run between
                # the spawn and the record, or the job would be orphaned.
                with _signals.signals_blocked():
                    pid = self._launch(argv, in_r, out_w, err_w)
                    self._lifeline.watch(pid)
                    run = self._running[slot] = _Running(done, None, time.monotonic(),
                                                        self.timeout)
            else:  # a cwd: Popen, whose child would inherit a blocked mask
                pid, keep = spawn_in(argv, stdin=in_r, stdout=out_w, stderr=err_w,
                                     env=self.env, cwd=self.cwd)
                self._lifeline.watch(pid)
                run = self._running[slot] = _Running(done, keep, time.monotonic(),
                                                    self.timeout)
            done.pid = pid
        except BaseException as exc:
            for fd in mine:
                os.close(fd)
            self._free.append(slot)
            if not isinstance(exc, NotRunnable):
                raise
            done.error = str(exc)
            return done
        finally:
            for fd in theirs:
                os.close(fd)
        self._watch(run, job, out_r, err_r, in_w)
        return None

    def _watch(self, run: _Running, job: Job, out_r, err_r, in_w) -> None:
        done = run.done
        register, keys = self._poll.register, self._keys
        if out_r is not None:
            if self.stream is None:
                done.stdout, done.stderr = Capture(self.budget), Capture(self.budget)
            run.fds += (out_r, err_r)
            register(out_r, _IN)
            keys[out_r] = (run, 1)
            register(err_r, _IN)
            keys[err_r] = (run, 2)
        if in_w is not None:
            if len(job.stdin) > _WRITE:  # a --pipe block: one write, not 16, per MiB
                _platform.enlarge_pipe(in_w)
            os.set_blocking(in_w, False)
            run.stdin_fd, run.view = in_w, feed_for(job.stdin)  # _feed.py: bytes, splice
            register(in_w, _OUT)
            keys[in_w] = (run, 0)
            if not len(job.stdin):
                self._close_stdin(run)
        if not run.fds:  # nothing to reach EOF: only its exit says it is done
            self._await_exit(run)

    def _await_exit(self, run: _Running) -> None:
        run.pidfd = pidfd(run.done.pid)
        if run.pidfd >= 0:
            self._poll.register(run.pidfd, _IN)
            self._keys[run.pidfd] = (run, -1)
        else:
            self._polled.add(run)

    # --- waiting -------------------------------------------------------------------

    def _wait(self) -> list[Done]:
        wait = None
        if self.timeout is not None:
            times = [t for r in self._running.values() for t in (r.deadline, r.kill_at)
                     if t is not None]
            if times:
                wait = max(0.0, min(times) - time.monotonic())
        if self._polled:
            wait = _POLL if wait is None else min(wait, _POLL)
        keys = self._keys
        for fd, _ in self._poll.poll(-1 if wait is None else wait * self._unit):
            key = keys.get(fd, False)
            if key is None:  # the SIGINT guard's pipe: the caller raises
                return []
            if key is False:  # closed by an earlier event of this same poll
                continue
            run, which = key
            if which > 0:
                self._read(run, fd, which)
            elif which == 0:
                self._feed(run)
            else:
                self._reap(run)
        if self.timeout is not None:
            self._enforce_timeouts()
        for run in list(self._polled):
            self._reap(run)
        finished, self._finished = self._finished, []
        return finished

    def _enforce_timeouts(self) -> None:
        now = time.monotonic()
        for run in self._running.values():
            pid = run.done.pid
            if not pid:  # its spawn is still on the spawner thread
                continue
            if run.deadline is not None and now >= run.deadline and run.kill_at is None:
                run.done.timed_out = True
                _platform.kill_group(pid, signal.SIGTERM)
                run.kill_at = now + self.grace
            elif run.kill_at is not None and now >= run.kill_at:
                _platform.kill_group(pid, signal.SIGKILL)
                run.kill_at = float("inf")

    def _read(self, run: _Running, fd: int, which: int) -> None:
        data = os.read(fd, _READ)
        if not data:
            self._poll.unregister(fd)
            os.close(fd)
            del self._keys[fd]
            run.fds.remove(fd)
            if not run.fds:
                if not run.done.pid:  # could not start (the spawner closed its ends)
                    if run.failure is not None:
                        raise run.failure
                    self._close_stdin(run)
                    self._finished.append(self._finish(run))
                elif not run.reaped:
                    self._reap(run)  # it closed them by exiting, nearly always
                    if not run.reaped:
                        self._await_exit(run)
                else:
                    self._finished.append(self._finish(run))
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
            self._poll.unregister(run.stdin_fd)
            del self._keys[run.stdin_fd]
            os.close(run.stdin_fd)
            run.stdin_fd, run.view = -1, None

    def _reap(self, run: _Running) -> None:
        pid, status = os.waitpid(run.done.pid, os.WNOHANG)
        if not pid:
            return
        run.reaped = True
        run.done.status = status
        run.done.runtime = time.monotonic() - run.t0
        reaped(run.keep, status)
        self._lifeline.forget(run.done.pid)
        if run.pidfd >= 0:
            self._poll.unregister(run.pidfd)
            del self._keys[run.pidfd]
            os.close(run.pidfd)
            run.pidfd = -1
        self._polled.discard(run)
        self._close_stdin(run)
        if not run.fds:
            self._finished.append(self._finish(run))

    def _finish(self, run: _Running) -> Done:
        if run.kill_at is not None:  # stopped: what of its group ignored SIGTERM goes too
            kill_rest_of_group(run.done.pid)
        del self._running[run.done.slot]
        self._free.append(run.done.slot)
        self._free.sort(reverse=True)
        return run.done

    # --- stopping ------------------------------------------------------------------

    def _stop_all(self) -> None:
        if self._spawner is not None:  # no spawn still on its way: each has its pid
            self._spawner.join()
        running = list(self._running.values())
        for run in running:
            self._close_stdin(run)
        alive = [r.done.pid for r in running if r.done.pid and not r.reaped]
        _platform.stop_and_reap(alive, stop=alive, grace=self.grace)
        for pid in alive:
            kill_rest_of_group(pid)
        for run in running:
            if run.done.pid and not run.reaped:
                reaped(run.keep, 0)
                self._lifeline.forget(run.done.pid)
            for fd in [*run.fds, run.pidfd]:
                if fd >= 0:
                    os.close(fd)
            run.fds.clear()
            run.done.close()
        self._running.clear()
        for done in [*self._finished, *self._ready]:  # reaped, never handed over
            done.close()
        self._finished = []
        self._ready.clear()
