"""A worker's lifetime: what the coordinator prepares before forking, what a failed start
most likely ran into, and what a worker sets up in itself first thing.

Prepared once in the coordinator, so that no worker pays for it: every worker inherits
the loaded libc, the pull and push decisions and the BLAS libraries found.
"""

from __future__ import annotations

import errno
import os
import signal

try:  # os.wait4 imports it on first use; here, so that the first run does not grow
    import resource  # noqa: F401  sys.modules and make the next one rescan BLAS
except ImportError:  # Windows
    resource = None

from .. import _cpus
from . import _libc, _process_vm


def start_limit(err: int | None) -> str:
    """Which limit a failed fork, pipe or thread start most likely hit, and its value."""
    if err == errno.EMFILE:
        return f"the open-files limit (ulimit -n{_soft_limit('RLIMIT_NOFILE')})"
    if err == errno.EAGAIN or err is None:
        return (f"the process limit (ulimit -u{_soft_limit('RLIMIT_NPROC')}, or a pids "
                f"cgroup's pids.max)")
    if err == errno.ENFILE:
        return "the system-wide open-files limit (/proc/sys/fs/file-max)"
    if err == errno.ENOMEM:
        return "the memory for another process (or the overcommit policy)"
    return "a system limit"


def _soft_limit(name: str) -> str:
    limit = getattr(resource, name, None)
    if limit is None:
        return ""
    soft = resource.getrlimit(limit)[0]
    return "" if soft == resource.RLIM_INFINITY else f": {soft}"


_PR_SET_PDEATHSIG = 1


def prepare_fork() -> None:
    """In the coordinator, once: load what workers need, so that no worker pays for it.

    ctypes.util.find_library runs `ldconfig -p` (about 3 ms); CDLL(None) gives the
    symbols already loaded in this process, libc's prctl among them.
    """
    _libc.load()
    _process_vm.can_pull()  # decided before the first fork: every worker inherits the answer
    _process_vm.can_push()
    _cpus.prepare_blas()


def die_with_parent(parent_pid: int) -> None:
    """In a worker: exit when the coordinator dies, even by SIGKILL.

    Linux delivers PR_SET_PDEATHSIG when the forking *thread* exits; the coordinator
    reaps its workers before the forking call returns, so that is the same moment. If the
    parent died before prctl ran, the signal never comes: check getppid afterwards.
    Elsewhere the worker notices instead when its write to the pipe fails (EPIPE).
    """
    libc = _libc.loaded()
    if not libc:
        return
    try:
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except AttributeError:  # a libc without prctl
        return
    if os.getppid() != parent_pid:
        os._exit(1)


# glibc's mallopt parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3

# In a worker, allocations up to this size come from the heap and are reused, and the
# heap keeps this much free memory before giving it back. glibc's own rule (the mmap
# threshold rises to the largest chunk freed so far, up to 32 MiB, and the heap is
# trimmed past twice that) trims the heap after nearly every block of a numpy function
# on 4 MiB blocks: np.sin(b) + np.cos(b) frees 12 MiB at the heap's top per block, past
# the 8 MiB threshold, and the next block faults it in again. Measured here, 64 blocks
# of 4 MiB in one process: glibc's rule 63,700 minor faults and 0.12 s of system time
# (the same in the coordinator's own main thread); with these settings 1,100 faults
# and 0.01 s, as in a thread, whose arena is not trimmed that way. The worker's peak is
# unchanged: the heap keeps only memory it already held. Setting only one of the two
# does nothing (mallopt of either turns off the dynamic rule: the mmap threshold then
# stays at 128 KiB, or the trim threshold at 8 MiB).
WORKER_HEAP_REUSE = 32 << 20
WORKER_HEAP_KEEP = 64 << 20


def keep_freed_heap() -> None:
    """In a worker: let freed mid-size blocks be reused rather than given back to the
    kernel and faulted in again (glibc only; elsewhere a no-op)."""
    libc = _libc.load()
    if libc is None or not hasattr(libc, "gnu_get_libc_version"):
        return  # musl's mallopt is a stub, macOS has none
    try:
        libc.mallopt(_M_MMAP_THRESHOLD, WORKER_HEAP_REUSE)
        libc.mallopt(_M_TRIM_THRESHOLD, WORKER_HEAP_KEEP)
    except AttributeError:
        pass


def new_process_group() -> None:
    """Put this worker in a process group of its own.

    A terminal's Ctrl-C then reaches only the coordinator, which decides; and stopping a
    worker with killpg also stops anything the mapped function started.
    """
    try:
        os.setpgid(0, 0)
    except (AttributeError, OSError):
        pass
