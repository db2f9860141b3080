"""Life of a forked worker, from the moment fork() returns 0 to os._exit().

A worker runs the task it was forked with, writes its result message, and then, if it
was given a task pipe, waits there for the next span of the same input: 24 bytes,
(chunk index, start, stop). End of file on the task pipe means the run is over.

A result whose big arrays the coordinator pulls from this process's memory (_wire.py)
must outlive the message that points at them: a persistent worker holds it until its
next task arrives, which the coordinator sends only after reading; a one-shot worker
waits until the coordinator closes the read end of its pipe (POLLERR). A persistent
worker may instead be asked to push them (_frames.py): a PUSH record on its task pipe
(TASK with index PUSH, start = how many arrays, then per array its address here, the
address in the coordinator it goes to and its size, three u64) says where each goes;
the worker writes them there with process_vm_writev and answers with an 8-byte ACK on
its result pipe (0, or the errno that stopped it, after which the coordinator pulls them
as before). Nothing in here returns to the caller's code: every path ends in os._exit, so no atexit
handler, no buffered file of the parent and no `finally` of the caller runs twice.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import select
import struct
import sys
import time
import traceback

import numpy as np

from .. import _platform, _remote, _signals, _wire
from .._frames import ACK
from ._base import Task

TASK = struct.Struct("<qqq")  # chunk index, start, stop
PUSH = -1                     # TASK's index for a push record: see the docstring
COPY = struct.Struct("<QQQ")  # an array's address here, its address there, bytes


def main(task: Task, result_fd: int, task_fd: int, close_fds, parent_pid: int,
         initializer, initargs) -> None:
    code = 1
    try:
        _signals.reset_in_worker()
        _platform.die_with_parent(parent_pid)
        _platform.new_process_group()
        _platform.keep_freed_heap()
        for fd in close_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        _platform.IN_WORKER = True
        ready = _initialize(initializer, initargs)
        while task is not None:
            message = ready if ready is not None else run(task)
            _wire.write_all(result_fd, message)
            if ready is not None:
                break  # the initializer failed: report it once, serve nothing
            if task_fd < 0:
                if message.held:
                    _wait_until_read(result_fd)
                break
            _forget_mapped_chunk(task)
            task = next_task(task, task_fd, message.held, result_fd, parent_pid)
            del message  # the coordinator has pulled its arrays: it sent the next task
        code = 0
    except BaseException:  # EPIPE (the coordinator is gone), or worse: just leave
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os._exit(code)


def _initialize(initializer, initargs):
    """None when ready; else the error message to send instead of the first result."""
    if initializer is None:
        return None
    t0 = time.perf_counter()
    try:
        initializer(*initargs)
    except BaseException as exc:
        return _error(exc, time.perf_counter() - t0)
    return None


def run(task: Task) -> list:
    """The message for one task: its result, or what went wrong, as data."""
    t0 = time.perf_counter()
    try:
        result = task.work()
    except BaseException as exc:  # SystemExit too: it must never end the coordinator
        return _error(exc, time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    try:
        return _wire.encode(_wire.RESULT, [seconds, result], remote=_platform.can_pull())
    except _wire.EncodeError as exc:
        return _wire.encode(_wire.ERROR, {"encode": True, "message": str(exc),
                                          "seconds": seconds})


def _error(exc: BaseException, seconds: float) -> list:
    info = _remote.describe_exception(exc, traceback.format_exc())
    info["seconds"] = seconds
    return _wire.encode(_wire.ERROR, info)


def _wait_until_read(result_fd: int) -> None:
    """Block until the coordinator closes its end of the pipe: poll reports POLLERR on a
    pipe's write end once no reader is left, even with no event asked for."""
    poller = select.poll()
    poller.register(result_fd, 0)
    while not poller.poll():
        pass


def _forget_mapped_chunk(task: Task) -> None:
    """A chunk of a memory-mapped file: let its pages go once the chunk is done."""
    data = task.data
    if task.span is None or not isinstance(data, np.memmap) or not data.flags.c_contiguous:
        return
    chunk = data[task.span[0]:task.span[1]]
    _platform.drop_file_pages(chunk.ctypes.data, chunk.nbytes)


def next_task(previous: Task, task_fd: int, held=(), result_fd: int = -1,
              parent_pid: int = 0) -> Task | None:
    """Block for the next span of the same input, pushing `held` (the big arrays of
    the result just sent) into the coordinator first if it asks; None at end of file."""
    while True:
        raw = _read_exactly(task_fd, TASK.size)
        if raw is None:
            return None
        index, start, stop = TASK.unpack(raw)
        if index != PUSH:
            break
        raw = _read_exactly(task_fd, start * COPY.size)
        if raw is None:
            return None
        os.write(result_fd, ACK.pack(_push(held, list(COPY.iter_unpack(raw)), parent_pid)))
    return dataclasses.replace(previous, index=index, items=range(start, stop),
                               count=stop - start, span=(start, stop), attempt=1)


def _read_exactly(fd: int, n: int) -> bytes | None:
    raw = b""
    while len(raw) < n:
        piece = os.read(fd, n - len(raw))
        if not piece:
            return None
        raw += piece
    return raw


def _push(held, copies, parent_pid: int) -> int:
    """Write each (address here, address there, size) into the coordinator: 0, or the
    errno. Only ranges inside the held arrays are written: two arrays of one result
    may start at the same address (a view and its base), so the size is the reader's."""
    spans = [(a.ctypes.data, a.ctypes.data + a.nbytes) for a in held]
    if not all(any(lo <= src and src + n <= hi for lo, hi in spans) for src, _, n in copies):
        return errno.EINVAL
    try:
        for src, dst, n in copies:
            _platform.write_process_memory(parent_pid, dst, src, n)
    except OSError as exc:
        return exc.errno or errno.EIO
    return 0
