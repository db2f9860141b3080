"""Reading and writing another process's memory: process_vm_readv and process_vm_writev.

Big result arrays cross between a worker and the coordinator this way, one copy and no
kernel buffer in between, instead of through the pipe. Whether this
process may do it is probed once, before the first fork, so that every worker inherits
the answer; a refusal the probe could not foresee turns the path off for good.
"""

from __future__ import annotations

import ctypes
import os

from . import _libc

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
    fn = _readv_fn() if _libc.load() else None
    if fn is None:
        return False
    scope = _yama_scope()
    if scope >= 3 or (scope == 2 and os.geteuid() != 0):
        return False
    return _copies_within_self(lambda src, dst: read_process_memory(
        os.getpid(), ctypes.addressof(src), memoryview(dst).cast("B")))


def _copies_within_self(copy) -> bool:
    """Whether `copy(src, dst)` moves 8 bytes between two buffers of this process (a
    seccomp filter refuses the call with EPERM or ENOSYS)."""
    src = ctypes.create_string_buffer(b"probe", 8)
    dst = ctypes.create_string_buffer(8)
    try:
        copy(src, dst)
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
    fn = _vm_fn("process_vm_writev") if _libc.load() else None
    if fn is None:
        return False
    if _yama_scope() != 0:
        return False
    return _copies_within_self(lambda src, dst: write_process_memory(
        os.getpid(), ctypes.addressof(dst), ctypes.addressof(src), 8))


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
    fn = getattr(_libc.load(), name, None)
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
