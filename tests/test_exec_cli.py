"""`batch exec` from the shell: real programs, hostile items, GNU parallel's statuses."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest
from test_cli_support import ROOT, env, start

from conftest import alive

PRINT_ARGV = ["printf", r"%s\0"]  # each argument, as it arrived, then a NUL
HOSTILE = ["a b", "it's", 'say "hi"', "$(touch pwned)", "; rm -rf x |", "-n", "--help",
           "`id`", "*", "tab\there"]
needs_parallel = pytest.mark.skipif(shutil.which("parallel") is None,
                                    reason="GNU parallel is not installed")


def bexec(*args, input=None, cwd=None, timeout=60):
    """`batch exec ARGS...`, bytes in and out (items may not be UTF-8)."""
    return subprocess.run([sys.executable, "-m", "batch", "exec", *map(os.fsencode, map(
        lambda a: a if isinstance(a, bytes) else str(a), args))], input=input,
        capture_output=True, cwd=cwd, env=env(), timeout=timeout)


def argvs(stdout: bytes) -> list:
    assert stdout.endswith(b"\0")
    return [[arg] for arg in stdout[:-1].split(b"\0")]


@pytest.mark.timeout(60)
def test_hostile_items_arrive_exactly_from_every_source(tmp_path):
    weird = b"\xff\xfe-latin \xe9"
    p = bexec("-k", *PRINT_ARGV, "{}", ":::", *HOSTILE, weird, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert argvs(p.stdout) == [[os.fsencode(h)] for h in HOSTILE] + [[weird]]
    (tmp_path / "items").write_bytes(b"\n".join(map(os.fsencode, HOSTILE)) + b"\n")
    for way in (["::::", "items"], ["-a", "items"]):
        args = (["-a", "items"] + PRINT_ARGV) if way[0] == "-a" else PRINT_ARGV + way
        p = bexec("-k", *args, cwd=tmp_path)
        assert argvs(p.stdout) == [[os.fsencode(h)] for h in HOSTILE], p.stderr
    nul = b"\0".join([b"new\nline", weird, b"-x"]) + b"\0"
    p = bexec("-k", "-0", *PRINT_ARGV, input=nul, cwd=tmp_path)
    assert argvs(p.stdout) == [[b"new\nline"], [weird], [b"-x"]], p.stderr
    assert not (tmp_path / "pwned").exists()


@pytest.mark.timeout(60)
def test_options_after_the_command_are_the_commands():
    p = bexec("-j2", "grep", "-c", "-e", "x", ":::", ROOT / "README.md")
    assert p.returncode == 0 and int(p.stdout) > 10, p.stderr


@pytest.mark.timeout(60)
def test_order_as_jobs_finish_or_kept_and_tagged():
    args = ["sh", "-c", "sleep $0; echo done $0", ":::", "0.6", "0.0", "0.3"]
    assert bexec("-j3", *args).stdout == b"done 0.0\ndone 0.3\ndone 0.6\n"
    assert bexec("-j3", "-k", *args).stdout == b"done 0.6\ndone 0.0\ndone 0.3\n"
    p = bexec("-k", "--tag", "printf", r"1\n2\n", ":::", "a b", ":::", "c")
    assert p.stdout == b"a b c\t1\na b c\t2\n"


@pytest.mark.timeout(60)
def test_cross_product_and_colsep_as_gnu_parallel():
    p = bexec("-k", "echo", "{2}-{1}", ":::", "a", "b", ":::", "1", "2")
    assert p.stdout == b"1-a\n2-a\n1-b\n2-b\n"
    p = bexec("-k", "--colsep", ",", "echo", "{2}", "{1}", input=b"x,y\nu,v\n")
    assert p.stdout == b"y x\nv u\n"


@needs_parallel
@pytest.mark.timeout(60)
def test_same_output_and_dry_run_as_gnu_parallel(tmp_path):
    items = [*HOSTILE[:-1], "d/e.tar.gz"]  # GNU parallel quotes a tab differently
    args = ["echo", "{}", "{.}", "{/}", "{//}", "{/.}", "{#}"]
    ours = bexec("-k", *args, ":::", *items, cwd=tmp_path)
    gnu = subprocess.run(["parallel", "--will-cite", "-k", *args, ":::", *items],
                         capture_output=True, timeout=60, cwd=tmp_path)
    assert ours.stdout == gnu.stdout and ours.returncode == 0
    # --dry-run: GNU quotes inside a word (x'a b'y), we quote whole words ('xa by'): the
    # same argv once a shell reads them.
    ours = bexec("-k", "--dry-run", "echo", "{}", "x{/.}y", ":::", *items, cwd=tmp_path)
    gnu = subprocess.run(["parallel", "--will-cite", "-k", "--dry-run", "echo", "{}",
                          "x{/.}y", ":::", *items], capture_output=True, timeout=60)
    assert [shlex.split(line) for line in ours.stdout.decode().splitlines()] == \
        [shlex.split(line) for line in gnu.stdout.decode().splitlines()]
    assert not (tmp_path / "pwned").exists()


@pytest.mark.timeout(90)
def test_exit_status_counts_failures_up_to_101():
    assert bexec("true", ":::", 1, 2).returncode == 0
    p = bexec("sh", "-c", "exit $0", ":::", 0, 3, 0, 4, 5)
    assert p.returncode == 3 and p.stderr.splitlines()[-1] == b"batch: error: 3 of 5 jobs failed"
    assert b"job 2 (sh -c 'exit $0' 3) exited with status 3" in p.stderr
    assert bexec("false", ":::", *range(101)).returncode == 101
    assert bexec("false", ":::", *range(100)).returncode == 100


@pytest.mark.timeout(60)
def test_halt_now_stops_the_run_with_the_failing_jobs_status():
    t0 = time.monotonic()
    p = bexec("-j3", "--halt", "now,fail=1", "sh", "-c", "sleep $0; exit 7", ":::",
              "0.2", "30", "30", "30")
    assert p.returncode == 7 and time.monotonic() - t0 < 15
    assert b"halted by --halt now,fail=1 at job 1" in p.stderr
    p = bexec("-j1", "--halt", "soon,fail=2", "sh", "-c", "echo $0; exit $0", ":::",
              0, 5, 6, 0, 0)
    assert p.returncode == 6 and p.stdout == b"0\n5\n6\n"  # nothing started after
    assert bexec("--halt", "sometimes", "true", ":::", 1).returncode == 255


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args, message", [
    (["no-such-program-x", ":::", 1], b"no-such-program-x: command not found"),
    (["./README.md", ":::", 1], b"./README.md: not executable"),
    (["--bogus-option", "true"], b"unrecognized arguments"),
    (["true", "::::", "no/such/file"], b"no/such/file: no such file"),
    (["--workdir", "no/such", "true", ":::", 1], b"--workdir no/such: no such folder"),
    (["-j", "0", "true", ":::", 1], b"must be at least 1"),
    (["-j", "-2", "true", ":::", 1], b"must be at least 1, got -2"),
    (["--timeout", "-1", "true", ":::", 1], b"must be a positive number of seconds, got -1"),
    (["--timeout", "-0.5", "true", ":::", 1], b"seconds, got -0.5"),
    (["--retries", "-1", "true", ":::", 1], b"must be 0 or more, got -1"),
    (["--resume", "true", ":::", 1], b"--joblog"),
    ([], b"no COMMAND given"),
])
def test_usage_errors_and_unrunnable_programs_are_255_before_any_job(tmp_path, args,
                                                                     message):
    shutil.copy(ROOT / "README.md", tmp_path)
    p = bexec(*args, cwd=tmp_path)
    assert p.returncode == 255 and p.stdout == b""
    [line] = p.stderr.splitlines()
    assert line.startswith(b"batch: error: ") and message in line


def read_log(path):
    header, *rows = [line.split("\t") for line in path.read_text().splitlines()]
    return header, [dict(zip(header, row)) for row in rows]


@pytest.mark.timeout(60)
def test_joblog_has_gnu_parallels_columns_and_resume_skips_done_jobs(tmp_path):
    log = tmp_path / "log.tsv"
    args = ["--joblog", log, "sh", "-c", 'echo "$0" >> ran; exit $(( $0 % 2 ))', ":::",
            *range(1, 6)]
    p = bexec(*args, cwd=tmp_path)
    assert p.returncode == 3
    header, rows = read_log(log)
    assert header == ["Seq", "Host", "Starttime", "JobRuntime", "Send", "Receive",
                      "Exitval", "Signal", "Command"]
    assert sorted(int(r["Seq"]) for r in rows) == [1, 2, 3, 4, 5]
    for r in rows:
        n = int(r["Seq"])
        assert r["Host"] == ":" and abs(float(r["Starttime"]) - time.time()) < 60
        assert float(r["JobRuntime"]) >= 0 and (r["Send"], r["Receive"]) == ("0", "0")
        assert (r["Exitval"], r["Signal"]) == (str(n % 2), "0")
        assert r["Command"] == f"sh -c 'echo \"$0\" >> ran; exit $(( $0 % 2 ))' {n}"
    (tmp_path / "ran").unlink()
    p = bexec("--resume", *args, cwd=tmp_path)
    assert p.returncode == 0 and not (tmp_path / "ran").exists()  # every job was done
    p = bexec("--resume-failed", *args, cwd=tmp_path)
    assert p.returncode == 3
    assert sorted((tmp_path / "ran").read_text().split()) == ["1", "3", "5"]
    assert len(read_log(log)[1]) == 8  # appended, not rewritten


@needs_parallel
@pytest.mark.timeout(60)
def test_gnu_parallel_resumes_from_our_joblog(tmp_path):
    log = tmp_path / "log.tsv"
    bexec("--joblog", log, "sh", "-c", "exit 0", ":::", "a", "b", cwd=tmp_path)
    p = subprocess.run(["parallel", "--will-cite", "--joblog", str(log), "--resume", "echo",
                        ":::", "a", "b", "c"], capture_output=True, timeout=60, cwd=tmp_path)
    assert p.stdout == b"c\n"


@pytest.mark.timeout(60)
def test_timeout_kills_the_job_and_its_grandchild(tmp_path):
    t0 = time.monotonic()
    p = bexec("--timeout", "0.5", "--joblog", "log", "sh", "-c",
              "sleep 100 & echo $! > gpid; wait", ":::", 1, cwd=tmp_path)
    assert p.returncode == 1 and time.monotonic() - t0 < 15
    assert b"ran longer than the 0.5 s timeout" in p.stderr
    row = read_log(tmp_path / "log")[1][0]
    assert (row["Exitval"], row["Signal"]) == ("-1", "15")
    grandchild = int((tmp_path / "gpid").read_text())
    deadline = time.monotonic() + 5
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_leave_no_job_behind(tmp_path, sig, code):
    proc = start("exec", "-j2", "sh", "-c", "sleep 100 & echo $! > g$0; echo $$ > p$0; wait",
                 ":::", 1, 2, 3, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while len(list(tmp_path.iterdir())) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        pids = [int(f.read_text()) for f in tmp_path.iterdir()]
        assert len(pids) == 4
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == code, err
    assert err.splitlines()[-1] == ("batch: error: interrupted" if code == 130
                                    else "batch: error: terminated")
    assert [p for p in pids if alive(p)] == []  # stopped by batch itself, not later


@pytest.mark.timeout(60)
def test_big_outputs_whole_per_job_in_order(tmp_path):
    program = [sys.executable, "-c", "import sys; n = int(sys.argv[1]); "
               "sys.stdout.buffer.write(sys.argv[1].encode() * n)"]
    sizes = [7_000_000, 1, 1_000_000]  # 49 MB, then 1 byte, then 7 MB
    p = bexec("-k", "-j3", "--progress", *program, ":::", *sizes)
    assert p.returncode == 0 and b"3/3" in p.stderr  # the bar counted every job
    assert p.stdout == b"".join(str(n).encode() * n for n in sizes)


@pytest.mark.timeout(60)
def test_line_buffer_passes_lines_before_the_job_ends(tmp_path):
    proc = start("exec", "--line-buffer", "--tag", "sh", "-c",
                 "echo one; sleep 2; printf 'two'", ":::", "x", cwd=tmp_path)
    try:
        t0 = time.monotonic()
        first = proc.stdout.readline()
        early = time.monotonic() - t0
        rest, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert first == "x\tone\n" and early < 1.8
    assert rest == "x\ttwo" and proc.returncode == 0


@pytest.mark.timeout(60)
def test_results_env_workdir_shell_and_dry_run(tmp_path):
    (tmp_path / "w").mkdir()
    p = bexec("--results", "out", "--env", "GREETING=hi there", "--workdir", "w", "sh", "-c",
              'echo "$GREETING $0 $(basename $(pwd))"; echo err >&2; exit 2', ":::", "it's",
              cwd=tmp_path)
    assert p.returncode == 1 and p.stdout == b"hi there it's w\n"
    folder = tmp_path / "out" / "1"
    assert (folder / "stdout").read_bytes() == b"hi there it's w\n"
    assert (folder / "stderr").read_bytes() == b"err\n"
    assert (folder / "exitval").read_text() == "2\n"
    p = bexec("-k", "--shell", "echo {} | tr a-z A-Z", ":::", "a b", "$(touch pwned)",
              cwd=tmp_path)
    assert p.stdout == b"A B\n$(TOUCH PWNED)\n" and not (tmp_path / "pwned").exists()
    p = bexec("--dry-run", "rm", "{}", ":::", "a b", "$(x)", cwd=tmp_path)
    assert p.stdout == b"rm 'a b'\nrm '$(x)'\n" and p.returncode == 0


def test_help_lists_every_option():
    p = bexec("--help")
    assert p.returncode == 0
    for option in ("--workers", "--backend", "--timeout", "--retries", "--progress",
                   "--joblog", "--dry-run", "--arg-file", "--null", "--colsep", "--pipe",
                   "--block", "--recend", "--keep-order", "--tag", "--line-buffer",
                   "--results", "--halt", "--resume", "--resume-failed", "--env",
                   "--workdir", "--shell", ":::", "::::"):
        assert option.encode() in p.stdout, option


@pytest.mark.timeout(60)
def test_keep_order_streams_even_when_resume_skipped_jobs(tmp_path):
    log = tmp_path / "log.tsv"
    job = ["sh", "-c", '[ -e ok ] || [ "$0" = 1 ] || exit 1; echo "$0"; sleep "$0"',
           ":::", 1, 0.1, 3]
    p = bexec("-j1", "--halt", "now,fail=1", "--joblog", log, *job, cwd=tmp_path)
    assert p.returncode == 1 and p.stdout == b"1\n"  # job 1 ran, job 2 failed: halted
    (tmp_path / "ok").touch()
    proc = start("exec", "-j2", "-k", "--resume-failed", "--joblog", log, *job, cwd=tmp_path)
    try:
        t0 = time.monotonic()
        first = proc.stdout.readline()
        early = time.monotonic() - t0
        rest, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert (first, rest, proc.returncode) == ("0.1\n", "3\n", 0), err
    assert early < 2.5  # job 2's output came out while job 3 still ran
