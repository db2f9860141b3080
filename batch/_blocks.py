"""map_blocks: fn over blocks of an array along axis 0, each result written into its
slice of one output array allocated before the workers exist.

Two ways for fork workers to write the caller's output, chosen once per process:

- push (where the kernel lets a child write its parent: no Yama, or ptrace_scope 0):
  the output is the caller's own private memory, hidden from the workers
  (MADV_DONTFORK); each worker computes its block and copies it to the output's address
  in the caller with process_vm_writev, taking the page faults on its own CPU, in
  private memory, whose faults cost less than shared memory's (and shmem_enabled =
  never here: no huge pages for a memfd; nor, in practice, for the push: below):
  interleaved on 512 MiB, 4 runs each, load about 5: push median 2.25 s, the memfd
  below 2.49 s, threads 3.41 s.

  Where fork lost to threads (0.86x on a quiet machine) was not the push: it was each
  worker's heap. glibc trimmed the heap after nearly every block (np.sin(b) + np.cos(b)
  frees 12 MiB at its top, past the 8 MiB its own rule allows) and faulted it in again
  for the next: 64 blocks of 4 MiB, 63,700 minor faults and 0.12 s of system time in a
  forked worker (or the main thread), 1,100 and 0.01 s in a thread. Workers now keep
  their freed heap (_platform.keep_freed_heap): the whole 512 MiB run, 7 interleaved
  runs, load 3.7, fork's CPU went from 1.57 s to 1.31 s (threads 1.36 s when quiet);
  python -m benchmarks --only map_blocks (load 0.8 to 1.9): fork 0.674 s, threads
  0.632 s, 0.94x (from 0.86x); a second run (load 1.2 to 1.8) 0.699 s and 0.621 s, 0.89x
  (fork's five runs 0.68-0.77 s, the threads' 0.61-1.28 s: their huge pages swing with
  the host, fork's small pages do not). What is left is the output's pages: the
  workers fault 4 KiB pages of it through process_vm_writev (0.22 s of CPU per
  512 MiB), the threads the 2 MiB pages numpy asks for (0.12 s). Tried and dropped:
  MADV_HUGEPAGE on the output, so that the workers' writes fault 2 MiB pages too:
  workers' system time 0.30 s -> 0.67 s (7 interleaved runs, load 2.1; under load 3.7,
  1.35 s of CPU against 1.31 s), as huge pages faulted through process_vm_writev are slow on this machine
  (_wire.py); the fork itself (0.04 s of the coordinator's CPU for both workers, the
  input's huge pages copy as few page-table entries) and the round trip per block
  (about 0.1 ms against 8-30 ms of work per 4 MiB block) were not worth changing.
- memfd (everywhere else), drawn here:

    coordinator                                      worker (fork)
    ───────────                                      ─────────────
    shape and dtype: out=, or fn(array[:1]) here
    output: a memfd mapped twice ── fork() ────────► inherits the MAP_SHARED view
      MAP_SHARED  (what workers write)               block = array[a:b] (copy-on-write)
      MAP_PRIVATE (what the caller gets)             out[a:b] = fn(block), or
                                                     fn(block, out=out[a:b]) if it can
    outcomes: only "done" crosses the pipe ◄──────── None
    drop the shared view, return the private one

Why two mappings of one memfd: workers must write where the caller reads, so the memory
is shared; but what the caller gets back must behave like any array of its own, which a
worker forked later sees copy-on-write, never writing into the caller's copy. A private
mapping of the same file reads the pages the workers wrote (until the caller writes a
page, which then becomes its own), and a later fork copies no page tables for it. The fd
is closed as soon as both mappings exist: nothing is left to leak, whatever dies.

`out=` an np.memmap opened "r+"/"w+" (a .npy on disk, results bigger than memory) is
written in place by the workers, since its pages are shared with the file. Any other
`out=` on the fork backend gets the shared output, copied into it at the end. The thread
and serial backends write into `out` (or np.empty) directly; a Dask worker sends its
block back and the coordinator writes it. A failed or retried block is written again
whole by its next attempt.
"""

from __future__ import annotations

import collections.abc
import contextlib
import inspect
import math
import os
import traceback

import numpy as np

from . import _platform, _split

# Without chunks=, blocks hold at most this much input (and at least CHUNKS_PER_WORKER
# per worker): fn's temporaries are a few blocks per worker, so a 512 MiB map stays
# within about 5% of input plus output, and a block still takes milliseconds of work,
# against about 0.1 ms of scheduling.
BLOCK_BYTES = 4 << 20


class BlockShapeError(ValueError):
    """fn returned a different number of rows (or trailing shape) than map_blocks needs."""


class _Block:
    """A block of the input and where it starts: what the body needs to find its slice."""

    __slots__ = ("start", "data")

    def __init__(self, start: int, data):
        self.start, self.data = start, data


class _Blocks(collections.abc.Sequence):
    """The input, sliced along axis 0 into _Blocks (so _split cuts it like any sequence)."""

    def __init__(self, array):
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, key):
        if not isinstance(key, slice):
            raise TypeError("blocks are taken by slices")
        start, _, _ = key.indices(len(self.array))
        return _Block(start, self.array[key])


def output_spec(fn, array: np.ndarray, dtype=None) -> tuple[np.dtype, tuple]:
    """The output's dtype and shape, from fn on the first row (no row: on none)."""
    probe = np.asarray(fn(array[:1]))
    rows = min(1, len(array))
    if probe.ndim == 0 or probe.shape[0] != rows:
        raise BlockShapeError(f"map_blocks: fn must return as many rows as it is given; it "
                         f"returned shape {probe.shape} for {rows} row(s)")
    return np.dtype(dtype) if dtype is not None else probe.dtype, \
        (len(array),) + probe.shape[1:]


def accepts_out(fn) -> bool:
    if isinstance(fn, np.ufunc):
        return True
    try:
        param = inspect.signature(fn).parameters.get("out")
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return param is not None and param.kind in (param.KEYWORD_ONLY,
                                                param.POSITIONAL_OR_KEYWORD)


def _compute(fn, block, dest, with_out: bool, shared: bool = False):
    """fn(block) into dest; the result itself when dest is None (Dask)."""
    rows = len(block)
    if shared and dest.flags.c_contiguous:  # its pages, faulted in at once (_platform)
        _platform.populate(dest.ctypes.data, dest.nbytes)
    if dest is not None and with_out:
        got = fn(block, out=dest)
        if got is None or got is dest or np.shares_memory(got, dest):
            return None
    else:
        got = fn(block)
    got = np.asarray(got)
    want = (rows,) + (dest.shape[1:] if dest is not None else got.shape[1:])
    if got.shape != want:
        raise BlockShapeError(f"map_blocks: fn returned shape {got.shape} for a block of "
                              f"{rows} rows; expected {want}")
    if dest is None:
        return got
    dest[...] = got
    return None


def _push(fn, block: _Block, into: "_Pushed") -> None:
    """In a worker: fn(block), written into the caller's output with process_vm_writev."""
    rows = len(block.data)
    got = np.asarray(fn(block.data))
    want = (rows,) + into.shape[1:]
    if got.shape != want:
        raise BlockShapeError(f"map_blocks: fn returned shape {got.shape} for a block of "
                              f"{rows} rows; expected {want}")
    got = np.ascontiguousarray(got, dtype=into.dtype)
    _platform.write_process_memory(into.pid, into.address + block.start * into.row_bytes,
                                   got.ctypes.data, got.nbytes)


class _Pushed:
    """Where workers write: the caller's pid, and its output's address, layout and type."""

    def __init__(self, pid: int, target: np.ndarray):
        self.pid, self.address = pid, target.ctypes.data
        self.shape, self.dtype = target.shape, target.dtype
        self.row_bytes = target.dtype.itemsize * math.prod(target.shape[1:])


def _writes_in_place(out) -> bool:
    """An array whose memory a forked worker shares with the caller: a memmap of a file."""
    return isinstance(out, np.memmap) and getattr(out, "mode", None) in ("r+", "w+")


def run(pool, fn, array, *, out=None, dtype=None, chunks=None, options: dict):
    """Pool.map_blocks: the output array, every block written."""
    array = np.asanyarray(array)
    if array.ndim == 0:
        raise ValueError("map_blocks needs an array of at least one dimension")
    if out is not None:
        if not isinstance(out, np.ndarray) or out.ndim == 0 or len(out) != len(array):
            raise ValueError(f"out must be an array of {len(array)} rows")
        if dtype is not None and np.dtype(dtype) != out.dtype:
            raise ValueError(f"dtype={np.dtype(dtype)} disagrees with out's {out.dtype}")
        out_dtype, shape = out.dtype, out.shape
    else:
        out_dtype, shape = output_spec(fn, array, dtype)
    parts = chunks or max(pool.workers * _split.CHUNKS_PER_WORKER,
                          math.ceil(array.nbytes / BLOCK_BYTES))
    parts = min(parts, max(1, len(array)))
    nbytes = out_dtype.itemsize * math.prod(shape)
    if pool._backend_name(options["timeout"]) != "fork" or _writes_in_place(out) or not nbytes:
        target = out if out is not None else np.empty(shape, dtype=out_dtype)
        _fill(pool, fn, array, target, parts, options)
        return target
    buf = _platform.private_output(nbytes) if _platform.can_push() else None
    if buf is not None:
        target = np.frombuffer(buf, dtype=out_dtype).reshape(shape)
        try:
            _fill(pool, fn, array, target, parts, options, push=_Pushed(os.getpid(), target))
        except BaseException as exc:
            traceback.clear_frames(exc.__traceback__.tb_next)  # as below: free it now
            del target
            with contextlib.suppress(BufferError):  # a view still held elsewhere: GC
                buf.close()
            raise
        _platform.inheritable([buf])  # ordinary memory of the caller from now on
        if out is None:
            return target
        out[...] = target
        return out
    shared, private = _platform.shared_output(nbytes)
    try:
        _fill(pool, fn, array, np.frombuffer(shared, dtype=out_dtype).reshape(shape), parts,
              options, shared=True)
    except BaseException as exc:
        # The traceback holds _fill's frame, whose views keep both mappings alive for as
        # long as the caller keeps the exception: let go of them now.
        traceback.clear_frames(exc.__traceback__.tb_next)
        private.close()
        raise
    finally:
        with contextlib.suppress(BufferError):  # a view still held elsewhere: GC unmaps
            shared.close()
    result = np.frombuffer(private, dtype=out_dtype).reshape(shape)
    if out is None:
        return result
    out[...] = result
    return out


def _fill(pool, fn, array, target, parts: int, options: dict, shared: bool = False,
          push: _Pushed | None = None) -> None:
    """Run fn over the blocks of `array` into `target` (a local array on Dask, filled
    here from the blocks that come back); `shared`: target is the shared output;
    `push`: workers write target with process_vm_writev (they cannot see it)."""
    with_out = accepts_out(fn)
    dest = target if pool._backend_name(options["timeout"]) in ("fork", "thread", "serial") \
        else None

    def body(block: _Block):
        if push is not None:
            return _push(fn, block, push)
        d = None if dest is None else dest[block.start:block.start + len(block.data)]
        return _compute(fn, block.data, d, with_out, shared)

    source = _split.plan(_Blocks(array), body, workers=pool.workers, chunks=parts)
    with contextlib.closing(pool._outcomes(source, options)) as outcomes:
        for o in outcomes:
            if o.result is not None:  # Dask: the block came back
                start, stop = o.task.span
                target[start:stop] = o.result
