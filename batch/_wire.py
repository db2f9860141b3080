"""What crosses a worker's pipe: one length-prefixed message, msgpack inside.

    prefix  24 bytes  b"BTCH", kind (u8), 3 pad, body length (u64), out-of-band bytes (u64)
    body    msgpack   the payload; big numpy arrays appear in it as small headers only
    buffers raw       each big array's memory, in the order its header appears in the body

Big arrays skip `packb` entirely: the worker writes their memory straight from the array,
and the coordinator decodes the body first, allocates each array's final buffer, then
`readv`s the pipe straight into it. Copying through `packb` and joining `os.read` pieces
moved about 0.3 GB/s here; the pipe itself moves about 2.7 GB/s. The u64 lengths also mean
no result is refused for passing msgpack's 4 GiB limit on one binary.

Arrays of PULL_THRESHOLD (1 MiB) or more, from a forked worker, do not cross the pipe at
all: the body carries their address in the worker, the coordinator allocates their final
buffers, and the bytes go straight from the worker's memory into them, one copy, no
kernel buffer, no pipe capacity. A persistent worker, where the kernel lets a child
write its parent, pushes them there itself with process_vm_writev (the addresses reach
it over its task pipe: _frames.py); otherwise (one-shot workers, Yama ptrace_scope 1)
the coordinator pulls them with process_vm_readv. Either way the worker keeps the
arrays alive until they have arrived (a persistent worker until its next task arrives, a
one-shot one until the coordinator closes the pipe). Measured on 2 cores
(benchmarks/result_transports.py, 64 results of 16 MiB, 2 workers, median of 5, load
average 2.5 to 3.8 from other work): pipe 1.21 s, process_vm_readv 0.81 s, memfd that the
worker fills by copying its array and the coordinator maps 0.96 s (the copy into shared
memory faults 4 KiB shmem pages, slower than the worker's private huge pages, and the
caller faults them again on first read). A memfd also needs an fd in flight between two
processes (SCM_RIGHTS or /proc/<pid>/fd), each a thing to leak when a worker dies;
process_vm_readv/writev leave nothing behind by construction: the pid is an unreaped
child (or the worker's own parent, which outlives it), so it cannot be reused before the
copy, a dead worker's memory is simply gone (ESRCH), which the fork backend reports as
WorkerCrashed, and a push cut short leaves only the coordinator's own buffer, freed with
the message. Results computed straight into their place (batch.map_blocks) skip even
this copy.

Why push, and the floor of any design that copies (big_results: 64 x 16 MiB that cost
nothing to compute; CPU seconds per GiB, medians of 7, /tmp scripts run side by side,
load 3.5 to 5.5, so CPU time rather than wall time):
- serial: np.full 64 times, 0.26 s; its 16 MiB get transparent huge pages (numpy
  madvises them), which fault about 2x faster than 4 KiB pages;
- receiving is a fault and a copy into fresh memory: process_vm_readv into 4 KiB pages
  0.45 s (MAP_POPULATE first or not), a plain memcpy into them 0.41 s;
- the worker's production, a fill of memory it reuses (_platform.keep_freed_heap),
  about 0.1 s, in parallel with the receiving.
So receiving alone costs 1.6-1.7x serial's whole run. Pulled, it all falls on the
coordinator's one core: coordinator 0.55 s, workers 0.28 s, 0.53 s of wall time on a
quiet machine (0.45x serial). Pushed, the same work (0.83 s of CPU in all) runs in the
two workers and the coordinator does 0.02 s: at best 0.83 / 2 = 0.42 s per core.
Measured (python -m benchmarks --only big_results, load 0.8 to 1.9): serial 0.264 s,
fork 0.403 s (0.66x; ProcessPoolExecutor 2.198 s, 5.5x); a second run (load 1.2 to 1.8)
serial 0.271 s, fork 0.466 s (0.58x; ProcessPoolExecutor 4.4x). No copying design reaches 1.0x
here with 4 KiB receive pages: half the receive cost alone (0.23 s per core) is as long
as serial's whole run, before any production, scheduling, fork or exit.
Huge-page receive buffers would be the only way past it (0.2-0.27 s per GiB at best),
and on this machine (a Firecracker VM whose free 2 MiB pages are handed back to the host
by virtio-balloon free page reporting) they are not to be had reliably: MADV_HUGEPAGE
buffers filled by process_vm_readv 0.27-1.9 s per GiB, median 1.81; filled by the
workers' process_vm_writev, 2.6 s of the workers' system time per GiB against 0.71 s
with 4 KiB pages; np.empty's buffers 0.35 s but up to 1.64 s; serial's own np.full swings
the same way (0.23-1.6 s), which is why its figure is the fast case. Faulting the
buffers in ahead (MAP_POPULATE, MADV_POPULATE_WRITE) only moves the same cost to the
coordinator. Receive buffers stay 4 KiB pages, MAP_POPULATE'd only when pulled (a pushed
one is faulted by the worker writing it), and hidden from forks while filled
(_platform.receive_buffer says why).

This is the only module that imports msgpack. Types that round-trip: dict, list, tuple,
str, bytes, int (any size), float, bool, None, complex, numpy arrays and scalars; anything
else is pickled inside an ext type, and what cannot be pickled is an EncodeError naming
its type.

An array comes back with its shape (0-d included), dtype and byte order, C-contiguous, or
Fortran-contiguous if it was (pickle's promise; a strided view is copied to C order).
Only plain ndarrays (and np.memmap, which arrives as an ndarray) of fixed-size dtypes
travel as raw bytes: object, structured and variable-width dtypes, zero-width values and
subclasses with state of their own (a masked array's mask) are pickled, whole.
"""

from __future__ import annotations

import math
import os
import pickle
import stat
import struct

import msgpack
import numpy as np

from . import _platform
from ._pickling import dumps as _pickle
from ._platform import inheritable, receive_buffer

RESULT, ERROR = 0, 1

PREFIX = struct.Struct("<4sB3xQQ")
MAGIC = b"BTCH"

# Arrays at least this big travel out of band: below it, the extra allocation and read
# cost more than packing the bytes into the body.
OOB_THRESHOLD = 64 * 1024

_ARRAY, _ARRAY_OOB, _SCALAR, _TUPLE, _BIGINT, _COMPLEX, _PICKLE, _ARRAY_REMOTE = range(1, 9)


class EncodeError(TypeError):
    """A value in a result cannot be sent back from a worker."""


class DecodeError(ValueError):
    """Bytes from a worker are not a well-formed message."""


class PullError(DecodeError):
    """A result's arrays could not be read from the worker's memory: `lost` when the
    worker is gone, `denied` when this process may not read it (ptrace rules)."""

    def __init__(self, message: str, *, lost: bool = False, denied: bool = False):
        super().__init__(message)
        self.lost, self.denied = lost, denied


class Message(list):
    """The buffers of one message, in order; `held` keeps alive the arrays that the
    coordinator pulls from this process's memory."""

    held: list = []


# Fixed-size dtypes whose bytes are the whole value: bool, numbers, datetime64/timedelta64,
# fixed-width str/bytes and unstructured void. Not "O" (pointers) nor numpy 2's "T"
# StringDType (its bytes point into an arena of the sending process).
_RAW_KINDS = frozenset("biufcmMSUV")


def _raw(obj) -> bool:
    """Whether `obj` travels as dtype, shape and bytes rather than as a pickle."""
    d = obj.dtype
    # np.ascontiguousarray was tried and dropped: it makes a 0-d array 1-d (issue 9).
    return (d.kind in _RAW_KINDS and d.names is None and d.itemsize > 0
            and (isinstance(obj, np.generic) or type(obj) in (np.ndarray, np.memmap)))


def _c_order(obj: np.ndarray) -> tuple[np.ndarray, bool]:
    """A C-contiguous array holding `obj`'s values, and whether it is `obj` transposed
    (a Fortran-ordered array travels as its transpose and is transposed back)."""
    if obj.flags.c_contiguous:
        return obj, False
    if obj.flags.f_contiguous:
        return obj.T, True
    return obj.copy(order="C"), False


def _byte_view(a: np.ndarray) -> memoryview:
    # view(uint8) rather than memoryview(a): the buffer protocol refuses datetime64.
    return memoryview(a.reshape(-1).view(np.uint8))


class _Encoder:
    def __init__(self, remote: bool = False):
        self.buffers: list[memoryview] = []
        self.remote = remote
        self.held: list[np.ndarray] = []

    def default(self, obj):
        if isinstance(obj, np.ndarray) and _raw(obj):
            a, fortran = _c_order(obj)
            # The header is [dtype, shape(, "F")]: saved files from before the flag still load.
            head = [a.dtype.str, list(a.shape)] + (["F"] if fortran else [])
            if self.remote and a.nbytes >= _platform.PULL_THRESHOLD:
                self.held.append(a)  # alive until the coordinator has read it
                return msgpack.ExtType(_ARRAY_REMOTE, self._pack(
                    [*head[:2], a.ctypes.data, *head[2:]]))
            if a.nbytes >= OOB_THRESHOLD:
                self.buffers.append(_byte_view(a))
                return msgpack.ExtType(_ARRAY_OOB, self._pack(head))
            return msgpack.ExtType(_ARRAY, self._pack([*head[:2], a.tobytes(), *head[2:]]))
        if isinstance(obj, np.generic) and _raw(obj):
            return msgpack.ExtType(_SCALAR, self._pack([obj.dtype.str, obj.tobytes()]))
        if type(obj) is tuple:
            return msgpack.ExtType(_TUPLE, self._pack(list(obj)))
        if type(obj) is int:  # only ints outside msgpack's 64 bits get here
            return msgpack.ExtType(_BIGINT, obj.to_bytes((obj.bit_length() + 8) // 8, "little",
                                                         signed=True))
        if type(obj) is complex:
            return msgpack.ExtType(_COMPLEX, struct.pack("<dd", obj.real, obj.imag))
        try:
            return msgpack.ExtType(_PICKLE, _pickle(obj))
        except Exception as exc:
            raise EncodeError(f"a result contains an object of type {type(obj).__qualname__!r} "
                              f"that cannot be sent back from a worker ({exc})") from None

    def _pack(self, obj) -> bytes:
        return msgpack.packb(obj, default=self.default, strict_types=True, use_bin_type=True)


def _body(obj, remote: bool = False) -> tuple[bytes, list[memoryview], list[np.ndarray]]:
    """msgpack of `obj` with big arrays left out, those arrays' memory in order, and the
    arrays the coordinator is to pull (only when `remote`)."""
    enc = _Encoder(remote)
    try:
        return enc._pack(obj), enc.buffers, enc.held
    except EncodeError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:  # msgpack's own limits
        raise EncodeError(f"a value cannot be encoded: {exc}") from None


def encode(kind: int, payload, *, remote: bool = False) -> Message:
    """The message for `payload` as a list of buffers to write in order. With `remote`,
    big arrays stay in this process for the reader to pull: keep the message (its
    `held`) alive until the reader has them."""
    body, buffers, held = _body(payload, remote)
    oob = sum(b.nbytes for b in buffers)
    message = Message([PREFIX.pack(MAGIC, kind, len(body), oob), body, *buffers])
    message.held = held
    return message


def write_all(fd: int, buffers) -> None:
    """Write every buffer to a blocking fd (a pipe write may be partial)."""
    for buf in buffers:
        view = memoryview(buf).cast("B")
        while view:
            n = os.write(fd, view)
            view = view[n:]


class _Decoder:
    def __init__(self, populate_remote: bool = True):
        self.populate_remote = populate_remote  # False: the writer faults them in
        self.arrays: list[np.ndarray] = []
        self.mappings: list = []  # receive buffers hidden from later forks
        self.remote: list[tuple[int, np.ndarray]] = []  # (address in the worker, array)

    def _receive(self, dtype, shape, populate: bool = True) -> np.ndarray:
        dtype = np.dtype(dtype)
        buf = receive_buffer(dtype.itemsize * math.prod(shape), populate)
        if buf is None:
            return np.empty(shape, dtype=dtype)
        self.mappings.append(buf)
        return np.frombuffer(buf, dtype=dtype).reshape(shape)

    def ext_hook(self, code: int, data: bytes):
        if code == _ARRAY_OOB:
            dtype, shape, *fortran = self._unpack(data)
            a = self._receive(dtype, shape)
            self.arrays.append(a)
            return a.T if fortran else a
        if code == _ARRAY_REMOTE:
            dtype, shape, address, *fortran = self._unpack(data)
            a = self._receive(dtype, shape, self.populate_remote)
            self.remote.append((address, a))
            return a.T if fortran else a
        if code == _ARRAY:
            dtype, shape, raw, *fortran = self._unpack(data)
            a = np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape).copy()
            return a.T if fortran else a
        if code == _SCALAR:
            dtype, raw = self._unpack(data)
            return np.frombuffer(raw, dtype=np.dtype(dtype))[0]
        if code == _TUPLE:
            return tuple(self._unpack(data))
        if code == _BIGINT:
            return int.from_bytes(data, "little", signed=True)
        if code == _COMPLEX:
            return complex(*struct.unpack("<dd", data))
        if code == _PICKLE:
            return pickle.loads(data)
        raise DecodeError(f"unknown ext type {code}")

    def _unpack(self, data: bytes):
        return msgpack.unpackb(data, ext_hook=self.ext_hook, raw=False, strict_map_key=False)


def decode_body(body, populate_remote: bool = True) -> tuple[object, list[memoryview],
                                                             list, list]:
    """The payload; the buffers (still empty) that the out-of-band bytes fill; the
    receive buffers among them that later forks do not inherit (see receive_buffer);
    and the (address, array) pairs to get from the worker's memory, whose buffers are
    faulted in here unless `populate_remote` is False (the worker will write them)."""
    dec = _Decoder(populate_remote)
    try:
        payload = dec._unpack(body)
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"undecodable message body ({type(exc).__name__}: {exc})") from None
    return payload, [_byte_view(a) for a in dec.arrays if a.nbytes], dec.mappings, dec.remote


def save(path, obj) -> None:
    """Write `obj` to a file as one msgpack document followed by its big arrays' bytes.

    For plain data (dicts, lists, str, numbers) the file is ordinary msgpack that any
    msgpack reader opens. It is flushed and fsynced, so a caller that writes a temporary
    name and renames it (the CLI's checkpoints and outputs) never exposes half a file.
    """
    body, buffers, _ = _body(obj)
    with open(path, "wb") as f:
        write_all(f.fileno(), [body, *buffers])
        if stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # a pipe refuses fsync (EINVAL)
            os.fsync(f.fileno())


def load(path):
    """Read back what `save` wrote; a short or garbled file is a DecodeError."""
    dec = _Decoder()
    with open(path, "rb") as f:
        # max_buffer_size=0 lifts msgpack's 100 MiB default to its 4 GiB format limit.
        unpacker = msgpack.Unpacker(f, ext_hook=dec.ext_hook, raw=False,
                                    strict_map_key=False, max_buffer_size=0)
        try:
            payload = unpacker.unpack()
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(f"{path}: undecodable ({type(exc).__name__}: {exc})") from None
        f.seek(unpacker.tell())
        for view in (_byte_view(a) for a in dec.arrays if a.nbytes):
            if f.readinto(view) != view.nbytes:
                raise DecodeError(f"{path}: truncated")
        if f.read(1):
            raise DecodeError(f"{path}: unexpected bytes after the data")
    inheritable(dec.mappings)  # a file's arrays go straight to user code
    return payload
