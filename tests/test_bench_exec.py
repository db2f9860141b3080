"""The exec rows of `batch bench`: batch exec, xargs -P, GNU parallel, --pipe into wc -l."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from batch._bench import _exec, _memory, _peers, _runner, _targets, command

EXEC_WORKLOADS = ("exec_true", "exec_echo", "exec_pipe")

needs_batch_exec = pytest.mark.skipif(not _exec.batch_exec_available(),
                                      reason="batch exec not available")
needs_parallel = pytest.mark.skipif(not _exec.on_path("parallel"),
                                    reason="GNU parallel not installed (apt-get install parallel)")


@pytest.mark.timeout(120)
def test_a_tiny_exec_run_measures_every_available_program(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = command.main(["--size", "tiny", "--only", ",".join(EXEC_WORKLOADS), "--repeat", "1",
                         "--no-progress", "--json", str(out)])
    table = capsys.readouterr().out
    assert code == 0, table
    data = json.loads(out.read_text())
    rows = {(r["workload"], r["implementation"]): r for r in data["rows"]}
    assert set(rows) == {("exec_true", k) for k in ("exec", "xargs", "parallel")} | \
        {("exec_echo", k) for k in ("exec", "xargs", "parallel")} | \
        {("exec_pipe", k) for k in ("wc", "exec", "exec_32M", "exec_rr", "wc_file",
                                    "exec_file", "exec_file_32M", "exec_file_rr")}
    expected_note = {"exec": None if _exec.batch_exec_available() else "batch exec not available",
                     "parallel": None if _exec.on_path("parallel")
                     else "not installed (apt-get install parallel)",
                     "xargs": None, "wc": None, "wc_file": None}
    for key in ("exec_32M", "exec_rr", "exec_file", "exec_file_32M", "exec_file_rr"):
        expected_note[key] = expected_note["exec"]
    for (workload, key), r in rows.items():
        assert r["error"] is None, r
        assert r["note"] == expected_note[key], r
        if r["note"]:
            assert r["times"] == []
            continue
        assert len(r["times"]) == 1 and r["median"] > 0
        assert r["workers"] == (1 if key in ("wc", "wc_file") else data["settings"]["workers"])
        if workload == "exec_pipe":
            assert r["items"] == r["digest"] > 0  # the lines, counted by wc -l, checked
        else:
            assert r["items"] == 20 and r["items_per_s"] == pytest.approx(20 / r["median"])
        if _memory.available():
            assert 0 <= r["peak_below_bytes"] <= r["peak_bytes"]
    pipe = rows["exec_pipe", "wc"]
    assert pipe["speedup"] == pytest.approx(1.0) and pipe["gbps"] > 0
    targets = [(t["workload"], t["target"]) for t in data["targets"]]
    issue = [t for t in targets if not t[1].startswith("added: ")]
    assert len(issue) == 6 and all(w in EXEC_WORKLOADS for w, _ in targets)
    if not _exec.batch_exec_available():
        assert all(t["met"] is None for t in data["targets"])
    assert "xargs -P" in table and "wc -l alone" in table
    assert "GNU parallel" in data["machine"]["programs"]["parallel"] or \
        not _exec.on_path("parallel")


@needs_batch_exec
@pytest.mark.timeout(120)
def test_batch_exec_rows_run_and_are_judged():
    for workload in EXEC_WORKLOADS:
        row = _runner.measure({"workload": workload, "implementation": "exec", "size": "tiny",
                               "workers": 2}, repeat=1, timeout=60)
        assert row["error"] is None and row["note"] is None, row
        assert len(row["times"]) == 1


@needs_parallel
@pytest.mark.timeout(60)
def test_gnu_parallel_gets_the_echo_command_whole():
    # Without -q, GNU parallel's shell would run `sh -c echo 1`: an empty line per job.
    job = _exec.items_job("echo", {"jobs": 5})
    status, out, err = _exec.run("parallel", job.data, 2)
    assert status == 0, err
    assert sorted(out.split()) == [b"1", b"2", b"3", b"4", b"5"]


def test_a_missing_program_is_a_note_with_its_install_hint(monkeypatch):
    impl = _peers.IMPLEMENTATIONS["parallel"]
    monkeypatch.setitem(_peers.IMPLEMENTATIONS, "parallel",
                        dataclasses.replace(impl, available=lambda: False))
    row = _runner.measure({"workload": "exec_true", "implementation": "parallel",
                           "size": "tiny", "workers": 2}, repeat=1, timeout=30)
    assert row["note"] == "not installed (apt-get install parallel)" and row["times"] == []


@pytest.mark.parametrize("command, result, problem", [
    ("true", (0, b"", b""), None),
    ("true", (1, b"", b"first\nxargs: true: exited with status 255\n"),
     "exit status 1: xargs: true: exited with status 255"),
    ("true", (0, b"x\n", b""), "`true` printed 2 bytes"),
    ("echo", (0, b"3\n1\n2\n", b""), None),
    ("echo", (0, b"3\n1\n\n", b""), "2 numbers printed for 3 items"),
    ("echo", (0, b"3\n1\n1\n", b""), "3 numbers printed for 3 items, or wrong ones"),
    ("echo", (0, b"3\n1\nnope\n", b""), "output is not numbers"),
])
def test_checks_accept_the_right_output_and_reject_a_wrong_one(command, result, problem):
    from batch._bench._workloads import WrongResult
    job = _exec.items_job(command, {"jobs": 3})
    if problem is None:
        assert job.check(result) == (3.0 if command == "true" else 6.0)
    else:
        with pytest.raises(WrongResult, match=problem.replace("`", ".")):
            job.check(result)


def test_the_text_file_is_unlinked_and_its_lines_are_known():
    import tempfile
    def ours():
        return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("batch-bench-")}
    before = ours()
    job = _exec.text_job({"bytes": 1 << 20})
    try:
        assert ours() <= before  # nothing left behind, even if this process is killed
        st = os.fstat(job.data.fd)
        assert st.st_nlink == 0 and st.st_size == job.input_bytes >= (1 << 20) // 2
        os.lseek(job.data.fd, 0, os.SEEK_SET)
        lines = 0
        while chunk := os.read(job.data.fd, 1 << 20):
            lines += chunk.count(b"\n")
        assert lines == job.data.lines == job.items
        from batch._bench._workloads import WrongResult
        assert job.check((0, b"%d\n" % lines, b"")) == lines
        half = lines // 2
        assert job.check((0, b"%d\n%d\n" % (half, lines - half), b"")) == lines  # per block
        with pytest.raises(WrongResult, match="lines counted"):
            job.check((0, b"%d\n" % (lines - 1), b""))
    finally:
        os.close(job.data.fd)


@pytest.mark.timeout(60)
def test_the_pipe_runs_cat_into_one_wc_and_reaps_both():
    job = _exec.text_job({"bytes": 1 << 20})
    try:
        for _ in range(2):  # the file is read from its start every time
            assert job.check(_exec.run("wc", job.data, 1)) == job.data.lines
            assert job.check(_exec.run("wc_file", job.data, 1)) == job.data.lines
    finally:
        os.close(job.data.fd)


@pytest.mark.timeout(30)
@pytest.mark.skipif(not _memory.available(), reason="needs /proc/<pid>/smaps_rollup")
def test_the_sampler_reports_the_tree_below_the_benchmarked_process():
    import subprocess
    import sys
    size = 48 << 20
    ours = b"\x02" * (64 << 20)  # our own memory, which the tree below must not count
    # Whatever else runs below this process (a resource tracker, a cluster's last worker
    # leaving) is there before the program starts too: measured first, then taken off.
    others = _memory.PeakSampler(os.getpid())
    others.sample()
    program = subprocess.Popen(
        [sys.executable, "-c", f"import sys; held = b'1' * {size}; print(flush=True); "
         "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert program.stdout.readline() == b"\n"  # its memory is written
        sampler = _memory.PeakSampler(os.getpid())
        sampler.sample()
        below = sampler.peak_below - others.peak_below
        assert size <= below < size + (32 << 20)  # the program and its interpreter
        assert sampler.peak >= sampler.peak_below + len(ours)
    finally:
        program.stdin.close()
        program.stdout.close()
        program.wait(timeout=10)
    del ours


def _row(workload, key, median, items=2000, **extra):
    return dict(workload=workload, implementation=key, workers=2, median=median, items=items,
                items_per_s=items / median, **extra)


def test_exec_targets_are_ratios_of_the_same_run():
    rows = [_row("exec_true", "exec", 2.5), _row("exec_true", "xargs", 2.0),
            _row("exec_true", "parallel", 12.5),
            _row("exec_pipe", "wc", 3.0), _row("exec_pipe", "exec", 2.0,
                                               peak_below_bytes=150 << 20)]
    got = {(t["workload"], t["target"]): t for t in _targets.judge(rows, 2)}
    vs_xargs = got["exec_true", "batch exec jobs/s vs xargs -P"]
    assert vs_xargs["measured"] == pytest.approx(0.8) and vs_xargs["met"] is True
    vs_parallel = got["exec_true", "batch exec jobs/s vs GNU parallel"]
    assert vs_parallel["measured"] == pytest.approx(5.0) and vs_parallel["met"] is True
    pipe = got["exec_pipe", "batch exec --pipe vs one wc -l"]
    assert pipe["measured"] == pytest.approx(1.5) and pipe["met"] is False
    memory = got["exec_pipe", "batch exec --pipe: peak MiB of its tree"]
    assert memory["measured"] == pytest.approx(150) and memory["met"] is False
    assert memory["required"] == "<= 100"
    assert ("exec_echo", "batch exec jobs/s vs xargs -P") not in got  # not run: not judged
    # batch exec missing: every exec target of the workload is "not measured"
    without = _targets.judge([r for r in rows if r["implementation"] != "exec"], 2)
    assert {t["met"] for t in without} == {None}


def test_the_exec_rows_start_batch_from_its_bytecode():
    # Each row starts `python -m batch` anew: without .pyc files (PYTHONDONTWRITEBYTECODE
    # and a checkout) every start compiled batch again, a cost no installed copy pays.
    import importlib.util

    import batch._exec._inflight as module
    pyc = importlib.util.cache_from_source(module.__file__)
    if os.path.exists(pyc):
        os.unlink(pyc)
    _exec.byte_compiled.cache_clear()
    _exec.items_job("true", {"jobs": 3})
    assert os.path.exists(pyc)
