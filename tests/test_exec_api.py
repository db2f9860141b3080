"""batch.pexec / batch.iexec and the runner under them: real programs, hostile items."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import batch
from batch._exec import _output
from conftest import alive

# Prints its argv as repr(list of bytes), so a test sees exactly what the program got.
ARGV = [sys.executable, "-c", "import os, sys; print([os.fsencode(a) for a in sys.argv[1:]])"]

HOSTILE = ["a b", "it's", 'say "hi"', "new\nline", "$(touch pwned)", "; rm -rf x |", "-n",
           "--help", "", "*", b"\xff\xfe latin-1 \xe9"]


def received(result) -> list:
    return eval(result.stdout)  # noqa: S307  our own program's repr of a list of bytes


@pytest.mark.timeout(60)
def test_hostile_items_reach_the_program_as_one_argument_each(tmp_path):
    results = batch.pexec([*ARGV, "{}"], HOSTILE, workers=3, cwd=tmp_path)
    assert [received(r) for r in results] == [[os.fsencode(item)] for item in HOSTILE]
    assert not (tmp_path / "pwned").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.timeout(60)
def test_replacement_strings_inside_arguments_and_appending():
    [r] = batch.pexec([*ARGV, "--out={/.}.txt", "{//}", "{#}", "{%}"], ["dir/a b.tar.gz"])
    assert received(r) == [b"--out=a b.tar.txt", b"dir", b"1", b"1"]
    [r] = batch.pexec(ARGV, [("x y", "-z")])  # no replacement string: columns appended
    assert received(r) == [b"x y", b"-z"]
    [r] = batch.pexec([*ARGV, "{2}", "{1.}"], [("a.c", "b")])
    assert received(r) == [b"b", b"a"]


@pytest.mark.timeout(60)
def test_shell_mode_quotes_every_value(tmp_path):
    results = batch.pexec("printf '%s|' {} {}", ["a b", "$(touch pwned)", "it's"], shell=True,
                          cwd=tmp_path)
    assert [r.stdout for r in results] == [b"a b|a b|", b"$(touch pwned)|$(touch pwned)|",
                                           b"it's|it's|"]
    assert not (tmp_path / "pwned").exists()


@pytest.mark.timeout(60)
def test_results_in_item_order_or_completion_order():
    items = [0.6, 0.0, 0.3]
    ordered = batch.pexec(["sh", "-c", "sleep $0; echo $0"], items, workers=3)
    assert [r.stdout for r in ordered] == [b"0.6\n", b"0.0\n", b"0.3\n"]
    fastest = batch.pexec(["sh", "-c", "sleep $0; echo $0"], items, workers=3,
                          keep_order=False)
    assert [r.stdout for r in fastest] == [b"0.0\n", b"0.3\n", b"0.6\n"]


@pytest.mark.timeout(60)
def test_a_failure_is_a_batch_error_and_a_called_process_error():
    with pytest.raises(batch.JobFailed) as info:
        batch.pexec(["sh", "-c", 'echo "$0 went wrong" >&2; exit $0'], ["0", "3", "0"])
    err = info.value
    assert isinstance(err, batch.BatchError) and isinstance(err, subprocess.CalledProcessError)
    assert (err.job, err.returncode, err.exitcode, err.signal) == (2, 3, 3, None)
    assert err.cmd == ["sh", "-c", 'echo "$0 went wrong" >&2; exit $0', "3"]
    assert err.stderr == b"3 went wrong\n"
    assert str(err) == ("job 2 (sh -c 'echo \"$0 went wrong\" >&2; exit $0' 3) exited with "
                        "status 3; its stderr ends: 3 went wrong")
    with pytest.raises(batch.JobFailed, match=r"killed by SIGKILL \(9\)") as info:
        batch.pexec(["sh", "-c", "kill -9 $$"], [1])
    assert info.value.signal == 9 and info.value.returncode == -9
    results = batch.pexec(["sh", "-c", "exit $0"], [0, 4], check=False)
    assert [r.returncode for r in results] == [0, 4]


@pytest.mark.timeout(60)
def test_a_program_that_cannot_run_is_exit_127_naming_it(tmp_path):
    (tmp_path / "plain").write_text("not a program")
    results = batch.pexec(["{}"], ["/no/such/program", str(tmp_path / "plain"), "true"],
                          check=False)
    assert [r.returncode for r in results] == [127, 127, 0]
    assert results[0].stderr == b"/no/such/program: command not found\n"
    assert b"not executable" in results[1].stderr


@pytest.mark.timeout(60)
def test_stdin_bytes_and_big_outputs_never_deadlock():
    big = os.urandom(3 << 20)
    [r] = batch.pexec(["sh", "-c", "cat; cat >&2", "{}"], [1], input=big + big)
    assert r.stdout == big + big and r.stderr == b""
    fifty = [sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'x' * 50_000_000); "
             "sys.stderr.buffer.write(b'y' * 5_000_000)", "{}"]
    results = batch.pexec(fifty, [1, 2], workers=2)
    assert [(len(r.stdout), len(r.stderr)) for r in results] == [(50_000_000, 5_000_000)] * 2


def test_captures_spool_to_disk_past_the_budget():
    budget = _output.Budget(10)
    a, b = _output.Capture(budget), _output.Capture(budget)
    a.write(b"12345678")
    b.write(b"abc")  # 3 > the 2 bytes left: to a file
    assert not a.spooled and b.spooled and budget.left == 2
    b.write(b"def")
    assert b.getvalue() == b"abcdef" and b"".join(b.chunks()) == b"abcdef"
    a.close()
    b.close()
    assert budget.left == 10


@pytest.mark.timeout(60)
def test_retries_run_a_failed_job_again(tmp_path):
    script = 'test -e "$0" && exit 0; touch "$0"; exit 1'
    [r] = batch.pexec(["sh", "-c", script, "{}"], [tmp_path / "marker"], retries=1)
    assert r.returncode == 0
    with pytest.raises(batch.JobFailed):
        batch.pexec(["false"], [1], retries=2)


@pytest.mark.timeout(60)
def test_env_and_cwd(tmp_path):
    [r] = batch.pexec(["sh", "-c", 'echo "$GREETING $(pwd)"', "{}"], [1],
                      env={"GREETING": "hello"}, cwd=tmp_path)
    assert r.stdout.decode() == f"hello {tmp_path}\n"


def _survivors(pids, wait=5.0):
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


JOBS_THEN_WAIT = """
import sys, batch
try:
    batch.pexec(["sh", "-c", "sleep 100 & echo $! > gpid-{#}; echo $$ > pid-{#}; wait"],
                range(2), workers=2, timeout=TIMEOUT)
except KeyboardInterrupt:
    print("interrupted"); sys.exit(130)
except batch.JobFailed as e:
    print(e); sys.exit(1)
"""


def _coordinator(tmp_path, timeout=None):
    code = JOBS_THEN_WAIT.replace("TIMEOUT", repr(timeout))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE,
                            text=True, preexec_fn=_default_signals)
    deadline = time.monotonic() + 30
    while len(list(tmp_path.glob("*pid-*"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # the pid files are written; give the shells time to reach `wait`
    pids = [int(p.read_text()) for p in tmp_path.glob("*pid-*")]
    assert len(pids) == 4 and all(alive(p) for p in pids)
    return proc, pids


def _default_signals():
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_no_job_or_grandchild_survives_its_coordinator(tmp_path, how):
    proc, pids = _coordinator(tmp_path)
    proc.send_signal(how)
    out, _ = proc.communicate(timeout=30)
    if how == signal.SIGINT:
        assert proc.returncode == 130 and out == "interrupted\n"
    else:
        assert proc.returncode == -signal.SIGKILL
    assert _survivors(pids) == []


@pytest.mark.timeout(60)
def test_timeout_stops_the_job_and_its_grandchild(tmp_path):
    t0 = time.monotonic()
    proc, pids = _coordinator(tmp_path, timeout=1.0)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "ran longer than the 1 s timeout" in out
    assert time.monotonic() - t0 < 20
    assert _survivors(pids, wait=0.5) == []


@pytest.mark.timeout(60)
def test_iexec_is_lazy_and_closes_cleanly():
    pulled = []

    def items():
        for i in range(1000):
            pulled.append(i)
            yield i

    it = batch.iexec(["echo", "{}"], items(), workers=2)
    first = next(it)
    assert first.stdout == b"0\n" and len(pulled) < 10
    it.close()  # stops the running jobs and reaps them (the fixture checks)


def _appears(path, wait=10.0) -> bool:
    deadline = time.monotonic() + wait
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.timeout(60)
@pytest.mark.parametrize("keep_order", [True, False])
def test_the_freed_slot_works_while_the_caller_holds_a_result(tmp_path, keep_order):
    # One worker: without the job after it started before a result is handed over, the
    # run would sit idle for as long as the caller holds each result.
    it = batch.iexec(["sh", "-c", "touch started-$0"], [1, 2, 3], workers=1,
                     keep_order=keep_order, cwd=tmp_path)
    try:
        assert next(it).args[-1] == "1"
        assert _appears(tmp_path / "started-2")
        assert next(it).args[-1] == "2"
        assert _appears(tmp_path / "started-3")
        assert next(it).args[-1] == "3"
    finally:
        it.close()


@pytest.mark.timeout(60)
def test_a_failure_reaches_the_caller_before_another_job_starts(tmp_path):
    # A failure may stop the run (check=True here; --halt soon in the CLI): nothing more
    # is started before the caller has seen it.
    it = batch.iexec(["sh", "-c", "touch started-$0; exit $(( $0 == 1 ))"], [1, 2],
                     workers=1, cwd=tmp_path)
    try:
        with pytest.raises(batch.BatchError):
            next(it)
    finally:
        it.close()
    assert not (tmp_path / "started-2").exists()


@pytest.mark.timeout(60)
def test_a_grandchild_that_ignores_sigterm_goes_too(tmp_path):
    # The shell exits on SIGTERM at once; its child ignores SIGTERM and holds no pipe.
    script = "trap '' TERM; sh -c 'sleep 100' >/dev/null 2>&1 & echo $! > gpid; trap - TERM; " \
             "sleep 100"
    t0 = time.monotonic()
    [r] = batch.pexec(["sh", "-c", script], [1], timeout=0.5, check=False, cwd=tmp_path)
    assert r.returncode == -signal.SIGTERM and time.monotonic() - t0 < 10
    assert _survivors([int((tmp_path / "gpid").read_text())], wait=2) == []
