"""The contract every backend keeps. Serial is the reference: the others must agree."""

from __future__ import annotations

import itertools
import os
import operator
import time

import numpy as np
import pytest

import batch
from roundtrip_catalogue import check_round_trip


def square(x):
    return x * x


def same(x):
    return x


def test_values_come_back_as_they_were_sent(backend):
    """Issue 9: a 0-d array came back 1-d from fork; see roundtrip_catalogue.py."""
    check_round_trip(lambda values: batch.pmap(same, values, backend=backend, workers=2))


def test_pmap_keeps_input_order(backend):
    assert batch.pmap(square, range(1000), backend=backend, workers=2) == \
        [x * x for x in range(1000)]


def test_pmap_ordered_with_uneven_work(backend):
    def slow_first(x):
        if x == 0:
            time.sleep(0.3)
        return x

    assert batch.pmap(slow_first, range(20), backend=backend, workers=2, chunksize=1) == \
        list(range(20))


def test_unordered_map_has_the_same_items(backend):
    out = batch.pmap(square, range(500), backend=backend, workers=2, ordered=False)
    assert sorted(out) == [x * x for x in range(500)]


def test_imap_unordered_yields_in_completion_order(backend):
    if backend == "serial":
        pytest.skip("serial completes chunks in input order by definition")

    def f(x):
        time.sleep(0.6 if x == 0 else 0.01)
        return x

    out = list(batch.imap(f, range(6), backend=backend, workers=2, chunksize=1, ordered=False))
    assert sorted(out) == list(range(6))
    assert out[-1] == 0  # the slow first item finished last


def test_empty_input(backend):
    assert batch.pmap(square, [], backend=backend) == []
    assert list(batch.imap(square, iter([]), backend=backend)) == []
    assert batch.map_reduce(sum, operator.add, [], backend=backend, initial=0) == 0
    with pytest.raises(TypeError, match="empty data"):
        batch.map_reduce(sum, operator.add, [], backend=backend)


def test_one_item(backend):
    assert batch.pmap(square, [7], backend=backend, workers=2) == [49]


def test_more_workers_than_items(backend):
    assert batch.pmap(square, [1, 2, 3], backend=backend, workers=16) == [1, 4, 9]


def test_generator_input(backend):
    gen = (x for x in range(2500))
    assert batch.pmap(square, gen, backend=backend, workers=2) == [x * x for x in range(2500)]


def test_imap_is_lazy_and_bounded(backend):
    """A generator is read only as far as the chunks in flight need."""
    pulled = []

    def source():
        for i in itertools.count():
            pulled.append(i)
            yield i

    it = batch.imap(square, source(), backend=backend, workers=2, chunksize=10)
    first = list(itertools.islice(it, 25))
    it.close()
    assert first == [x * x for x in range(25)]
    # A window of 8 chunks per worker (16 here) ahead of the oldest unfinished chunk,
    # chunks of 10. The window slides as chunks finish, not as the caller consumes: by
    # the time chunk 2 (items 20-29) is handed over, chunks 0-17 (2 + 16 - 1) may have
    # started and chunk 18 been cut, waiting: 19 chunks, 3 + 16. Threads
    # without a GIL finish chunks fast enough to get there (180 items were seen on
    # 3.13t); an unbounded read never stops.
    assert len(pulled) <= 10 * (3 + 8 * 2)


def test_map_reduce_array_in_chunk_order(backend):
    data = np.arange(10_000, dtype=np.int64)
    parts = batch.map_reduce(lambda c: [int(c[0]), int(c[-1])], operator.add, data,
                             chunks=7, backend=backend, workers=2)
    assert parts[0] == 0 and parts[-1] == 9_999
    assert parts == sorted(parts)
    assert len(parts) == 14


def test_map_reduce_sum_matches_numpy(backend):
    data = np.random.default_rng(0).random(1_000_003)
    total = batch.map_reduce(np.sum, operator.add, data, backend=backend, workers=2)
    assert total == pytest.approx(data.sum(), rel=1e-12)


def test_map_reduce_initial_and_iterable(backend):
    out = batch.map_reduce(sum, operator.add, (x for x in range(1001)), initial=5,
                           backend=backend, chunksize=100)
    assert out == 5 + sum(range(1001))


def test_map_reduce_list_chunks_are_slices(backend):
    chunks = batch.map_reduce(lambda c: [list(c)], operator.add, list(range(10)), chunks=3,
                              backend=backend)
    assert chunks == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


ROUND_TRIP = [
    {"a": 1, "b": [1, 2.5, "x"]},
    (1, (2, 3), [4, (5,)]),
    "unicode ✓",
    b"\x00bytes\xff",
    2 ** 100,
    -(2 ** 90),
    2 ** 64 - 1,
    1.5,
    True,
    None,
    3 - 4j,
    np.float32(1.25),
    np.int64(-3),
    np.bool_(True),
    np.arange(12, dtype=np.int16).reshape(3, 4),
    np.arange(100_000, dtype=np.float64),
    np.array(["a", "bc"]),
    np.array([1, 2], dtype="datetime64[s]"),
    np.zeros((0, 3)),
    np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    np.arange(20)[::3],
    {1: "int key", (1, 2): "tuple key"},
    frozenset({1, 2}),
]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=lambda v: type(v).__name__)
def test_types_round_trip(backend, value):
    [out] = batch.pmap(lambda _: value, [0], backend=backend)
    assert type(out) is type(value)
    if isinstance(value, np.ndarray):
        assert out.dtype == value.dtype and out.shape == value.shape
        np.testing.assert_array_equal(out, value)
    elif isinstance(value, dict):
        assert out == value
        assert all(type(k) is type(v) for k, v in zip(out, value))
    else:
        assert out == value
    if isinstance(value, tuple):
        assert type(out[1]) is tuple and type(out[2][1]) is tuple


def test_unencodable_result_names_the_type_and_chunk(backend):
    if backend != "fork":
        pytest.skip("thread and serial results are never encoded")
    with pytest.raises(batch.ResultError, match=r"chunk 0.*generator"):
        batch.pmap(lambda _: (x for x in []), [0], backend=backend)


def test_worker_error_is_the_original_type_too(backend):
    def boom(x):
        if x == 3:
            raise KeyError("missing", x)
        return x

    with pytest.raises(KeyError) as info:
        batch.pmap(boom, range(6), backend=backend, chunksize=2)
    err = info.value
    assert isinstance(err, batch.WorkerError)
    assert err.chunk == 1 and err.items == range(2, 4)
    assert err.args == ("missing", 3)
    assert "boom" in err.remote_traceback
    assert isinstance(err.__cause__, KeyError)


def test_progress_counts_items(backend, capsys):
    assert batch.pmap(square, range(300), backend=backend, progress=True) == \
        [x * x for x in range(300)]
    assert "300/300" in capsys.readouterr().err


def test_initializer_runs_in_workers(backend):
    state = {}

    def init(value):
        state["v"] = value

    out = batch.pmap(lambda x: state.get("v", 0) + x, range(4), backend=backend,
                     initializer=init, initargs=(100,))
    assert out == [100, 101, 102, 103]


def test_pool_reuse_and_defaults(backend):
    with batch.Pool(2, backend=backend, chunksize=3) as pool:
        assert pool.map(square, range(10)) == [x * x for x in range(10)]
        assert list(pool.imap(square, range(5))) == [0, 1, 4, 9, 16]
        assert pool.map_reduce(sum, operator.add, list(range(100))) == 4950
    with pytest.raises(RuntimeError, match="closed"):
        pool.map(square, [1])


def test_pool_submit(backend):
    import concurrent.futures as cf

    with batch.Pool(2, backend=backend) as pool:
        futures = [pool.submit(pow, 2, i) for i in range(6)]
        done = [f.result(timeout=30) for f in cf.as_completed(futures, timeout=30)]
        assert sorted(done) == [2 ** i for i in range(6)]
        bad = pool.submit(operator.truediv, 1, 0)
        with pytest.raises(ZeroDivisionError):
            bad.result(timeout=30)
        assert pool.submit(square, 9).result(timeout=30) == 81


def test_pool_usable_after_a_failure(backend):
    with batch.Pool(2, backend=backend) as pool:
        with pytest.raises(ZeroDivisionError):
            pool.map(lambda x: 1 / x, [1, 0])
        assert pool.map(square, [3]) == [9]


@pytest.mark.parametrize("name,value", [("workers", 0), ("workers", -1), ("chunksize", 0)])
def test_bad_sizes_fail_at_once(backend, name, value):
    with pytest.raises(ValueError, match=name):
        batch.pmap(square, [1], backend=backend, **{name: value})


@pytest.mark.parametrize("call, name", [
    (lambda b: batch.pmap(3, [1], backend=b), "fn"),
    (lambda b: list(batch.imap(None, [1], backend=b)), "fn"),
    (lambda b: batch.map_reduce("sum", operator.add, [1], backend=b), "mapper"),
    (lambda b: batch.map_reduce(sum, None, [1], backend=b), "reducer"),
    (lambda b: batch.map_blocks(np.ones(3), np.arange(3.0), backend=b), "fn"),
], ids=["pmap", "imap", "mapper", "reducer", "map_blocks"])
def test_a_function_that_is_not_callable_fails_at_once(backend, call, name):
    with pytest.raises(TypeError, match=f"^{name} must be callable, got "):
        call(backend)


def test_chunks_zero_fails_at_once(backend):
    with pytest.raises(ValueError, match="chunks"):
        batch.map_reduce(sum, operator.add, [1], chunks=0, backend=backend)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
@pytest.mark.timeout(120)
def test_imap_streams_a_long_generator_in_bounded_memory(backend):
    """3 million 100-byte items: holding them all would take over 400 MB."""
    n = 3_000_000
    before = _rss_bytes()
    peak, total = before, 0
    for i, size in enumerate(batch.imap(len, (b"x" * 100 for _ in range(n)), backend=backend,
                                        workers=2)):
        total += size
        if i % 100_000 == 0:
            peak = max(peak, _rss_bytes())
    assert total == 100 * n
    assert peak - before < 100 * 2 ** 20


def test_without_fork_the_default_is_threads(monkeypatch):
    from batch import _platform, backends

    monkeypatch.setattr(_platform, "HAS_FORK", False)
    assert backends.resolve(None) == "thread"
    with pytest.raises(ValueError, match="os.fork"):
        batch.pmap(square, [1], backend="fork")
    assert batch.pmap(square, [1, 2]) == [1, 4]


def test_cheap_items_get_few_chunks_and_costly_items_many():
    from batch import _split

    cheap = _split.plan(list(range(200_000)), len, workers=2, probe=True)
    sizes = [next(cheap).count, next(cheap).count]
    cheap.feedback(sizes[0], 0.0005)           # 6,250 items in 0.5 ms: trivial items
    sizes += [t.count for t in cheap]
    assert sizes[:2] == [6250, 6250] and len(sizes) == 4 and sum(sizes) == 200_000

    costly = _split.plan(list(range(1000)), len, workers=2, probe=True)
    first = [next(costly).count, next(costly).count]
    costly.feedback(first[0], 3.1)               # 0.1 s an item
    rest = [t.count for t in costly]
    assert len(rest) == 2 * _split.CHUNKS_PER_WORKER and sum(first + rest) == 1000


def test_map_reduce_chunks_do_not_depend_on_timing(backend):
    data = np.arange(100_000, dtype=np.float64)
    spans = [batch.map_reduce(lambda c: [(float(c[0]), len(c))], operator.add, data,
                              backend=backend, workers=2) for _ in range(2)]
    assert spans[0] == spans[1] and len(spans[0]) == 2 * 4


def test_several_iterables_are_zipped_as_map_does(backend):
    # sliceable inputs (cut into spans, zipped in the worker) and lazy ones (zip())
    arrays = (np.arange(10), np.arange(10) * 10)
    expected = [a + b for a, b in zip(*arrays)]
    assert batch.pmap(operator.add, *arrays, backend=backend, workers=2) == expected
    assert batch.pmap(operator.add, range(10), iter([1] * 7), backend=backend,
                      chunksize=3) == [i + 1 for i in range(7)]
    assert list(batch.imap(pow, [2, 3, 4], (x for x in [2, 2]), backend=backend)) == [4, 9]
    with batch.Pool(2, backend=backend) as pool:
        got = pool.map(divmod, [7, 8, 9], [2, 3, 4], ordered=False, chunksize=1)
        assert sorted(got) == sorted([(3, 1), (2, 2), (2, 1)])
        assert sorted(pool.imap(operator.mul, "abc", [1, 2, 3], ordered=False)) == \
            ["a", "bb", "ccc"]
