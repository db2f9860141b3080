"""Spawns on threads through libc (batch/_exec/_spawner.py, _libc_spawn.py): a job still
starts exactly as os.posix_spawn started it, and the run leaves no thread behind."""

import sys
import threading

import pytest

import batch
from batch._exec import _libc_spawn, _runner

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

STATUS = ["sh", "-c", "grep -E '^(SigBlk|SigIgn):' /proc/self/status; ps -o pid=,pgid= -p $$",
          "{}"]


def _mask(hexits: str) -> set[int]:
    bits = int(hexits, 16)
    return {n + 1 for n in range(64) if bits >> n & 1}


@linux
@pytest.mark.timeout(60)
@pytest.mark.parametrize("threaded", [True, False])
def test_a_job_gets_default_signals_nothing_blocked_and_its_own_group(monkeypatch, threaded):
    if not threaded:
        monkeypatch.setattr(_runner._libc_spawn, "available", lambda: False)
    elif not _libc_spawn.available():
        pytest.skip("not glibc")
    # sh -c: its own SigIgn is what it inherited (a non-interactive sh changes nothing).
    results = batch.pexec(STATUS, [1, 2, 3], workers=2)
    for r in results:
        lines = r.stdout.decode().split("\n")
        fields = dict(line.split(":\t") for line in lines[:2])
        assert _mask(fields["SigBlk"]) == set()
        assert not _mask(fields["SigIgn"]) & {2, 13, 15, 25}  # INT PIPE TERM XFSZ
        pid, pgid = lines[2].split()
        assert pid == pgid


@pytest.mark.timeout(60)
def test_no_spawner_thread_outlives_the_run():
    before = threading.active_count()
    assert len(batch.pexec(["true"], range(20), workers=4)) == 20
    it = batch.iexec(["sleep", "{}"], [0, 5, 5], workers=2)
    next(it)
    it.close()  # stopped mid-run: the jobs are stopped, the threads joined
    assert threading.active_count() == before
    assert not [t for t in threading.enumerate() if t.name == "batch-exec-spawn"]


@pytest.mark.timeout(60)
def test_programs_that_cannot_start_are_reported_not_retried():
    results = batch.pexec(["{}"], ["/no/such/program", "true"], check=False, retries=2)
    assert [r.returncode for r in results] == [127, 0]
    assert results[0].stderr == b"/no/such/program: command not found\n"
