"""The coordinator's own fds that a forked worker must not keep.

A run's SIGINT guard and an Executor's dispatcher each hold a wake-up pipe. Python makes
every fd non-inheritable across exec (PEP 446), but fork copies them all: before this
registry, every worker of `pmap` held both ends of its run's guard pipe, and every
Executor worker both ends of its dispatcher's (and of any other run's open at the time).
A leaked pipe end keeps the pipe alive after its owner closed it, and is one more fd per
worker against the open-files limit. Owners add their fds once open; a forked worker
closes every registered fd first thing (backends/_forking.py, _worker.main).

Owners must `discard` before they close: a number still registered after its close
could be reused by the next worker's own pipe and be closed in that worker. The fork
backend registers its workers' pipe ends and its selector here too, so a worker of one
run or Executor never holds another one's task pipe open (which would keep that worker
from ever seeing end of file). The list is taken in the parent, before the fork: a child
must not take a lock another thread may have held at the fork.
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_fds: set[int] = set()


def _fresh_lock_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_lock_in_child)


def add(*fds: int) -> None:
    with _lock:
        _fds.update(fd for fd in fds if fd >= 0)


def discard(*fds: int) -> None:
    with _lock:
        _fds.difference_update(fds)


def current() -> list[int]:
    """The registered fds: what a worker about to be forked must close."""
    with _lock:
        return list(_fds)
