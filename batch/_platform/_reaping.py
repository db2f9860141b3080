"""Stopping and reaping children, and what they cost in memory.

Every child is reaped: those to stop get SIGTERM, whatever is still alive after a grace
period SIGKILL, and the wait for many children ends the moment the last one exits (a
pidfd per child on Linux) instead of at the next poll.
"""

from __future__ import annotations

import os
import select
import signal
import time


def kill_group(pid: int, sig: int) -> None:
    """Signal a worker and its process group; a worker already gone is not an error."""
    try:
        os.killpg(pid, sig)
        return
    except (AttributeError, ProcessLookupError, PermissionError):
        pass
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait4(pid: int, options: int = 0) -> tuple[int, int, int | None]:
    """(pid, status, peak RSS in bytes or None); pid 0 when WNOHANG finds it running."""
    if hasattr(os, "wait4"):
        got, status, usage = os.wait4(pid, options)
        # ru_maxrss is KiB on Linux (bytes on macOS, where this is rarely reached).
        return got, status, usage.ru_maxrss * 1024 if got else None
    got, status = os.waitpid(pid, options)
    return got, status, None


def wait_exits(pids, timeout: float) -> set[int]:
    """Reap the children in `pids` that exit within `timeout` seconds; the rest, still
    running, are returned.

    On Linux each child gets a pidfd, readable once it exits, so the wait ends the moment
    the last one does; elsewhere it polls every 2 ms.
    """
    pending = set(pids)
    deadline = time.monotonic() + timeout
    pidfds = {}
    if hasattr(os, "pidfd_open"):
        for pid in pending:
            try:
                pidfds[pid] = os.pidfd_open(pid)
            except OSError:  # already reaped, or a kernel without pidfd
                pass
    try:
        while pending:
            for pid in list(pending):
                try:
                    got, _, _ = wait4(pid, os.WNOHANG)
                except ChildProcessError:
                    got = pid
                if got:
                    pending.discard(pid)
            left = deadline - time.monotonic()
            if not pending or left <= 0:
                break
            fds = [pidfds[p] for p in pending if p in pidfds]
            if len(fds) == len(pending):
                select.select(fds, [], [], left)
            else:
                time.sleep(min(0.002, left))
    finally:
        for fd in pidfds.values():
            os.close(fd)
    return pending


def stop_and_reap(pids, *, stop, grace: float) -> None:
    """SIGTERM the process groups in `stop`, then reap every pid in `pids`; whatever is
    still alive after `grace` seconds gets SIGKILL."""
    for pid in stop:
        kill_group(pid, signal.SIGTERM)
    for pid in wait_exits(pids, grace):
        kill_group(pid, signal.SIGKILL)
        try:
            wait4(pid)
        except ChildProcessError:
            pass


def peak_rss(pid: int) -> int | None:
    """Peak resident bytes of a live process so far (Linux), else None."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
