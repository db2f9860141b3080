"""`--pipe` blocks: GNU parallel's cut (whole records, about --block bytes), in bounded memory."""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import tracemalloc

import pytest

from batch.cli.exec._blocks import block_size, blocks

RECENDS = [b"\n", b"\0", b"\r\n", b"<END>", b"\xff\xfe"]


def reference(data: bytes, size: int, recend: bytes) -> list[bytes]:
    """The cut as GNU parallel describes it, written the slow, obvious way: greedily pack
    whole records into blocks of at most `size`; a record longer than `size` alone."""
    if not recend:
        return [data[i:i + size] for i in range(0, len(data), size)]
    records, start = [], 0
    while start < len(data):
        end = data.find(recend, start)
        end = len(data) if end < 0 else end + len(recend)
        records.append(data[start:end])
        start = end
    out, current = [], b""
    for rec in records:
        if current and len(current) + len(rec) > size:
            out.append(current)
            current = b""
        current += rec
    return out + ([current] if current else [])


def random_input(rng: random.Random, recend: bytes) -> bytes:
    """Records of 0 to 300 bytes that never contain a byte of recend (so recend never
    appears inside one), often empty or tiny; sometimes no final recend."""
    def record():
        return rng.randbytes(rng.choice([0, 1, 2, rng.randrange(300)])).translate(None, recend)
    parts = [record() + recend for _ in range(rng.randrange(0, 60))]
    if rng.random() < 0.5:
        parts.append(record() or b"x")
    return b"".join(parts)


class Trickle(io.RawIOBase):
    """A pipe-like stream that returns a few bytes per read, as a slow writer would."""

    def __init__(self, data: bytes, rng: random.Random):
        self._data, self._pos, self._rng = data, 0, rng

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self._rng.randrange(1, 97), len(self._data) - self._pos)
        b[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n


class ReadOnly:
    """A stream with read() and no readinto()."""

    def __init__(self, data: bytes):
        self._f = io.BytesIO(data)

    def read(self, n):
        return self._f.read(n)


def check_properties(got: list[bytes], data: bytes, size: int, recend: bytes) -> None:
    assert b"".join(got) == data
    assert all(got), "an empty block"
    for i, block in enumerate(got):
        last = i == len(got) - 1
        if recend and not last:
            assert block.endswith(recend), (i, block[-20:])
        if len(block) > size:  # allowed only for one record
            assert recend and block.find(recend) in (len(block) - len(recend), -1), i
        if recend and not last:  # greedy: the next record would not have fitted
            nxt = got[i + 1]
            first = nxt.find(recend)
            first = len(nxt) if first < 0 else first + len(recend)
            assert len(block) + first > size, i


@pytest.mark.parametrize("recend", RECENDS + [b""], ids=repr)
def test_blocks_match_gnu_parallels_cut_on_random_inputs(recend):
    rng = random.Random(hash(recend) & 0xFFFF)
    for trial in range(150):
        data = random_input(rng, recend)
        size = rng.choice([1, 2, 3, 7, 16, 64, 100, 257, 1000, 5000])
        make = rng.choice([io.BytesIO, lambda d: Trickle(d, rng), ReadOnly])
        got = list(blocks(make(data), size, recend))
        assert got == reference(data, size, recend), (trial, size)
        check_properties(got, data, size, recend)


def test_a_record_longer_than_the_block_goes_whole_in_its_own_block():
    data = b"ab\n" + b"x" * 10_000 + b"\n" + b"cd\n" + b"tail!!"
    got = list(blocks(Trickle(data, random.Random(1)), 8))
    assert got == [b"ab\n", b"x" * 10_000 + b"\n", b"cd\n", b"tail!!"]


def test_a_recend_straddling_the_block_size_ends_a_long_record():
    # "<END>" starts at byte 6 of an 8-byte block: the record is 11 bytes, one block.
    data = b"123456<END>78<END>"
    assert list(blocks(io.BytesIO(data), 8, b"<END>")) == [b"123456<END>", b"78<END>"]


@pytest.mark.parametrize("data, expected", [
    (b"", []),
    (b"\n", [b"\n"]),
    (b"no record end at all", [b"no record end at all"]),
    (b"a\nb\nc\n", [b"a\nb\n", b"c\n"]),
    (b"a\nb\nc", [b"a\nb\n", b"c"]),
])
def test_edges(data, expected):
    assert list(blocks(io.BytesIO(data), 4)) == expected


def test_nul_separated_records_as_find_print0_writes_them():
    names = [b"a file", b"new\nline", b"$(touch pwned)", b"-n", b"\xff\xfe"]
    data = b"\0".join(names) + b"\0"
    got = list(blocks(io.BytesIO(data), 16, b"\0"))
    assert b"".join(got) == data
    assert all(b.endswith(b"\0") for b in got)
    assert [n for b in got for n in b.split(b"\0")[:-1]] == names  # no name cut in two


@pytest.mark.timeout(60)
def test_from_a_real_pipe():
    proc = subprocess.Popen([sys.executable, "-c",
                             "import sys\nfor i in range(200000): print(i)"],
                            stdout=subprocess.PIPE)
    try:
        got = list(blocks(proc.stdout, 65536))
    finally:
        proc.stdout.close()
        assert proc.wait(timeout=30) == 0
    data = "".join(f"{i}\n" for i in range(200000)).encode()
    assert got == reference(data, 65536, b"\n")
    assert len(got) > 10


class Synthetic(io.RawIOBase):
    """A stream made as it is read, so the input itself takes no memory: `segments` are
    (unit, times), each unit repeated `times` times."""

    LINE = b"0123456789abcdef0123456789abcdef0123456789abcdef012345678\n"  # 58 bytes

    def __init__(self, segments):
        self._segments = list(segments)
        self._offset = 0  # bytes of the current segment already read

    def readable(self):
        return True

    def readinto(self, b):
        while self._segments and self._offset == len(self._segments[0][0]) * self._segments[0][1]:
            self._segments.pop(0)
            self._offset = 0
        if not self._segments:
            return 0
        unit, times = self._segments[0]
        tile = unit * max(1, 65536 // len(unit))
        start = self._offset % len(unit)
        n = min(len(b), len(tile) - start, len(unit) * times - self._offset)
        b[:n] = tile[start:start + n]
        self._offset += n
        return n


@pytest.mark.timeout(60)
def test_memory_stays_about_one_block_whatever_the_input_size():
    size, total = 1 << 20, (256 << 20) // len(Synthetic.LINE) * len(Synthetic.LINE)
    tracemalloc.start()
    try:
        count = lines = 0
        for block in blocks(Synthetic([(Synthetic.LINE, total // len(Synthetic.LINE))]), size):
            count += len(block)
            lines += block.count(b"\n")
            assert len(block) <= size and block.endswith(b"\n")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == total and lines == total // len(Synthetic.LINE)
    # The buffer, the block being made and the one the loop above still holds: 3 blocks.
    assert peak < 3.5 * size, f"peak {peak} bytes for {size}-byte blocks"


@pytest.mark.timeout(60)
def test_after_a_long_record_the_buffer_shrinks_back():
    size, long_record = 64 << 10, 16 << 20
    lines = (Synthetic.LINE, (1 << 20) // len(Synthetic.LINE))
    stream = Synthetic([lines, (b"x" * 4096, long_record // 4096), (b"\n", 1)] + [lines] * 8)
    sizes = []
    tracemalloc.start()
    try:
        for block in blocks(stream, size):
            sizes.append(len(block))
            if len(block) > size:
                del block
                peak_long = tracemalloc.get_traced_memory()[1]
            elif len(sizes) > 1 and sizes[-2] > size:  # the first block after it
                tracemalloc.reset_peak()
        peak_after = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [n for n in sizes if n > size] == [long_record + 1]
    assert peak_long < 4 * long_record
    assert peak_after < 5 * size, f"{peak_after} bytes after the long record"


def test_bad_block_sizes_and_streams_are_refused():
    with pytest.raises(ValueError, match="at least 1 byte"):
        next(blocks(io.BytesIO(b"x"), 0))

    class NonBlocking(io.RawIOBase):
        def readinto(self, b):
            return None
    with pytest.raises(ValueError, match="blocking"):
        next(blocks(NonBlocking(), 10))


@pytest.mark.parametrize("text, value", [
    ("1", 1), ("65536", 65536), ("1K", 1024), ("512K", 512 << 10), ("1M", 1048576),
    ("1G", 1 << 30), ("2T", 2 << 40), ("1k", 1000), ("1m", 1_000_000), ("3g", 3 * 10 ** 9),
    ("1.5M", 1572864), (" 10M ", 10 << 20), (".5K", 512),
])
def test_block_size_uses_gnu_parallels_unit_prefixes(text, value):
    assert block_size(text) == value


@pytest.mark.parametrize("text", ["", "M", "1X", "-1", "0", "0.1", "1MB", "1 M B", "1e6"])
def test_bad_block_sizes_are_usage_errors(text):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        block_size(text)
    assert repr(text) in str(info.value)


def test_an_unbuffered_file_is_read_into_directly(tmp_path):
    data = os.urandom(1 << 16).replace(b"\n", b"") + b"\n" + b"z\n" * 1000
    path = tmp_path / "in"
    path.write_bytes(data)
    with open(path, "rb", buffering=0) as raw:
        assert list(blocks(raw, 4096)) == reference(data, 4096, b"\n")
