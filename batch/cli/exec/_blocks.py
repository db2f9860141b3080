"""`--pipe`: stdin cut into blocks of about `--block` bytes, each ending at a record end.

    stdin (a pipe, a file, zcat's output; any size)
        │  readinto a bytearray of `size` bytes (one per block, never copied out)
        ▼
    buffer: [ ... complete records ... last recend | partial record ]
        │  rfind(recend) inside the first `size` bytes: the cut
        ▼
    yield buffer[:cut] (in place) ──► one job's stdin
    fresh buffer[:rest] = buffer[cut:filled]   the partial record starts the next block

GNU parallel's meaning (man parallel, --pipe and --block): a block of `size` bytes is read,
"the final partial record removed before the block is passed on to the job. The partial
record will be prepended to next block." So every block but the last ends with `recend`,
and no block is longer than `size` unless it is one record longer than `size`: that record
goes whole in a block of its own (GNU warns and grows its block; we grow the buffer for
that one record, doubling so the reading stays linear, and shrink it again after).
`recend=b""` means no record structure (GNU's `--recend ''`): cut every `size` bytes.

A regular file as stdin (`batch exec --pipe wc -l < big.txt`) is not read at all:
`file_ranges` finds the same cuts by reading a few KiB before each one (GNU parallel's
--pipepart, done automatically) and yields byte ranges that the runner splices into the
jobs' pipes (batch/_exec/_feed.py). Same cuts, same blocks, no byte through Python.

Memory: the buffer (`size`, or about twice the longest record while one is longer) plus
the blocks the consumer still holds, whatever the input size. A block is the buffer it
was read into, truncated at the cut (a bytearray, never a view of a buffer that is read
into again), so a consumer may keep one while the next is read; only the partial record
after a cut is copied, into the next block's fresh buffer. The cost is linear: no
buffer is rebuilt by concatenation.
"""

from __future__ import annotations

import argparse
import re
import os
from collections.abc import Iterator

TYPE_CHECKING = False  # typing only for an annotation: not loaded at start-up
if TYPE_CHECKING:
    from typing import BinaryIO

from ..._exec._feed import FileRange

# GNU parallel's UNIT PREFIX (man parallel): upper case are powers of 1024, lower case of
# 1000, so `--block 1M` is 1048576 bytes and `--block 1m` is 1000000.
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50,
          "k": 10 ** 3, "m": 10 ** 6, "g": 10 ** 9, "t": 10 ** 12, "p": 10 ** 15}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGTPkmgtp]?)\s*")

DEFAULT_BLOCK = "1M"

# Bytes read per step while looking back for the last record end before a cut.
_SCAN = 64 << 10


def block_size(text: str) -> int:
    """`--block SIZE`: bytes, with GNU parallel's K/M/G/T/P (1024) and k/m/g/t/p (1000).

    An argparse type: a bad value raises ArgumentTypeError, so it is a usage error before
    any input is read. Fractions are allowed where they make whole bytes worth it
    (`1.5M`), rounded down; GNU's arithmetic expressions (`1M-12*2k`) are not.
    """
    match = _SIZE.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"expected a size such as 1M, 512K or 65536, got {text!r}")
    number, unit = match.groups()
    value = int(float(number) * _UNITS[unit]) if "." in number else int(number) * _UNITS[unit]
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 byte, got {text!r}")
    return value


def blocks(stream: BinaryIO, size: int, recend: bytes = b"\n") -> Iterator[bytes]:
    """Yield the bytes of `stream` in blocks of about `size` bytes, each cut after `recend`.

    The concatenation of the blocks is exactly the input; an empty input yields nothing.
    `stream` needs `readinto` (a raw or buffered binary file) or else `read`.
    """
    if size < 1:
        raise ValueError(f"block size must be at least 1 byte, got {size}")
    recend = bytes(recend)
    # One byte more than a block: when the rest of the input fits in one block, that is
    # known before cutting, whatever sizes the reads return, so the cut is deterministic.
    buf = bytearray(size + 1)
    filled = 0
    eof = False
    handed = []  # the block being handed over, for one moment
    while True:
        while filled <= size and not eof:
            n = _read_into(stream, buf, filled, size + 1)
            eof = n == 0
            filled += n
        if not filled:
            return
        if eof and filled <= size:
            cut = filled  # the rest fits: the last block, perhaps without a trailing recend
        elif not recend:
            cut = size
        else:
            cut = buf.rfind(recend, 0, size) + len(recend)
            if cut < len(recend):  # no record ends inside the block: one long record
                buf, filled, eof, cut = _one_long_record(stream, buf, filled, eof, size,
                                                         recend)
        buf, filled = _hand_over(handed, buf, cut, filled, size)
        # Popped in the yield itself, so this frame keeps no reference to the block while
        # the consumer works on it: once the consumer drops it, it is freed.
        yield handed.pop()


def _hand_over(handed: list, buf: bytearray, cut: int, filled: int, size: int):
    """Put buf[:cut] in `handed` as the block itself (truncated in place, not copied) and
    return a fresh buffer holding the partial record after it, and its length.

    Measured (2026-12-01, 1 GiB from cat in 1 MiB blocks): copying each block out of one
    reused buffer (memoryview.tobytes, the first version) cost about 0.3 s of the 0.7 s
    blocks() took; a fresh buffer per block costs an allocation, which glibc serves from
    memory it already has for blocks up to its 32 MiB mmap threshold (bigger ones fault
    their pages in either way, as the copy did).
    """
    rest = filled - cut
    fresh = bytearray(max(size + 1, rest))
    with memoryview(buf) as view, view[cut:filled] as tail:
        fresh[:rest] = tail
    del buf[cut:]
    handed.append(buf)
    return fresh, rest


def _one_long_record(stream, buf, filled, eof, size, recend):
    """Read on until the first record (longer than `size`) ends; its end is the cut.

    The buffer doubles (in place) whenever it is full, so a record of L bytes costs O(L)
    reading and at most about 2L of buffer (3L for a moment while it grows). Returns the
    buffer's new state and the cut.
    """
    start = max(0, size - len(recend) + 1)  # a recend may straddle `size`
    while True:
        found = buf.find(recend, start, filled)
        if found >= 0:
            return buf, filled, eof, found + len(recend)
        if eof:
            return buf, filled, eof, filled  # the input ends inside its last record
        start = max(0, filled - len(recend) + 1)
        if filled == len(buf):
            buf.extend(bytes(len(buf)))
        n = _read_into(stream, buf, filled, len(buf))
        eof = n == 0
        filled += n


def _read_into(stream, buf: bytearray, start: int, stop: int) -> int:
    """Read up to stop - start bytes into buf[start:stop]; 0 at end of input.

    The views are released before returning: a bytearray with a live export cannot be
    resized, and the caller resizes it.
    """
    readinto = getattr(stream, "readinto", None)
    with memoryview(buf) as view, view[start:stop] as part:
        if readinto is not None:
            n = readinto(part)
            if n is None:  # would silently end the input early: refuse instead
                raise ValueError("--pipe needs a blocking input stream")
            return n
        data = stream.read(stop - start)
        part[:len(data)] = data
        return len(data)


def file_ranges(fd: int, size: int, recend: bytes = b"\n") -> Iterator[FileRange]:
    """The blocks `blocks()` would cut from the regular file `fd`, from its current offset
    to its end, as FileRanges: the same cuts, found with a few preads each.

    Lazy: each cut is found when the next job needs it, with preads; once the last range
    is yielded, the offset of `fd` moves to the end. The size is the file's when the
    generator starts.
    """
    if size < 1:
        raise ValueError(f"block size must be at least 1 byte, got {size}")
    recend = bytes(recend)
    pos = os.lseek(fd, 0, os.SEEK_CUR)
    end = os.fstat(fd).st_size
    while pos < end:
        if end - pos <= size:
            cut = end
        elif not recend:
            cut = pos + size
        else:
            cut = _last_end_before(fd, pos, pos + size, recend)
            if cut < 0:  # one record longer than the block: it goes whole
                cut = _first_end_after(fd, max(pos, pos + size - len(recend) + 1), end, recend)
        yield FileRange(fd, pos, cut - pos)
        pos = cut
    # Consumed, as reading it would have: `{ batch exec --pipe ...; cat; } < f` prints
    # nothing more (the jobs splice at their own offsets, whatever this one is).
    os.lseek(fd, pos, os.SEEK_SET)


def _last_end_before(fd: int, lo: int, hi: int, recend: bytes) -> int:
    """The offset just after the last `recend` lying wholly in [lo, hi), or -1."""
    while hi - lo >= len(recend):
        start = max(lo, hi - _SCAN)
        data = os.pread(fd, hi - start, start)
        found = data.rfind(recend)
        if found >= 0:
            return start + found + len(recend)
        if start == lo:
            break
        hi = start + len(recend) - 1  # a recend may straddle the window's start
    return -1


def _first_end_after(fd: int, pos: int, end: int, recend: bytes) -> int:
    """The offset just after the first `recend` starting at or after `pos`, else `end`."""
    while pos < end:
        data = os.pread(fd, min(_SCAN, end - pos), pos)
        if not data:
            break
        found = data.find(recend)
        if found >= 0:
            return pos + found + len(recend)
        if len(data) < len(recend):
            break
        pos += len(data) - len(recend) + 1
    return end
