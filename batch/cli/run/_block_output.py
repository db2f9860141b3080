"""`batch run big.npy --map module:fn --output result.npy` through batch.map_blocks.

The workers write each chunk's result straight into the .npy (a memmap of the temporary
file), so nothing crosses a pipe and the result is never held whole in memory; the file
is renamed into place only once every block is written. This path is taken only where
it gives what the general one would: an array input, the user's own function, the
default `concat` reducer, and none of the per-chunk bookkeeping (--checkpoint,
--joblog, --keep-going) that map_blocks does not keep. A function that does not keep
its rows (a filter) is noticed by the probe on the first row, or by the first block that
disagrees, and the run falls back to the general path.
"""

from __future__ import annotations

import os

import numpy as np

from ... import _blocks
from ..._pool import Pool
from ._checkpoint import atomic_replace


def applies(args, inp) -> bool:
    out = args.output
    return (inp.kind == "array" and ":" in args.map and args.reduce in (None, "concat")
            and out is not None and out.lower().endswith(".npy")
            and (not os.path.exists(out) or os.path.isfile(out))  # a FIFO is written as is
            and args.checkpoint is None and not args.joblog and not args.keep_going)


def written(args, inp, mapper, ctl) -> bool:
    """Run and write the .npy here; False when this path does not apply or fn does not
    keep its rows (then nothing was written)."""
    if not applies(args, inp):
        return False
    fn, array = mapper.body, inp.array
    try:
        dtype, shape = _blocks.output_spec(fn, array)
    except Exception:  # not row-wise, or fails on row 0: the general path reports it
        return False
    if dtype.hasobject:
        return False

    def fill(tmp):
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        try:
            with Pool(ctl.workers, ctl.backend, **ctl.options) as pool:
                pool.map_blocks(fn, array, out=out, progress=ctl.progress,
                                timeout=ctl.timeout, retries=ctl.retries)
            out.flush()
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        finally:
            del out

    try:
        atomic_replace(args.output, fill)
    except _blocks.BlockShapeError:
        return False
    return True
