"""Free threading (PEP 703): what backend=None picks, and the thread backend under load.

The stress tests run on every interpreter; they matter on a free-threaded build
(python3.13t), where the threads of one run, and the runs of several caller threads,
really execute batch's code at the same time. Run them there with
`python -m batch._dev.test_on /opt/python3.13t/bin/python3.13t -- tests/test_free_threading.py`.
"""

from __future__ import annotations

import operator
import os
import threading
import time

import pytest

import batch
from batch import _platform, backends

FREE_THREADED = _platform.FREE_THREADED_BUILD and not _platform.gil_enabled()


def _pid(_):
    return os.getpid()


def spin_square(x: int) -> int:
    total = 0
    for i in range(200):  # long enough for the threads of a run to overlap
        total += i
    return x * x + total - 19900


def _batch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("batch")]


def _no_batch_threads_within(seconds: float) -> list[threading.Thread]:
    deadline = time.monotonic() + seconds
    while _batch_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    return _batch_threads()


@pytest.mark.parametrize("build, gil, timeout, expected", [
    (False, True, None, "fork"),
    (True, False, None, "thread"),
    (True, False, 5.0, "fork"),   # only a process can be stopped at its timeout
    (True, True, None, "fork"),   # an extension module turned the GIL back on
])
def test_default_backend_follows_the_interpreter(monkeypatch, build, gil, timeout, expected):
    monkeypatch.setattr(_platform, "FREE_THREADED_BUILD", build)
    monkeypatch.setattr(_platform, "gil_enabled", lambda: gil)
    name, why = backends.default(timeout=timeout)
    assert name == expected and why
    assert backends.resolve(None, timeout=timeout) == expected
    assert backends.resolve("fork", timeout=timeout) == "fork"  # asked for: never changed


@pytest.mark.timeout(60)
def test_a_pool_decides_for_each_call(monkeypatch):
    monkeypatch.setattr(_platform, "FREE_THREADED_BUILD", True)
    monkeypatch.setattr(_platform, "gil_enabled", lambda: False)
    with batch.Pool(workers=2) as pool:
        assert pool.backend == "thread"
        assert set(pool.map(_pid, range(8))) == {os.getpid()}        # threads
        assert os.getpid() not in pool.map(_pid, range(8), timeout=30)  # forked workers
        monkeypatch.setattr(_platform, "gil_enabled", lambda: True)
        assert os.getpid() not in pool.map(_pid, range(8))           # the GIL came back
    with batch.Pool(workers=2, timeout=30) as pool:
        assert pool.backend == "fork"


@pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded build with the GIL off")
@pytest.mark.timeout(60)
def test_on_free_threading_the_default_runs_in_threads_on_every_core():
    assert batch.Pool().backend == "thread"
    assert set(batch.pmap(_pid, range(8), workers=2)) == {os.getpid()}
    seen = set(batch.pmap(lambda _: threading.get_ident(), range(64), workers=2,
                          chunksize=1))
    assert threading.get_ident() not in seen  # worker threads, not the caller


@pytest.mark.timeout(90)
def test_many_callers_run_thread_backends_at_once():
    """8 threads, each running 8 maps, map-reduces and unordered imaps on its own
    thread backend of 4 threads: every result exact, no thread left behind."""
    errors, rounds = [], 8
    start = threading.Barrier(8)
    expected = [spin_square(x) for x in range(300)]

    def caller(k: int):
        try:
            start.wait()
            for r in range(rounds):
                items = range(300)
                assert batch.pmap(spin_square, items, backend="thread", workers=4,
                                  chunksize=1 + (k + r) % 7) == expected
                assert batch.map_reduce(sum, operator.add, list(items), backend="thread",
                                        workers=4) == sum(items)
                got = sorted(batch.imap(spin_square, items, backend="thread", workers=4,
                                        ordered=False))
                assert got == sorted(expected)
        except BaseException as exc:  # noqa: BLE001  reported by the main thread
            errors.append(f"caller {k}: {type(exc).__name__}: {exc}")

    callers = [threading.Thread(target=caller, args=(k,)) for k in range(8)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(80)
    assert not any(t.is_alive() for t in callers), "a caller hung"
    assert errors == []
    assert _no_batch_threads_within(5) == []


class _Gauge:
    """How many calls run at once, at most."""

    def __init__(self):
        self.lock, self.now, self.most = threading.Lock(), 0, 0

    def __call__(self, x: int) -> int:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.001)
        with self.lock:
            self.now -= 1
        return spin_square(x)


@pytest.mark.timeout(90)
def test_one_pool_submitted_to_from_many_threads(monkeypatch):
    """16 threads submit 40 calls each to one thread Pool of 4, all starting at once:
    every future has its own right result, never more than 4 calls run at once, and
    close() leaves no thread behind. (Without a lock, 16 first submits made 16
    executors, and up to 64 calls ran at once.)"""
    from batch import _submit
    real = _submit.submitter

    def slow_submitter(*args):  # widens the window in which first submits can race
        time.sleep(0.02)
        return real(*args)

    monkeypatch.setattr(_submit, "submitter", slow_submitter)
    for _ in range(5):
        pool, gauge = batch.Pool(workers=4, backend="thread"), _Gauge()
        start = threading.Barrier(16)
        futures: dict[int, list] = {k: [] for k in range(16)}

        def submitter(k: int):
            start.wait()
            for i in range(40):
                futures[k].append(pool.submit(gauge, k * 1000 + i))

        threads = [threading.Thread(target=submitter, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for k, fs in futures.items():
            assert [f.result(timeout=30) for f in fs] == \
                [spin_square(k * 1000 + i) for i in range(40)]
        pool.close()
        assert gauge.most <= 4
        assert _no_batch_threads_within(5) == []


@pytest.mark.skipif(not _platform.HAS_FORK, reason="needs fork")
@pytest.mark.parametrize("free_threaded", [False, True])
def test_fork_with_threads_alive_gives_one_warning_with_advice_for_this_build(
        monkeypatch, free_threaded):
    import warnings

    from batch.backends import _forking

    monkeypatch.setattr(_forking, "_warned_threads", False)
    monkeypatch.setattr(_platform, "FREE_THREADED_BUILD", free_threaded)
    monkeypatch.setattr(_platform, "gil_enabled", lambda: not free_threaded)
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert batch.pmap(abs, [-1, -2], backend="fork", chunksize=1) == [1, 2]
    finally:
        stop.set()
        t.join()
    # CPython 3.12+'s own DeprecationWarning from os.fork is replaced by batch's.
    assert [w.category for w in caught] == [RuntimeWarning], [str(w.message) for w in caught]
    text = str(caught[0].message)
    assert "other thread(s) are alive" in text  # ours, and any an earlier test left
    assert ("free-threaded build" in text) == free_threaded
    assert ("releases the GIL" in text) != free_threaded
