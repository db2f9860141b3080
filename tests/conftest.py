"""Shared fixtures: every backend, and a check after every test that nothing leaked."""

from __future__ import annotations

import os

import pytest

from batch import _platform

BACKENDS = ["fork", "thread", "serial"] if _platform.HAS_FORK else ["thread", "serial"]


def open_fds() -> set[int]:
    try:
        return {int(fd) for fd in os.listdir("/proc/self/fd")}
    except FileNotFoundError:  # not Linux
        return {int(fd) for fd in os.listdir("/dev/fd")}


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie (an orphan's zombie may never be reaped
    in a container whose init does not reap)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.fixture(autouse=True)
def no_leaks():
    """After every test: no child process (running or zombie) and no new fd."""
    before = open_fds()
    yield
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        pid = None  # no children at all: the good case
    else:
        pytest.fail("a child process was left behind" if pid == 0
                    else f"a zombie child (pid {pid}) was left behind")
    leaked = {fd for fd in open_fds() - before if _is_pipe_or_socket(fd)}
    assert not leaked, f"file descriptors left open: {sorted(leaked)}"


def _is_pipe_or_socket(fd: int) -> bool:
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False  # closed meanwhile: listdir's own fd
    return target.startswith(("pipe:", "socket:", "anon_inode:"))


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param
