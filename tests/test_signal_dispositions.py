"""Unusual signal dispositions and a coordinator that is stopped (issue 12, cases 6, 7).

SIGCHLD at SIG_IGN (daemons and some shells set it; it survives exec) makes the kernel reap
every child at once, so wait4 finds nothing: batch sets SIGCHLD to its default around its
own children and puts the caller's disposition back, the very same object.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import batch
from test_cli_support import CORPUS, env

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sigchld_ignored():
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGCHLD, previous)


def crash_on_two(x):
    if x == 2:
        os._exit(3)
    return x


def test_lazy_input_delivers_under_sigchld_ignored(sigchld_ignored):
    assert batch.pmap(lambda x: x * x, (x for x in range(50)), workers=2, backend="fork") == \
        [x * x for x in range(50)]
    assert signal.getsignal(signal.SIGCHLD) is signal.SIG_IGN


def test_a_crash_is_still_a_crash_with_its_status_under_sigchld_ignored(sigchld_ignored):
    with pytest.raises(batch.WorkerCrashed) as info:
        batch.pmap(crash_on_two, (x for x in range(4)), workers=2, chunksize=1, backend="fork")
    assert info.value.exitcode == 3 and info.value.chunk == 2
    assert signal.getsignal(signal.SIGCHLD) is signal.SIG_IGN


def test_a_handler_of_the_caller_is_left_alone_and_is_the_same_object():
    seen = []

    def handler(signum, frame):
        seen.append(signum)

    previous = signal.signal(signal.SIGCHLD, handler)
    try:
        got = batch.pmap(abs, (x for x in range(-5, 5)), workers=2, backend="fork")
        assert got == [abs(x) for x in range(-5, 5)]
        assert signal.getsignal(signal.SIGCHLD) is handler
    finally:
        signal.signal(signal.SIGCHLD, previous)


def test_the_callers_children_that_exit_during_a_run_are_still_reaped(sigchld_ignored):
    """While SIGCHLD is at its default a child of the caller's that exits stays a zombie;
    once SIG_IGN is back batch reaps it, as the kernel would have."""
    own = subprocess.Popen(["sleep", "0.2"])

    def slow(x):
        time.sleep(0.6)
        return x

    assert batch.pmap(slow, (x for x in range(2)), workers=2, backend="fork") == [0, 1]
    with pytest.raises(ChildProcessError):  # reaped: neither running nor a zombie
        os.waitpid(own.pid, os.WNOHANG)
    own.returncode = 0  # Popen's own reaping found nothing: keep its __del__ quiet


@pytest.mark.filterwarnings("ignore:batch is forking while")
def test_from_a_thread_sigchld_stays_ignored_and_results_still_arrive(sigchld_ignored):
    """A thread cannot change a signal disposition: the kernel reaps the workers, results
    still arrive, and a crash is still a crash, only without its exit status."""
    got = {}

    def run():
        got["ok"] = batch.pmap(abs, (x for x in range(-5, 5)), workers=2, backend="fork")
        try:
            batch.pmap(crash_on_two, (x for x in range(4)), workers=2, chunksize=1, backend="fork")
        except batch.WorkerCrashed as exc:
            got["crash"] = exc
        got["during"] = signal.getsignal(signal.SIGCHLD)

    t = threading.Thread(target=run)
    t.start()
    t.join(50)
    assert got["ok"] == [abs(x) for x in range(-5, 5)]
    crash = got["crash"]
    assert crash.chunk == 2 and crash.exitcode is None and crash.signal is None
    assert "exit status is lost: SIGCHLD is ignored" in str(crash)
    assert got["during"] is signal.SIG_IGN


def ignore_nothing():
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def ignore_sigchld():
    ignore_nothing()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # inherited through exec


def test_cli_text_input_under_sigchld_ignored():
    p = subprocess.run([sys.executable, "-m", "batch", "run", str(CORPUS), "--map", "lines",
                        "--reduce", "sum", "-j", "2"], preexec_fn=ignore_sigchld, env=env(),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    with open(CORPUS, "rb") as f:
        assert int(p.stdout) == sum(1 for _ in f)


# --- the coordinator stopped past the timeout (case 7) ----------------------------------

STOPPED = textwrap.dedent("""
    import sys, time, batch
    def f(x):
        time.sleep(0.3)
        return x
    print("ready", flush=True)
    try:
        print(batch.pmap(f, range(2), workers=2, chunksize=1, timeout=1.0, backend=sys.argv[1]))
    except batch.BatchError as exc:
        print("ERR", type(exc).__name__, exc)
""")


@pytest.mark.parametrize("kind", ["fork", "thread"])
def test_chunks_finished_while_the_coordinator_was_stopped_are_not_timed_out(kind):
    """SIGSTOP (a debugger, a laptop lid) past the chunk timeout, then SIGCONT: the
    chunks finished meanwhile, and are delivered, not reported as timed out."""
    proc = subprocess.Popen([sys.executable, "-c", STOPPED, kind], stdout=subprocess.PIPE,
                            text=True, env=env(), preexec_fn=ignore_nothing)
    try:
        assert proc.stdout.readline() == "ready\n"
        time.sleep(0.15)  # the workers run; the coordinator waits on them
        proc.send_signal(signal.SIGSTOP)
        time.sleep(1.5)   # past the timeout; the workers finish meanwhile
        proc.send_signal(signal.SIGCONT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert out.strip() == "[0, 1]"
