"""The machine's limits: a process limit (a pids cgroup, RLIMIT_NPROC) and the open-files
limit (RLIMIT_NOFILE) make starting a worker fail; that is one WorkerStartError, never a
bare OSError, and never a leaked descriptor (issue 12, cases 1 and 2)."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import batch
from conftest import open_fds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIDS_V1 = "/sys/fs/cgroup/pids"


def _pids_cgroup_parent() -> str | None:
    """A pids cgroup folder this process may create children in, or None."""
    for parent in (PIDS_V1, "/sys/fs/cgroup"):
        try:
            with open(os.path.join(parent, "cgroup.procs")):
                pass
        except OSError:
            continue
        if parent != PIDS_V1:  # cgroup v2: the pids controller must be delegated
            try:
                with open(os.path.join(parent, "cgroup.subtree_control")) as f:
                    if "pids" not in f.read().split():
                        continue
            except OSError:
                continue
        if os.access(parent, os.W_OK):
            return parent
    return None


def run_limited(code: str, max_pids: int, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run Python `code` with at most `max_pids` processes and threads of its own.

    A pids cgroup where one can be made; else, as root, as the unprivileged uid 65534 under
    RLIMIT_NPROC (which does not bind root); else skip.
    """
    # numpy's BLAS would start its threads at import and count against the limit
    env = {**os.environ, "PYTHONPATH": ROOT, "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    parent = _pids_cgroup_parent()
    if parent is not None:
        group = os.path.join(parent, f"batch-test-{os.getpid()}")
        os.mkdir(group)
        try:
            with open(os.path.join(group, "pids.max"), "w") as f:
                f.write(str(max_pids))

            def join():
                with open(os.path.join(group, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            return subprocess.run([sys.executable, "-c", code], preexec_fn=join, env=env,
                                  capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        finally:
            os.rmdir(group)
    if os.geteuid() != 0:
        pytest.skip("no writable pids cgroup, and RLIMIT_NPROC counts every process of "
                    "this user, so a test cannot set it to a known number")

    def drop():
        os.setgid(65534)
        os.setuid(65534)
        resource.setrlimit(resource.RLIMIT_NPROC, (max_pids, max_pids))
    return subprocess.run([sys.executable, "-c", code], preexec_fn=drop, env=env,
                          capture_output=True, text=True, timeout=timeout, cwd="/")


PROBE = textwrap.dedent("""
    import errno, warnings, numpy as np, batch
    warnings.simplefilter("always")
    try:  # backend named: None would pick threads on a free-threaded build
        out = batch.pmap(lambda x: x + 1, np.arange(1000), workers=4, chunksize=10,
                         backend=BACKEND)
        print("OK", int(sum(out)))
    except OSError as exc:
        print("ERR", type(exc).__name__, isinstance(exc, batch.BatchError),
              errno.errorcode.get(exc.errno), exc.running, "|", exc)
""")


@pytest.mark.timeout(60)
def test_no_process_to_spare_is_one_worker_start_error():
    proc = run_limited(PROBE.replace("BACKEND", "'fork'"), max_pids=1)  # the interpreter itself: not one fork left
    assert proc.returncode == 0, proc.stderr
    word, name, is_batch, code, running, _, message = proc.stdout.split(" ", 6)
    assert (word, name, is_batch, code, running) == ("ERR", "WorkerStartError", "True",
                                                      "EAGAIN", "0"), proc.stdout
    assert "could not start a worker" in message and "0 workers running" in message
    assert "process limit" in message


@pytest.mark.timeout(60)
def test_fewer_processes_than_workers_carries_on_with_those_that_started():
    proc = run_limited(PROBE.replace("BACKEND", "'fork'"), max_pids=3)  # the interpreter and two of the four workers
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["OK", str(sum(range(1, 1001)))], proc.stdout + proc.stderr
    assert "carrying on with 2 worker(s)" in proc.stderr


@pytest.mark.timeout(60)
def test_cli_names_the_limit_and_is_not_a_usage_error(tmp_path):
    code = ("import sys; from batch.cli import main; "
            "sys.exit(main(['run', '-', '-j', '2', '--map', 'count']))")
    # stdin holds the lines: the stream input forks one-shot workers
    proc = run_limited(f"import sys, io; sys.stdin = io.TextIOWrapper(io.BytesIO(b'a\\nbb\\n'));"
                       f"{code}", max_pids=1)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("batch: error: could not start a worker")
    assert "process limit" in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.timeout(60)
def test_open_files_limit_at_every_step_of_a_start_leaks_nothing():
    """Whichever pipe hits RLIMIT_NOFILE (the wake-up pipe, a result pipe, a task pipe),
    the run fails with WorkerStartError or carries on, and no descriptor is left open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    data = np.arange(10_000)
    seen = set()
    holes = []  # fds below the highest one in use: plugged, so the limit counts exactly
    top = max(open_fds())
    while (fd := os.open(os.devnull, os.O_RDONLY)) < top:
        holes.append(fd)
    os.close(fd)
    try:
        for extra in range(14):
            before = open_fds()
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(before) + 1 + extra, hard))
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    got = batch.map_reduce(np.sum, lambda a, b: a + b, data, chunks=8,
                                           workers=4, backend="fork")
                assert got == data.sum()
                seen.add("carried on" if caught else "ran")
            except batch.WorkerStartError as exc:
                assert isinstance(exc, OSError) and exc.errno == errno.EMFILE
                assert "open-files limit" in str(exc)
                seen.add("failed")
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            assert open_fds() - before == set(), f"leaked with {extra} fds to spare"
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        for fd in holes:
            os.close(fd)
    assert seen == {"failed", "carried on", "ran"}, seen


@pytest.mark.timeout(60)
def test_thread_backend_with_no_thread_to_spare_is_one_worker_start_error():
    proc = run_limited(PROBE.replace("BACKEND", "'thread'"),
                       max_pids=1)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ERR WorkerStartError True None 0 | could not start a "
                                  "worker thread"), proc.stdout
