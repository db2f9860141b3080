"""Ctrl-C, SIGTERM and SIGKILL: every worker stopped, handlers restored, nothing orphaned.

Subprocesses are started with SIGINT and SIGTERM reset to their defaults: a background
job inherits SIGINT ignored, and a test that interrupts such a process proves nothing.
"""

from __future__ import annotations

import operator
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import batch
from batch import _platform
from conftest import alive

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(not _platform.HAS_FORK, reason="needs os.fork")]

ROOT = Path(__file__).resolve().parent.parent


def wait_dead(pids, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return []
        time.sleep(0.02)
    return [p for p in pids if alive(p)]


def default_signals():
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


# --- SIGINT inside this process -------------------------------------------------------

def _interrupting(backend):
    """A mapped function: item 0 sends SIGINT to the coordinator, the rest get stuck."""
    def f(x):
        if x == 0:
            time.sleep(0.2)
            target = os.getppid() if backend == "fork" else os.getpid()
            os.kill(target, signal.SIGINT)
        time.sleep(30 if backend == "fork" else 1)
        return x
    return f


CALLS = {
    "pmap": lambda f, b: batch.pmap(f, range(4), backend=b, workers=2, chunksize=1),
    "imap": lambda f, b: list(batch.imap(f, range(4), backend=b, workers=2, chunksize=1)),
    "map_reduce": lambda f, b: batch.map_reduce(lambda c: [f(x) for x in c], operator.add,
                                                list(range(4)), backend=b, workers=2, chunks=4),
    "Pool.map": lambda f, b: batch.Pool(2, backend=b).map(f, range(4), chunksize=1),
}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("kind", ["fork", "thread", "serial"])
def test_sigint_mid_run(call, kind):
    seen = []
    orig = lambda signum, frame: seen.append(signum)  # noqa: E731 - a handler that does not raise
    previous = signal.signal(signal.SIGINT, orig)
    try:
        if kind != "fork":
            signal.signal(signal.SIGINT, signal.default_int_handler)
            orig = signal.default_int_handler
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            CALLS[call](_interrupting(kind), kind)
        elapsed = time.monotonic() - t0
        assert signal.getsignal(signal.SIGINT) is orig
    finally:
        signal.signal(signal.SIGINT, previous)
    assert elapsed < 0.2 + 2.0 + (1.0 if kind != "fork" else 0)
    assert seen == []  # our guard took the signal; the caller's handler saw nothing


def test_sigint_ignored_by_the_caller_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        def f(x):
            os.kill(os.getppid(), signal.SIGINT)
            return x
        assert batch.pmap(f, [1, 2], backend="fork", chunksize=1) == [1, 2]
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_from_a_thread_no_handler_is_installed_and_cleanup_happens(recwarn):
    handler_during_run = []
    errors = []
    started = threading.Event()

    def f(x):
        if x == 1:
            raise LookupError("from a thread")
        time.sleep(30)

    def run():
        try:
            batch.pmap(f, [0, 1], backend="fork", workers=2, chunksize=1)
        except LookupError as exc:
            errors.append(exc)

    before = signal.getsignal(signal.SIGINT)
    t = threading.Thread(target=run)
    t.start()
    started.wait(0.3)
    handler_during_run.append(signal.getsignal(signal.SIGINT))
    t.join(20)
    assert not t.is_alive()
    assert handler_during_run == [before]
    assert len(errors) == 1 and errors[0].chunk == 1


# --- signals to a whole process -------------------------------------------------------

SCRIPT = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {root!r})
    import batch

    def stuck(x):
        with open(os.path.join({tmp!r}, f"{{os.getpid()}}.pid"), "w") as f:
            f.write("x")
        time.sleep(60)

    # fork: the tests signal and count worker processes (on a free-threaded build the
    # default runs threads).
    batch.pmap(stuck, range(4), workers=2, chunksize=1, backend="fork")
""")


def start(tmp_path, **kw):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT.format(root=str(ROOT), tmp=str(tmp_path)))
    proc = subprocess.Popen([sys.executable, str(script)], preexec_fn=default_signals,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    deadline = time.monotonic() + 20
    while len(list(tmp_path.glob("*.pid"))) < 2:
        assert time.monotonic() < deadline, "workers never started"
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    return proc, [int(p.stem) for p in tmp_path.glob("*.pid")]


def test_ctrl_c_to_the_process_group(tmp_path):
    proc, workers = start(tmp_path, start_new_session=True)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    proc.wait(timeout=10)
    elapsed = time.monotonic() - t0
    proc.stderr.close()
    assert elapsed < 5
    assert proc.returncode in (-signal.SIGINT, 130, 1)
    assert wait_dead(workers, 2) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_coordinator_killed_leaves_no_worker(tmp_path, sig):
    """SIGTERM's default action and SIGKILL both end the coordinator with no cleanup of
    its own: PR_SET_PDEATHSIG (or EPIPE elsewhere) must take the workers down."""
    proc, workers = start(tmp_path)
    proc.send_signal(sig)
    proc.wait(timeout=10)
    proc.stderr.close()
    assert wait_dead(workers, 2) == []


def test_ctrl_c_to_batch_run_exits_130_with_no_orphan(tmp_path):
    (tmp_path / "stuck.py").write_text(textwrap.dedent(f"""
        import os, time

        def record_and_sleep(chunk):
            open(os.path.join({str(tmp_path)!r}, f"{{os.getpid()}}.pid"), "w").close()
            time.sleep(60)
            return 0
    """))
    np.save(tmp_path / "x.npy", np.arange(1000.0))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "batch", "run", "x.npy", "--map", "stuck.py:record_and_sleep",
         "--reduce", "none", "--chunks", "4", "--workers", "2", "--backend", "fork"],
        cwd=tmp_path, env=env, preexec_fn=default_signals, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while len(list(tmp_path.glob("*.pid"))) < 2:
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    workers = [int(p.stem) for p in tmp_path.glob("*.pid")]
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole foreground group
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 5
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().startswith("batch: error: interrupted")
    assert wait_dead(workers, 1) == []
