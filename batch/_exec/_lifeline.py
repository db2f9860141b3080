"""No job outlives its coordinator, even one killed by SIGKILL.

PR_SET_PDEATHSIG needs code run in the child between fork and exec, which posix_spawn
(_spawn.py, chosen for speed) cannot run, and it would reach only the job itself, not a
grandchild in its process group. So each runner starts one small watchdog process
instead, whose stdin is a pipe from the coordinator:

    coordinator ── "+PGID\\n" on spawn, "-PGID\\n" once reaped ──► watchdog (python -I -S)
    coordinator dies (any way): the kernel closes the pipe ──► EOF ──► SIGTERM to every
    group still listed, 1 s of grace, SIGKILL

The write end is close-on-exec and never inherited by a job (it is O_CLOEXEC, and
posix_spawn execs at once), so only the coordinator's death or `close()` ends it. The
watchdog runs in its own process group, ignores SIGINT (a terminal's Ctrl-C is the
coordinator's to handle), and is killed and reaped by `close()`. Its start costs one
posix_spawn (about 1.5 ms: the interpreter starts in parallel with the jobs); each job
costs one small write, which no longer wakes the watchdog (see POLL). Left open: a coordinator that forks (batch's fork backend) lends the write
end to its forked children too, which then delay the EOF until they exit; and a job
killed by SIGKILL of the coordinator between its spawn and its "+" line is not listed
(posix_spawn returns and the write follows directly, so that window is microseconds).
"""

from __future__ import annotations

import os
import signal
import sys

from .. import _platform

# The watchdog reads its pipe every POLL seconds, not at each line: a blocking read woke
# it (a context switch and a Python loop turn) for every job started and reaped, on a
# machine whose cores the jobs need. Lines wait in the pipe meanwhile (64 KiB: about
# 4,000 jobs' worth, far more than POLL lets start); a coordinator's death is noticed
# within POLL, before the grace below.
POLL = 0.05

WATCHDOG = r"""
import os, signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups, rest = set(), b""
while True:
    time.sleep(%r)
    data = os.read(0, 1 << 20)
    if not data:
        break
    *lines, rest = (rest + data).split(b"\n")
    for line in lines:
        (groups.add if line[:1] == b"+" else groups.discard)(int(line[1:]))
for sig in (signal.SIGTERM, signal.SIGKILL):
    for pgid in groups:
        try:
            os.killpg(pgid, sig)
        except OSError:
            pass
    if groups and sig == signal.SIGTERM:
        time.sleep(1.0)
""" % POLL


class Lifeline:
    def __init__(self):
        read, self._fd = os.pipe()
        try:
            self._pid = os.posix_spawn(
                sys.executable, [sys.executable, "-I", "-S", "-c", WATCHDOG], os.environ,
                file_actions=[(os.POSIX_SPAWN_DUP2, read, 0)], setpgroup=0)
        except BaseException:
            os.close(self._fd)
            raise
        finally:
            os.close(read)

    def watch(self, pgid: int) -> None:
        """At once: a job not yet listed would survive a SIGKILL of the coordinator.
        One write of a line (atomic in a pipe)."""
        self._say(b"+%d\n" % pgid)

    def forget(self, pgid: int) -> None:
        """Also at once: the write no longer wakes the watchdog (POLL), and a line kept
        back would have it signal a group already gone, harmless unless its number was
        reused meanwhile, and only if the coordinator died then."""
        self._say(b"-%d\n" % pgid)

    def _say(self, data: bytes) -> None:
        if self._fd >= 0 and data:
            try:
                os.write(self._fd, data)
            except OSError:  # the watchdog died (killed from outside): jobs run on
                pass

    def close(self) -> None:
        """End the watchdog (every job is reaped by now) and reap it.

        SIGKILL rather than EOF: with every job reaped and forgotten, the EOF would make
        it signal nothing, after up to POLL of sleep and an interpreter's exit (15-30 ms
        here, timing Lifeline(), 2,000 watch/forget and close(); in every run's wall time).
        """
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._pid:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except OSError:  # already gone (killed from outside), not yet reaped
                pass
            try:
                _platform.wait4(self._pid)
            except ChildProcessError:
                pass
            self._pid = 0
