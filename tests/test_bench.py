"""The benchmark harness (batch bench, benchmarks/): well-formed output, never a speed."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from batch._bench import _memory, _peers, _runner, _workloads, command

# The exec workloads run programs, not batch's backends: tests/test_bench_exec.py has them.
CORE_WORKLOADS = tuple(n for n in command.WORKLOAD_NAMES if not n.startswith("exec_"))
ALL_WORKLOADS = ",".join(CORE_WORKLOADS)


@pytest.mark.timeout(90)
def test_tiny_run_writes_a_well_formed_table_json_and_markdown(tmp_path, capsys):
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    code = command.main(["--size", "tiny", "--only", ALL_WORKLOADS, "--implementations",
                         "serial,fork,thread", "--repeat", "2", "--no-progress",
                         "--json", str(out_json), "--markdown", str(out_md)])
    table = capsys.readouterr().out
    assert code == 0, table

    data = json.loads(out_json.read_text())
    assert data["machine"]["usable_cpus"] >= 1 and data["machine"]["cpu"]
    rows = data["rows"]
    assert {r["workload"] for r in rows} == set(CORE_WORKLOADS)
    for r in rows:
        assert r["error"] is None, r
        assert len(r["times"]) == 2
        assert r["min"] <= r["median"] <= r["max"]
        assert r["items_per_s"] == pytest.approx(r["items"] / r["median"])
    serial = {r["workload"]: r for r in rows if r["implementation"] == "serial"}
    assert all(r["speedup"] == pytest.approx(1.0) for r in serial.values())
    fork = next(r for r in rows if r["workload"] == "gil_bound" and r["implementation"] == "fork")
    assert fork["speedup"] == pytest.approx(serial["gil_bound"]["median"] / fork["median"])
    # Every implementation computed the same answer as serial (each was checked in its
    # own process against the closed form already; this catches a harness mix-up).
    for r in rows:
        if r["workload"] in serial:
            assert r["digest"] == pytest.approx(serial[r["workload"]]["digest"], rel=1e-9)
    # scaling ran at every worker count up to the default.
    workers = data["settings"]["workers"]
    assert sorted({r["workers"] for r in rows if r["workload"] == "scaling"}) == \
        list(range(1, workers + 1))
    if _memory.available():
        big = next(r for r in rows
                   if r["workload"] == "big_input" and r["implementation"] == "fork")
        assert big["peak_bytes"] >= big["input_bytes"]  # the input itself is in the tree
    for t in data["targets"]:
        assert t["met"] in (True, False, None) and t["required"].startswith((">=", "<="))

    assert "workload" in table.splitlines()[3] and "median s" in table
    for label in ("batch fork", "batch thread", "batch serial", "gil_bound", "big_results"):
        assert label in table
    md = out_md.read_text()
    assert "| workload | implementation |" in md and "## Targets" in md
    # a tiny run's inputs are too small for the targets to grade anything
    assert "indicative only" in table and "indicative only" in md

    if _has("matplotlib"):  # an optional extra: the chart is tested where it is installed
        from batch._bench import _report
        png = tmp_path / "chart.png"
        _report.plot(data, str(png))
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_chart_draws_only_the_panels_a_run_has_rows_for():
    from batch._bench import _report

    def row(workload, **kw):
        return {"workload": workload, "median": 0.1, "speedup": 1.5, **kw}

    every = [row("gil_bound"), row("startup", speedup=None), row("scaling", workers=2)]
    assert _report.panels(every) == ["speedup", "startup", "scaling"]
    assert _report.panels(every[:2]) == ["speedup", "startup"]  # --only without scaling
    assert _report.panels([row("scaling", workers=1)]) == ["scaling"]
    assert _report.panels([row("pipe", speedup=None)]) == ["speedup"]  # never no panel


def _has(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def test_a_missing_peer_is_skipped_with_an_install_hint(monkeypatch):
    monkeypatch.setattr(_peers.Implementation, "installed", lambda self: self.key != "mpire")
    row = _runner.measure({"workload": "tiny_tasks", "implementation": "mpire", "size": "tiny",
                           "workers": 2}, repeat=2, timeout=30)
    assert row["note"] == "not installed (pip install mpire)"
    assert row["times"] == [] and row["error"] is None


@pytest.mark.timeout(60)
def test_a_failing_measurement_is_reported_not_raised():
    # 'fork' cannot run the raw pipe measurement: the child reports the error.
    row = _runner.measure({"workload": "pipe", "implementation": "fork", "size": "tiny",
                           "workers": 2}, repeat=1, timeout=30)
    assert row["error"] == "TypeError: 'fork' cannot run a raw measurement (shape 'call')"
    assert row["times"] == []


@pytest.mark.parametrize("name, params, wrong", [
    ("tiny_tasks", {"items": 50}, lambda r: r[:-1] + [0]),
    ("gil_bound", {"items": 3}, lambda r: [r[0] + 1] + r[1:]),
    ("big_results", {"chunks": 2}, lambda r: [r[1], r[0]]),
])
def test_checks_accept_the_right_answer_and_reject_a_wrong_one(name, params, wrong):
    job = _workloads.WORKLOADS[name].build(params)
    right = [job.fn(x) for x in job.data]
    job.check(right)
    with pytest.raises(_workloads.WrongResult):
        job.check(wrong(right))


def test_map_reduce_checks_use_the_closed_form():
    job = _workloads.WORKLOADS["big_input"].build({"bytes": 1 << 20})
    exact = float(np.sqrt(job.data).sum())
    assert job.check(exact) == exact
    with pytest.raises(_workloads.WrongResult):
        job.check(exact * (1 + 1e-6))
    job = _workloads.WORKLOADS["numpy_gil_release"].build({"blocks": 3, "side": 8})
    job.check(job.fn(job.data))
    with pytest.raises(_workloads.WrongResult):
        job.check(job.fn(job.data[:2]))


@pytest.mark.timeout(30)
@pytest.mark.skipif(not _memory.available(), reason="needs /proc/<pid>/smaps_rollup")
def test_memory_of_a_tree_counts_copy_on_write_pages_once():
    size = 64 << 20
    held = np.ones(size // 8)  # touched: resident in this process
    sampler = _memory.PeakSampler(os.getpid())
    before = sampler.sample()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(w)
            os.read(r, 1)  # wait until measured
        finally:
            os._exit(0)
    os.close(r)
    try:
        with open(f"/proc/{pid}/status") as f:  # the child has all of it resident...
            rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))
        assert rss > size
        after = sampler.sample()
        assert pid in _memory.tree(os.getpid())
        assert after - before < size // 4  # ...yet the tree's PSS did not double
    finally:
        os.close(w)
        os.waitpid(pid, 0)
    del held


def test_bad_arguments_fail_in_one_line_before_running(capsys, tmp_path):
    assert command.main(["--only", "gil_bound,nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("batch: error: unknown workload nope") and err.count("\n") == 1
    assert command.main(["--json", str(tmp_path / "missing" / "x.json")]) == 2
    assert "folder does not exist" in capsys.readouterr().err
    assert command.main(["--repeat", "0"]) == 2


def test_command_names_match_the_harness():
    # command.py keeps its own lists so that importing it loads no numpy.
    assert command.WORKLOAD_NAMES == tuple(_workloads.WORKLOADS)
    assert set(command.IMPLEMENTATION_NAMES) == set(_peers.DEFAULT)


def test_importing_the_command_loads_no_peer_and_no_matplotlib():
    import subprocess
    import sys
    code = ("import sys, batch._bench.command; print(sorted(m for m in "
            "('matplotlib', 'joblib', 'mpire', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.timeout(90)
def test_several_interpreters_run_side_by_side(tmp_path, capsys):
    import sys
    out_json = tmp_path / "bench.json"
    code = command.main(["--size", "tiny", "--only", "gil_bound,tiny_tasks",
                         "--implementations", "serial,thread,mpire", "--repeat", "1",
                         "--no-progress", "--python", sys.executable, "--python",
                         sys.executable, "--json", str(out_json)])
    table = capsys.readouterr().out
    assert code == 0, table
    data = json.loads(out_json.read_text())
    first, second = (py["label"] for py in data["machine"]["interpreters"])
    assert second == f"{first}#2"  # the same interpreter twice: told apart
    rows = data["rows"]
    # Every measurement on both, one after the other, each in its own interpreter.
    assert [r["python"] for r in rows] == [first, second] * (len(rows) // 2)
    assert all(r["executable"] == sys.executable for r in rows)
    for r in rows:
        if r["implementation"] == "mpire":  # what the interpreter has decides the skip
            assert (r["note"] is None) == bool(_has("mpire"))
            continue
        assert r["error"] is None and r["digest"], r
        assert r["speedup"] == pytest.approx(
            next(s["median"] for s in rows if s["implementation"] == "serial" and
                 s["workload"] == r["workload"] and s["python"] == r["python"]) / r["median"])
        assert r["vs_first"] == pytest.approx(
            next(s["median"] for s in rows if s["implementation"] == "serial" and
                 s["workload"] == r["workload"] and s["python"] == first) / r["median"])
    assert {t["python"] for t in data["targets"]} == {first, second}
    header = table.splitlines()
    assert header[1].startswith("interpreters: ") and f"{first} (" in header[1]
    assert "python" in header[4] and f"vs {first} serial" in header[4]


def test_an_interpreter_that_cannot_run_the_benchmarks_is_refused(capsys, tmp_path):
    assert command.main(["--python", str(tmp_path / "nopython")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("batch: error: --python cannot run") and err.count("\n") == 1
    venv = tmp_path / "bare"  # a Python without numpy: refused before any measurement
    import subprocess
    import sys
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    assert command.main(["--python", str(venv / "bin" / "python")]) == 2
    assert "cannot import numpy, msgpack there" in capsys.readouterr().err
