"""Everything that differs between operating systems about processes, pipes and memory.

Each function degrades to a harmless no-op where the platform lacks the feature, so the
rest of the package never checks `sys.platform` itself. This package is the one place
for such specifics, and its names below are the whole surface: callers write
`_platform.X`, never a submodule.

    __init__.py      the interpreter (GIL or free threading), fork, and IN_WORKER
    _pipes.py        pipe size; poll(2) or epoll over many children's pipes
    _buffers.py      this process's memory: receive and output buffers, madvise
    _process_vm.py   another process's memory: process_vm_readv/writev, Yama probes
    _lifetime.py     a worker's start: prepare_fork, limits, what a worker sets itself
    _reaping.py      process groups signalled, children waited for and reaped
    _libc.py         the C library through ctypes, loaded once in the coordinator

A name assigned on this package (IN_WORKER in a worker, a test's monkeypatch) is seen
by every caller outside, which looks it up here, but not by a submodule that imported
it: so what is assigned from outside is defined here and read nowhere inside, and the
submodules' own state (the pull and push decisions) is patched where it lives.
"""

from __future__ import annotations

import os
import sys

from ._buffers import (POPULATE_THRESHOLD, drop_file_pages, inheritable, populate,
                       private_output, receive_buffer, shared_output)
from ._lifetime import (WORKER_HEAP_KEEP, WORKER_HEAP_REUSE, die_with_parent,
                        keep_freed_heap, new_process_group, prepare_fork, start_limit)
from ._pipes import PIPE_SIZE, POLL_IN, POLL_OUT, enlarge_pipe, poller
from ._process_vm import (PULL_THRESHOLD, can_pull, can_push, pull_denied, push_denied,
                          read_process_memory, write_process_memory)
from ._reaping import kill_group, peak_rss, stop_and_reap, wait4, wait_exits

__all__ = [
    "FREE_THREADED_BUILD", "HAS_FORK", "IN_WORKER", "PIPE_SIZE", "POLL_IN", "POLL_OUT",
    "POPULATE_THRESHOLD", "PULL_THRESHOLD", "WORKER_HEAP_KEEP", "WORKER_HEAP_REUSE",
    "can_pull", "can_push", "die_with_parent", "drop_file_pages", "enlarge_pipe",
    "gil_enabled", "inheritable", "keep_freed_heap", "kill_group", "new_process_group",
    "peak_rss", "poller", "populate", "prepare_fork", "private_output", "pull_denied",
    "push_denied", "read_process_memory", "receive_buffer", "shared_output",
    "start_limit", "stop_and_reap", "wait4", "wait_exits", "write_process_memory",
]

HAS_FORK = hasattr(os, "fork")

# Set in a forked worker, so that a pmap called inside a mapped function runs serially
# there instead of forking a second generation of workers.
IN_WORKER = False


# --- the interpreter: GIL or free threading (PEP 703) ----------------------------------

# sysconfig's Py_GIL_DISABLED is 1 in a free-threaded build (python3.13t, 3.14t); the
# "t" in sys.abiflags says the same without importing sysconfig (not on Windows).
FREE_THREADED_BUILD = "t" in getattr(sys, "abiflags", "")


def gil_enabled() -> bool:
    """Whether the GIL is on now. In a free-threaded build importing an extension module
    that does not declare itself safe without the GIL turns it back on for the process
    (with a RuntimeWarning), so this is asked per call, never cached."""
    return getattr(sys, "_is_gil_enabled", lambda: True)()
