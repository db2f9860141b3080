"""Where batch.Executor is stricter than ProcessPoolExecutor, by design: each case here
hangs, breaks the pool or is refused under the stdlib, and works under batch."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import batch
from batch import _platform
from conftest import alive

# Every Executor here says backend="fork": these are the forked pool's promises, and on a
# free-threaded build backend=None picks threads (a call that SIGKILLs its own process
# would then kill pytest).
pytestmark = [pytest.mark.timeout(30),
              pytest.mark.skipif(not _platform.HAS_FORK, reason="needs os.fork")]


def wait_dead(pids, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.01)
    return [p for p in pids if alive(p)]


# --- nothing needs pickling -------------------------------------------------------------

def test_lambdas_closures_and_local_classes():
    class Box:
        def __init__(self, value):
            self.value = value

    offset = 100
    with batch.Executor(2, backend="fork") as ex:
        assert ex.submit(lambda box: box.value * 2, Box(21)).result(timeout=10) == 42
        assert list(ex.map(lambda b: b.value + offset, [Box(1), Box(2)])) == [101, 102]
        assert ex.submit(threading.Lock).exception(timeout=10) is not None  # only the result
        assert ex.submit(lambda lock: lock.locked(), threading.Lock()).result() is False


class NoPickle(np.ndarray):
    """An array that fails loudly if anything tries to pickle it."""

    def __reduce__(self):
        raise TypeError("this array was pickled")


def test_numpy_arguments_are_never_pickled():
    data = np.arange(1_000_000, dtype=np.float64).view(NoPickle)
    with batch.Executor(2, backend="fork") as ex:
        # The result is made a float: a NoPickle result would itself travel pickled (an
        # array subclass keeps its type on the way back) and fail, as it should.
        total = ex.submit(lambda a: float(np.sum(a)), data).result(timeout=10)
        assert total == float(data.sum())
        rows = data.reshape(1000, 1000)
        sums = list(ex.map(lambda r: float(r.sum()), rows, chunksize=100))
        assert sums == [float(r.sum()) for r in rows]
        ends = list(ex.map(lambda a, b: float(a[0] + b[-1]), rows, rows[::-1], buffersize=3,
                           chunksize=100))
        assert ends == [float(a[0] + b[-1]) for a, b in zip(rows, rows[::-1])]


# --- a worker that dies fails only its own future -------------------------------------------

@pytest.mark.parametrize("how", ["sigkill", "exit"])
def test_a_dead_worker_fails_only_its_future(how):
    def die(x):
        if x == 3:
            if how == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(7)
        time.sleep(0.05)
        return x

    with batch.Executor(2, backend="fork") as ex:
        futures = [ex.submit(die, i) for i in range(8)]
        err = futures[3].exception(timeout=10)
        assert isinstance(err, cf.process.BrokenProcessPool)
        assert isinstance(err, batch.WorkerCrashed) and isinstance(err, batch.BatchError)
        assert err.pid and f"pid {err.pid}" in str(err) and "die(3)" in str(err)
        if how == "sigkill":
            assert err.signal == signal.SIGKILL and "SIGKILL" in str(err)
        else:
            assert err.exitcode == 7 and "status 7" in str(err)
        assert [f.result(timeout=10) for i, f in enumerate(futures) if i != 3] == \
            [0, 1, 2, 4, 5, 6, 7]
        assert ex.submit(pow, 3, 2).result(timeout=10) == 9  # still usable
        with pytest.raises(cf.process.BrokenProcessPool):  # what stdlib code catches
            list(ex.map(die, range(6), chunksize=2))


def test_unpicklable_exception_and_unencodable_result_never_hang():
    class Local(Exception):
        pass

    def raise_local():
        raise Local("from a local class")

    with batch.Executor(2, backend="fork") as ex:
        err = ex.submit(raise_local).exception(timeout=10)
        assert isinstance(err, batch.WorkerError) and "Local" in err.type_name
        assert "from a local class" in str(err) and "raise Local" in err.remote_traceback
        err = ex.submit(threading.Lock).exception(timeout=10)
        assert isinstance(err, batch.ResultError) and "lock" in str(err)
        assert ex.submit(abs, -1).result(timeout=10) == 1


def test_exit_in_a_call_is_the_callers_exception_not_its_exit():
    with batch.Executor(1, backend="fork") as ex:
        err = ex.submit(sys.exit, 3).exception(timeout=10)
    assert type(err) is SystemExit and err.code == 3


# --- timeout= and retries= ----------------------------------------------------------------

def test_timeout_kills_the_call():
    with batch.Executor(2, backend="fork", timeout=0.3) as ex:
        t0 = time.monotonic()
        stuck = ex.submit(lambda: (os.getpid(), time.sleep(60)))
        fine = ex.submit(pow, 2, 5)
        err = stuck.exception(timeout=10)
        assert time.monotonic() - t0 < 3
        assert isinstance(err, batch.TaskTimeout) and "0.3 s" in str(err)
        assert err.pid and not wait_dead([err.pid], 1.0)
        assert fine.result() == 32


def test_retries_run_a_failed_call_again(tmp_path):
    marker = tmp_path / "tried"

    def flaky():
        if not marker.exists():
            marker.write_text("once")
            os._exit(1)
        return "second time"

    with batch.Executor(1, backend="fork", retries=1) as ex:
        assert ex.submit(flaky).result(timeout=10) == "second time"


# --- terminate_workers, kill_workers --------------------------------------------------------

@pytest.mark.parametrize("stop", ["terminate_workers", "kill_workers"])
def test_terminate_stops_running_calls_and_is_idempotent(stop, tmp_path):
    def report_and_sleep(i):
        (tmp_path / str(os.getpid())).write_text("")
        time.sleep(60)

    ex = batch.Executor(2, backend="fork")
    running = [ex.submit(report_and_sleep, i) for i in range(2)]
    queued = ex.submit(abs, 1)
    deadline = time.monotonic() + 10
    while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    pids = [int(p.name) for p in tmp_path.iterdir()]
    t0 = time.monotonic()
    getattr(ex, stop)()
    assert time.monotonic() - t0 < 1.5
    assert not any(alive(p) for p in pids)
    for future in running:
        assert isinstance(future.exception(timeout=1), cf.process.BrokenProcessPool)
    assert queued.cancelled()
    getattr(ex, stop)()
    ex.shutdown()
    with pytest.raises(RuntimeError):
        ex.submit(abs, 1)


# --- Ctrl-C -----------------------------------------------------------------------------------

_INTERRUPTED = textwrap.dedent("""
    import os, sys, time
    import batch

    ex = batch.Executor(2, backend="fork")
    def hang(x):
        time.sleep(60)
    if sys.argv[1] == "result":
        futures = [ex.submit(hang, i) for i in range(4)]
        wait = futures[0].result
    else:
        wait = lambda: list(ex.map(hang, range(8), chunksize=2))
    print("ready", flush=True)
    try:
        wait()
    except KeyboardInterrupt:
        t = time.monotonic()
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            print("children left" if pid == 0 else "zombie left", flush=True)
        except ChildProcessError:
            print("reaped", flush=True)
""")


def _default_signals():
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.parametrize("where", ["result", "map"])
def test_ctrl_c_stops_and_reaps_every_worker_within_a_second(where):
    proc = subprocess.Popen([sys.executable, "-c", _INTERRUPTED, where], stdout=subprocess.PIPE,
                            text=True, preexec_fn=_default_signals)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # the workers are running
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline().strip() == "reaped"
        assert time.monotonic() - t0 < 1.0
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


# --- asyncio ----------------------------------------------------------------------------------

def test_asyncio_run_in_executor():
    async def main(ex):
        loop = asyncio.get_running_loop()
        one = await loop.run_in_executor(ex, pow, 2, 10)
        many = await asyncio.gather(*(loop.run_in_executor(ex, abs, -i) for i in range(10)))
        return one, many

    with batch.Executor(2, backend="fork") as ex:
        assert asyncio.run(main(ex)) == (1024, list(range(10)))


def test_asyncio_default_executor_on_threads():
    async def main():
        loop = asyncio.get_running_loop()
        loop.set_default_executor(batch.Executor(backend="thread"))
        name = await loop.run_in_executor(None, lambda: threading.current_thread().name)
        return name, await asyncio.to_thread(pow, 3, 3)

    name, value = asyncio.run(main())
    assert name.startswith("batch") and value == 27


def test_an_executor_inside_a_call_runs_serially_there():
    def nested(n):
        with batch.Executor(4) as inner:
            return sorted(inner.map(lambda x: (x, os.getpid()), range(n)))

    with batch.Executor(1, backend="fork") as ex:
        pairs = ex.submit(nested, 5).result(timeout=10)
    assert [x for x, _ in pairs] == list(range(5))
    assert len({pid for _, pid in pairs}) == 1 and pairs[0][1] != os.getpid()


def test_the_executor_refuses_work_from_inside_its_own_workers():
    with batch.Executor(1, backend="fork") as ex:
        err = ex.submit(lambda: ex.submit(abs, 1)).exception(timeout=10)
    assert isinstance(err, RuntimeError) and "inside one of its workers" in str(err)


@pytest.mark.parametrize("stop, least, most", [("terminate_workers", 0.45, 1.5),
                                               ("kill_workers", 0.0, 0.4)])
def test_kill_gives_a_sigterm_handler_no_grace(stop, least, most, tmp_path):
    def ignore_sigterm_and_sleep():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        (tmp_path / str(os.getpid())).write_text("")
        time.sleep(60)

    ex = batch.Executor(1, backend="fork")
    future = ex.submit(ignore_sigterm_and_sleep)
    deadline = time.monotonic() + 10
    while not list(tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.01)
    pid = int(next(tmp_path.iterdir()).name)
    t0 = time.monotonic()
    getattr(ex, stop)()
    assert least <= time.monotonic() - t0 < most
    assert not alive(pid)
    assert future.exception(timeout=1).batch_call.startswith("test_kill_gives")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_failure_of_the_dispatcher_itself_fails_the_futures_instead_of_hanging(monkeypatch):
    from batch import _dispatch

    def no_backend(*args, **kwargs):
        raise OSError("out of file descriptors")

    monkeypatch.setattr(_dispatch.backends, "create", no_backend)
    with batch.Executor(2, backend="fork") as ex:
        err = ex.submit(abs, -1).exception(timeout=10)
    assert isinstance(err, cf.process.BrokenProcessPool)
    assert isinstance(err.__cause__, OSError) and "out of file descriptors" in str(err)
