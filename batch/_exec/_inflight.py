"""The jobs in flight: their pipes on one poll object, until each is reaped and read out.

    InFlight.watch(run): its output pipes (and stdin, if fed) registered on the poll
    wait() ─► poll ─► output read into Captures (or streamed) │ stdin written as the
            │         job reads (_feed.py)                  │ timeout: SIGTERM the
            │                                               │ group, grace, SIGKILL
            both outputs at EOF ─► wait4(WNOHANG): reaped (a pidfd only if not yet)
            ▼
    Done, in completion order, its slot free again      stop_all(): every job still
                                                        running stopped and reaped

A job is done when its process is reaped *and* both its output pipes reached EOF (as
subprocess.communicate: a background grandchild that holds the pipe keeps the job open,
and --timeout still ends it by signalling the whole group). Everything is read through
one poll object, so a job printing gigabytes never blocks, and neither does one that
reads its stdin slowly. The coordinator never blocks in waitpid. The EOF also tells the
spawn is over: the spawner closes its copies of the child's ends only after recording
the pid (or why the program could not start), so no message from the threads is needed.

What was taken out of this loop for its cost per job (issue 10; the runner's docstring
has the whole-run figures):

- a pidfd per job (pidfd_open, two epoll_ctl, close): a job's pipes reach EOF when it
  exits, so wait4(WNOHANG) then nearly always reaps it (all but 37 of 2,000, counted);
  only a job that is not yet a zombie then (that race, or one that closed its outputs
  and runs on) gets a pidfd, and jobs without pipes get one at once. Without pidfds (not
  Linux) those are polled every 5 ms.
- selectors' SelectorKey bookkeeping (3.6 us a register/unregister pair against 1.3 for
  epoll's own); a scan of every running job per wake-up (only with --timeout now).
"""

from __future__ import annotations

import os
import signal
import time

from .. import _platform
from ._feed import feed_for
from ._job import Done, Job
from ._output import Capture
from ._spawn import kill_rest_of_group, pidfd, reaped

_READ = 1 << 18     # bytes per read of an output pipe
_WRITE = 1 << 16    # a job's stdin bigger than a default pipe gets an enlarged one
_POLL = 0.005       # seconds between wait4 polls of exited-looking jobs without a pidfd
_IN, _OUT = _platform.POLL_IN, _platform.POLL_OUT


class Run:
    """One job in flight: its Done, its open descriptors, its deadlines."""

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
        self.failure = None  # what the spawner thread could not do (raised by wait())


class InFlight:
    """Up to `workers` jobs, each in a slot numbered 1..workers ({%}); `stream(done,
    which, data)`, when given, gets output as it arrives instead of Captures."""

    def __init__(self, workers: int, *, timeout, grace: float, stream, budget, lifeline):
        self.timeout, self.grace, self.stream, self.budget = timeout, grace, stream, budget
        self._lifeline = lifeline
        self.running: dict[int, Run] = {}  # slot -> its job
        self._keys: dict = {}         # fd -> (run, 1 | 2 output, 0 stdin, -1 pidfd) | None
        self._polled: set = set()     # runs awaiting their exit without a pidfd
        self._finished: list[Done] = []
        self._poll, self._unit = _platform.poller()
        self._free = list(range(workers, 0, -1))

    def wake_on(self, fd: int) -> None:
        """wait() returns at once, with nothing, when `fd` becomes readable."""
        self._poll.register(fd, _IN)
        self._keys[fd] = None

    def take_slot(self) -> int:
        return self._free.pop()

    def give_back(self, slot: int) -> None:
        """A slot whose job never got as far as add()."""
        self._free.append(slot)

    def add(self, slot: int, done: Done, keep=None) -> Run:
        run = self.running[slot] = Run(done, keep, time.monotonic(), self.timeout)
        return run

    def watch(self, run: Run, job: Job, out_r, err_r, in_w) -> None:
        """Its pipes, ours from now on: closed at EOF, or by stop_all()."""
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

    def _await_exit(self, run: Run) -> None:
        run.pidfd = pidfd(run.done.pid)
        if run.pidfd >= 0:
            self._poll.register(run.pidfd, _IN)
            self._keys[run.pidfd] = (run, -1)
        else:
            self._polled.add(run)

    # --- waiting -------------------------------------------------------------------

    def wait(self) -> list[Done]:
        """The jobs that finished (none if woken by wake_on's fd); their slots are free."""
        wait = None
        if self.timeout is not None:
            times = [t for r in self.running.values() for t in (r.deadline, r.kill_at)
                     if t is not None]
            if times:
                wait = max(0.0, min(times) - time.monotonic())
        if self._polled:
            wait = _POLL if wait is None else min(wait, _POLL)
        keys = self._keys
        for fd, _ in self._poll.poll(-1 if wait is None else wait * self._unit):
            key = keys.get(fd, False)
            if key is None:  # the wake-up fd (the SIGINT guard's pipe): the caller raises
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
        for run in self.running.values():
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

    def _read(self, run: Run, fd: int, which: int) -> None:
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

    def _feed(self, run: Run) -> None:
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

    def _close_stdin(self, run: Run) -> None:
        if run.stdin_fd >= 0:
            self._poll.unregister(run.stdin_fd)
            del self._keys[run.stdin_fd]
            os.close(run.stdin_fd)
            run.stdin_fd, run.view = -1, None

    def _reap(self, run: Run) -> None:
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

    def _finish(self, run: Run) -> Done:
        if run.kill_at is not None:  # stopped: what of its group ignored SIGTERM goes too
            kill_rest_of_group(run.done.pid)
        del self.running[run.done.slot]
        self._free.append(run.done.slot)
        self._free.sort(reverse=True)
        return run.done

    # --- stopping ------------------------------------------------------------------

    def stop_all(self) -> None:
        """Every job still running stopped (SIGTERM, grace, SIGKILL) and reaped, every
        descriptor closed, every Done not handed over closed. Call it once no spawn is
        still on its way (each job has its pid)."""
        running = list(self.running.values())
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
        self.running.clear()
        for done in self._finished:  # reaped, never handed over (an exception between)
            done.close()
        self._finished = []

    def close(self) -> None:
        self._poll.close()
