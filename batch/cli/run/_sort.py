"""The `sort` built-in: sorted runs on disk, merged block by block.

    worker:       np.sort(chunk) ──► runs/<id>.bin  (raw values; the partial is its name)
    coordinator:  k runs ──► k buffers of MERGE_BUDGET/k bytes ──► blocks of sorted output

Neither side ever holds the whole array: a worker holds one chunk, the merge a fixed
budget, and output writers take the blocks as they come. Each step takes, from every
buffer, the values up to the smallest of the buffers' last values: nothing still on disk
can be smaller, so those values are final. numpy's order is kept (NaN last), because
np.sort and np.searchsorted define it.
"""

from __future__ import annotations

import contextlib
import os
import uuid

import numpy as np

# Bytes of run data the merge holds at once, over all runs; the merge step sorts about
# this much, so memory peaks near three times it. Larger buffers save little: each
# step is a sort of data already in cache-sized sorted pieces.
MERGE_BUDGET = 32 << 20


def spill(runs_dir: str):
    """A mapper body: the chunk's values sorted into a run file; the partial names it."""
    def body(chunk):
        values = np.sort(np.asarray(chunk), axis=None)
        name = f"run-{uuid.uuid4().hex}.bin"
        tmp = os.path.join(runs_dir, name + ".tmp")
        try:
            with open(tmp, "wb") as f:  # f.write, not tofile: that one loses the errno
                f.write(values.reshape(-1).view(np.uint8))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise OSError(exc.errno, f"{exc.strerror} (sort's runs take as much room as "
                          f"the input: set TMPDIR, or --checkpoint, to a folder with room)",
                          tmp) from None
        os.replace(tmp, os.path.join(runs_dir, name))
        return (os.path.join(runs_dir, name), values.size, values.dtype.str)
    return body


class Sorted:
    """The merged runs: `size`, `dtype`, and `blocks()`, an iterator of sorted arrays."""

    def __init__(self, runs: list):
        self.runs = [r for r in runs if r[1]]
        self.size = sum(r[1] for r in self.runs)
        dtypes = [np.dtype(r[2]) for r in self.runs]
        self.dtype = np.result_type(*dtypes) if dtypes else np.dtype(np.float64)

    def __len__(self) -> int:
        return self.size

    def blocks(self):
        k = len(self.runs)
        readers = [_Run(path, n, dtype, self.dtype, k) for path, n, dtype in self.runs]
        try:
            live = [r for r in readers if r.fill()]
            while live:
                lasts = np.array([r.buf[-1] for r in live], dtype=self.dtype)
                bound = np.sort(lasts)[0]
                pieces = [r.take(np.searchsorted(r.buf, bound, side="right")) for r in live]
                yield np.sort(np.concatenate(pieces), kind="stable")
                live = [r for r in live if r.fill()]
        finally:
            for r in readers:
                r.close()

    def __array__(self, dtype=None, copy=None):
        out = np.empty(self.size, dtype=self.dtype)
        at = 0
        for block in self.blocks():
            out[at:at + block.size] = block
            at += block.size
        return out if dtype is None else out.astype(dtype)


class _Run:
    def __init__(self, path, n, dtype, out_dtype, k):
        self.f = open(path, "rb")
        self.left = n
        self.dtype = np.dtype(dtype)
        self.out_dtype = out_dtype
        self.step = max(1024, MERGE_BUDGET // max(1, k) // self.dtype.itemsize)
        self.buf = np.empty(0, dtype=out_dtype)

    def fill(self) -> bool:
        """Make sure `buf` holds values; False once the run is used up."""
        if self.buf.size:
            return True
        if not self.left:
            return False
        n = min(self.step, self.left)
        self.buf = np.fromfile(self.f, dtype=self.dtype, count=n).astype(self.out_dtype,
                                                                        copy=False)
        if self.buf.size != n:
            raise OSError(f"sorted run {self.f.name} is shorter than expected")
        self.left -= n
        return True

    def take(self, k: int) -> np.ndarray:
        piece, self.buf = self.buf[:k], self.buf[k:]
        return piece

    def close(self) -> None:
        self.f.close()
