"""Everything that differs between operating systems about processes, pipes and memory.

Each function degrades to a harmless no-op where the platform lacks the feature, so the
rest of the package never checks `sys.platform` itself.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import select
import signal
import sys
import time

try:  # os.wait4 imports it on first use; here, so that the first run does not grow
    import resource  # noqa: F401  sys.modules and make the next one rescan BLAS
except ImportError:  # Windows
    resource = None

from . import _cpus

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

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


# --- pipes ----------------------------------------------------------------------------

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


# --- reading a worker's memory --------------------------------------------------------

# Arrays at least this big come back by process_vm_readv instead of through the pipe
# (_wire.py says why). Below it, the round trip of a message that waits to be pulled
# costs more than the pipe saves.
PULL_THRESHOLD = 1 << 20

# process_vm_readv moves at most MAX_RW_COUNT (about 2 GiB) per call.
_PULL_STEP = 1 << 30

_pull_ok: bool | None = None  # None: not probed yet


class _IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _readv_fn():
    return _vm_fn("process_vm_readv")


def _load_libc():
    global _libc
    if _libc is None and hasattr(os, "sched_getaffinity"):
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            _libc = False
    return _libc or None


def can_pull() -> bool:
    """Whether this process may read its workers' memory with process_vm_readv.

    Probed once: the call must exist and work on this process (a seccomp filter, as in
    some containers, refuses it with EPERM or ENOSYS), and Yama must let a parent read
    its children (ptrace_scope 0 or 1; 2 needs CAP_SYS_PTRACE, 3 forbids it). Anything
    the probe cannot see (an LSM policy, a worker made non-dumpable) shows up as EPERM on
    the first real pull, and `pull_denied()` turns the path off for good.
    """
    global _pull_ok
    if _pull_ok is None:
        _pull_ok = _probe_pull()
    return _pull_ok


def pull_denied() -> None:
    global _pull_ok
    _pull_ok = False


def _yama_scope() -> int:
    """Yama's ptrace_scope; 0 where there is no Yama (the same uid is then enough)."""
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope", "rb") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _probe_pull() -> bool:
    fn = _readv_fn() if _load_libc() else None
    if fn is None:
        return False
    scope = _yama_scope()
    if scope >= 3 or (scope == 2 and os.geteuid() != 0):
        return False
    src = ctypes.create_string_buffer(b"probe", 8)
    dst = ctypes.create_string_buffer(8)
    try:
        read_process_memory(os.getpid(), ctypes.addressof(src), memoryview(dst).cast("B"))
    except OSError:
        return False
    return dst.value == b"probe"


_push_ok: bool | None = None


def can_push() -> bool:
    """Whether a worker may write into its parent's memory with process_vm_writev.

    Stricter than can_pull: Yama's scope 1 (the usual default where Yama is on) lets a
    parent read its children but not a child write its parent, so any Yama scope but 0
    says no, as does a self-probe that fails (seccomp).
    """
    global _push_ok
    if _push_ok is None:
        _push_ok = _probe_push()
    return _push_ok


def push_denied() -> None:
    """A worker's write into this process failed: nobody pushes from now on."""
    global _push_ok
    _push_ok = False


def _probe_push() -> bool:
    fn = _vm_fn("process_vm_writev") if _load_libc() else None
    if fn is None:
        return False
    if _yama_scope() != 0:
        return False
    src = ctypes.create_string_buffer(b"probe", 8)
    dst = ctypes.create_string_buffer(8)
    try:
        write_process_memory(os.getpid(), ctypes.addressof(dst), ctypes.addressof(src), 8)
    except OSError:
        return False
    return dst.value == b"probe"


def write_process_memory(pid: int, address: int, local: int, nbytes: int) -> None:
    """Copy `nbytes` at `local` here to `address` in process `pid` (process_vm_writev):
    the pages there are faulted in by this process, on its own CPU time."""
    _vm_copy(_vm_fn("process_vm_writev"), pid, address, local, nbytes)


def read_process_memory(pid: int, address: int, view: memoryview) -> None:
    """Copy view.nbytes bytes at `address` in process `pid` into `view`, one copy, no
    kernel buffer in between.

    ProcessLookupError: the process is gone (a zombie has no memory left to read);
    PermissionError: not allowed (ptrace rules); other OSError: a bad range.
    """
    if view.nbytes:
        _vm_copy(_readv_fn(), pid, address, ctypes.addressof(ctypes.c_char.from_buffer(view)),
                 view.nbytes)


def _vm_fn(name: str):
    fn = getattr(_load_libc(), name, None)
    if fn is not None and fn.restype is not ctypes.c_ssize_t:
        fn.restype = ctypes.c_ssize_t
        fn.argtypes = [ctypes.c_int, ctypes.POINTER(_IOVec), ctypes.c_ulong,
                       ctypes.POINTER(_IOVec), ctypes.c_ulong, ctypes.c_ulong]
    return fn


def _vm_copy(fn, pid: int, address: int, base: int, total: int) -> None:
    if fn is None:
        raise PermissionError("process_vm_readv/writev is not available here")
    done = 0
    while done < total:
        step = min(_PULL_STEP, total - done)
        local = _IOVec(base + done, step)
        remote = _IOVec(address + done, step)
        got = fn(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        if got <= 0:
            err = ctypes.get_errno() if got < 0 else 0
            raise OSError(err, f"process_vm_readv/writev with pid {pid}: "
                               f"{os.strerror(err) if err else 'nothing read'}")
        done += got


# --- worker lifetime ------------------------------------------------------------------

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
_libc = None


def prepare_fork() -> None:
    """In the coordinator, once: load what workers need, so that no worker pays for it.

    ctypes.util.find_library runs `ldconfig -p` (about 3 ms); CDLL(None) gives the
    symbols already loaded in this process, libc's prctl among them.
    """
    _load_libc()
    can_pull()  # decided before the first fork: every worker inherits the answer
    can_push()
    _cpus.prepare_blas()


def die_with_parent(parent_pid: int) -> None:
    """In a worker: exit when the coordinator dies, even by SIGKILL.

    Linux delivers PR_SET_PDEATHSIG when the forking *thread* exits; the coordinator
    reaps its workers before the forking call returns, so that is the same moment. If the
    parent died before prctl ran, the signal never comes: check getppid afterwards.
    Elsewhere the worker notices instead when its write to the pipe fails (EPIPE).
    """
    if not _libc:
        return
    try:
        _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
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
    libc = _load_libc()
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


POLL_IN = getattr(select, "EPOLLIN", getattr(select, "POLLIN", 1))
POLL_OUT = getattr(select, "EPOLLOUT", getattr(select, "POLLOUT", 4))


def poller():
    """(a poll object, its timeout units per second): epoll where there is one (Linux),
    else poll(2). Both register(fd, POLL_IN | POLL_OUT), unregister(fd), poll(timeout)
    -> [(fd, events)]; -1 waits for ever."""
    if hasattr(select, "epoll"):
        return select.epoll(), 1
    return select.poll(), 1000


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


_MADV_DONTNEED = 4
_PAGE = mmap.PAGESIZE


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


def drop_file_pages(address: int, nbytes: int) -> None:
    """Unmap the pages of a file-backed range from this process; they stay in the page
    cache and come back on the next touch.

    A persistent worker that read its chunks of a memory-mapped file would otherwise
    keep every page it ever touched resident: 2 workers over a 1 GiB .npy reached
    1.1 GiB of RSS. Only for file-backed memory: on anonymous memory this discards data.
    """
    if not _libc or nbytes <= 0:
        return
    start = address - address % _PAGE
    _libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(address + nbytes - start),
                  _MADV_DONTNEED)


# Linux 5.14: fault a range in, writable, in one call. On shared memory that costs about
# half of taking the same faults one page at a time as the writes reach them (measured
# here: 256 MiB of memfd, 0.24-0.37 s populate + 0.05-0.09 s copy against 0.49-0.67 s).
_MADV_POPULATE_WRITE = 23


def populate(address: int, nbytes: int) -> None:
    """Fault in [address, address + nbytes) for writing, ahead of the writes; a no-op
    where the kernel lacks MADV_POPULATE_WRITE."""
    if not _libc or nbytes <= 0:
        return
    start = address - address % _PAGE
    _libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(address + nbytes - start),
                  _MADV_POPULATE_WRITE)


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
