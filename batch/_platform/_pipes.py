"""Pipes to and from children: how big they are, and how many are watched at once.

A result pipe's size sets how often its reader wakes up; the poller is what the
`batch exec` runner watches its children's pipes with.
"""

from __future__ import annotations

import select

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

# 1 MiB, the default /proc/sys/fs/pipe-max-size: a 64 KiB pipe costs a wake-up of the
# reader per 64 KiB, and result bandwidth drops to about a third.
PIPE_SIZE = 1 << 20


def enlarge_pipe(fd: int) -> None:
    if not hasattr(fcntl, "F_SETPIPE_SZ"):  # Linux only
        return
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:  # EPERM past the user's pipe quota: the default size still works
        pass


POLL_IN = getattr(select, "EPOLLIN", getattr(select, "POLLIN", 1))
POLL_OUT = getattr(select, "EPOLLOUT", getattr(select, "POLLOUT", 4))


def poller():
    """(a poll object, its timeout units per second): epoll where there is one (Linux),
    else poll(2). Both register(fd, POLL_IN | POLL_OUT), unregister(fd), poll(timeout)
    -> [(fd, events)]; -1 waits for ever."""
    if hasattr(select, "epoll"):
        return select.epoll(), 1
    return select.poll(), 1000
