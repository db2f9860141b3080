"""Spawning on two threads beside the runner's loop: one hand-off a job, nothing back.

    runner: pipes made, read ends registered ── submit(run, argv, child's ends) ──►
        queue ──► spawner thread: posix_spawn (ctypes: the GIL released while it waits
        for the child's execve), run.done.pid = pid, lifeline "+pid" ── then closes the
        child's ends ──► the runner's EOF on them: the spawn is over, the pid is known

A spawn blocks its caller until the child's execve (CLONE_VFORK, 0.26-1.4 ms here with
the load). On the runner's own thread that held every other slot; two threads let two
spawns wait at once while the runner reads, reaps and starts. The design before this
one also sent each result back (a wake-up pipe, a deque, a drain): two crossings a job.

Measured side by side (`seq 2000 | batch exec -j2 true`, medians of 7, interleaved, load
2.3-4.2; CPU of the whole tree / wall): the design before 2.86 s / 2.51 s; the
runner's other changes with spawns inline 2.43 s / 2.82 s (the waits for execve then hold the
coordinator: 52% of a quiet run, 65-88% under load); on one spawner thread 2.49 s /
2.56 s; on two (this) 2.57 s / 2.29 s; xargs -P2 2.14 s / 2.10 s.
Tried and dropped: pinning the coordinator to its CPU around each inline spawn, so that
the child (inheriting the mask) starts there the moment its parent blocks: slower (1.80-
1.93 s against 0.99-1.38 s); writing a reaped job's "-" lifeline line with the next "+"
line: about 1 us a job, but the line must also go out before each result handed to the
caller (who may hold it for minutes), and then nothing is saved.

Guarantees: the pid reaches the lifeline from the thread that spawned it, the moment
posix_spawn returns; the threads block SIGINT and SIGTERM (their handlers are the main
thread's, and a job's own mask is set by the spawn attributes); `join()` (the runner's
stop, before it stops its jobs) lets every submitted spawn finish or, once stopping,
skips it (so none is orphaned by Ctrl-C or an exception) and ends the threads.
"""

from __future__ import annotations

import os
import queue
import signal
import threading

from ._spawn import NotRunnable

# Two spawns may wait for their children's execve at once: the measured gain on 2 cores
# (one thread: 2.56 s for 2,000 `true` where two took 2.29 s, load 2.3-4.2); more would
# only keep more spawns waiting for a core.
THREADS = 2


class Spawner:
    """One thread that makes the spawns, so that the runner goes on reading, reaping and
    starting while a spawn waits for its child's execve (CLONE_VFORK; ctypes releases
    the GIL meanwhile). One hand-off a job, no way back: the runner registered the pipes
    before submitting, and the spawner records the pid (or the failure) before it
    closes the child's ends, so the runner's EOF on them means the spawn is over."""

    def __init__(self, launch, threads: int = THREADS):
        self._launch, self._count = launch, threads
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = []
        self._stopping = False

    def start(self, lifeline) -> None:
        self._lifeline = lifeline
        for _ in range(self._count):
            thread = threading.Thread(target=self._serve, name="batch-exec-spawn",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, run, argv, stdin, stdout, stderr) -> None:
        self._requests.put((run, argv, stdin, stdout, stderr))

    def _serve(self) -> None:
        if hasattr(signal, "pthread_sigmask"):  # the runner's thread handles them
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        while True:
            request = self._requests.get()
            if request is None:
                return
            run, argv, stdin, stdout, stderr = request
            try:
                if self._stopping:
                    run.done.error = "not started: the run was stopped"
                else:
                    pid = self._launch(argv, stdin, stdout, stderr)
                    self._lifeline.watch(pid)
                    run.done.pid = pid
            except NotRunnable as exc:
                run.done.error = str(exc)
            except BaseException as exc:  # raised by the runner, at the EOF
                run.done.error = str(exc)
                run.failure = exc
            finally:
                for fd in (stdin, stdout, stderr):
                    if fd is not None:
                        os.close(fd)

    def join(self) -> None:
        """Every submitted spawn done (those after a stop are not made), the thread gone."""
        if self._threads:
            self._stopping = True
            for _ in self._threads:
                self._requests.put(None)
            for thread in self._threads:
                thread.join()
            self._threads = []
