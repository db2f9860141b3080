"""`batch exec --backend dask`'s job runner: real programs on a LocalCluster's workers."""

from __future__ import annotations

import socket
import time

import pytest

from test_dask import dask_client, no_leaks  # noqa: F401  one cluster, its leak check

from batch.cli.exec import _dask

pytestmark = pytest.mark.timeout(60)

run = _dask.run_job_on_dask


def _gone(pid: int) -> bool:
    """Exited (a zombie that an init which does not reap keeps counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_for(path, timeout=20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} never written")


def test_argv_output_status_and_timing_come_back(dask_client, tmp_path):
    hostile = ["a b", "it's", 'say "hi"', "new\nline", "$(touch pwned)", "-n", "; rm -rf x |"]
    t0 = time.time()
    got = run(dask_client, ["sh", "-c", 'for a; do printf "<%s>" "$a"; done; echo oops >&2; '
                            "exit 3", "sh", *hostile], cwd=str(tmp_path))
    assert got.stdout == "".join(f"<{a}>" for a in hostile).encode()
    assert got.stderr == b"oops\n"
    assert (got.returncode, got.signal, got.timed_out, got.error) == (3, 0, False, None)
    assert got.host == socket.gethostname()
    assert t0 - 1 <= got.start <= time.time() and 0 < got.runtime < 30
    assert not (tmp_path / "pwned").exists()  # no shell ever saw an item


def test_stdin_env_and_cwd_reach_the_program(dask_client, tmp_path):
    block = b"".join(b"%d\n" % i for i in range(600_000))  # 4 MB: more than any pipe holds
    got = run(dask_client, ["cat"], stdin=block)
    assert got.returncode == 0 and got.stdout == block
    # A program that starts reading late still gets all of it, and then its EOF.
    got = run(dask_client, ["sh", "-c", "sleep 0.5; exec wc -c"], stdin=block)
    assert got.stdout.strip() == str(len(block)).encode()
    # One that never reads it is no error (EPIPE), and empty input is an immediate EOF.
    assert run(dask_client, ["true"], stdin=block).returncode == 0
    assert run(dask_client, ["cat"], stdin=b"").stdout == b""
    got = run(dask_client, ["sh", "-c", 'echo "$GREETING"; pwd'], env={"GREETING": "hi there"},
              cwd=str(tmp_path))
    # env adds to the worker's environment: PATH still finds sh
    assert got.stdout == f"hi there\n{tmp_path}\n".encode(), got.stderr


def test_a_program_that_cannot_start_is_a_result_saying_why(dask_client, tmp_path):
    got = run(dask_client, ["no-such-program-batch-10"])
    assert (got.returncode, got.signal) == (127, 0)
    assert got.error == "cannot run no-such-program-batch-10: No such file or directory"
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\necho hi\n")
    got = run(dask_client, [str(script)])
    assert got.returncode == 126 and "Permission denied" in got.error


def test_a_signal_is_reported_as_the_signal(dask_client):
    got = run(dask_client, ["sh", "-c", "kill -KILL $$"])
    assert (got.returncode, got.signal, got.timed_out) == (-9, 9, False)


def test_a_timeout_stops_the_program_and_its_grandchild(dask_client, tmp_path):
    pids = tmp_path / "pids"
    t0 = time.monotonic()
    got = run(dask_client, ["sh", "-c", f'sleep 100 & echo $! > {pids}; echo started; wait'],
              timeout=1.0)
    took = time.monotonic() - t0
    assert got.timed_out and got.signal == 15 and got.returncode == -15
    assert got.stdout == b"started\n"  # what it printed before it was stopped
    assert 1.0 <= took < 1.0 + _dask.GRACE + 10
    grandchild = int(pids.read_text())
    deadline = time.monotonic() + 5
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild), "the job's grandchild outlived its timeout"


def test_a_program_that_ignores_sigterm_is_killed_after_the_grace(dask_client):
    t0 = time.monotonic()
    got = run(dask_client, ["sh", "-c", "trap '' TERM; sleep 100"], timeout=0.5)
    took = time.monotonic() - t0
    assert got.timed_out and got.signal == 9
    assert 0.5 + _dask.GRACE <= took < 0.5 + _dask.GRACE + 10


def test_cancel_stops_the_program_on_the_worker(dask_client, tmp_path):
    pid_file = tmp_path / "pid"
    future = _dask.submit_job(dask_client, ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 100"])
    pid = int(_wait_for(pid_file))
    assert not _gone(pid)
    _dask.cancel_job(dask_client, future)
    deadline = time.monotonic() + 10
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid), "the program ran on after cancel_job"
    assert future.cancelled()


def test_bad_arguments_are_refused_before_submitting(dask_client):
    with pytest.raises(ValueError, match="a program"):
        run(dask_client, [])
    with pytest.raises(ValueError, match="timeout must be positive"):
        run(dask_client, ["true"], timeout=0)


def test_a_dead_worker_is_a_batch_error(dask_client):
    from batch import BatchError

    class Lost:
        def result(self):
            raise OSError("connection to the worker lost")

    with pytest.raises(BatchError, match="the Dask worker running the job failed: OSError"):
        _dask.result_of(Lost())
