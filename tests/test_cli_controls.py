"""Run controls of `batch run`: --joblog, --keep-going, --retries, --timeout,
--checkpoint through Ctrl-C and resume, SIGTERM."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from test_cli_support import NUMBERS, batch, start, write_module

A = np.load(NUMBERS)

JOBS = """
import os, time

def slow_sum(chunk):
    time.sleep(0.1)
    return float(chunk.sum())

def fail_late_chunks(chunk):
    if chunk[0] >= 1000:
        raise ValueError(f"refusing {chunk[0]:.0f}")
    return float(chunk.sum())

def die_once(chunk):
    marker = f"died-{int(chunk[0])}"
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), 9)
    return float(chunk.sum())

def sleep_forever(chunk):
    time.sleep(60)

def record_and_sleep(chunk):
    with open(f"pid-{os.getpid()}", "w"):
        pass
    time.sleep(60)
"""


@pytest.fixture
def job(tmp_path):
    write_module(tmp_path, "jobs", JOBS)
    np.save(tmp_path / "r.npy", np.arange(2000.0))
    return tmp_path


def read_log(path):
    header, *rows = [line.split("\t") for line in path.read_text().splitlines()]
    return [dict(zip(header, row)) for row in rows]


def test_joblog_has_one_row_per_chunk_and_progress_counts_items(tmp_path):
    p = batch("run", NUMBERS, "--chunks", 5, "--workers", 2, "--joblog", tmp_path / "log.tsv",
              "--progress")
    assert p.returncode == 0, p.stderr
    assert f"{A.size // 1000}k/{A.size // 1000}k" in p.stderr and " rows/s" in p.stderr
    rows = read_log(tmp_path / "log.tsv")
    assert list(rows[0]) == ["chunk", "items", "pid", "start", "seconds", "exit_status",
                             "signal", "peak_memory", "attempt", "error"]
    assert sorted(int(r["chunk"]) for r in rows) == list(range(5))
    spans = sorted(tuple(map(int, r["items"].split("-"))) for r in rows)
    assert spans[0][0] == 0 and spans[-1][1] == A.size - 1
    assert all(b + 1 == c for (_, b), (c, _) in zip(spans, spans[1:]))
    for r in rows:
        assert int(r["pid"]) > 0 and int(r["pid"]) != os.getpid()
        assert abs(float(r["start"]) - time.time()) < 120 and float(r["seconds"]) >= 0
        assert (r["exit_status"], r["signal"], r["attempt"], r["error"]) == ("0", "", "1", "")
        assert int(r["peak_memory"]) > 1 << 20


@pytest.mark.timeout(60)
def test_keep_going_runs_every_chunk_and_exits_1(job):
    p = batch("run", "r.npy", "--map", "jobs:fail_late_chunks", "--chunks", 8,
              "--keep-going", "--joblog", "log.tsv", cwd=job)
    assert p.returncode == 1 and p.stdout == ""
    assert "Traceback" not in p.stderr
    failed = [line for line in p.stderr.splitlines() if "refusing" in line]
    assert len(failed) == 4  # chunks 4-7 start at 1000 and above
    assert p.stderr.splitlines()[-1] == "batch: error: 4 of 8 chunks failed"
    rows = read_log(job / "log.tsv")
    assert len(rows) == 8
    assert sorted(int(r["chunk"]) for r in rows if r["error"]) == [4, 5, 6, 7]


def test_without_keep_going_the_first_failure_stops_the_run(job):
    p = batch("run", "r.npy", "--map", "jobs:fail_late_chunks", "--chunks", 8, cwd=job)
    assert p.returncode == 1
    [line] = p.stderr.splitlines()
    assert line.startswith("batch: error: chunk ") and "ValueError: refusing" in line


@pytest.mark.timeout(60)
def test_retries_run_a_crashed_chunk_again(job):
    p = batch("run", "r.npy", "--map", "jobs:die_once", "--reduce", "sum", "--chunks", 2,
              "--retries", 1, "--joblog", "log.tsv", "--format", "json", cwd=job)
    assert p.returncode == 0, p.stderr
    assert float(p.stdout) == np.arange(2000.0).sum()
    assert {r["attempt"] for r in read_log(job / "log.tsv")} == {"2"}


@pytest.mark.timeout(60)
def test_timeout_stops_a_chunk(job):
    t0 = time.monotonic()
    p = batch("run", "r.npy", "--map", "jobs:sleep_forever", "--chunks", 2, "--timeout", 0.5,
              "--joblog", "log.tsv", cwd=job)
    assert p.returncode == 1 and time.monotonic() - t0 < 30
    assert "0.5 s timeout" in p.stderr
    assert "0.5 s timeout" in read_log(job / "log.tsv")[0]["error"]


@pytest.mark.timeout(90)
def test_checkpoint_survives_ctrl_c_and_resumes_to_the_same_output(job):
    args = ["run", "r.npy", "--map", "jobs:slow_sum", "--reduce", "sum", "--chunks", 24,
            "--workers", 2, "--checkpoint", "ck", "--format", "json"]
    proc = start(*args, cwd=job)
    try:
        deadline = time.monotonic() + 30
        while len(list((job / "ck").glob("chunk-*"))) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    assert out == "" and "Traceback" not in err
    saved = len(list((job / "ck").glob("chunk-*.msgpack")))
    assert 4 <= saved < 24
    resumed = batch(*args, "--joblog", "log.tsv", cwd=job)
    assert resumed.returncode == 0, resumed.stderr
    assert len(read_log(job / "log.tsv")) == 24 - saved  # saved chunks did not run again
    straight = batch(*[a for a in args if a not in ("--checkpoint", "ck")], cwd=job)
    assert resumed.stdout == straight.stdout  # the same bytes: folded in the same order
    assert float(resumed.stdout) == np.arange(2000.0).sum()


@pytest.mark.timeout(60)
def test_sigterm_stops_every_worker_and_exits_143(job):
    proc = start("run", "r.npy", "--map", "jobs:record_and_sleep", "--chunks", 4,
                 "--workers", 2, cwd=job)
    try:
        deadline = time.monotonic() + 30
        while len(list(job.glob("pid-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 143, err
    assert err.splitlines() == ["batch: error: terminated"]
    for marker in job.glob("pid-*"):
        with pytest.raises(ProcessLookupError):
            os.kill(int(marker.name[4:]), 0)


def test_checkpoint_of_stdin_checks_it_is_the_same_input(tmp_path):
    numbers = "".join(f"{i}\n" for i in range(30_000))
    args = ["run", "-", "--map", "sum", "--chunk-size", 7000, "--checkpoint", "ck"]
    assert batch(*args, input=numbers, cwd=tmp_path).stdout == f"{sum(range(30_000))}\n"
    again = batch(*args, "--joblog", "log.tsv", input=numbers, cwd=tmp_path)
    assert again.stdout == f"{sum(range(30_000))}\n"
    assert read_log(tmp_path / "log.tsv") == []  # every chunk came from the checkpoint
    changed = batch(*args, input=numbers.replace("5", "6"), cwd=tmp_path)
    assert changed.returncode == 2 and "differs" in changed.stderr


def test_checkpoint_keeps_the_runs_of_a_sort(tmp_path):
    args = ["run", NUMBERS, "--map", "sort", "--chunks", 4, "--checkpoint", tmp_path / "ck"]
    assert batch(*args, "--output", tmp_path / "a.npy").returncode == 0
    assert len(list((tmp_path / "ck" / "runs").iterdir())) == 4
    p = batch(*args, "--output", tmp_path / "b.npy", "--joblog", tmp_path / "log.tsv")
    assert p.returncode == 0, p.stderr
    assert read_log(tmp_path / "log.tsv") == []
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()
    assert np.array_equal(np.load(tmp_path / "b.npy"), np.sort(A))
