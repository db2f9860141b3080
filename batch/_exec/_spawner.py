"""Spawning on threads beside the runner's selector loop, so that spawns overlap.

    runner ── submit(token, argv, fds) ──► queue ──► spawner thread: posix_spawn through
    (main thread)                                    ctypes (GIL released), lifeline "+"
        ◄── selector wakes on .fd ◄── results deque + one byte ◄──┘

A spawn blocks its caller until the child's execve (CLONE_VFORK, 1.1-1.4 ms here); on
the main thread that stopped reading outputs, reaping and starting the next job, and
with os.posix_spawn (GIL held) even a second thread could not overlap it. See
_libc_spawn.py for the figures. End to end (python -m benchmarks.exec_throughput,
2 workers, medians of 5, one run, load average 5.3-6.0), with the lazy imports and the
polling lifeline of the same branch: seq 2000 | batch exec -j 2 true 2.21 s (xargs -P 2
2.73 s, GNU parallel 12.2 s); sh -c 'echo {}' 1.96 s (xargs 2.56 s, parallel 9.99 s).
At main before (load 5.8-7.6): true 3.48 s against xargs 3.25 s; echo 3.35 s / 2.73 s. Two threads suffice on 2 cores (the measured gain);
more would only keep more spawns waiting for a core.

Guarantees kept: a job's pid reaches the lifeline from the thread that spawned it, the
moment posix_spawn returns, so no job escapes the watchdog; the threads block SIGINT and
SIGTERM (their handlers are the main thread's, and a job's own mask is set by the spawn
attributes); the runner drains every pending spawn before it stops its jobs, so none is
orphaned by Ctrl-C or an exception; close() ends and joins the threads.
"""

from __future__ import annotations

import collections
import os
import queue
import select
import signal
import threading

from . import _libc_spawn
from ._spawn import spawn_libc

THREADS = 2


class Spawner:
    def __init__(self, env, lifeline, defaults, threads: int = THREADS):
        self.pending = 0  # submitted, not yet collected (main thread only)
        self._lifeline = lifeline
        self._attrs = _libc_spawn.Attributes(defaults)
        self._env, self._envp = env, _libc_spawn.environment(env)
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._results: collections.deque = collections.deque()
        self.fd, self._wake = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._wake, False)
        self._threads = [threading.Thread(target=self._serve, name="batch-exec-spawn",
                                          daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, token, argv, stdin, stdout, stderr) -> None:
        self.pending += 1
        self._requests.put((token, argv, stdin, stdout, stderr))

    def _serve(self) -> None:
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        while True:
            request = self._requests.get()
            if request is None:
                return
            token, argv, stdin, stdout, stderr = request
            try:
                pid = spawn_libc(argv, stdin, stdout, stderr, self._env, self._envp,
                                 self._attrs)
                self._lifeline.watch(pid)
                result = (token, pid, None)
            except BaseException as exc:  # handed to the runner, which decides
                result = (token, 0, exc)
            self._results.append(result)  # before the byte: collect() then finds it
            try:
                os.write(self._wake, b"\0")
            except BlockingIOError:  # the pipe is full of wake-ups already
                pass

    def collect(self) -> list:
        """(token, pid, exception or None) of the spawns finished so far."""
        try:
            os.read(self.fd, 4096)
        except BlockingIOError:
            pass
        out = []
        while self._results:
            out.append(self._results.popleft())
        self.pending -= len(out)
        return out

    def drain(self) -> list:
        """Every pending spawn's result, waiting for those still running."""
        out = self.collect()
        while self.pending:
            select.select([self.fd], [], [], 1.0)
            out += self.collect()
        return out

    def close(self) -> None:
        for _ in self._threads:
            self._requests.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []
        for fd in (self.fd, self._wake):
            os.close(fd)
        self.fd = self._wake = -1
        self._attrs.close()
