"""Arrays from .npy and .npz files, memory-mapped wherever the bytes lie uncompressed.

The header is read and checked here rather than by np.load, so that every way a file can
be wrong (not a .npy, truncated, object dtype, a zero-dimensional array) is one clear
UsageError, and so that an array stored uncompressed inside a .npz (np.savez does that)
is mapped in place too. Only a compressed .npz member (np.savez_compressed) has to be
decompressed into memory.
"""

from __future__ import annotations

import math
import struct
import zipfile

import numpy as np

from .._exits import UsageError

_MAGIC = b"\x93NUMPY"
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # zip local file header: signature .. name/extra lengths


def load_npy(path: str) -> np.ndarray:
    return _map(path, 0, path)


def load_npz(path: str, key: str | None) -> np.ndarray:
    try:
        with zipfile.ZipFile(path) as z:
            names = {n[:-4]: z.getinfo(n) for n in z.namelist() if n.endswith(".npy")}
            key = _pick(path, key, names)
            info = names[key]
            if info.compress_type != zipfile.ZIP_STORED:
                with z.open(info) as f:
                    return _checked(np.lib.format.read_array(f, allow_pickle=False), path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UsageError(f"{path}: not a valid .npz file ({exc})") from None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        head = f.read(_LOCAL_HEADER.size)
    if len(head) < _LOCAL_HEADER.size or not head.startswith(b"PK\x03\x04"):
        raise UsageError(f"{path}: not a valid .npz file (bad entry for {key!r})")
    _, name_len, extra_len = _LOCAL_HEADER.unpack(head)
    return _map(path, info.header_offset + _LOCAL_HEADER.size + name_len + extra_len,
                f"{path}[{key}]")


def _pick(path: str, key: str | None, names: dict) -> str:
    if not names:
        raise UsageError(f"{path}: the .npz holds no arrays")
    if key is None:
        if len(names) == 1:
            return next(iter(names))
        raise UsageError(f"{path} holds several arrays; choose one with --key "
                         f"({', '.join(sorted(names))})")
    if key not in names:
        raise UsageError(f"{path} has no array {key!r}; its keys: {', '.join(sorted(names))}")
    return key


def _map(path: str, start: int, label: str) -> np.ndarray:
    """The .npy at byte `start` of `path`, memory-mapped read-only."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            if f.read(len(_MAGIC)) != _MAGIC:
                raise UsageError(f"{label}: not a .npy file (it does not start with the "
                                 f"NumPy magic bytes)")
            f.seek(start)
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read(f)
            offset = f.tell()
            f.seek(0, 2)
            size = f.tell()
    except UsageError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise UsageError(f"{label}: not a valid .npy file ({exc})") from None
    if dtype.hasobject:
        raise UsageError(f"{label}: holds Python objects (dtype {dtype}), which batch does "
                         f"not unpickle; save a numeric array")
    nbytes = math.prod(shape) * dtype.itemsize
    if offset + nbytes > size:
        raise UsageError(f"{label}: truncated: its header promises {nbytes} bytes of data "
                         f"but only {max(0, size - offset)} follow")
    if nbytes == 0:
        return _checked(np.empty(shape, dtype), label)
    return _checked(np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset,
                              order="F" if fortran else "C"), label)


def _checked(array: np.ndarray, label: str) -> np.ndarray:
    if array.ndim == 0:
        raise UsageError(f"{label}: a zero-dimensional array has no rows to split")
    if array.dtype.hasobject:
        raise UsageError(f"{label}: holds Python objects, which batch does not unpickle")
    return array
