"""Pickles that keep a numpy array's byte order (issue 9).

numpy's pickle gives a non-native array (dtype '>i4' on a little-endian machine) back in
native order whenever it takes its `__setstate__` path: protocol < 5, any strided array,
and dtypes without the buffer protocol (longdouble, datetime64, timedelta64) even when
contiguous. The values survive, the dtype does not (the family of numpy/numpy#5883). So
a non-native array is pickled as a same-width void view of its bytes, which carries no
byte order to lose, and viewed back as its dtype on load.

Used wherever batch pickles values that user code gets back: the wire's fallback for
types msgpack cannot hold (_wire.py), and a Dask chunk and its result (backends/dask.py,
_dask_worker.py, with cloudpickle's Pickler as the base there).
"""

from __future__ import annotations

import functools
import io
import pickle

import numpy as np


def _view_as(raw: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return raw.view(dtype)


@functools.cache
def _pickler(base: type) -> type:
    class Pickler(base):
        def reducer_override(self, obj):
            if (type(obj) in (np.ndarray, np.memmap) and obj.dtype.names is None
                    and not obj.dtype.isnative):
                raw = obj.view(np.ndarray).view(f"V{obj.dtype.itemsize}")
                return _view_as, (raw, obj.dtype)
            parent = getattr(super(), "reducer_override", None)  # pickle.Pickler has none
            return NotImplemented if parent is None else parent(obj)

    return Pickler


def dumps(obj, base: type = pickle.Pickler) -> bytes:
    """pickle.dumps(obj, HIGHEST_PROTOCOL) with `base` as the Pickler, byte order kept."""
    buf = io.BytesIO()
    _pickler(base)(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()
