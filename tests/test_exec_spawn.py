"""Spawning (batch/_exec/_runner.py's spawner threads, _spawn.py, _libc_spawn.py): a job
starts the same through libc or os.posix_spawn, no thread outlives a run, and a job is
done only once it has exited, however its output pipes closed."""

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
def test_no_spawner_thread_outlives_the_run():
    before = threading.active_count()
    assert len(batch.pexec(["true"], range(20), workers=4)) == 20
    assert threading.active_count() == before
    it = batch.iexec(["sleep", "{}"], [0, 5, 5, 5], workers=2)
    next(it)
    it.close()  # stopped mid-run: the jobs are stopped and reaped, the threads joined
    assert threading.active_count() == before
    assert not [t for t in threading.enumerate() if t.name == "batch-exec-spawn"]


@pytest.mark.timeout(60)
def test_many_workers_spawning_on_two_threads_get_their_own_outputs():
    # Two spawns at once share the Launcher's cached file actions: every job must
    # still write into its own pipes and be reaped under its own pid.
    results = batch.pexec(["sh", "-c", "echo out{}; echo err{} >&2; exit $(({} % 7))"],
                          range(200), workers=8, check=False)
    assert [r.stdout for r in results] == [b"out%d\n" % i for i in range(200)]
    assert [r.stderr for r in results] == [b"err%d\n" % i for i in range(200)]
    assert [r.returncode for r in results] == [i % 7 for i in range(200)]


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
