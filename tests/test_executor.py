"""batch.Executor keeps the concurrent.futures Executor contract, case by case.

Written from the documentation of concurrent.futures (Executor, Future, wait,
as_completed, ProcessPoolExecutor); CPython's test_concurrent_futures was the map of
which cases matter. Each case runs on every backend where it means something.
"""

from __future__ import annotations

import concurrent.futures as cf
import gc
import itertools
import multiprocessing
import os
import threading
import time
import weakref

import pytest

import batch
from batch import _platform
from conftest import BACKENDS

pytestmark = pytest.mark.timeout(30)

fork = pytest.mark.skipif("fork" not in BACKENDS, reason="needs os.fork")


def mul(x, y=1):
    return x * y


def slow(x, seconds=0.2):
    time.sleep(seconds)
    return x


# --- submit and futures -------------------------------------------------------------------

def test_submit(backend):
    with batch.Executor(2, backend=backend) as ex:
        future = ex.submit(pow, 2, 8)
        assert isinstance(future, cf.Future)
        assert future.result(timeout=10) == 256
        assert ex.submit(mul, 6, y=7).result(timeout=10) == 42
        # fn is positional-only: a keyword called fn is the call's own
        assert ex.submit(lambda fn: fn + 1, fn=1).result(timeout=10) == 2


def test_submit_many_more_than_workers(backend):
    with batch.Executor(2, backend=backend) as ex:
        futures = [ex.submit(mul, i, 3) for i in range(40)]
        assert [f.result(timeout=20) for f in futures] == [3 * i for i in range(40)]


def test_future_states_and_cancel_of_a_pending_future(backend):
    with batch.Executor(1, backend=backend) as ex:
        started = ex.submit(slow, "a", 0.5)
        queued = ex.submit(slow, "b")
        deadline = time.monotonic() + 5
        while not started.running() and not started.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert started.running()
        assert not started.cancel()  # running: cannot be cancelled
        assert not queued.running() and not queued.done()
        assert queued.cancel() and queued.cancelled() and queued.done()
        with pytest.raises(cf.CancelledError):
            queued.result()
        with pytest.raises(TimeoutError):
            started.result(timeout=0.01)
        assert started.result(timeout=10) == "a"
        assert started.done() and not started.cancelled() and started.exception() is None


def test_done_callbacks_wait_and_as_completed(backend):
    with batch.Executor(2, backend=backend) as ex:
        called = []
        quick = ex.submit(mul, 2, 2)
        late = ex.submit(slow, 5, 0.3)
        quick.add_done_callback(lambda f: called.append(f.result()))
        done, not_done = cf.wait([quick, late], timeout=10, return_when=cf.FIRST_COMPLETED)
        assert quick in done and late in not_done
        assert called == [4]
        bad = ex.submit(mul, None, 2)
        done, not_done = cf.wait([late, bad], timeout=10, return_when=cf.FIRST_EXCEPTION)
        assert bad in done
        done, not_done = cf.wait([quick, late, bad], timeout=10)
        assert not not_done
        futures = [ex.submit(slow, i, 0.02 * (5 - i)) for i in range(5)]
        assert sorted(f.result() for f in cf.as_completed(futures, timeout=10)) == list(range(5))
        with pytest.raises(TimeoutError):
            list(cf.as_completed([ex.submit(slow, 0, 0.3)], timeout=0.05))


def test_exception_is_the_workers_own(backend):
    def fails(x):
        raise KeyError(f"no {x}")

    with batch.Executor(2, backend=backend) as ex:
        future = ex.submit(fails, "thing")
        err = future.exception(timeout=10)
        assert type(err) is KeyError and err.args == ("no thing",)
        with pytest.raises(KeyError):
            future.result()
        if backend == "fork":  # chained as ProcessPoolExecutor chains it
            assert type(err.__cause__).__name__ == "_RemoteTraceback"
            assert "raise KeyError" in str(err.__cause__)
            assert err.batch_pid != os.getpid() and err.batch_call == "test_exception_is_" \
                "the_workers_own.<locals>.fails('thing')"


# --- map -------------------------------------------------------------------------------

@pytest.mark.parametrize("chunksize", [1, 3, 100])
def test_map_one_and_several_iterables(backend, chunksize):
    with batch.Executor(2, backend=backend) as ex:
        assert list(ex.map(mul, range(10), chunksize=chunksize)) == list(range(10))
        # zipped, stopping at the shortest, as map() does
        got = ex.map(mul, range(10), [10] * 7, chunksize=chunksize)
        assert list(got) == [10 * i for i in range(7)]
        assert list(ex.map(mul, [], chunksize=chunksize)) == []
        assert list(ex.map(lambda: 1)) == []


def test_map_is_an_iterator_and_raises_in_place(backend):
    def inverse(x):
        return 1 / x

    with batch.Executor(2, backend=backend) as ex:
        results = ex.map(inverse, [1, 2, 0, 4])
        assert next(results) == 1.0 and next(results) == 0.5
        with pytest.raises(ZeroDivisionError):
            next(results)


def test_map_timeout_counts_from_the_call(backend):
    with batch.Executor(2, backend=backend) as ex:
        t0 = time.monotonic()
        results = ex.map(slow, [1, 2], [0.0, 1.0], timeout=0.3)
        assert next(results) == 1
        with pytest.raises(TimeoutError):
            next(results)
        assert time.monotonic() - t0 < 0.9
        ex.terminate_workers()  # a thread runs on to its end


@fork
def test_chunksize_groups_items_per_worker_round_trip():
    with batch.Executor(2, backend="fork") as ex:  # about processes: threads on 3.13t
        pids = list(ex.map(lambda x: (x, os.getpid()), range(12), chunksize=4))
    assert [x for x, _ in pids] == list(range(12))
    for start in range(0, 12, 4):  # one task, so one process, per chunk
        assert len({pid for _, pid in pids[start:start + 4]}) == 1
    assert os.getpid() not in {pid for _, pid in pids}


def test_chunksize_and_buffersize_are_checked(backend):
    with batch.Executor(1, backend=backend) as ex:
        with pytest.raises(ValueError):
            ex.map(mul, [1], chunksize=0)
        with pytest.raises(ValueError):
            ex.map(mul, [1], buffersize=0)
        with pytest.raises(TypeError):
            ex.map(mul, [1], buffersize=2.0)


@pytest.mark.parametrize("chunksize", [1, 3])
def test_buffersize_reads_an_infinite_iterator_lazily(backend, chunksize):
    pulled = []

    def numbers():
        for i in itertools.count():
            pulled.append(i)
            yield i

    with batch.Executor(2, backend=backend) as ex:
        results = ex.map(mul, numbers(), itertools.repeat(2), buffersize=2,
                         chunksize=chunksize)
        assert len(pulled) == 2 * chunksize  # two chunks submitted before any is asked for
        assert [next(results) for _ in range(7)] == [2 * i for i in range(7)]
        # at most the buffer (and the one refilled before waiting) ahead of what was taken
        assert len(pulled) <= (7 // chunksize + 1 + 2 + 1) * chunksize
        results.close()


class Thing:
    pass


def test_map_results_are_not_kept(backend):
    with batch.Executor(2, backend=backend) as ex:
        for thing in ex.map(lambda i: Thing(), range(4), chunksize=2):
            ref = weakref.ref(thing)
            del thing
            if _platform.FREE_THREADED_BUILD:
                # Made in the dispatcher thread, dropped in this one: biased reference
                # counting (PEP 703) queues it for its owner thread, which a collection's
                # stop-the-world merges. A reference the executor kept would survive it.
                gc.collect()
            assert ref() is None


def test_map_without_iterating_still_runs_everything(backend, tmp_path):
    def touch(name):
        (tmp_path / name).write_text("x")

    with batch.Executor(2, backend=backend) as ex:
        ex.map(touch, ["a", "b", "c"])  # the stdlib idiom: run for the side effects
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


# --- shutdown ----------------------------------------------------------------------------

def test_shutdown_wait_waits_and_then_submit_raises(backend):
    ex = batch.Executor(2, backend=backend)
    futures = [ex.submit(slow, i, 0.1) for i in range(4)]
    ex.shutdown(wait=True)
    assert all(f.done() for f in futures) and [f.result() for f in futures] == [0, 1, 2, 3]
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.submit(mul, 1)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.map(mul, [1])
    ex.shutdown()  # idempotent
    ex.terminate_workers()
    ex.kill_workers()


def test_shutdown_without_wait_returns_at_once_and_work_finishes(backend):
    ex = batch.Executor(1, backend=backend)
    future = ex.submit(slow, "done", 0.4)
    t0 = time.monotonic()
    ex.shutdown(wait=False)
    assert time.monotonic() - t0 < 0.3
    assert future.result(timeout=10) == "done"
    ex.shutdown(wait=True)  # reaps what is left, for the leak check


def test_shutdown_cancel_futures(backend):
    ex = batch.Executor(1, backend=backend)
    running = ex.submit(slow, "r", 0.4)
    while not running.running():
        time.sleep(0.01)
    queued = [ex.submit(slow, i) for i in range(5)]
    ex.shutdown(wait=True, cancel_futures=True)
    assert running.result() == "r"
    assert all(f.cancelled() for f in queued)


def test_context_manager_waits(backend):
    with batch.Executor(2, backend=backend) as ex:
        future = ex.submit(slow, 1, 0.2)
    assert future.done() and future.result() == 1


# --- the constructor -------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, -1])
def test_max_workers_must_be_positive(backend, n):
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        batch.Executor(n, backend=backend)


def test_mp_context_fork_only(backend):
    with pytest.raises(ValueError, match="forks"):
        batch.Executor(mp_context=multiprocessing.get_context("spawn"), backend=backend)
    if "fork" in BACKENDS:
        batch.Executor(mp_context=multiprocessing.get_context("fork"), backend=backend).shutdown()


def _set_flag(value):
    global _FLAG
    _FLAG = value


def _flag(_):
    return _FLAG


def test_initializer(backend):
    with batch.Executor(2, backend=backend, initializer=_set_flag, initargs=("set",)) as ex:
        assert list(ex.map(_flag, range(4))) == ["set"] * 4


def _bad_initializer():
    raise OSError("no licence")


def test_failing_initializer_breaks_the_executor(backend):
    with batch.Executor(1, backend=backend, initializer=_bad_initializer) as ex:
        future = ex.submit(mul, 1)
        with pytest.raises(cf.BrokenExecutor):
            future.result(timeout=10)
        if backend != "thread":
            assert "no licence" in str(future.exception())
            assert isinstance(future.exception().__cause__, OSError)
        with pytest.raises(cf.BrokenExecutor):  # broken for good, as the stdlib's
            ex.submit(mul, 1)


@fork
def test_max_tasks_per_child():
    with batch.Executor(2, backend="fork", max_tasks_per_child=1) as ex:
        pids = [f.result(timeout=10) for f in [ex.submit(os.getpid) for _ in range(6)]]
        pids += list(ex.map(lambda _: os.getpid(), range(6), chunksize=2))
    assert len(set(pids[:6])) == 6 and len(set(pids[6:])) == 3
    with pytest.raises(ValueError, match=">= 1"):
        batch.Executor(max_tasks_per_child=0)
    with pytest.raises(TypeError, match="integer"):
        batch.Executor(max_tasks_per_child=1.5)


class _Owner:
    def method(self):
        return 7


def test_no_stale_reference_to_a_finished_call(backend):
    with batch.Executor(1, backend=backend) as ex:
        owner = _Owner()
        ref = weakref.ref(owner)
        assert ex.submit(owner.method).result(timeout=10) == 7
        del owner
        deadline = time.monotonic() + 5
        while ref() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ref() is None


def test_thread_backend_is_a_thread_pool_executor():
    ex = batch.Executor(backend="thread")
    try:
        assert isinstance(ex, cf.ThreadPoolExecutor) and isinstance(ex, batch.Executor)
        assert ex.submit(threading.current_thread).result().name.startswith("batch")
    finally:
        ex.shutdown()
    with pytest.raises(ValueError, match="thread"):
        batch.Executor(backend="thread", timeout=1)


def test_an_executor_dropped_without_shutdown_finishes_and_reaps(backend):
    import gc

    ex = batch.Executor(2, backend=backend)
    futures = [ex.submit(slow, i, 0.1) for i in range(3)]
    del ex
    gc.collect()
    assert [f.result(timeout=10) for f in futures] == [0, 1, 2]
    deadline = time.monotonic() + 5
    while any(t.name.startswith("batch") for t in threading.enumerate()) and \
            time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.name.startswith("batch") for t in threading.enumerate())


def test_the_program_ends_when_submitted_work_has(tmp_path):
    import subprocess
    import sys

    script = ("import time, batch\n"
              "ex = batch.Executor(2)\n"
              f"ex.submit(lambda: (time.sleep(0.3), open({str(tmp_path / 'done')!r}, 'w')))\n")
    done = subprocess.run([sys.executable, "-c", script], check=True, timeout=20,
                          capture_output=True, text=True)
    if (3, 12, 0) <= sys.version_info[:3] < (3, 12, 3):  # no fork at exit: gh-113964
        assert "could not start" in done.stderr and "gh-113964" in done.stderr
    else:
        assert (tmp_path / "done").exists(), done.stderr
