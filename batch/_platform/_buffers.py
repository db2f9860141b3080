"""This process's own memory for big data: receive and output buffers, and their pages.

Apart from reading and writing another process's memory (_process_vm.py) because the
question here is different: not how bytes cross between processes, but which mappings
they land in, what a later fork copies of them, and when their pages are faulted in or
let go.
"""

from __future__ import annotations

import ctypes
import mmap
import os

from . import _libc

# Receive buffers this big get their own mapping. Measured here (64 results of 16 MB,
# 2 workers, medians of 4): np.empty 0.63 GB/s; MAP_POPULATE 0.48; MAP_POPULATE kept out
# of forks with MADV_DONTFORK 1.23. np.empty's huge pages fault slowly inside readv, and
# populated small pages make every later fork copy, and every worker's exit tear down,
# the page tables of all results received so far (fork went from 2 to 11 ms).
POPULATE_THRESHOLD = 1 << 20


def receive_buffer(nbytes: int, populate: bool = True):
    """A writable buffer of `nbytes` for data about to be read into it, or None when an
    ordinary allocation is as good (small, or not Linux).

    The buffer is not inherited by workers forked later: call `inheritable()` on it
    before any user code can see it, or a worker that touched it would fault.
    """
    flag = getattr(mmap, "MAP_POPULATE", 0)
    if nbytes < POPULATE_THRESHOLD or not flag or not hasattr(mmap, "MADV_DONTFORK"):
        return None
    try:
        buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
                        | (flag if populate else 0))
    except OSError:  # out of address space or a strict overcommit policy: let numpy try
        return None
    buf.madvise(mmap.MADV_DONTFORK)
    return buf


def inheritable(buffers) -> None:
    """Let workers forked from now on see these receive buffers again."""
    for buf in buffers:
        buf.madvise(mmap.MADV_DOFORK)


def private_output(nbytes: int):
    """A fresh private mapping for workers to write into with process_vm_writev (its
    pages may be huge pages, which shared memory here cannot have). Hidden from the
    workers forked while it is filled: they never touch it, so forking copies nothing;
    call `inheritable([buf])` before user code can reach it. None when unavailable."""
    return receive_buffer(nbytes, populate=False)


def shared_output(nbytes: int):
    """(shared, private): two mappings of the same `nbytes` of fresh memory. Workers
    forked while `shared` is open write into it; `private` reads what they wrote, and
    is what the caller keeps: a worker forked later sees it copy-on-write, like any
    other memory of the caller, and forking copies no page tables for it.

    Linux: a memfd, closed before returning, so only the mappings hold the memory.
    Elsewhere: one shared anonymous mapping serves as both.
    """
    if not hasattr(os, "memfd_create"):
        buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
        return buf, buf
    fd = os.memfd_create("batch-output", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, nbytes)
        shared = mmap.mmap(fd, nbytes, flags=mmap.MAP_SHARED)
        private = mmap.mmap(fd, nbytes, flags=mmap.MAP_PRIVATE)
    finally:
        os.close(fd)
    return shared, private


# --- madvise on any range of pages (mmap.madvise only works on an mmap object) ---------

_MADV_DONTNEED = 4
_PAGE = mmap.PAGESIZE


def drop_file_pages(address: int, nbytes: int) -> None:
    """Unmap the pages of a file-backed range from this process; they stay in the page
    cache and come back on the next touch.

    A persistent worker that read its chunks of a memory-mapped file would otherwise
    keep every page it ever touched resident: 2 workers over a 1 GiB .npy reached
    1.1 GiB of RSS. Only for file-backed memory: on anonymous memory this discards data.
    """
    _madvise(address, nbytes, _MADV_DONTNEED)


# Linux 5.14: fault a range in, writable, in one call. On shared memory that costs about
# half of taking the same faults one page at a time as the writes reach them (measured
# here: 256 MiB of memfd, 0.24-0.37 s populate + 0.05-0.09 s copy against 0.49-0.67 s).
_MADV_POPULATE_WRITE = 23


def populate(address: int, nbytes: int) -> None:
    """Fault in [address, address + nbytes) for writing, ahead of the writes; a no-op
    where the kernel lacks MADV_POPULATE_WRITE."""
    _madvise(address, nbytes, _MADV_POPULATE_WRITE)


def _madvise(address: int, nbytes: int, advice: int) -> None:
    """madvise the pages [address, address + nbytes) touches; a no-op unless libc is
    loaded (prepare_fork loads it in the coordinator; a worker inherits it, never loads)."""
    libc = _libc.loaded()
    if not libc or nbytes <= 0:
        return
    start = address - address % _PAGE
    libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(address + nbytes - start), advice)
