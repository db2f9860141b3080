"""The hostile catalogue: every way a chunk can fail is named, nothing hangs or leaks.

In the spirit of CPython's test_concurrent_futures/test_deadlock.py. Each case runs on the
fork backend and, where the failure can happen there, on thread and serial too.
"""

from __future__ import annotations

import builtins
import ctypes
import operator
import os
import signal
import subprocess
import sys
import threading
import time
import traceback

import numpy as np
import pytest

import batch
from batch import _platform, _remote, _wire
from conftest import alive

fork_only = pytest.mark.skipif(not _platform.HAS_FORK, reason="needs os.fork")
pytestmark = pytest.mark.timeout(60)


class Unrebuildable(Exception):
    """Pickles, but unpickling calls __init__ with one argument and fails."""

    def __init__(self, a, b):
        super().__init__(f"{a} and {b}")


# --- the mapped function raises ---------------------------------------------------------

def test_raise_is_worker_error_and_original_type(backend):
    def f(x):
        if x == 5:
            raise ValueError(f"bad item {x}")
        return x

    with pytest.raises(ValueError, match="bad item 5") as info:
        batch.pmap(f, range(10), backend=backend, chunksize=3, workers=2)
    err = info.value
    assert isinstance(err, batch.WorkerError) and isinstance(err, batch.BatchError)
    assert err.chunk == 1 and err.items == range(3, 6)
    assert "chunk 1 (items 3-5)" in str(err)
    assert "raise ValueError" in err.remote_traceback
    assert type(err.__cause__) is ValueError and err.__cause__.args == ("bad item 5",)


def test_memory_error_is_still_a_memory_error(backend):
    def f(x):
        raise MemoryError(f"no room for item {x}")

    with pytest.raises(MemoryError, match="no room for item 0") as info:
        batch.pmap(f, [0], backend=backend, workers=1)
    assert isinstance(info.value, batch.WorkerError) and info.value.chunk == 0


_ARGS = {  # built-in types whose constructor needs more than a message
    UnicodeDecodeError: ("utf-8", b"\xff", 0, 1, "invalid start byte"),
    UnicodeEncodeError: ("ascii", "\xff", 0, 1, "ordinal not in range"),
    UnicodeTranslateError: ("\xff", 0, 1, "untranslatable"),
    ExceptionGroup: ("several", [ValueError("one")]),
}
BUILTIN_ERRORS = sorted((c for c in vars(builtins).values()
                         if isinstance(c, type) and issubclass(c, Exception)),
                        key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", BUILTIN_ERRORS, ids=lambda c: c.__name__)
def test_every_builtin_exception_type_survives_the_trip(cls):
    """Every built-in type, through the wire's description and back: the rebuilt error
    is the original type too (MemoryError's __new__ used to refuse the mixin)."""
    original = cls(*_ARGS.get(cls, ("boom",)))
    try:
        raise original
    except Exception as exc:
        info = _remote.describe_exception(exc, traceback.format_exc())
    err = _remote.worker_error(info, chunk=2, items=range(4, 6))
    assert isinstance(err, cls) and isinstance(err, batch.WorkerError)
    assert repr(err.args) == repr(original.args) and err.chunk == 2


def test_exception_that_cannot_be_rebuilt(backend):
    def f(x):
        raise Unrebuildable(1, 2)

    with pytest.raises(batch.WorkerError) as info:
        batch.pmap(f, [0], backend=backend)
    err = info.value
    assert "Unrebuildable" in err.type_name and "1 and 2" in str(err)
    assert "Unrebuildable(1, 2)" in err.remote_traceback


def test_exception_with_unencodable_args(backend):
    def f(x):
        raise RuntimeError("holding a lock", threading.Lock())

    with pytest.raises(batch.WorkerError, match="RuntimeError") as info:
        batch.pmap(f, [0], backend=backend)
    assert "holding a lock" in str(info.value)


def test_sys_exit_never_exits_the_caller(backend):
    with pytest.raises(batch.WorkerError, match="SystemExit") as info:
        batch.pmap(lambda x: sys.exit(2), [0, 1], backend=backend)
    assert not isinstance(info.value, SystemExit)
    assert isinstance(info.value.__cause__, SystemExit) and info.value.__cause__.code == 2


def test_fail_fast_stops_the_other_workers(backend):
    if backend == "serial":
        pytest.skip("serial runs one chunk at a time")
    pid_file_dir = os.environ.get("TMPDIR", "/tmp")

    def f(x):
        if x == 0:
            time.sleep(0.2)
            raise KeyError(x)
        time.sleep(2 if backend == "thread" else 30)
        return x

    t0 = time.monotonic()
    with pytest.raises(KeyError):
        batch.pmap(f, [0, 1], backend=backend, chunksize=1, workers=2)
    assert time.monotonic() - t0 < (5 if backend == "fork" else 10), pid_file_dir


def test_imap_keeps_what_it_delivered(backend):
    def f(x):
        if x == 6:
            raise ArithmeticError("late failure")
        return x * 10

    got = []
    with pytest.raises(ArithmeticError):
        for value in batch.imap(f, range(10), backend=backend, chunksize=1, workers=2):
            got.append(value)
    assert got == [0, 10, 20, 30, 40, 50]


# --- the worker dies ------------------------------------------------------------------

@fork_only
@pytest.mark.parametrize("how,sig,code", [
    ("sigkill", signal.SIGKILL, None),
    ("segfault", signal.SIGSEGV, None),
    ("exit3", None, 3),
    ("exit0", None, 0),
])
def test_worker_death_is_named(how, sig, code):
    def f(x):
        if x == 1:
            if how == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif how == "segfault":
                ctypes.string_at(0)
            else:
                os._exit(code)
        return x

    with pytest.raises(batch.WorkerCrashed) as info:
        batch.pmap(f, range(4), backend="fork", chunksize=1, workers=2)
    err = info.value
    assert err.chunk == 1 and err.items == range(1, 2)
    assert err.signal == (int(sig) if sig else None) and err.exitcode == code
    assert err.pid and not alive(err.pid)
    assert err.maxrss and err.maxrss > 1 << 20
    if how == "sigkill":
        assert "SIGKILL" in str(err) and "out-of-memory" in str(err)
    if how == "segfault":
        assert "SIGSEGV" in str(err)
    if how.startswith("exit"):
        assert f"exited with status {code}" in str(err)


@fork_only
def test_worker_killed_from_outside_mid_task(tmp_path):
    def f(x):
        (tmp_path / f"{x}.pid").write_text(str(os.getpid()))
        time.sleep(30)

    it = batch.imap(f, [0], backend="fork")
    killer = subprocess.Popen([sys.executable, "-c", f"""
import os, signal, time, pathlib
p = pathlib.Path({str(tmp_path)!r}) / "0.pid"
while not p.exists() or not p.read_text(): time.sleep(0.01)
os.kill(int(p.read_text()), signal.SIGKILL)
"""])
    try:
        with pytest.raises(batch.WorkerCrashed, match="SIGKILL"):
            next(it)
    finally:
        killer.wait(timeout=30)


@fork_only
def test_200_mb_result_cut_by_sigkill_mid_write():
    def f(x):
        def half_then_die(fd, buffers):
            buffers = [memoryview(b).cast("B") for b in buffers]
            buffers[-1] = buffers[-1][:len(buffers[-1]) // 2]
            real_write_all(fd, buffers)
            os.kill(os.getpid(), signal.SIGKILL)

        real_write_all = _wire.write_all
        _wire.write_all = half_then_die  # only in this forked worker
        return np.ones(200 * 1024 * 1024 // 8)

    with pytest.raises(batch.WorkerCrashed, match="SIGKILL") as info:
        batch.pmap(f, [0], backend="fork")
    assert "after sending" in str(info.value)


@fork_only
def test_garbled_bytes_on_the_pipe_are_a_result_error():
    def f(x):
        import fcntl
        for fd in map(int, os.listdir("/proc/self/fd")):
            try:
                if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:") and \
                        fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
                    os.write(fd, b"this is not a batch message at all.......")
            except OSError:
                pass
        os._exit(0)

    with pytest.raises(batch.ResultError, match="garbled"):
        batch.pmap(f, [0], backend="fork")


@fork_only
def test_unencodable_result_is_a_result_error():
    with pytest.raises(batch.ResultError, match=r"chunk 0.*lock"):
        batch.pmap(lambda x: threading.Lock(), [0], backend="fork")


# --- timeouts and retries -------------------------------------------------------------

@fork_only
def test_timeout_stops_a_stuck_chunk_and_its_children(tmp_path):
    def f(x):
        if x == 1:
            child = subprocess.Popen(["sleep", "60"])
            (tmp_path / "grandchild").write_text(str(child.pid))
            time.sleep(60)
        return x

    t0 = time.monotonic()
    with pytest.raises(batch.TaskTimeout) as info:
        batch.pmap(f, range(3), backend="fork", chunksize=1, timeout=1.0)
    assert time.monotonic() - t0 < 5
    err = info.value
    assert err.chunk == 1 and err.timeout == 1.0 and "1 s timeout" in str(err)
    assert not alive(err.pid)
    grandchild = int((tmp_path / "grandchild").read_text())
    deadline = time.monotonic() + 3
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(grandchild)


@fork_only
def test_timeout_kills_a_worker_that_ignores_sigterm():
    def f(x):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(60)

    t0 = time.monotonic()
    with pytest.raises(batch.TaskTimeout):
        batch.pmap(f, [0], backend="fork", timeout=0.3)
    assert time.monotonic() - t0 < 3


@pytest.mark.parametrize("kind", ["thread", "serial"])
def test_timeout_on_backends_that_cannot_stop_a_chunk(kind):
    with pytest.raises(batch.TaskTimeout) as info:
        batch.pmap(lambda x: time.sleep(0.6), [0], backend=kind, timeout=0.2)
    assert info.value.chunk == 0


def test_retries_recover_from_a_one_off_exception(backend, tmp_path):
    def f(x):
        marker = tmp_path / f"tried-{x}"
        if x == 2 and not marker.exists():
            marker.write_text("once")
            raise ConnectionError("flaky")
        return x

    assert batch.pmap(f, range(5), backend=backend, chunksize=1, retries=1) == list(range(5))
    with pytest.raises(ConnectionError):
        (tmp_path / "tried-2").unlink()
        batch.pmap(f, range(5), backend=backend, chunksize=1, retries=0)


@fork_only
def test_retries_recover_from_a_one_off_crash(tmp_path):
    def f(x):
        marker = tmp_path / f"crashed-{x}"
        if x == 1 and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return os.getpid()

    pids = batch.pmap(f, range(3), backend="fork", chunksize=1, retries=2)
    crashed = int((tmp_path / "crashed-1").read_text())
    assert pids[1] != crashed and not alive(crashed)  # the retry ran in a fresh worker


@fork_only
def test_retries_spent_surface_the_last_error():
    calls = []

    def f(x):
        os._exit(7)

    with pytest.raises(batch.WorkerCrashed, match="status 7"):
        batch.pmap(f, [0], backend="fork", retries=2)
    assert calls == []


# --- no leaks, whatever happened --------------------------------------------------------

@fork_only
@pytest.mark.timeout(240)
def test_1000_failing_and_succeeding_maps_leave_nothing():
    from conftest import open_fds

    before = open_fds()
    for i in range(1000):
        if i % 2:
            with pytest.raises(ZeroDivisionError):
                batch.pmap(lambda x: 1 / x, [1, 0], backend="fork", chunksize=1)
        else:
            assert batch.map_reduce(sum, operator.add, [i, 1], backend="fork") == i + 1
    assert len(open_fds() - before) <= 1  # listdir's own fd
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


@fork_only
def test_forking_with_threads_alive_warns_once(monkeypatch):
    from batch.backends import _forking

    monkeypatch.setattr(_forking, "_warned_threads", False)
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        with pytest.warns(RuntimeWarning, match="other thread"):
            batch.pmap(abs, [1, 2], backend="fork")
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            batch.pmap(abs, [1, 2], backend="fork")
    finally:
        stop.set()
        t.join()
