"""What only the fork backend promises: shared input, big results, no leftovers."""

from __future__ import annotations

import operator
import os
import time

import numpy as np
import pytest

import batch
from batch import _cpus, _platform

from conftest import open_fds

pytestmark = pytest.mark.skipif(not _platform.HAS_FORK, reason="needs os.fork")


def test_worker_sees_a_view_of_the_parent_buffer():
    data = np.arange(1_000_000, dtype=np.float64)
    base = data.__array_interface__["data"][0]

    def where(chunk):
        # same address as in the parent (fork keeps the address space), and a view
        return [(os.getpid(), chunk.__array_interface__["data"][0], chunk.base is data,
                 chunk.flags.owndata)]

    seen = batch.map_reduce(where, operator.add, data, chunks=4, workers=2, backend="fork")
    bounds = [r.start for r in [range(0, 250_000), range(250_000, 500_000),
                                range(500_000, 750_000), range(750_000, 1_000_000)]]
    assert [addr for _, addr, _, _ in seen] == [base + 8 * start for start in bounds]
    assert all(is_view and not owns for _, _, is_view, owns in seen)
    assert all(pid != os.getpid() for pid, *_ in seen)


def test_list_items_are_not_copied_into_workers():
    items = [object() for _ in range(8)]
    ids = batch.pmap(id, items, workers=2, backend="fork")
    assert ids == [id(x) for x in items]  # the very objects, through copy-on-write


@pytest.mark.timeout(120)
def test_500_mb_result_through_the_pipe():
    def big(i):
        a = np.empty(250 * 1024 * 1024 // 8)  # 250 MB per chunk, two chunks
        a[::4096] = i
        return a

    out = batch.pmap(big, [1, 2], workers=2, backend="fork", chunksize=1)
    assert [a.nbytes for a in out] == [250 * 1024 * 1024] * 2
    assert out[0][4096] == 1 and out[1][4096] == 2 and out[1][-4096] == 2


@pytest.mark.timeout(400)  # 36 ms a map on 3.13t alone, 180 s was passed under load
def test_2000_small_maps_leave_no_child_and_no_fd():
    before = open_fds()
    for i in range(2000):
        assert batch.pmap(operator.neg, [i, i + 1], workers=2, backend="fork") == [-i, -i - 1]
    assert open_fds() <= before | {max(before) + 1}  # listdir's own fd at most
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_workers_see_the_heap_frozen_unless_a_small_run_on_free_threading():
    import gc

    from batch.backends import _forking

    def frozen(chunk):
        return [gc.get_freeze_count() > 0] * len(chunk)

    small = batch.map_reduce(frozen, operator.add, [1, 2], workers=2, backend="fork")
    big = batch.map_reduce(frozen, operator.add, list(range(_forking.FT_FREEZE_MIN_ITEMS + 1)),
                           workers=2, backend="fork")
    lazy = batch.map_reduce(frozen, operator.add, (x for x in [1, 2]), workers=2,
                            backend="fork")
    # With the GIL the freeze is free: always. Free-threaded: it walks the heap, so not
    # for a small run of known size (backends/_forking.py, FT_FREEZE_MIN_ITEMS says why).
    assert small == [not _platform.FREE_THREADED_BUILD] * 2
    assert all(big) and all(lazy)
    assert gc.get_freeze_count() == 0  # the parent's collector is whole again after a run


def test_nested_pmap_runs_serially_inside_a_worker():
    def inner(x):
        return batch.pmap(lambda y: (os.getpid(), y), range(3), backend="fork")

    outer = batch.pmap(inner, [0, 1], workers=2, chunksize=1, backend="fork")
    for rows in outer:
        pids = {pid for pid, _ in rows}
        assert len(pids) == 1 and os.getpid() not in pids


def test_workers_write_their_prints(capfd):
    batch.pmap(lambda x: print(f"hello from {x}"), range(3), backend="fork", chunksize=1)
    out = capfd.readouterr().out
    assert all(f"hello from {x}" in out for x in range(3))


def test_blas_threads_limited_in_workers():
    _cpus.prepare_blas()
    if not _cpus._blas or not _cpus._blas.info():
        pytest.skip("no BLAS that threadpoolctl can drive")

    def threads(_):
        return [lib["num_threads"] for lib in _cpus._blas.info()]

    [counts] = batch.pmap(threads, [0], workers=2, backend="fork")
    assert max(counts) <= max(1, _cpus.usable_cpus() // 2)


def test_big_results_are_visible_to_later_workers():
    """Receive buffers are hidden from forks only while the run holds them privately."""
    first = batch.pmap(lambda i: np.full(1 << 18, float(i)), [1, 2], chunksize=1)
    streamed = list(batch.imap(lambda i: np.full(1 << 18, float(i)), [3], chunksize=1))
    sums = batch.pmap(lambda a: float(a.sum()), first + streamed, chunksize=1)
    assert sums == [float(1 << 18), 2.0 * (1 << 18), 3.0 * (1 << 18)]
    partial_holder = []

    def keep(acc, part):
        partial_holder.append(part)
        return acc + part

    batch.map_reduce(lambda c: np.full(1 << 18, 1.0), keep, list(range(4)), chunks=4)
    assert batch.pmap(lambda a: float(a[0]), partial_holder) == [1.0] * len(partial_holder)


def test_chunks_of_one_input_reuse_the_run_s_workers(tmp_path):
    log = tmp_path / "init.log"

    def init():
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")

    pids = batch.pmap(lambda x: os.getpid(), list(range(40)), workers=2, chunksize=1,
                      backend="fork", initializer=init)
    assert len(set(pids)) <= 2 and os.getpid() not in pids
    assert sorted(set(log.read_text().split())) == sorted(str(p) for p in set(pids))


def test_lazy_chunks_get_a_worker_that_can_see_them():
    made_late = (np.full(3, float(i)) for i in range(6))  # created after the first fork
    sums = list(batch.imap(lambda a: float(a.sum()), made_late, workers=2, chunksize=1,
                           backend="fork"))
    assert sums == [3.0 * i for i in range(6)]


def test_a_reused_worker_lets_go_of_a_mapped_file_s_pages(tmp_path):
    """Resident memory of a worker reading chunk after chunk of a .npy stays flat."""
    path = tmp_path / "big.npy"
    np.save(path, np.ones(128 * 2 ** 20 // 8))
    data = np.load(path, mmap_mode="r")

    def rss_then_sum(chunk):
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        return [(os.getpid(), rss, float(chunk.sum()))]

    seen = batch.map_reduce(rss_then_sum, operator.add, data, chunks=16, workers=2,
                            backend="fork")
    assert sum(s for _, _, s in seen) == data.size
    for pid in {p for p, _, _ in seen}:
        rss = [r for p, r, _ in seen if p == pid]
        assert max(rss) - min(rss) < 32 * 2 ** 20, rss


def _faults_over_blocks(_) -> int:
    """Minor faults taken by 16 blocks' worth of numpy temporaries (3 x 4 MiB each)."""
    import resource
    block = np.linspace(0.0, 1.0, 1 << 19)
    np.sin(block) + np.cos(block)  # the first block may fault its memory in
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(16):
        np.sin(block) + np.cos(block)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not _platform.HAS_FORK or _platform._libc.load() is None
                    or not hasattr(_platform._libc.load(), "gnu_get_libc_version"),
                    reason="glibc's malloc thresholds")
@pytest.mark.timeout(60)
def test_a_worker_reuses_its_freed_heap():
    """glibc's own rule gives back and faults in again about 1,000 pages per block here
    (_platform.keep_freed_heap); a worker keeps them, as a thread does."""
    [faults] = batch.pmap(_faults_over_blocks, [0], backend="fork", workers=1)
    assert faults < 16 * 100, f"{faults} minor faults for 16 blocks"


def _pipes_held():
    """{pipe inode: fds of this process on it}, from /proc/self/fd."""
    held = {}
    for fd in map(int, os.listdir("/proc/self/fd")):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("pipe:"):
            held.setdefault(target, []).append(fd)
    return held


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.timeout(60)
@pytest.mark.filterwarnings("ignore:batch is forking while")  # the other dispatcher thread
def test_workers_hold_only_their_own_pipe_ends():
    """A worker keeps one end of its result pipe and of its task pipe, nothing of the
    coordinator's own: not the run's SIGINT guard pipe, not an Executor's wake pipe (of
    this Executor, or of another one open at the time)."""
    before = set(_pipes_held())

    def new_pipes(_):
        return {pipe: fds for pipe, fds in _pipes_held().items() if pipe not in before}

    def check(seen):
        assert len(seen) <= 2, seen
        assert all(len(fds) == 1 for fds in seen.values()), seen  # never both ends

    check(batch.pmap(new_pipes, [0], workers=1, backend="fork")[0])
    with batch.Executor(2) as other, batch.Executor(2) as ex:
        other.submit(abs, 1).result()  # its dispatcher's wake pipe is open now
        busy = other.submit(time.sleep, 1.0)  # and a worker's pipes, while ex forks
        check(ex.submit(new_pipes, 0).result())
        assert not busy.done()
        busy.result()
