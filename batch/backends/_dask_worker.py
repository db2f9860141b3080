"""What runs on a Dask worker: open the chunk, run the body, pickle the result.

The client (backends/dask.py) submits `run(job, chunk)` where `job` is the run's
(body, initializer, initargs), pickled once, and `chunk` is one of
- an array chunk the client scattered once (Dask hands `run` the array itself);
- `FileRows`: rows of a memory-mapped `.npy` named by path and byte offset, which the
  worker maps itself, so the data never crosses the network;
- `Pickled`: anything else (a slice of a list, a (path, byte range) tuple that the body
  reads), pickled once by the client.

This module needs numpy and the standard library only: it is imported on the workers,
which need `batch` installed, not a client.
"""

from __future__ import annotations

import os
import pickle
import time
import traceback

import numpy as np

from .._pickling import dumps
from .._remote import describe_exception, pickle_exception


class Failed(Exception):
    """The chunk failed on the worker; `info` is the error as data (_remote.describe_exception).

    Raised rather than returned, so that Dask's own `retries=` re-runs the chunk. Being
    plain data, it always travels back, even when the original exception cannot be pickled.
    """

    def __init__(self, info: dict, seconds: float, pid: int):
        super().__init__(info, seconds, pid)
        self.info, self.seconds, self.pid = info, seconds, pid

    def __str__(self) -> str:
        return f"{self.info.get('type', 'Exception')}: {self.info.get('message', '')}"

    def __repr__(self) -> str:  # what a Dask worker logs: not the pickled exception
        return f"Failed({self})"


class FileRows:
    """Rows [start, stop) of a C-ordered array stored in a file, opened read-only by mmap."""

    __slots__ = ("path", "offset", "dtype", "shape", "mode")

    def __init__(self, path: str, offset: int, dtype, shape: tuple, mode: str):
        self.path, self.offset, self.mode = path, offset, mode
        self.dtype, self.shape = dtype, shape

    def __getstate__(self):
        return (self.path, self.offset, self.dtype, self.shape, self.mode)

    def __setstate__(self, state):
        self.path, self.offset, self.dtype, self.shape, self.mode = state

    @classmethod
    def of(cls, data, span) -> "FileRows | None":
        """The rows of `data` as a file range, if `data` is a whole, C-ordered np.memmap.

        A slice of a memmap keeps its parent's `.offset`, so only a memmap whose buffer is
        the mapping itself (as np.load(mmap_mode=...) returns) qualifies; others are
        scattered like any array.
        """
        import mmap

        if not (isinstance(data, np.memmap) and isinstance(data.base, mmap.mmap)
                and data.filename and data.flags.c_contiguous and data.ndim >= 1):
            return None
        start, stop = span
        row = data.itemsize * int(np.prod(data.shape[1:], dtype=np.int64))
        # "r+" and "w+" maps are opened copy-on-write: a worker must not write the file.
        return cls(str(data.filename), data.offset + start * row, data.dtype,
                   (stop - start,) + data.shape[1:], "r" if data.mode == "r" else "c")

    def open(self) -> np.memmap:
        return np.memmap(self.path, dtype=self.dtype, mode=self.mode, offset=self.offset,
                         shape=self.shape, order="C")


class Pickled:
    """A chunk pickled by the client: Dask neither walks it for futures nor copies it."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes):
        self.blob = blob

    def __getstate__(self):
        return self.blob

    def __setstate__(self, blob):
        self.blob = blob

    def open(self):
        return pickle.loads(self.blob)

    def __repr__(self) -> str:  # how the task shows in Dask's logs and dashboard
        return f"<pickled {len(self.blob)} bytes>"


def run(job: Pickled, chunk):
    """(compute seconds, pid, pickled result) of one chunk; raises Failed otherwise.

    `job` is the run's (body, initializer, initargs).

    The result is pickled here, as the fork backend encodes it in the worker: a result
    that cannot be pickled becomes a ResultError naming the chunk, instead of an error
    inside Dask's transfer when the client asks for it.
    """
    import cloudpickle  # a dependency of distributed, so present on every Dask worker

    t0 = time.perf_counter()
    try:
        body, initializer, initargs = job.open()
        if initializer is not None:
            initializer(*initargs)
        result = body(chunk.open() if isinstance(chunk, (FileRows, Pickled)) else chunk)
    except BaseException as exc:  # SystemExit too: it must not end the Dask worker
        info = describe_exception(exc, _format(exc))
        if info.get("pickle") is not None:
            info["pickle"] = pickle_exception(exc)
        raise Failed(info, time.perf_counter() - t0, os.getpid()) from None
    seconds = time.perf_counter() - t0
    try:
        payload = dumps(result, cloudpickle.Pickler)  # keeps byte order
    except Exception as exc:
        message = f"the result cannot be pickled: {type(exc).__name__}: {exc}"
        raise Failed({"encode": True, "message": message}, seconds, os.getpid()) from None
    return seconds, os.getpid(), payload


def _format(exc: BaseException) -> str:
    """traceback.format_exc(), with source lines for functions cloudpickle sent by value.

    cloudpickle (3.1 on) names the code of such functions "<dynamic-code>", so the
    traceback would show no file and no line of the user's code. It keeps the module's
    `__file__` in the function's globals: the frames are relabelled with it, and where
    that file exists here (a shared path, a LocalCluster) its lines are shown.
    """
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__, lookup_lines=False)
    pending = [(te, exc)]
    while pending:
        te, exc = pending.pop()
        files = [frame.f_globals.get("__file__") if frame.f_code.co_filename == "<dynamic-code>"
                 else None for frame, _ in traceback.walk_tb(exc.__traceback__)]
        if any(files) and len(files) == len(te.stack):
            te.stack = traceback.StackSummary.from_list([
                traceback.FrameSummary(real or fs.filename, fs.lineno, fs.name)
                for fs, real in zip(te.stack, files)])
        for chained, original in ((te.__cause__, exc.__cause__),
                                  (te.__context__, exc.__context__)):
            if chained is not None and original is not None:
                pending.append((chained, original))
    return "".join(te.format())
