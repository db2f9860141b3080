"""`--pipe` with a regular file as stdin (cut in place, spliced) and `--round-robin`.

The file cutter must cut exactly where the stream cutter does (so `< big.txt` and
`cat big.txt |` give the same jobs), every job must get its bytes whole, and a job that
stops reading (EPIPE on splice or write) is its own failure, not the run's.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from test_cli_support import env

from batch import cli
from batch._exec._feed import FileRange
from batch.cli.exec._blocks import blocks, file_ranges

TEXT = b"".join(b"line %d %s\n" % (i, b"x" * (i * 7 % 61)) for i in range(30_000))


def _cuts_of_blocks(data: bytes, size: int, recend: bytes) -> list[bytes]:
    return list(blocks(io.BytesIO(data), size, recend))


def _cuts_of_file(tmp_path, data: bytes, size: int, recend: bytes, skip: int = 0):
    path = tmp_path / "in.bin"
    path.write_bytes(data)
    with open(path, "rb") as f:
        f.seek(skip)
        cutter = file_ranges(f.fileno(), size, recend)
        first = next(cutter, None)
        assert f.tell() == skip  # preads only while cutting
        ranges = [r for r in [first, *cutter] if r is not None]
        assert f.tell() == len(data)  # then consumed, as a read would have
        return [os.pread(f.fileno(), r.length, r.offset) for r in ranges], ranges


CASES = [
    (TEXT, 1000, b"\n"),
    (TEXT, 65536, b"\n"),
    (TEXT, 200_000, b"\n"),          # a look-back window (64 KiB) smaller than the block
    (TEXT, 1 << 30, b"\n"),          # one block
    (TEXT.replace(b"\n", b"\r\n"), 777, b"\r\n"),     # a two-byte record end
    (TEXT.replace(b"\n", b"\0"), 4096, b"\0"),
    (b"short\n" + b"y" * 300_000 + b"\nend\n", 1000, b"\n"),  # a record > the block
    (b"no record end at all" * 100, 64, b"\n"),
    (b"a\nb\nc", 2, b"\n"),          # no trailing record end
    (b"", 10, b"\n"),
    (TEXT[:5000], 100, b""),         # no record structure: every `size` bytes
]


@pytest.mark.parametrize("data,size,recend", CASES)
def test_file_ranges_cut_where_the_stream_cutter_cuts(tmp_path, data, size, recend):
    from_file, ranges = _cuts_of_file(tmp_path, data, size, recend)
    assert from_file == _cuts_of_blocks(data, size, recend)
    assert b"".join(from_file) == data
    for piece in from_file[:-1]:  # records never split; long ones go whole
        assert len(piece) <= size or piece.count(recend) == 1
        if recend:
            assert piece.endswith(recend)
    assert all(isinstance(r, FileRange) and r.length > 0 for r in ranges)


def test_file_ranges_start_at_the_files_offset(tmp_path):
    skip = TEXT.index(b"\n", 12345) + 1
    from_file, _ = _cuts_of_file(tmp_path, TEXT, 5000, b"\n", skip=skip)
    assert from_file == _cuts_of_blocks(TEXT[skip:], 5000, b"\n")


def _main(monkeypatch, capfd, path, *args):
    with open(path) as stdin:  # a real file: the splice path, with conftest's leak check
        monkeypatch.setattr(sys, "stdin", stdin)
        code = cli.main(["exec", *map(str, args)])
    out, err = capfd.readouterr()
    return code, out, err


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_bytes(TEXT)
    return path


@pytest.mark.timeout(60)
def test_file_stdin_counts_and_keep_order_cat_equal_one_process(monkeypatch, capfd,
                                                                text_file, tmp_path):
    code, out, err = _main(monkeypatch, capfd, text_file, "--pipe", "--block", "64k", "-j2",
                           "wc", "-l")
    assert code == 0, err
    counts = [int(n) for n in out.split()]
    assert len(counts) == len(_cuts_of_blocks(TEXT, 65536, b"\n")) > 3
    assert sum(counts) == TEXT.count(b"\n")
    log = tmp_path / "log.tsv"
    code, out, err = _main(monkeypatch, capfd, text_file, "--pipe", "--block", "50k", "-k",
                           "-j2", "--joblog", log, "cat")
    assert code == 0, err
    assert out.encode() == TEXT
    rows = [line.split("\t") for line in log.read_text().splitlines()[1:]]
    assert sum(int(r[4]) for r in rows) == len(TEXT) and all(r[4] == r[5] for r in rows)


@pytest.mark.timeout(60)
def test_file_stdin_null_records_and_a_record_longer_than_the_block(monkeypatch, capfd,
                                                                    tmp_path):
    path = tmp_path / "nul.bin"
    data = TEXT[:200_000].replace(b"\n", b"\0") + b"z" * 100_000 + b"\0tail\0"
    path.write_bytes(data)
    code, out, err = _main(monkeypatch, capfd, path, "--pipe", "-0", "--block", "10k", "-k",
                           "cat")
    assert code == 0, err
    assert out.encode() == data
    code, out, err = _main(monkeypatch, capfd, path, "--pipe", "--recend", "\\0", "--block",
                           "10k", "-k", "wc", "-c")
    sizes = [int(n) for n in out.split()]
    expected = [len(b) for b in _cuts_of_blocks(data, 10_000, b"\0")]
    assert code == 0 and sizes == expected and max(sizes) > 100_000  # the long one, whole


@pytest.mark.timeout(60)
def test_file_stdin_empty_runs_no_job(monkeypatch, capfd, tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    code, out, err = _main(monkeypatch, capfd, path, "--pipe", "wc", "-l")
    assert (code, out) == (0, "")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["file", "pipe"])
def test_a_job_that_exits_without_reading_is_its_own_failure(monkeypatch, capfd, tmp_path,
                                                              how):
    path = tmp_path / "big.txt"
    path.write_bytes(TEXT * 20)  # 22 blocks of 1 MiB: far more than a pipe holds
    if how == "file":
        code, out, err = _main(monkeypatch, capfd, path, "--pipe", "-j2", "sh", "-c",
                               "exit 3")
    else:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(TEXT * 20)))
        code = cli.main(["exec", "--pipe", "-j2", "sh", "-c", "exit 3"])
        out, err = capfd.readouterr()
    jobs = len(_cuts_of_blocks(TEXT * 20, 1 << 20, b"\n"))
    assert code == jobs and f"{jobs} of {jobs} jobs failed" in err  # GNU: each job's status
    code, out, err = _main(monkeypatch, capfd, path, "--pipe", "-j2", "-k", "head", "-n", "1")
    assert code == 0, err  # head reads a little, exits 0: the unsent rest is no error
    assert out.splitlines()[0] == "line 0 "


@pytest.mark.timeout(60)
def test_round_robin_one_job_per_slot_sees_every_byte(monkeypatch, capfd, text_file):
    code, out, err = _main(monkeypatch, capfd, text_file, "--pipe", "--round-robin", "-j3",
                           "--block", "20k", "wc", "-l")
    assert code == 0, err
    counts = [int(n) for n in out.split()]
    assert len(counts) == 3 and sum(counts) == TEXT.count(b"\n")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(TEXT)))
    code = cli.main(["exec", "--pipe", "--round-robin", "-j2", "--block", "20k", "-k", "cat"])
    out, err = capfd.readouterr()
    assert code == 0, err
    lines = out.encode().splitlines(keepends=True)
    assert sorted(lines) == sorted(TEXT.splitlines(keepends=True))  # whole records only


@pytest.mark.timeout(60)
def test_round_robin_needs_pipe_and_no_retries(monkeypatch, capfd, text_file):
    code, out, err = _main(monkeypatch, capfd, text_file, "--round-robin", "cat", ":::", "a")
    assert code == 255 and "add --pipe" in err
    code, out, err = _main(monkeypatch, capfd, text_file, "--pipe", "--round-robin",
                           "--retries", "1", "cat")
    assert code == 255 and "--retries" in err


def _peak_rss_kib(args, stdin) -> int:
    proc = subprocess.Popen([sys.executable, "-m", "batch", "exec", *args], stdin=stdin,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env())
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        proc.returncode = 0  # reaped here, not by Popen
        proc.stderr.close()
    assert os.waitstatus_to_exitcode(status) == 0
    return usage.ru_maxrss


@pytest.mark.timeout(120)
def test_file_stdin_memory_does_not_grow_with_the_block(tmp_path):
    path = tmp_path / "big.txt"
    with open(path, "wb") as f:
        for _ in range(40):  # 44 MiB
            f.write(TEXT)
    with open(os.devnull, "rb") as nothing:
        base = _peak_rss_kib(["--pipe", "wc", "-l"], nothing)
    with open(path, "rb") as f:
        big = _peak_rss_kib(["--pipe", "--block", "32M", "wc", "-l"], f)
    assert big < base + 8 * 1024, (base, big)  # a 32 MiB block never enters the process
