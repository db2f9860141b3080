"""Spawning on the runner's own thread (batch/_exec/_runner.py, _spawn.py, _libc_spawn.py):
a job starts the same through libc or os.posix_spawn, the run starts no thread, and a job
is done only once it has exited, however its output pipes closed."""

import os
import signal
import sys
import threading
import time

import pytest

import batch
from batch import _signals
from batch._exec import _libc_spawn

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

STATUS = ["sh", "-c", "grep -E '^(SigBlk|SigIgn):' /proc/self/status; ps -o pid=,pgid= -p $$",
          "{}"]


def _mask(hexits: str) -> set[int]:
    bits = int(hexits, 16)
    return {n + 1 for n in range(64) if bits >> n & 1}


@linux
@pytest.mark.timeout(60)
@pytest.mark.parametrize("through", ["libc", "os.posix_spawn"])
def test_a_job_gets_default_signals_nothing_blocked_and_its_own_group(monkeypatch, through):
    if through == "os.posix_spawn":
        monkeypatch.setattr(_libc_spawn, "available", lambda: False)
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
def test_a_run_starts_no_thread():
    before = threading.active_count()
    seen = [threading.active_count() for _ in batch.iexec(["true"], range(20), workers=4)]
    assert seen == [before] * 20
    it = batch.iexec(["sleep", "{}"], [0, 5, 5], workers=2)
    next(it)
    it.close()  # stopped mid-run: the jobs are stopped and reaped
    assert threading.active_count() == before


@pytest.mark.timeout(60)
@pytest.mark.parametrize("capture", [True, False])
def test_a_job_that_closes_its_outputs_is_done_when_it_exits(capture):
    # Both pipes reach EOF long before the exit: wait4 cannot reap it then, so the
    # runner must wait for the exit itself (a pidfd, or polling), and take its status.
    t0 = time.monotonic()
    results = batch.pexec(["sh", "-c", "exec >&- 2>&-; sleep 0.5; exit {}"], [3, 4],
                          check=False, capture=capture, workers=2)
    assert [r.returncode for r in results] == [3, 4]
    assert time.monotonic() - t0 >= 0.5


@pytest.mark.timeout(60)
def test_programs_that_cannot_start_are_reported_not_retried():
    results = batch.pexec(["{}"], ["/no/such/program", "true"], check=False, retries=2)
    assert [r.returncode for r in results] == [127, 0]
    assert results[0].stderr == b"/no/such/program: command not found\n"


@pytest.mark.timeout(30)
def test_a_lent_guard_gives_sigint_to_the_callers_handler_and_takes_it_back():
    got = []
    callers = lambda s, f: got.append("caller")  # noqa: E731
    previous = signal.signal(signal.SIGINT, callers)
    try:
        guard = _signals.SigintGuard()
        with guard:
            guard.lend()
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # (the handler runs at the next bytecode boundary)
            assert got == ["caller"] and not guard.interrupted
            guard.take_back()
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
            assert got == ["caller"] and guard.interrupted
        guard.close()
        assert signal.getsignal(signal.SIGINT) is callers
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.timeout(30)
def test_a_handler_installed_while_lent_is_the_one_restored():
    previous = signal.getsignal(signal.SIGINT)
    mine = lambda s, f: None  # noqa: E731
    guard = _signals.SigintGuard()
    try:
        with guard:
            guard.lend()
            signal.signal(signal.SIGINT, mine)  # as the caller's code may do meanwhile
            guard.take_back()
            assert signal.getsignal(signal.SIGINT) is not mine  # the guard's again
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, previous)
        guard.close()
